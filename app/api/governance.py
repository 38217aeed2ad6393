"""The governance routes of the people's API: recordings by number, legal holds, access
for a purpose and its media link, disclosures, callers to be told, subject access."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from app.api.deps import AnyRole, GovernancePlus, ServicesDep, Sid, require
from app.api.downloads import built_zip
from app.api.errors import ErrorBody, error_responses
from app.callers.numbers import vault
from app.callers.sar_bundle import bundle
from app.callers.subject_access import e164_or_refuse, export
from app.people.users import Role
from app.retention import holds, notifications, search
from app.retention.access import MEDIA_PATH, Purpose, grant_access, log_media_fetched, redeem
from app.retention.disclosures import disclosure_object, record_disclosure
from app.retention.fingerprints import checked
from app.retention.media import WAV, single_range
from app.retention.overview import overview
from app.storage.db import unit_of_work
from app.storage.models import Call, User

router = APIRouter(
    prefix="/api/v1",
    tags=["governance"],
    responses=error_responses(400, 401, 403, 404, 409, 410, 413, 422, 429, 502, 503),
)

# A row's id: beyond 64 bits SQLite cannot even compare it (OverflowError, a 500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Governance = Annotated[User, Depends(require(Role.GOVERNANCE))]
Text = Annotated[str, Field(min_length=1, max_length=100)]


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_reference: Text
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class AccessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose


class DisclosureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient: Annotated[str, Field(min_length=1, max_length=200)]
    agreement_reference: Text
    sensitive: bool = False
    consent_reference: Annotated[str | None, Field(max_length=100)] = None
    legal_basis: Annotated[str | None, Field(max_length=2000)] = None


class DoneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Text  # how the caller was told: letter, email, phone call…
    note: Annotated[str | None, Field(max_length=2000)] = None
    told_at: AwareDatetime | None = None  # when; default now


@router.get("/recordings")
def list_recordings(
    _user: GovernancePlus,
    services: ServicesDep,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    held: bool | None = None,
    from_: Annotated[
        str | None, Query(alias="from", max_length=40, description="completed at or after")
    ] = None,
    to: Annotated[str | None, Query(max_length=40, description="completed at or before")] = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = search.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=400, description="a page's `next`")] = None,
) -> dict[str, Any]:
    """Newest first, `limit` a page; `next` is the cursor of the page after, or null."""
    digest = None
    if phone is not None:
        e164 = e164_or_refuse(phone, services.settings.default_region)
        digest = vault(services.settings.number_key).lookup_hash(e164)
    filters = search.Filters(
        caller_hash=digest,
        department=department,
        held=held,
        completed_from=search.parse_bound("from", from_, upper=False),
        completed_before=search.parse_bound("to", to, upper=True),
    )
    with unit_of_work(services.sessions) as session:
        return search.search(session, filters, limit, cursor)


@router.get("/retention/overview")
def retention_overview(_user: GovernancePlus, services: ServicesDep) -> dict[str, Any]:
    """Due soon, overdue and why (`failed` counts the failed deletions), the last run."""
    with unit_of_work(services.sessions) as session:
        return overview(session)


@router.post("/recordings/{recording_sid}/holds", status_code=201)
def place_hold(
    recording_sid: Sid, body: HoldRequest, user: Governance, services: ServicesDep
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        hold, notification_id = holds.place_hold(
            session, recording_sid, body.case_reference, body.reason, user.name
        )
        return {**holds.hold_object(hold), "notification_id": notification_id}


@router.delete("/recordings/{recording_sid}/holds/{hold_id}")
def release_hold(
    recording_sid: Sid, hold_id: RowId, user: Governance, services: ServicesDep
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        hold = holds.release_hold(session, hold_id, user.name, recording_sid)
        return holds.hold_object(hold)


@router.post("/recordings/{recording_sid}/access")
def access_recording(
    recording_sid: Sid, body: AccessRequest, user: AnyRole, services: ServicesDep
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        access, token = grant_access(session, recording_sid, body.purpose, user)
    return {
        "media_url": MEDIA_PATH + token,
        "expires_at": access.expires_at.isoformat(),
        "access_id": access.id,
        "purpose": access.purpose,
    }


@router.get(
    "/media/{token}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {WAV: {}}, "description": "The recording (WAV)"},
        206: {"content": {WAV: {}}, "description": "The byte range asked for (Content-Range)"},
        416: {
            "model": ErrorBody,
            "description": "The byte range starts past the end of the recording",
        },
    },
)
def media(
    token: Annotated[str, Path(min_length=16, max_length=100)],
    services: ServicesDep,
    range_: Annotated[
        str | None,
        Header(alias="range", max_length=200, description="one byte range: bytes=0-, bytes=-500"),
    ] = None,
) -> StreamingResponse:
    """No bearer token: the link itself is the short-lived credential, good for a few
    fetches (app/retention/access.py); one byte range may be asked for (see README)."""
    byte_range = single_range(range_)
    with unit_of_work(services.sessions) as session:
        access, recording = redeem(session, token)
    stream = services.media.open(recording.recording_sid, byte_range)
    try:
        with unit_of_work(services.sessions) as session:
            log_media_fetched(session, access, recording, byte_range)
    except BaseException:
        stream.close()
        raise
    # A whole recording is re-checked against its fingerprint as it streams; a byte range
    # cannot be (the fingerprint is of the whole).
    chunks = stream.chunks
    if byte_range is None and stream.status == 200:
        chunks = checked(chunks, recording, services.sessions, access_id=access.id)
    return StreamingResponse(
        chunks,
        status_code=stream.status,
        media_type=stream.media_type,
        headers={
            **stream.headers,
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{recording.recording_sid}.wav"',
        },
        background=BackgroundTask(stream.close),
    )


@router.post("/recordings/{recording_sid}/disclosures", status_code=201)
def disclose(
    recording_sid: Sid, body: DisclosureRequest, user: Governance, services: ServicesDep
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        disclosure = record_disclosure(
            session,
            recording_sid,
            recipient=body.recipient,
            agreement_reference=body.agreement_reference,
            sensitive=body.sensitive,
            consent_reference=body.consent_reference,
            legal_basis=body.legal_basis,
            actor=user.name,
        )
        return disclosure_object(disclosure)


@router.get("/notifications")
def list_notifications(
    _user: Governance, services: ServicesDep, pending: bool | None = None
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        items = notifications.notifications(
            session, vault(services.settings.number_key), pending=pending
        )
    return {"items": items}


@router.post("/notifications/{notification_id}/done")
def notification_done(
    notification_id: RowId, body: DoneRequest, user: Governance, services: ServicesDep
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        done = notifications.complete(
            session,
            notification_id,
            method=body.method,
            note=body.note,
            told_at=body.told_at,
            actor=user.name,
        )
        call = session.get(Call, done.call_sid)
        assert call is not None  # a foreign key
        return notifications.notification_object(done, call, vault(services.settings.number_key))


@router.get("/subject-access")
def subject_access(
    phone: Annotated[str, Query(min_length=1, max_length=40)],
    user: Governance,
    services: ServicesDep,
) -> dict[str, Any]:
    settings = services.settings
    with unit_of_work(services.sessions) as session:
        return export(
            session, vault(settings.number_key), phone, settings.default_region, user.name
        )


@router.get(
    "/subject-access/bundle",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The bundle (ZIP)"}},
)
def subject_access_bundle(
    phone: Annotated[str, Query(min_length=1, max_length=40)],
    user: Governance,
    services: ServicesDep,
) -> StreamingResponse:
    """The ZIP is built whole before the first byte is sent (app/api/downloads.py): a
    platform failing mid-way is a clean 502, and the export is logged only once the
    bundle is complete (app/callers/sar_bundle.py)."""
    settings = services.settings
    return built_zip(
        lambda file: bundle(
            services.sessions,
            vault(settings.number_key),
            services.media,
            phone,
            settings.default_region,
            user.name,
            file,
        ),
        "subject-access.zip",
    )
