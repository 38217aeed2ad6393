"""An Amazon Connect stand-in for tests, checked against botocore's Connect service model."""

from .server import FakeConnectServer, ReceivedRequest, Violation

__all__ = ["FakeConnectServer", "ReceivedRequest", "Violation"]
