"""required and study-scoped tasks, measurements

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:30:00

`tasks.required`: Enter confirms an image only when every required task has a decision; the
default schema's `abnormal` task becomes required in existing databases too. `tasks.scope`:
"image" or "study" (one decision per study, stored on each of its images). `measurements`:
lengths and angles drawn by readers, with value, unit and the pixel spacing used.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("required", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), server_default="image", nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_tasks_scope_known"), "scope IN ('image', 'study')"
        )
    op.execute(
        sa.text("UPDATE tasks SET required = :yes WHERE name = 'abnormal'").bindparams(yes=True)
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("spacing_source", sa.String(length=96), nullable=False),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('length', 'angle')", name=op.f("ck_measurements_measurement_kind_known")
        ),
        sa.CheckConstraint(
            "unit IN ('mm', 'px', 'deg')", name=op.f("ck_measurements_measurement_unit_known")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_measurements_image_id_images"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measurements_image_id"), ["image_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measurements_image_id"))
    op.drop_table("measurements")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_tasks_scope_known"), type_="check")
        batch_op.drop_column("scope")
        batch_op.drop_column("required")
