"""Architecture rules, checked on the source: the policy engine and routing are pure; the
core (calls, policy, routing, retention, audit) names no phone platform (nor TwiML, nor
Amazon Connect's or AWS's words) and imports none; only the Twilio package imports the
Twilio SDK (its REST part only the adapter), only the Connect package imports boto3 and
names Connect or AWS; no import circle among app/ modules (a static graph of every import,
function-level ones included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.platforms import PLATFORMS

APP = Path(__file__).resolve().parent.parent / "app"
IMPURE = ("sqlalchemy", "httpx", "fastapi", "starlette", "requests", "twilio", "app.")
CORE = ("calls", "recording_policy", "routing", "retention", "audit")
CONNECT = APP / "platforms" / "connect"
# Amazon Connect's and AWS's own words. "connect" is an English verb too, so the platform
# is named by its proper noun; S3 is also a requirement's number (PRODUCT.md), so AWS's
# storage is named by its SDK and its words around it.
CONNECT_WORDS = re.compile(
    r"\b(Connect|Amazon|AWS|EventBridge|CCP|ContactId|InitialContactId)\b"
    r"|\bboto(3|core)?\b|\baws\b|s3://",
)
COMMON_WORDS = {"connect"}  # platform names that are also ordinary words


def names_a_platform(text: str) -> list[str]:
    lowered = text.lower()
    found = [n for n in (*PLATFORMS, "twiml") if n not in COMMON_WORDS and n in lowered]
    return found + [m.group(0) for m in CONNECT_WORDS.finditer(text)]


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(("." * node.level) + node.module)
    return names


def module_of(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, known: set[str]) -> set[str]:
    """The app modules `path` imports when run (imports under TYPE_CHECKING excluded);
    `from package import name` counts as importing the submodule when it is one."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("app"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("app"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found & known


@pytest.mark.parametrize("path", sorted((APP / "recording_policy").glob("*.py")), ids=str)
def test_policy_engine_is_pure(path: Path) -> None:
    bad = {
        n
        for n in imports(path)
        if n.startswith(IMPURE) and not n.startswith("app.recording_policy")
    }
    assert not bad
    assert "time" not in imports(path)
    assert ".now(" not in path.read_text()


@pytest.mark.parametrize("path", sorted((APP / "routing").glob("*.py")), ids=str)
def test_routing_is_pure(path: Path) -> None:
    allowed = ("app.recording_policy", "app.routing")
    bad = {n for n in imports(path) if n.startswith(IMPURE) and not n.startswith(allowed)}
    assert not bad
    assert "time" not in imports(path)


def test_only_the_twilio_adapter_imports_the_rest_sdk() -> None:
    sdk = ("twilio.rest", "twilio.base", "twilio.http")
    offenders = [
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if any(n.startswith(sdk) for n in imports(path))
    ]
    assert offenders == ["platforms/twilio/rest.py"]


def test_only_the_twilio_package_imports_the_twilio_sdk() -> None:
    offenders = [
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if any(n == "twilio" or n.startswith("twilio.") for n in imports(path))
        and not path.is_relative_to(APP / "platforms" / "twilio")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "path", sorted(p for c in CORE for p in (APP / c).rglob("*.py")), ids=lambda p: str(p)
)
def test_the_core_names_no_platform(path: Path) -> None:
    assert not {n for n in imports(path) if n.startswith("app.platforms")}
    assert names_a_platform(path.read_text()) == []


def test_the_platform_words_are_found() -> None:
    """The check above can fail: each platform's words are caught, the verb is not."""
    assert names_a_platform("Twilio's TwiML") == ["twilio", "twiml"]
    planted = "Amazon Connect's ContactId, via EventBridge, boto3 and s3://bucket/key"
    assert names_a_platform(planted) == [
        "Amazon",
        "Connect",
        "ContactId",
        "EventBridge",
        "boto3",
        "s3://",
    ]
    assert names_a_platform("connect the caller; engine.connect(); S3 (security)") == []


def test_only_the_connect_package_imports_the_aws_sdk() -> None:
    offenders = [
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if any(n.split(".")[0] in ("boto3", "botocore") for n in imports(path))
        and not path.is_relative_to(CONNECT)
    ]
    assert offenders == []


def test_connect_is_known_only_to_its_package() -> None:
    """Its settings included (app/platforms/connect/settings.py): app/config.py checks
    CALLGUARD_PROVIDER against the packages present without naming any."""
    mentions = {
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if CONNECT_WORDS.search(path.read_text()) and not path.is_relative_to(CONNECT)
    }
    assert mentions == set()


def test_twilio_is_known_only_to_its_packages_and_the_settings() -> None:
    """The settings stay together: one environment, validated once at start, so a missing
    TWILIO_AUTH_TOKEN is refused naming the variable before anything serves."""
    mentions = {
        str(path.relative_to(APP))
        for path in APP.rglob("*.py")
        if "twilio" in path.read_text().lower()
        and not path.is_relative_to(APP / "platforms" / "twilio")
        and not path.is_relative_to(APP / "platforms" / "simulator")
    }
    assert mentions == {"config.py"}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_among_app_modules() -> None:
    paths = {module_of(p): p for p in APP.rglob("*.py")}
    known = set(paths)
    assert circles({m: _runtime_imports(p, known) - {m} for m, p in paths.items()}) == []


def test_the_circle_check_finds_a_circle(tmp_path: Path) -> None:
    """The check above can fail: two modules importing each other are found."""
    (tmp_path / "a.py").write_text("from app.b import x\n")
    (tmp_path / "b.py").write_text("import app.a\nif TYPE_CHECKING:\n    import app.c\n")
    known = {"app.a", "app.b", "app.c"}
    graph = {m: _runtime_imports(tmp_path / f"{m[4:]}.py", known) for m in ("app.a", "app.b")}
    assert graph == {"app.a": {"app.b"}, "app.b": {"app.a"}}
    assert circles({**graph, "app.c": set()}) == [{"app.a", "app.b"}]
