"""Evidence an outsider can check (issue 16): the signed tree head and consistency proofs,
for monitors that keep tree heads and would see a rewritten history (no token), and
evidence packs of a recording (governance only).

Why the tree head and its proofs need no token: a tree head is a count of events, the
newest event's hash, a Merkle root and a signature; a proof is a list of hashes of hashes.
None of it holds or reveals a call, a number or a person (an event's hash covers its
timestamps to the microsecond and its neighbour's hash, so it cannot be guessed back), and
a monitor that had to hold a council's credentials would not be independent of it. The
count says how busy the log is, as Certificate Transparency's public logs do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from app.api.deps import ServicesDep, Sid, require
from app.api.downloads import built_zip
from app.api.errors import error_responses
from app.audit import tree
from app.audit.checkpoint import signed_head, signing_key
from app.errors import Unavailable
from app.evidence.pack import CASE_REFERENCE, write_pack
from app.people.users import Role
from app.storage.db import read_only_session
from app.storage.models import User

router = APIRouter(prefix="/api/v1", tags=["evidence"])

Size = Annotated[int, Query(ge=0, le=2**63 - 1)]  # SQLite's integers


def _key(services: ServicesDep) -> Any:
    secret = services.settings.audit_signing_key
    if secret is None:
        raise Unavailable(
            "no CALLGUARD_AUDIT_SIGNING_KEY: this instance signs no tree heads or evidence"
        )
    return signing_key(secret.get_secret_value())


@router.get("/audit/tree-head", responses=error_responses(503))
def tree_head(services: ServicesDep) -> dict[str, Any]:
    """The log's newest signed tree head (format callguard-audit-checkpoint-2)."""
    key = _key(services)
    with read_only_session(services.engine) as session:
        head = tree.head(session)
    return signed_head(head, key, datetime.now(UTC))


@router.get("/audit/consistency", responses=error_responses(400, 422))
def consistency(
    services: ServicesDep,
    first: Annotated[int, Query(alias="from", ge=0, le=2**63 - 1)],
    second: Annotated[int, Query(alias="to", ge=0, le=2**63 - 1)],
) -> dict[str, Any]:
    """RFC 9162's consistency proof that the tree of `to` events extends the tree of
    `from` events (hashes in lowercase hex, the RFC's order)."""
    with read_only_session(services.engine) as session:
        proof = tree.consistency(session, first, second)
    return {"from": first, "to": second, "proof": [p.hex() for p in proof]}


class EvidenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Printed in the pack's statement: no line breaks or other control characters.
    case_reference: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=100, pattern=CASE_REFERENCE
        ),
    ]


@router.post(
    "/recordings/{recording_sid}/evidence",
    tags=["governance"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "The evidence pack (ZIP)"},
        **error_responses(400, 401, 403, 404, 409, 410, 422, 429, 502, 503),
    },
)
def evidence_pack(
    recording_sid: Sid,
    body: EvidenceRequest,
    user: Annotated[User, Depends(require(Role.GOVERNANCE))],
    services: ServicesDep,
) -> StreamingResponse:
    """An evidence pack of the recording for a case (app/evidence/pack.py), built whole
    before the first byte is sent (app/api/downloads.py): never half a ZIP."""
    key = _key(services)
    return built_zip(
        lambda file: write_pack(
            services.engine,
            services.sessions,
            services.media,
            key,
            recording_sid,
            body.case_reference,
            user.name,
            file,
        ),
        f"evidence-{recording_sid}.zip",
    )
