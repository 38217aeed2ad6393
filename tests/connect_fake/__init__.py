"""An Amazon Connect stand-in for tests, checked against botocore's Connect service model."""

from .journal import ReceivedRequest, Violation
from .server import FakeConnectServer

__all__ = ["FakeConnectServer", "ReceivedRequest", "Violation"]
