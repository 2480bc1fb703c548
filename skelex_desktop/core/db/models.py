"""SQLAlchemy 2 typed models: the whole persistent state of SKELEX Desktop.

AI output (`Prediction`) and human decisions (`Label`) are separate records. Labels are never
updated in place: a new decision supersedes the old row (`superseded_by`), and every write leaves
an append-only `AuditEvent`. Region geometry is stored in full-resolution pixel coordinates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    # stored whole: the importer refuses longer IDs rather than cut them (a cut key would merge
    # patients); 512 characters keep the unique index within PostgreSQL's B-tree entry size
    patient_id: Mapped[str] = mapped_column(String(512), unique=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16), default="")

    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_date: Mapped[date | None] = mapped_column(Date, index=True)
    accession_number: Mapped[str] = mapped_column(String(512), default="")
    description: Mapped[str] = mapped_column(String(256), default="")

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study")


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(256), default="")

    study: Mapped[Study] = relationship(back_populates="series")
    images: Mapped[list[Image]] = relationship(back_populates="series")


class Image(Base):
    """One displayable frame. DICOM identity is (SOP Instance UID, frame)."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("sop_instance_uid", "frame", name="uq_images_sop_frame"),
        CheckConstraint("rows > 0 AND cols > 0", name="positive_size"),
        CheckConstraint(
            "status IN ('new', 'analysed', 'in_review', 'confirmed')", name="status_known"
        ),
        CheckConstraint(
            "calibration IN ('calibrated', 'detector', 'uncalibrated')", name="calibration_known"
        ),
        Index("ix_images_status_score", "status", "ai_score"),
        Index("ix_images_body_part_laterality", "body_part", "laterality"),
        Index("ix_images_ai_score", "ai_score"),
        Index("ix_images_status_body_part_laterality", "status", "body_part", "laterality"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    frame: Mapped[int] = mapped_column(Integer, default=0)
    file_path: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    cols: Mapped[int] = mapped_column(Integer)
    bits_stored: Mapped[int] = mapped_column(Integer, default=8)
    photometric: Mapped[str] = mapped_column(String(16), default="MONOCHROME2")
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    body_part: Mapped[str] = mapped_column(String(64), default="")
    view: Mapped[str] = mapped_column(String(16), default="")
    laterality: Mapped[str] = mapped_column(String(4), default="")
    pixel_spacing_row: Mapped[float | None] = mapped_column(Float)
    pixel_spacing_col: Mapped[float | None] = mapped_column(Float)
    spacing_source: Mapped[str] = mapped_column(String(96), default="")
    calibration: Mapped[str] = mapped_column(String(16), default="uncalibrated")
    window_center: Mapped[float | None] = mapped_column(Float)
    window_width: Mapped[float | None] = mapped_column(Float)
    transfer_syntax: Mapped[str] = mapped_column(String(64), default="")
    thumbnail_path: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    ai_score: Mapped[float | None] = mapped_column(Float)
    reader: Mapped[str] = mapped_column(String(128), default="")
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    series: Mapped[Series] = relationship(back_populates="images")


class ImportJob(Base):
    __tablename__ = "import_jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('running', 'completed', 'cancelled', 'failed')", name="state_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sources: Mapped[list[Any]] = mapped_column(default=list)
    copy_files: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="running")
    reader: Mapped[str] = mapped_column(String(128), default="")
    imported: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)

    results: Mapped[list[ImportFileResult]] = relationship(back_populates="job")


class ImportFileResult(Base):
    __tablename__ = "import_file_results"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('imported', 'duplicate', 'skipped', 'failed')", name="outcome_known"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("import_jobs.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))

    job: Mapped[ImportJob] = relationship(back_populates="results")


