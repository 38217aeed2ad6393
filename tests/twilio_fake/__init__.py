"""A Twilio-compatible REST server for tests, checked against Twilio's OpenAPI description."""

from .server import FakeTwilioServer, ReceivedRequest, Violation

__all__ = ["FakeTwilioServer", "ReceivedRequest", "Violation"]
