"""What the Connect stand-in's own tests share: a small world, and ways to assert refusals.

`World` is an instance with one queue and one live contact; `refused` asserts a boto3 call
fails with Connect's code and status and left exactly one violation; `send` signs a request
with botocore's SigV4Auth and sends it with httpx as is, for what boto3 would not send.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .server import FakeConnectServer
from .state import RecordingState

ALL = {"VoiceRecordingTrack": "ALL"}


@dataclass
class World:
    server: FakeConnectServer
    client: Any
    instance: str
    contact: str

    @classmethod
    def build(cls, server: FakeConnectServer) -> World:
        """An instance with a queue "Payments" and a live inbound contact queued there."""
        instance = server.add_instance().id
        server.add_queue(instance, "Payments")
        contact = server.add_contact(instance, queue="Payments").id
        return cls(server, server.client(), instance, contact)

    def ids(self, contact: str | None = None, initial: str | None = None) -> dict[str, str]:
        """The three ids a recording request names, the initial one as Connect knows it."""
        contact = contact or self.contact
        initial = initial or self.server.contact(self.instance, contact).initial_contact_id
        return {"InstanceId": self.instance, "ContactId": contact, "InitialContactId": initial}

    def state(self, contact: str | None = None) -> RecordingState | None:
        rec = self.server.contact(self.instance, contact or self.contact).recording
        return None if rec is None else rec.state

    def start(self, contact: str | None = None) -> None:
        self.client.start_contact_recording(**self.ids(contact), VoiceRecordingConfiguration=ALL)


def refused(
    call: Callable[[], Any], server: FakeConnectServer, code: str, status: int, text: str = ""
) -> ClientError:
    """boto3 raises ClientError with Connect's code and status, and the stand-in recorded
    exactly that one violation."""
    with pytest.raises(ClientError) as info:
        call()
    err = info.value
    assert err.response["Error"]["Code"] == code, err.response
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert text in err.response["Error"]["Message"]
    [violation] = server.take_violations()
    assert (violation.code, violation.status) == (code, status)
    return err


def send(
    server: FakeConnectServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "",
    tamper: Callable[[bytes], bytes] | None = None,
) -> httpx.Response:
    """A request signed by botocore's SigV4Auth and sent as is (or tampered with after)."""
    url = f"{server.endpoint_url}{path}" + (f"?{query}" if query else "")
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = AWSRequest(
        method=method, url=url, data=data, headers={"Content-Type": "application/json"}
    )
    creds = Credentials(server.access_key, server.secret_key)
    SigV4Auth(creds, "connect", server.region).add_auth(req)
    content = tamper(data) if tamper else data
    return httpx.request(method, url, content=content, headers=dict(req.headers.items()))


def raw_refused(resp: httpx.Response, server: FakeConnectServer, code: str, text: str) -> None:
    assert resp.headers["x-amzn-ErrorType"] == code, resp.text
    assert text in resp.json()["message"]
    [violation] = server.take_violations()
    assert violation.code == code
    assert violation.status == resp.status_code
