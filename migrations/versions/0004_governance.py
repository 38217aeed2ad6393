"""governance

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("agreement_reference", sa.String(length=100), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("consent_reference", sa.String(length=100), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("disclosed_by", sa.String(length=100), nullable=False),
        sa.Column("disclosed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_sid"],
            ["recordings.recording_sid"],
            name=op.f("fk_disclosures_recording_sid_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosures")),
    )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disclosures_recording_sid"), ["recording_sid"], unique=False
        )

    op.create_table(
        "legal_holds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("case_reference", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(length=100), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=100), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recording_sid"],
            ["recordings.recording_sid"],
            name=op.f("fk_legal_holds_recording_sid_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_holds_recording_sid"), ["recording_sid"], unique=False
        )

    op.create_table(
        "recording_accesses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("accessed_by", sa.String(length=100), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_sid"],
            ["recordings.recording_sid"],
            name=op.f("fk_recording_accesses_recording_sid_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_accesses")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_recording_accesses_token_sha256")),
    )
    with op.batch_alter_table("recording_accesses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recording_accesses_recording_sid"), ["recording_sid"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("recording_sid", sa.String(length=64), nullable=True),
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("method", sa.String(length=100), nullable=True),
        sa.Column("told_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_sid"], ["calls.call_sid"], name=op.f("fk_notifications_call_sid_calls")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["legal_holds.id"], name=op.f("fk_notifications_hold_id_legal_holds")
        ),
        sa.ForeignKeyConstraint(
            ["recording_sid"],
            ["recordings.recording_sid"],
            name=op.f("fk_notifications_recording_sid_recordings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_call_sid"), ["call_sid"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_done_at"), ["done_at"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_number_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("caller_number_wrapped_key", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("caller_number_key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("caller_number_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("number_erased_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_calls_caller_number_hash"), ["caller_number_hash"], unique=False
        )

    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active_holds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_recordings_due", ["destroyed_at", "destroy_after"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_due")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("active_holds")

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_caller_number_hash"))
        batch_op.drop_column("number_erased_at")
        batch_op.drop_column("caller_number_hash")
        batch_op.drop_column("caller_number_key_id")
        batch_op.drop_column("caller_number_wrapped_key")
        batch_op.drop_column("caller_number_ciphertext")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_done_at"))
        batch_op.drop_index(batch_op.f("ix_notifications_call_sid"))

    op.drop_table("notifications")
    with op.batch_alter_table("recording_accesses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recording_accesses_recording_sid"))

    op.drop_table("recording_accesses")
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_holds_recording_sid"))

    op.drop_table("legal_holds")
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosures_recording_sid"))

    op.drop_table("disclosures")
