"""media links count their fetches (a link serves at most MEDIA_FETCH_LIMIT of them)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording_accesses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fetches", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("recording_accesses", schema=None) as batch_op:
        batch_op.drop_column("fetches")
