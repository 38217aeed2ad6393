"""recordings keep their audio's fingerprint (SHA-256 and length) and a fingerprinting lease

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("fingerprint_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("fingerprinted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("fingerprint_claimed_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_recordings_unfingerprinted", ["fingerprinted_at", "destroyed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_unfingerprinted")
        batch_op.drop_column("fingerprint_claimed_until")
        batch_op.drop_column("fingerprinted_at")
        batch_op.drop_column("fingerprint_bytes")
        batch_op.drop_column("fingerprint_sha256")