class Task(Base):
    """One question of the label schema (binary, multiclass, ordinal, regression or region)."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('binary', 'multiclass', 'ordinal', 'regression', 'region')", name="kind_known"
        ),
        CheckConstraint("scope IN ('image', 'study')", name="scope_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16))
    classes: Mapped[list[Any]] = mapped_column(default=list)
    order: Mapped[int] = mapped_column(Integer, default=0)
    # Enter confirms an image only when every required task has a decision
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # "study": one decision for the whole study, stored on each of its images
    scope: Mapped[str] = mapped_column(String(8), default="image", server_default="image")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    file_sha256: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    label_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class Prediction(Base):
    """One model output for one image and task; never edited by a reader.

    `details` says how the output was made, e.g. for the zero-shot abnormal suggestion
    {"method": "error-map score", "threshold": t, "hotspots": [...]}: then `score` is compared
    with the threshold instead of being read as a probability.
    """

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_image_task", "image_id", "task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    probabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score: Mapped[float | None] = mapped_column(Float)
    error_map_path: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Label(Base):
    """A decision for (image, task).

    The current decision is the row that is neither superseded nor retracted (undone); an undo
    retracts the row and makes the one it superseded current again, both with an audit row.
    """

    __tablename__ = "labels"
    __table_args__ = (
        CheckConstraint("source IN ('ai', 'human')", name="source_known"),
        CheckConstraint(
            "prediction_relation IN ('none', 'confirmed', 'overrode')", name="relation_known"
        ),
        Index("ix_labels_image_task_current", "image_id", "task_id", "superseded_by"),
        Index("ix_labels_reader", "reader"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(8), default="human")
    reader: Mapped[str] = mapped_column(String(128))
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("predictions.id", ondelete="SET NULL")
    )
    prediction_relation: Mapped[str] = mapped_column(String(16), default="none")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))
    retracted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Region(Base):
    """A drawn region; `geometry` is in full-resolution pixel coordinates of the image."""

    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    geometry: Mapped[dict[str, Any]] = mapped_column()
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    reader: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Measurement(Base):
    """A length or an angle drawn on an image, with its value and unit; `points` are
    full-resolution pixel coordinates ([x, y] pairs: two for a length, two lines for an angle)."""

    __tablename__ = "measurements"
    __table_args__ = (
        CheckConstraint("kind IN ('length', 'angle')", name="measurement_kind_known"),
        CheckConstraint("unit IN ('mm', 'px', 'deg')", name="measurement_unit_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[list[Any]] = mapped_column()
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(8))
    spacing_source: Mapped[str] = mapped_column(String(96), default="")
    reader: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Append-only log of who did what; the database refuses updates and deletes."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    who: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Project(Base):
    """A reading project (team mode): a set of images read by several readers, `reads_per_image`
    reads each, for `tasks`; `filters` are the worklist filters the image set was chosen by.
    While `blinded`, a reader sees no one else's decisions on the project's images; `show_ai`
    says whether readers were shown the AI suggestions (reader studies compare both)."""

    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'closed')", name="project_status_known"),
        CheckConstraint("reads_per_image >= 1", name="reads_per_image_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tasks: Mapped[list[Any]] = mapped_column(default=list)
    reads_per_image: Mapped[int] = mapped_column(Integer, default=2)
    show_ai: Mapped[bool] = mapped_column(Boolean, default=False)
    blinded: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectReader(Base):
    """A reader of a project (a database user name in team mode)."""

    __tablename__ = "project_readers"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    reader: Mapped[str] = mapped_column(String(128), primary_key=True)


class ProjectImage(Base):
    """An image of a project's image set."""

    __tablename__ = "project_images"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class Assignment(Base):
    """One read to make: `reader` reads `image_id` for the project. `status` is that reader's
    own read state (assigned, in_review, done; the shared `Image.status` is not theirs to
    move), `read_at` when it last changed."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("project_id", "image_id", "reader", name="uq_assignments_read"),
        Index("ix_assignments_reader_image", "reader", "image_id"),
        CheckConstraint("status IN ('assigned', 'in_review', 'done')", name="read_status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"))
    reader: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="assigned", server_default="assigned")
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FinalLabel(Base):
    """An adjudicated decision for (image, task), stored apart from the readers' labels.

    Never updated in place: a new decision is the next `version` (unique per image and task, so
    of two adjudicators who read the same version only one can store the next); `provenance`
    holds the reads (label id, reader, value) and the AI suggestion it was decided from.
    """

    __tablename__ = "final_labels"
    __table_args__ = (
        UniqueConstraint("image_id", "task_id", "version", name="uq_final_labels_version"),
        CheckConstraint("version >= 1", name="final_version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    uncertain: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)
    adjudicator: Mapped[str] = mapped_column(String(128))
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
