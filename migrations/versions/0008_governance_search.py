"""indexes for the governance officer's recording search and retention overview

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

The search pages newest first on (started_at, recording_sid), optionally within a
department or by hold, and bounds completed_at; the overview finds the last retention run
and failed deletions by event type (measured: bench/governance.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORDINGS = {
    "ix_recordings_started": ["started_at", "recording_sid"],
    "ix_recordings_department_started": ["department", "started_at", "recording_sid"],
    "ix_recordings_completed": ["completed_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        for name, columns in RECORDINGS.items():
            batch_op.create_index(name, columns, unique=False)
        # Held recordings are few: a partial index finds them newest first without a scan.
        held = sa.text("active_holds > 0")
        batch_op.create_index(
            "ix_recordings_held",
            ["started_at", "recording_sid"],
            unique=False,
            sqlite_where=held,
            postgresql_where=held,
        )
        # The overview's held and overdue: without it SQLite walks every overdue row.
        batch_op.create_index(
            "ix_recordings_held_due",
            ["destroyed_at", "destroy_after"],
            unique=False,
            sqlite_where=held,
            postgresql_where=held,
        )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_type", ["type", "sequence"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_type")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_held_due")
        batch_op.drop_index("ix_recordings_held")
        for name in reversed(RECORDINGS):
            batch_op.drop_index(name)
