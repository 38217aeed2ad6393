"""Twilio's recordings' audio: `GET {api}/2010-04-01/Accounts/{AccountSid}/Recordings/
{RecordingSid}.wav` with the account's credentials (Twilio's documented media URL; it may
redirect to its storage, and httpx drops the credentials on a redirect to another host).
The URL is built from the settings, never from a stored RecordingUrl, so credentials only
go to the configured API. A byte range is asked of Twilio and its 206 (or 416) relayed."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from app.retention.errors import Gone, MediaUnavailable, RangeNotSatisfiable
from app.retention.media import CHUNK, RELAYED, WAV, Media


class TwilioMedia:
    def __init__(
        self, api_base_url: str, account_sid: str, auth_token: str, timeout: float = 30.0
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.account_sid = account_sid
        self.timeout = timeout
        # One client for the process, shared by every thread (httpx: "It can be shared
        # between threads"). A client per download built a TLS context each time, ~19 ms
        # of CPU: under bench/load.py the fingerprint pass spent more CPU on that than a
        # worker on its webhooks (issue 17). Shared, the connection stays alive too.
        # No cookie jar kept between downloads: each is made as if alone, as before.
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            auth=(account_sid, auth_token),
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
        )

    def url(self, recording_sid: str) -> str:
        return (
            f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}"
            f"/Recordings/{recording_sid}.wav"
        )

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        client = self._client
        # identity: the bytes relayed are the bytes Content-Length and Content-Range count.
        headers = {"Accept-Encoding": "identity", **({"Range": byte_range} if byte_range else {})}
        try:
            response = client.send(
                client.build_request("GET", self.url(recording_sid), headers=headers),
                stream=True,
            )
        except httpx.HTTPError as exc:
            raise MediaUnavailable(
                f"the provider could not be reached: {type(exc).__name__}"
            ) from exc

        close = response.close  # hands its connection back to the pool
        if response.status_code == 404:
            close()
            raise Gone(f"the provider no longer has recording {recording_sid}")
        if response.status_code == 416:
            close()
            total = response.headers.get("content-range", "").rpartition("/")[2]
            raise RangeNotSatisfiable(int(total) if total.isdecimal() else None)
        if response.status_code >= 400:
            close()
            raise MediaUnavailable(f"the provider answered {response.status_code}")
        relayed = {k: v for k, v in response.headers.items() if k.lower() in RELAYED}
        if response.status_code != 206:
            relayed.pop("content-range", None)
        chunks = response.iter_raw(CHUNK)
        if response.headers.get("content-encoding", "identity") != "identity":
            relayed.pop("content-length", None)  # encoded anyway: decoded, so the length is off
            chunks = response.iter_bytes(CHUNK)
        return Media(
            chunks,
            response.headers.get("content-type", WAV),
            close,
            206 if response.status_code == 206 else 200,
            relayed,
        )
