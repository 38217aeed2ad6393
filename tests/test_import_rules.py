"""Architecture rules, checked on the source: the policy engine and routing are pure; the
core (calls, policy, routing, retention, audit) names no phone platform (nor TwiML, nor
Amazon Connect's or AWS's words) and imports none; only the Twilio package imports the
Twilio SDK (its REST part only the adapter), only the Connect package imports boto3 and
names Connect or AWS; no import circle among app/ modules (a static graph of every import,
function-level and relative ones included, with the package __init__ modules each runs)."""

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


def module_of(path: Path, app: Path = APP) -> str:
    parts = list(path.relative_to(app.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _from(node: ast.ImportFrom, module: str, package: bool) -> str:
    """The absolute name of the module a `from … import` names: `from ..x import y` in
    app.calls.events is app.x (in a package's __init__, one dot is the package itself)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if package else module.split(".")[:-1]
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports_in(source: str, module: str, package: bool = False, runtime: bool = False) -> set[str]:
    """Every module name an import in `source` (module `module`) names, at any depth,
    relative ones made absolute; `from m import n` gives m and m.n (n may be a module).
    `runtime` leaves out the imports under TYPE_CHECKING."""
    tree = ast.parse(source)
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if runtime and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from(node, module, package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def imports(path: Path) -> set[str]:
    return imports_in(path.read_text(), module_of(path), path.name == "__init__.py")


def runs(source: str, module: str, known: set[str], package: bool = False) -> set[str]:
    """The app modules that running `module` runs: each one it imports and every package
    __init__ on the way to it (`import a.b.c` runs a and a.b), less the packages `module`
    is inside (they have begun already)."""
    named = imports_in(source, module, package, runtime=True)
    found = {".".join(n.split(".")[:i]) for n in named for i in range(1, n.count(".") + 2)}
    parts = module.split(".")
    begun = {".".join(parts[:i]) for i in range(1, len(parts) + package)}
    return (found & known) - begun - {module}


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
    assert platform_imports(path.read_text(), module_of(path), path.name == "__init__.py") == set()
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


def platform_imports(source: str, module: str, package: bool = False) -> set[str]:
    return {
        n
        for n in imports_in(source, module, package)
        if n == "app.platforms" or n.startswith("app.platforms.")
    }


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("from ..platforms import base\n", False),
        ("from ..platforms.base import PhonePlatform\n", False),
        ("from .. import platforms\n", False),
        ("from ..platforms import base\n", True),  # in app/calls/__init__.py
        ("from app import platforms\n", False),
        ("import app.platforms.base\n", False),
        ("def pick():\n    from app.platforms import platform_named\n", False),
    ],
)
def test_the_platform_ban_fires(source: str, package: bool) -> None:
    """A core module importing a platform, however it is spelt, is caught."""
    module = "app.calls" if package else "app.calls.planted"
    assert platform_imports(source, module, package) != set()
    # ...and the same module importing its neighbours is not.
    assert platform_imports("from . import store\nfrom ..audit import log\n", module) == set()


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


def import_graph(app: Path = APP) -> dict[str, set[str]]:
    """Each module under `app` -> the modules running it runs (as its import statements
    say: app/platforms/__init__.py's discovery by name is not seen)."""
    paths = {module_of(p, app): p for p in app.rglob("*.py")}
    return {
        m: runs(p.read_text(), m, set(paths), p.name == "__init__.py") for m, p in paths.items()
    }


def test_no_import_circle_among_app_modules() -> None:
    assert circles(import_graph()) == []


def _plant(app: Path, sources: dict[str, str]) -> None:
    for name, source in sources.items():
        path = app.parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_the_circle_check_finds_a_circle(tmp_path: Path) -> None:
    """The check above can fail: two modules importing each other are found."""
    app = tmp_path / "app"
    _plant(
        app,
        {
            "app/__init__.py": "",
            "app/a.py": "from app.b import x\n",
            "app/b.py": "import app.a\nif TYPE_CHECKING:\n    import app.c\n",
            "app/c.py": "",
        },
    )
    graph = import_graph(app)
    assert graph == {"app": set(), "app.a": {"app.b"}, "app.b": {"app.a"}, "app.c": set()}
    assert circles(graph) == [{"app.a", "app.b"}]


def test_the_circle_check_counts_package_inits_and_function_level_imports(
    tmp_path: Path,
) -> None:
    """The circle the audit package once had: a table's method imported the pure chain
    module, which runs app/audit/__init__.py, which imported the log, which imports the
    tables. Relative imports count as well."""
    app = tmp_path / "app"
    _plant(
        app,
        {
            "app/__init__.py": "",
            "app/audit/__init__.py": "from .log import append\n",
            "app/audit/log.py": "from app.storage.models import AuditEvent\n",
            "app/audit/chain.py": "",
            "app/storage/__init__.py": "",
            "app/storage/models.py": (
                "def occurred_at():\n    from app.audit.chain import parse_time\n"
            ),
        },
    )
    graph = import_graph(app)
    assert graph["app.storage.models"] == {"app.audit", "app.audit.chain"}
    assert graph["app.audit"] == {"app.audit.log"}
    assert circles(graph) == [{"app.audit", "app.audit.log", "app.storage.models"}]
