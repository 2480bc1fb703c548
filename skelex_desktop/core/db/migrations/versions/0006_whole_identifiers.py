"""whole identifiers: patients.patient_id and studies.accession_number hold 512 characters

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:00:00

They were VARCHAR(64), and the importer cut longer values to fit, so two patients whose IDs
share their first 64 characters became one. Now they are stored whole (the importer refuses
longer than 512 characters). SQLite rebuilds both tables (batch mode; `migrate.upgrade` turns
foreign-key enforcement off around it); PostgreSQL widens the columns in place.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.alter_column(
            "patient_id", existing_type=sa.String(64), type_=sa.String(512), existing_nullable=False
        )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.alter_column(
            "accession_number",
            existing_type=sa.String(64),
            type_=sa.String(512),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Refused rather than cutting identifiers (and merging patients) on the way down.
    conn = op.get_bind()
    for table, column in (("patients", "patient_id"), ("studies", "accession_number")):
        longest = conn.execute(sa.text(f"SELECT max(length({column})) FROM {table}")).scalar()
        if longest is not None and longest > 64:
            raise RuntimeError(
                f"cannot downgrade: {table}.{column} holds values of {longest} characters, "
                "longer than the 64 revision 0005 stores"
            )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.alter_column(
            "accession_number",
            existing_type=sa.String(512),
            type_=sa.String(64),
            existing_nullable=False,
        )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.alter_column(
            "patient_id", existing_type=sa.String(512), type_=sa.String(64), existing_nullable=False
        )
