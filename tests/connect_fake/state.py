"""What Amazon Connect holds for the stand-in, and the documented rules its model leaves out.

Tests build instances, queues and contacts here (through `FakeConnectServer`); the server's
handlers call the operation methods, which raise `ConnectError` with the code Connect
answers. Each rule names its source: the operation's documentation, which is in the model
itself and at docs.aws.amazon.com/connect/latest/APIReference/API_<Operation>.html ("DOC"),
or ASSUMED where AWS documents no answer (the choice is then the stricter one, so a caller
that relies on leniency is caught; `lenient_repeats` models the other reading where the
choice matters to callguard's retries).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .model import ServiceIndex

DEFAULT_PAGE = 100  # DOC ListQueues: "The default MaxResult size is 100."
TRANSFERS = ("TRANSFER", "QUEUE_TRANSFER")


class ConnectError(Exception):
    """A refusal, by Connect's error code (its status comes from the model)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class RecordingState(StrEnum):
    RECORDING = "RECORDING"
    SUSPENDED = "SUSPENDED"
    STOPPED = "STOPPED"


@dataclass
class Recording:
    voice_track: str | None
    ivr_track: str | None
    started_at: float
    state: RecordingState = RecordingState.RECORDING
    stopped_at: float | None = None
    history: list[tuple[str, float]] = field(default_factory=list)  # (operation, when)
    location: str | None = None  # S3 "bucket/key", known once the contact has ended
    written: bool = False  # whether Connect has written it, so DescribeContact lists it


@dataclass
class Contact:
    id: str
    instance_id: str
    arn: str
    initial_contact_id: str
    previous_contact_id: str | None
    initiation_method: str
    channel: str
    queue_id: str | None
    initiated_at: float
    enqueued_at: float | None
    disconnected_at: float | None = None
    recording: Recording | None = None
    # Contacts its quick-connect transfers made (DescribeContact's NextContacts).
    next_contacts: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Queue:
    id: str
    arn: str
    name: str | None
    queue_type: str
    modified_at: float


@dataclass
class User:
    id: str
    arn: str
    username: str
    modified_at: float


@dataclass
class Instance:
    id: str
    arn: str
    alias: str
    queues: dict[str, Queue] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


