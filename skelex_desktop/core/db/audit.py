"""Append-only audit trail: every write of a user-visible record leaves an AuditEvent."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from skelex_desktop.core.db.models import AuditEvent


def record(
    session: Session,
    who: str,
    action: str,
    entity: str,
    entity_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit row to the caller's transaction."""
    event = AuditEvent(
        who=who, action=action, entity=entity, entity_id=entity_id, before=before, after=after
    )
    session.add(event)
    return event
