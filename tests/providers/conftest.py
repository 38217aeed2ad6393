"""Fixtures of the provider tests: the fake Twilio server lives in tests/twilio_fake."""

from tests.twilio_fake.fixtures import twilio_server

__all__ = ["twilio_server"]
