"""a call as a chain of segments: call_segments, the call's current segment, and the
segment each recording records (for a platform whose transfers are new segments)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_segments",
        sa.Column("segment_sid", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("previous_sid", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_sid"], ["calls.call_sid"], name="fk_call_segments_call_sid_calls"
        ),
        sa.PrimaryKeyConstraint("segment_sid", name="pk_call_segments"),
    )
    with op.batch_alter_table("call_segments", schema=None) as batch_op:
        batch_op.create_index("ix_call_segments_call_sid", ["call_sid"], unique=False)
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment_sid", sa.String(length=64), nullable=True))
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment_sid", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_recordings_segment_sid", ["segment_sid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_segment_sid")
        batch_op.drop_column("segment_sid")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("segment_sid")
    with op.batch_alter_table("call_segments", schema=None) as batch_op:
        batch_op.drop_index("ix_call_segments_call_sid")
    op.drop_table("call_segments")
