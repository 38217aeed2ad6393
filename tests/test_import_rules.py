"""Architecture rules: the policy engine and TwiML builders are pure; only the Twilio
adapter imports the Twilio REST SDK."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
IMPURE = ("sqlalchemy", "httpx", "fastapi", "starlette", "requests", "twilio", "app.")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(("." * node.level) + node.module)
    return names


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
    allowed = ("app.recording_policy", "app.routing", "twilio.twiml")
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
    assert offenders == ["providers/twilio.py"]
