"""Twilio's REST API through the official SDK, in Twilio's own shape (`TwilioApi`);
app/platforms/twilio/control.py makes it callguard's `Provider`. Only this package imports
the SDK: here, the webhook signature check and the TwiML builders.

Where a behaviour comes from:

* [spec]   Twilio's OpenAPI description of API v2010 (twilio_api_v2010.json): operations
           CreateCallRecording, UpdateCallRecording, UpdateCall, FetchRecording,
           DeleteRecording and their form fields.
* [events] RecordingStatusCallbackEvent is one field of space-separated events: the spec's
           own example is ["in-progress completed failed"], Twilio's curl example sends
           "RecordingStatusCallbackEvent=in-progress completed absent" (help.twilio.com,
           "Getting Started with Call Recording Controls"), and the C# SDK takes a list
           with one space-separated entry (github.com/twilio/twilio-csharp/issues/849).
           The Python SDK sends each list item as a repeated form field, so we pass one item.
* Errors are classified in app/platforms/twilio/errors.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from app.calls.provider import ProviderError, RecordingInfo, RecordingStatus
from app.platforms.twilio.errors import error_from_response

CALLBACK_EVENTS = "in-progress completed absent"  # [events]: one field, space-separated

# Twilio's recording statuses [spec: recording_enum_status] to callguard's.
_STATUSES: dict[str, RecordingStatus] = {
    "in-progress": RecordingStatus.IN_PROGRESS,
    "paused": RecordingStatus.PAUSED,
    "stopped": RecordingStatus.STOPPED,
    # The recording has ended and its file is being prepared: for callguard, stopped.
    "processing": RecordingStatus.STOPPED,
    "completed": RecordingStatus.COMPLETED,
    "absent": RecordingStatus.ABSENT,
    "failed": RecordingStatus.FAILED,
    # Only seen with IncludeSoftDeleted: there is no audio any more.
    "deleted": RecordingStatus.ABSENT,
}


def recording_status(value: object) -> RecordingStatus:
    status = _STATUSES.get(str(value))
    if status is None:
        raise ProviderError(
            f"Twilio answered an unknown recording status {value!r}", transient=False
        )
    return status


class TwilioProvider:
    """`Provider` over Twilio's REST API.

    Every request goes to `api_base_url` (Twilio's region/edge host rewriting is switched
    off so the URL is used as given) with `timeout` seconds per connect and per read.

    No retries happen here: each method makes exactly one HTTP request and maps any
    failure to `ProviderError` (transient or permanent). Retry policy belongs to the
    call-control service, which knows whether an operation is safe to repeat.
    """

    def __init__(
        self, account_sid: str, auth_token: str, api_base_url: str, timeout: float = 10.0
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        # One SDK client per thread: the SDK keeps per-request state on its HTTP client
        # and a requests.Session is not documented as thread-safe.
        self._local = threading.local()

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            http_client = TwilioHttpClient(timeout=self.timeout)  # SDK default: no retries
            client = Client(self.account_sid, self._auth_token, http_client=http_client)
            # TWILIO_EDGE / TWILIO_REGION from the environment would rewrite the host.
            client.edge = None
            client.region = None
            # Every resource we use lives on the `api` domain; point it at our base URL.
            client.api.base_url = self.api_base_url
            self._local.client = client
        return client

    def _account(self) -> Any:
        return self._client().api.v2010.accounts(self.account_sid)

    # -- Provider ----------------------------------------------------------------------

    def start_recording(self, call_sid: str, status_callback: str) -> RecordingInfo:
        with _translate("start recording"):
            rec = (
                self._account()
                .calls(call_sid)
                .recordings.create(
                    recording_status_callback_event=[CALLBACK_EVENTS],
                    recording_status_callback=status_callback,
                    recording_status_callback_method="POST",
                    recording_channels="dual",
                    recording_track="both",
                )
            )
            return _info(rec, call_sid)

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._update(
            call_sid, recording_sid, "pause", status="paused", pause_behavior="skip"
        )

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._update(call_sid, recording_sid, "resume", status="in-progress")

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._update(call_sid, recording_sid, "stop", status="stopped")

    def redirect_call(self, call_sid: str, url: str) -> None:
        with _translate("redirect call"):
            self._account().calls(call_sid).update(url=url, method="POST")

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        with _translate("fetch recording"):
            rec = self._account().recordings(recording_sid).fetch()
            return _info(rec, None)

    def delete_recording(self, recording_sid: str) -> None:
        with _translate("delete recording"):
            self._account().recordings(recording_sid).delete()

    def _update(self, call_sid: str, recording_sid: str, verb: str, **fields: str) -> RecordingInfo:
        with _translate(f"{verb} recording"):
            rec = self._account().calls(call_sid).recordings(recording_sid).update(**fields)
            return _info(rec, call_sid)


def _info(rec: Any, call_sid: str | None) -> RecordingInfo:
    return RecordingInfo(
        sid=str(rec.sid),
        call_sid=str(rec.call_sid or call_sid or ""),
        status=recording_status(rec.status),
    )


@contextmanager
def _translate(action: str) -> Iterator[None]:
    """Turn what the SDK and `requests` raise into `ProviderError`."""
    try:
        yield
    except TwilioRestException as exc:
        # Without a Twilio code in the body the SDK repeats the HTTP status as the code.
        code = exc.code if exc.code != exc.status else None
        raise error_from_response(exc.status, code, f"{action}: {exc.msg}") from exc
    except TwilioServiceException as exc:
        raise error_from_response(exc.status, exc.code, f"{action}: {exc.title}") from exc
    except requests.exceptions.RequestException as exc:
        # Timeouts and connection failures: Twilio may or may not have acted.
        raise ProviderError(f"{action}: {type(exc).__name__}: {exc}", transient=True) from exc
    except TwilioException as exc:
        raise ProviderError(f"{action}: {exc}", transient=False) from exc
    except (ValueError, KeyError) as exc:
        # A 2xx answer whose body is not the JSON Twilio documents.
        raise ProviderError(f"{action}: unreadable answer: {exc}", transient=False) from exc
