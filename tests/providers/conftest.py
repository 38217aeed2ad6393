"""Fixtures of the provider tests: the fake Twilio server lives in tests/twilio_fake."""

import sys
from pathlib import Path

# tests/ holds the `twilio_fake` package; a top-level tests/conftest.py would put it on
# sys.path too, this makes the provider tests runnable on their own.
_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from twilio_fake.fixtures import twilio_server  # noqa: E402

__all__ = ["twilio_server"]
