"""team mode: reading projects, assignments and adjudicated final labels

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00

`projects` (an image set chosen by worklist filters, tasks, reads per image, whether the AI was
shown, blinded, status), `project_readers`, `project_images`, `assignments` (which reader reads
which image) and `final_labels`: the adjudicated decision per image and task, one row per
version (never updated in place: the database refuses UPDATE and DELETE, as for the audit
trail), with its adjudicator and provenance. Both dialects; the PostgreSQL roles and row-level
security are set up by `skelex-desktop team init`, which needs a role that may create roles.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MESSAGE = "final labels are append-only: adjudicate again to store a new version"


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("reads_per_image", sa.Integer(), nullable=False),
        sa.Column("show_ai", sa.Boolean(), nullable=False),
        sa.Column("blinded", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'closed')", name=op.f("ck_projects_project_status_known")
        ),
        sa.CheckConstraint(
            "reads_per_image >= 1", name=op.f("ck_projects_reads_per_image_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "project_readers",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_readers_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "reader", name=op.f("pk_project_readers")),
    )
    op.create_table(
        "project_images",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_project_images_image_id_images"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_images_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "image_id", name=op.f("pk_project_images")),
    )
    with op.batch_alter_table("project_images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_project_images_image_id"), ["image_id"], unique=False)
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_assignments_image_id_images"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_assignments_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint("project_id", "image_id", "reader", name="uq_assignments_read"),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_reader_image", ["reader", "image_id"], unique=False)
    op.create_table(
        "final_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("uncertain", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("adjudicator", sa.String(length=128), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_final_labels_final_version_positive")),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_final_labels_image_id_images"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_final_labels_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_final_labels_task_id_tasks"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_final_labels")),
        sa.UniqueConstraint("image_id", "task_id", "version", name="uq_final_labels_version"),
    )
    with op.batch_alter_table("final_labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_final_labels_project_id"), ["project_id"], unique=False
        )
    _append_only()


def _append_only() -> None:
    """The database refuses UPDATE and DELETE of a final label (a project's deletion only
    clears its `project_id`, which is allowed)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER final_labels_no_update BEFORE UPDATE OF image_id, task_id, value, "
            "uncertain, version, adjudicator, provenance, decided_at ON final_labels "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        op.execute(
            "CREATE TRIGGER final_labels_no_delete BEFORE DELETE ON final_labels "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION final_labels_refuse() RETURNS trigger AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND (NEW.image_id, NEW.task_id, NEW.value::text, NEW.uncertain, "
            "NEW.version, NEW.adjudicator, NEW.provenance::text, NEW.decided_at) IS NOT DISTINCT "
            "FROM (OLD.image_id, OLD.task_id, OLD.value::text, OLD.uncertain, OLD.version, "
            "OLD.adjudicator, OLD.provenance::text, OLD.decided_at) THEN RETURN NEW; END IF; "
            f"RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER final_labels_append_only BEFORE UPDATE OR DELETE ON final_labels "
            "FOR EACH ROW EXECUTE FUNCTION final_labels_refuse()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS final_labels_no_update")
        op.execute("DROP TRIGGER IF EXISTS final_labels_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS final_labels_append_only ON final_labels")
        op.execute("DROP FUNCTION IF EXISTS final_labels_refuse()")
    with op.batch_alter_table("final_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_final_labels_project_id"))
    op.drop_table("final_labels")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_reader_image")
    op.drop_table("assignments")
    with op.batch_alter_table("project_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_images_image_id"))
    op.drop_table("project_images")
    op.drop_table("project_readers")
    op.drop_table("projects")
