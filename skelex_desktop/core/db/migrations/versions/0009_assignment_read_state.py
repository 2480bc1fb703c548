"""team mode: each reader's own read state on their assignments

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00

`assignments.status` (assigned, in_review, done) and `assignments.read_at`: in a project each
reader's decisions and Enter move their own assignment, not the image's shared status (which
one reader's Enter used to confirm for everyone) nor its shared reader column (which named who
read a blinded image). The image is confirmed by its final labels. Both dialects; the
PostgreSQL grants and row-level security of the new columns come from `team init`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="assigned", nullable=False)
        )
        batch_op.add_column(sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_assignments_read_status_known"),
            "status IN ('assigned', 'in_review', 'done')",
        )


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_assignments_read_status_known"), type_="check")
        batch_op.drop_column("read_at")
        batch_op.drop_column("status")
