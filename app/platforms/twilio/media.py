"""Twilio's recordings' audio: `GET {api}/2010-04-01/Accounts/{AccountSid}/Recordings/
{RecordingSid}.wav` with the account's credentials (Twilio's documented media URL; it may
redirect to its storage, and httpx drops the credentials on a redirect to another host).
The URL is built from the settings, never from a stored RecordingUrl, so credentials only
go to the configured API."""

from __future__ import annotations

import httpx

from app.retention.errors import Gone, MediaUnavailable
from app.retention.media import CHUNK, WAV, Media


class TwilioMedia:
    def __init__(
        self, api_base_url: str, account_sid: str, auth_token: str, timeout: float = 30.0
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self.timeout = timeout

    def url(self, recording_sid: str) -> str:
        return (
            f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}"
            f"/Recordings/{recording_sid}.wav"
        )

    def open(self, recording_sid: str) -> Media:
        client = httpx.Client(timeout=self.timeout, follow_redirects=True, auth=self._auth)
        try:
            response = client.send(
                client.build_request("GET", self.url(recording_sid)), stream=True
            )
        except httpx.HTTPError as exc:
            client.close()
            raise MediaUnavailable(
                f"the provider could not be reached: {type(exc).__name__}"
            ) from exc

        def close() -> None:
            response.close()
            client.close()

        if response.status_code == 404:
            close()
            raise Gone(f"the provider no longer has recording {recording_sid}")
        if response.status_code >= 400:
            close()
            raise MediaUnavailable(f"the provider answered {response.status_code}")
        return Media(response.iter_bytes(CHUNK), response.headers.get("content-type", WAV), close)