class ConnectState:
    """Every instance the stand-in serves. All methods hold one lock: tests call them from
    their own thread while the server's thread answers requests."""

    def __init__(
        self,
        index: ServiceIndex,
        *,
        region: str,
        account_id: str,
        recording_bucket: str,
        clock: Callable[[], float] = time.time,
        lenient_repeats: bool = False,
    ) -> None:
        self.index, self.region, self.account_id = index, region, account_id
        self.recording_bucket, self.clock = recording_bucket, clock
        self.lenient_repeats = lenient_repeats
        self.instances: dict[str, Instance] = {}
        self.lock = threading.RLock()
        self._token_key = secrets.token_hex(4)  # pagination tokens of this state only

    # -- what tests set up -------------------------------------------------------------

    def add_instance(self, instance_id: str | None = None, alias: str = "callguard") -> Instance:
        with self.lock:
            iid = instance_id or str(uuid.uuid4())
            if iid in self.instances:
                raise ValueError(f"instance {iid} exists")
            arn = f"arn:aws:connect:{self.region}:{self.account_id}:instance/{iid}"
            self.instances[iid] = Instance(iid, arn, alias)
            return self.instances[iid]

    def add_queue(
        self,
        instance_id: str,
        name: str | None,
        *,
        queue_type: str = "STANDARD",
        queue_id: str | None = None,
    ) -> Queue:
        self._model_enum("QueueType", queue_type)
        with self.lock:
            instance = self._instance_for_test(instance_id)
            qid = queue_id or str(uuid.uuid4())
            if name is None and queue_type == "STANDARD":
                raise ValueError("a standard queue has a name")
            queue = Queue(qid, f"{instance.arn}/queue/{qid}", name, queue_type, self.clock())
            instance.queues[qid] = queue
            return queue

    def add_user(self, instance_id: str, username: str, *, user_id: str | None = None) -> User:
        """An agent's user, as DescribeUser answers it."""
        with self.lock:
            instance = self._instance_for_test(instance_id)
            uid = user_id or str(uuid.uuid4())
            user = User(uid, f"{instance.arn}/agent/{uid}", username, self.clock())
            instance.users[uid] = user
            return user

    def add_contact(
        self,
        instance_id: str,
        *,
        contact_id: str | None = None,
        initiation_method: str = "INBOUND",
        previous_contact_id: str | None = None,
        initial_contact_id: str | None = None,
        queue: str | None = None,
        channel: str = "VOICE",
    ) -> Contact:
        """A live contact. A transfer names its predecessor and, unless told otherwise,
        shares its InitialContactId; `queue` is a queue id or name of the instance. A
        TRANSFER is listed in its predecessor's NextContacts (a quick connect made it)."""
        self._model_enum("ContactInitiationMethod", initiation_method)
        self._model_enum("Channel", channel)
        with self.lock:
            instance = self._instance_for_test(instance_id)
            cid = contact_id or str(uuid.uuid4())
            if cid in instance.contacts:
                raise ValueError(f"contact {cid} exists")
            previous = instance.contacts.get(previous_contact_id or "")
            if previous_contact_id and previous is None:
                raise ValueError(f"no contact {previous_contact_id} to come from")
            if initiation_method in TRANSFERS and previous is None:
                raise ValueError(f"a {initiation_method} contact needs previous_contact_id")
            initial = initial_contact_id or (previous.initial_contact_id if previous else cid)
            queue_id = self._queue_for_test(instance, queue).id if queue else None
            now = self.clock()
            contact = Contact(
                cid,
                instance_id,
                f"{instance.arn}/contact/{cid}",
                initial,
                previous_contact_id,
                initiation_method,
                channel,
                queue_id,
                now,
                now if queue_id else None,
            )
            instance.contacts[cid] = contact
            if previous is not None and initiation_method == "TRANSFER":
                previous.next_contacts.append((cid, now))
            return contact

    def disconnect_contact(
        self,
        instance_id: str,
        contact_id: str,
        *,
        recording_location: str | None = None,
        written: bool = True,
    ) -> str | None:
        """End the contact. A contact that was recorded gets its S3 location (the given one,
        else one named as Connect names them); `written=False` keeps it out of DescribeContact
        until `write_recording`. Returns the location, or None if nothing was recorded."""
        with self.lock:
            contact = self._contact_for_test(instance_id, contact_id)
            if contact.disconnected_at is not None:
                raise ValueError(f"contact {contact_id} has already disconnected")
            contact.disconnected_at = self.clock()
            rec = contact.recording
            if rec is None:
                if recording_location is not None:
                    raise ValueError(f"contact {contact_id} was never recorded")
                return None
            rec.location = recording_location or self._default_location(contact)
            rec.written = written
            return rec.location

    def write_recording(self, instance_id: str, contact_id: str) -> str:
        """Connect has now written the recording: DescribeContact lists it."""
        with self.lock:
            contact = self._contact_for_test(instance_id, contact_id)
            rec = contact.recording
            if rec is None or rec.location is None:
                raise ValueError(f"contact {contact_id} has no recording waiting to be written")
            rec.written = True
            return rec.location

    def contact(self, instance_id: str, contact_id: str) -> Contact:
        with self.lock:
            return self._contact_for_test(instance_id, contact_id)

    # -- the operations ------------------------------------------------------------------

    def start_recording(self, params: dict[str, Any]) -> None:
        with self.lock:
            contact = self._recordable(params)
            config = params["VoiceRecordingConfiguration"]
            if contact.channel != "VOICE":  # DOC: "Only voice recordings are supported"
                raise ConnectError("InvalidRequestException", "only voice contacts are recorded")
            if not config.get("VoiceRecordingTrack") and not config.get("IvrRecordingTrack"):
                # ASSUMED: an empty configuration names nothing to record.
                raise ConnectError(
                    "InvalidParameterException",
                    "VoiceRecordingConfiguration names no track to record",
                )
            if contact.recording is not None:
                # DOC: "StartContactRecording is a one-time action. For example, if you use
                # StopContactRecording to stop recording an ongoing call, you can't use
                # StartContactRecording to restart it." Error code ASSUMED.
                raise ConnectError(
                    "InvalidRequestException",
                    f"recording of contact {contact.id} was already started "
                    f"(now {contact.recording.state}); StartContactRecording is one-time",
                )
            now = self.clock()
            contact.recording = Recording(
                config.get("VoiceRecordingTrack"), config.get("IvrRecordingTrack"), now
            )
            contact.recording.history.append(("StartContactRecording", now))

    def suspend_recording(self, params: dict[str, Any]) -> None:
        self._change("SuspendContactRecording", params, RecordingState.SUSPENDED)

    def resume_recording(self, params: dict[str, Any]) -> None:
        self._change("ResumeContactRecording", params, RecordingState.RECORDING)

    def stop_recording(self, params: dict[str, Any]) -> None:
        self._change("StopContactRecording", params, RecordingState.STOPPED)

    def describe_contact(self, params: dict[str, Any]) -> Contact:
        with self.lock:
            return self._contact(params["InstanceId"], params["ContactId"])

    def describe_user(self, params: dict[str, Any]) -> User:
        with self.lock:
            user = self._instance(params["InstanceId"]).users.get(params["UserId"])
            if user is None:
                raise ConnectError(
                    "ResourceNotFoundException", f"User not found: {params['UserId']}"
                )
            return user

    def list_queues(self, params: dict[str, Any]) -> tuple[list[Queue], str | None]:
        with self.lock:
            instance = self._instance(params["InstanceId"])
            # DOC: "If you do not specify a QueueTypes parameter, both standard and agent
            # queues are returned."
            kinds = set(params.get("QueueTypes") or ("STANDARD", "AGENT"))
            queues = [q for q in instance.queues.values() if q.queue_type in kinds]
            start = self._offset(params.get("NextToken"))
            size = params.get("MaxResults", DEFAULT_PAGE)
            page = queues[start : start + size]
            more = start + size < len(queues)
            return page, self._token(start + size) if more else None

    # -- rules shared by suspend, resume and stop ----------------------------------------

    def _change(self, operation: str, params: dict[str, Any], target: RecordingState) -> None:
        with self.lock:
            contact = self._recordable(params)
            rec = contact.recording
            kind = params.get("ContactRecordingType")
            if rec is None:
                # DOC: each acts "when a contact is being recorded". Code ASSUMED.
                raise ConnectError(
                    "InvalidRequestException", f"contact {contact.id} has no recording started"
                )
            if kind == "SCREEN" or (kind == "IVR" and rec.ivr_track is None):
                # ASSUMED: the type names a recording this contact does not have.
                raise ConnectError(
                    "InvalidRequestException", f"contact {contact.id} has no {kind} recording"
                )
            if rec.state is RecordingState.STOPPED:
                # DOC StopContactRecording: "a one-time action"; nothing follows a stop.
                raise ConnectError(
                    "InvalidRequestException", f"recording of contact {contact.id} was stopped"
                )
            if rec.state is target:
                # ASSUMED: AWS does not document a suspend of a suspended recording or a
                # resume of a running one; refused unless `lenient_repeats`.
                if self.lenient_repeats:
                    rec.history.append((operation, self.clock()))
                    return
                raise ConnectError(
                    "InvalidRequestException",
                    f"recording of contact {contact.id} is already {rec.state}",
                )
            # DOC ResumeContactRecording: resumes a recording "suspended using
            # SuspendContactRecording"; a running one can be suspended or stopped.
            now = self.clock()
            rec.state = target
            rec.history.append((operation, now))
            if target is RecordingState.STOPPED:
                rec.stopped_at = now

    def _recordable(self, params: dict[str, Any]) -> Contact:
        """The live contact a recording request names, with its InitialContactId."""
        contact = self._contact(params["InstanceId"], params["ContactId"])
        if params["InitialContactId"] != contact.initial_contact_id:
            # ASSUMED: Connect checks the pair; the stricter reading catches a caller that
            # sends the contact's own id for a transfer.
            raise ConnectError(
                "InvalidRequestException",
                f"InitialContactId {params['InitialContactId']} is not the initial contact "
                f"of {contact.id}",
            )
        if contact.disconnected_at is not None:
            # ASSUMED: a recording cannot change once its contact has ended.
            raise ConnectError("InvalidRequestException", f"contact {contact.id} is not active")
        return contact

    # -- lookups -----------------------------------------------------------------------

    def _instance(self, instance_id: str) -> Instance:
        instance = self.instances.get(instance_id)
        if instance is None:  # DOC: ResourceNotFoundException, "not found" (404)
            raise ConnectError("ResourceNotFoundException", f"Instance not found: {instance_id}")
        return instance

    def _contact(self, instance_id: str, contact_id: str) -> Contact:
        contact = self._instance(instance_id).contacts.get(contact_id)
        if contact is None:
            raise ConnectError("ResourceNotFoundException", f"Contact not found: {contact_id}")
        return contact

    def _instance_for_test(self, instance_id: str) -> Instance:
        if instance_id not in self.instances:
            raise ValueError(f"no instance {instance_id}")
        return self.instances[instance_id]

    def _contact_for_test(self, instance_id: str, contact_id: str) -> Contact:
        contact = self._instance_for_test(instance_id).contacts.get(contact_id)
        if contact is None:
            raise ValueError(f"no contact {contact_id} in instance {instance_id}")
        return contact

    @staticmethod
    def _queue_for_test(instance: Instance, queue: str) -> Queue:
        for q in instance.queues.values():
            if queue in (q.id, q.name):
                return q
        raise ValueError(f"no queue {queue!r} in instance {instance.id}")

    def _model_enum(self, shape: str, value: str) -> None:
        allowed = self.index.model.shape_for(shape).enum
        if value not in allowed:
            raise ValueError(f"{value!r} is not a {shape}: {allowed}")

    def _default_location(self, contact: Contact) -> str:
        # As Connect names call recordings in the instance's bucket (admin guide, "Where
        # recordings are stored"): connect/<alias>/CallRecordings/YYYY/MM/DD/<id>_<time>_UTC.
        alias = self.instances[contact.instance_id].alias
        when = datetime.fromtimestamp(contact.disconnected_at or self.clock(), UTC)
        day = when.strftime("%Y/%m/%d")
        return (
            f"{self.recording_bucket}/connect/{alias}/CallRecordings/{day}/"
            f"{contact.id}_{when.strftime('%Y%m%dT%H:%M')}_UTC.wav"
        )

    def _token(self, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{self._token_key}:{offset}".encode()).decode()

    def _offset(self, token: str | None) -> int:
        if token is None:
            return 0
        try:
            key, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
            if key == self._token_key and offset.isdigit():
                return int(offset)
        except (ValueError, UnicodeDecodeError):
            pass
        # ASSUMED code: a token this instance never gave out.
        raise ConnectError("InvalidParameterException", "The NextToken is not valid")
