"""operator hash lists marked as child sexual abuse material

`hash_entries.child_abuse`: set by `veille hashes import --child-abuse` on the operator's lists
(a hash-sharing programme's); a match is CRITICAL on its own. Existing entries are not marked.

Revision ID: 0003
Revises: 0002
Create Date: issue 13
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hash_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("child_abuse", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("hash_entries", schema=None) as batch_op:
        batch_op.drop_column("child_abuse")
