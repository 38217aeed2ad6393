"""callguard's `Provider` over Amazon Connect's recording API (boto3):

* start   StartContactRecording(VoiceRecordingConfiguration.VoiceRecordingTrack=ALL) on
          the call's current contact (its segment), naming the chain's InitialContactId;
* pause   SuspendContactRecording (Connect keeps the file and fills the pause with silence);
* resume  ResumeContactRecording;  stop  StopContactRecording.

Each is confirmed by Connect's answer (an empty 200); the recording's sid is its contact's
ContactId and the call's is the chain's InitialContactId (CONTRACT.md). A suspend or stop
refused because the contact has already ended (DescribeContact says so) is confirmed as
stopped: the recording ended with its contact. Stored recordings (fetch, delete) are the
S3 store's (storage.py).

StartContactRecording is one-time per contact. callguard never asks twice for a contact it
knows it recorded (app/calls/reconcile.py); a second start happens only after the answer
to the first was lost, and Connect's refusal then, on a contact still connected, means the
first one did start: it is taken as the confirmation it is.

Connect cannot move a live voice contact through its API: transfers are made in the agent's
Contact Control Panel (CCP) and arrive through the flow as TRANSFER contacts. So a move to
the non-recorded line changes the call's facts (recording stops, confirmed) and tells the
supervisor what to do in the CCP; any other move is refused with what to do instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.calls.provider import (
    RecordingInfo,
    RecordingStatus,
    RecordingStore,
    TransferLeg,
    TransferUnsupported,
)
from app.platforms.connect.aws import AwsClients, error_code, provider_error

VOICE_ALL = {"VoiceRecordingTrack": "ALL"}

NON_RECORDED_INSTRUCTION = (
    "Recording has stopped and will not restart on this call. Now transfer the caller in "
    "the Contact Control Panel (CCP) to the non-recorded line{line} with its quick connect."
)
TRANSFER_INSTRUCTION = (
    "Amazon Connect cannot move a live call for callguard: transfer it in the Contact "
    "Control Panel (CCP) with the quick connect of the {what}. callguard decides its "
    "recording when the transferred contact arrives."
)


class ConnectCalls:
    """`Provider` for one Connect instance; `store` keeps the finished recordings."""

    def __init__(self, clients: AwsClients, instance_id: str, store: RecordingStore) -> None:
        self.connect = clients.connect
        self.instance_id = instance_id
        self.store = store

    def _ids(self, call_sid: str, contact_id: str) -> dict[str, str]:
        return {
            "InstanceId": self.instance_id,
            "ContactId": contact_id,
            "InitialContactId": call_sid,
        }

    def start_recording(self, call_sid: str, segment_sid: str) -> RecordingInfo:
        try:
            self.connect.start_contact_recording(
                **self._ids(call_sid, segment_sid), VoiceRecordingConfiguration=VOICE_ALL
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidRequestException" or not self._live(segment_sid):
                raise provider_error("start recording", exc) from exc
            # One-time start refused on a live contact: an earlier start did begin it.
        except BotoCoreError as exc:
            raise provider_error("start recording", exc) from exc
        return RecordingInfo(segment_sid, call_sid, RecordingStatus.IN_PROGRESS)

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._change(
            "suspend", self.connect.suspend_contact_recording, call_sid, recording_sid
        )

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._change(
            "resume", self.connect.resume_contact_recording, call_sid, recording_sid
        )

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self._change("stop", self.connect.stop_contact_recording, call_sid, recording_sid)

    def transfer_call(self, call_sid: str, leg: TransferLeg) -> str | None:
        if leg.kind == "non_recorded":
            return NON_RECORDED_INSTRUCTION.format(line=f" ({leg.line})" if leg.line else "")
        what = "payment line" if leg.kind == "payment" else f"queue {leg.department!r}"
        raise TransferUnsupported(TRANSFER_INSTRUCTION.format(what=what))

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        return self.store.fetch_recording(recording_sid)

    def delete_recording(self, recording_sid: str) -> None:
        self.store.delete_recording(recording_sid)

    # -- helpers -------------------------------------------------------------------------

    _STATUS = {
        "suspend": RecordingStatus.PAUSED,
        "resume": RecordingStatus.IN_PROGRESS,
        "stop": RecordingStatus.STOPPED,
    }

    def _change(
        self, verb: str, operation: Callable[..., Any], call_sid: str, recording_sid: str
    ) -> RecordingInfo:
        try:
            operation(**self._ids(call_sid, recording_sid))
        except ClientError as exc:
            ended = verb != "resume" and error_code(exc) == "InvalidRequestException"
            if not (ended and not self._live(recording_sid)):
                raise provider_error(f"{verb} recording", exc) from exc
            # Its contact has ended, and its recording with it: nothing more is recorded,
            # which is what a suspend or a stop asks for.
            return RecordingInfo(recording_sid, call_sid, RecordingStatus.STOPPED)
        except BotoCoreError as exc:
            raise provider_error(f"{verb} recording", exc) from exc
        return RecordingInfo(recording_sid, call_sid, self._STATUS[verb])

    def _live(self, contact_id: str) -> bool:
        """Whether the contact is still connected (DescribeContact: no DisconnectTimestamp)."""
        try:
            contact = self.connect.describe_contact(
                InstanceId=self.instance_id, ContactId=contact_id
            )["Contact"]
        except (ClientError, BotoCoreError) as exc:
            raise provider_error("describe contact", exc) from exc
        return "DisconnectTimestamp" not in contact
