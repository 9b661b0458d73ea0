"""work queue: inbox rows claimed with a lease (gateway and worker roles); hash removals logged;
outbox rows note when a card post began (a repeat after a crash looks for the card first);
sweeps recorded before they run (one a crash cut short runs again)

Revision ID: 0008
Revises: 0007
Create Date: issue 18
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "pending_sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("entry_ids", sa.JSON(), nullable=False),
        sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("source_ticket_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "hash_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("hash_removals")
    op.drop_table("pending_sweeps")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("started_at")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
