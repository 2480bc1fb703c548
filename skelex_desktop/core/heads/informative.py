"""The "most informative first" worklist order from the active task heads.

Candidates are images with predictions of an active head and no current human label for the
head's tasks; their uncertainty (normalised entropy, averaged over the head's tasks) is mixed
with diversity (k-center distance between cached embeddings) by `informative_order`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Label, Prediction
from skelex_desktop.core.heads.active import informative_order, uncertainty
from skelex_desktop.core.heads.versions import active_user_heads
from skelex_desktop.core.inference.embeddings import cached_embeddings, image_refs
from skelex_desktop.core.inference.interfaces import ModelManifest
from skelex_desktop.core.review.labels import is_current

DIVERSITY = 0.3


def informative_image_ids(
    db: Database, data_dir: Path, manifest: ModelManifest, limit: int = 500
) -> list[int]:
    """Unlabelled image ids, most informative first, for the active heads that apply to the
    package `manifest` (empty when none has been trained)."""
    with db.read() as session:
        heads = [v.id for v in active_user_heads(session, manifest)]
        if not heads:
            return []
        rows = session.execute(
            select(Prediction.image_id, Prediction.task_id, Prediction.probabilities).where(
                Prediction.model_version_id.in_(heads)
            )
        ).all()
        task_ids = {task_id for _i, task_id, _p in rows}
        labelled = set(
            session.scalars(
                select(Label.image_id).where(
                    is_current(), Label.source == "human", Label.task_id.in_(task_ids)
                )
            )
        )
    per_image: dict[int, list[float]] = defaultdict(list)
    for image_id, _task_id, probabilities in rows:
        if image_id not in labelled and probabilities:
            p = np.array([list(probabilities.values())], np.float64)
            per_image[image_id].append(float(uncertainty(p)[0]))
    refs = image_refs(db, set(per_image) | labelled)
    vectors = cached_embeddings(Path(data_dir), refs, manifest)
    candidates = [i for i in sorted(per_image) if i in vectors]
    if not candidates:
        return []
    scores = np.array([np.mean(per_image[i]) for i in candidates])
    known = [vectors[i] for i in labelled if i in vectors]
    order = informative_order(
        np.zeros((len(candidates), 2)),
        np.stack([vectors[i] for i in candidates]),
        labelled=np.stack(known) if known else None,
        diversity=DIVERSITY,
        limit=min(limit, len(candidates)),
        scores=scores,
    )
    return [candidates[i] for i in order[:limit]]
