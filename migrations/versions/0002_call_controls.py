"""call controls

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:57:21.856271
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("transfer_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("start_pending_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("opt_out_stopped", sa.Boolean(), server_default="0", nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("opt_out_stopped")
        batch_op.drop_column("start_pending_until")
        batch_op.drop_column("transfer_count")
