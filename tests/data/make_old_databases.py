"""Regenerate the stored old-schema databases used by the migration tests.

Run once when a new migration is added, and commit the new file: the stored files are the
point, since they stand for databases that users already have on disk.
`python tests/data/make_old_databases.py` writes `skelex-0001.sqlite3` (schema revision 0001)
and `skelex-0005.sqlite3` (revision 0005: the last with 64-character patient IDs, holding a
patient whose ID has exactly 64 characters, with a study, series, image, label and audit row).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from skelex_desktop.core.db.engine import create_db_engine
from skelex_desktop.core.db.migrate import upgrade

HERE = Path(__file__).parent


def make_0001(path: Path) -> None:
    path.unlink(missing_ok=True)
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine, "0001")
    engine.dispose()
    con = sqlite3.connect(path)
    con.executescript(
        """
        INSERT INTO patients (id, patient_id, name, sex) VALUES (1, 'P0001', 'Old^Patient', 'F');
        INSERT INTO studies (id, patient_id, study_instance_uid, accession_number, description)
            VALUES (1, 1, '1.2.3.1', 'ACC1', 'Hand');
        INSERT INTO series (id, study_id, series_instance_uid, modality, description)
            VALUES (1, 1, '1.2.3.1.1', 'CR', '');
        INSERT INTO images (id, series_id, sop_instance_uid, frame, file_path, content_hash, rows,
            cols, bits_stored, photometric, modality, body_part, view, laterality,
            spacing_source, calibration, transfer_syntax, thumbnail_path, status, reader,
            imported_at)
            VALUES (1, 1, '1.2.3.1.1.1', 0, '/nowhere/old.dcm', 'abc', 512, 512, 12,
            'MONOCHROME1', 'CR', 'HAND', 'PA', 'L', '', 'uncalibrated', '1.2.840.10008.1.2.1',
            '', 'in_review', 'dr.old', '2025-01-01 00:00:00');
        INSERT INTO tasks (id, name, title, kind, classes, "order", description, created_at)
            VALUES (1, 'fracture', 'Fracture', 'binary', '["no fracture", "fracture"]', 1, '',
            '2025-01-01 00:00:00');
        INSERT INTO labels (id, image_id, task_id, value, uncertain, source, reader,
            prediction_relation, created_at)
            VALUES (1, 1, 1, '1', 0, 'human', 'dr.old', 'none', '2025-01-01 00:00:00');
        INSERT INTO audit_events (id, at, who, action, entity, entity_id)
            VALUES (1, '2025-01-01 00:00:00', 'dr.old', 'label.set', 'label', 1);
        """
    )
    con.commit()
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


PATIENT_0005 = "X" * 64


def make_0005(path: Path) -> None:
    path.unlink(missing_ok=True)
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine, "0005")
    engine.dispose()
    con = sqlite3.connect(path)
    con.executescript(
        f"""
        INSERT INTO patients (id, patient_id, name, sex)
            VALUES (1, '{PATIENT_0005}', 'Stored^Sixtyfour', 'M');
        INSERT INTO studies (id, patient_id, study_instance_uid, accession_number, description)
            VALUES (1, 1, '1.2.3.5', 'ACC5', 'Knee');
        INSERT INTO series (id, study_id, series_instance_uid, modality, description)
            VALUES (1, 1, '1.2.3.5.1', 'DX', '');
        INSERT INTO images (id, series_id, sop_instance_uid, frame, file_path, content_hash, rows,
            cols, bits_stored, photometric, modality, body_part, view, laterality,
            spacing_source, calibration, transfer_syntax, thumbnail_path, status, reader,
            imported_at)
            VALUES (1, 1, '1.2.3.5.1.1', 0, '/nowhere/knee.dcm', 'def', 256, 256, 12,
            'MONOCHROME2', 'DX', 'KNEE', 'AP', 'R', '', 'uncalibrated', '1.2.840.10008.1.2.1',
            '', 'confirmed', 'dr.five', '2026-01-01 00:00:00');
        INSERT INTO tasks (id, name, title, kind, classes, "order", description, created_at)
            VALUES (1, 'fracture', 'Fracture', 'binary', '["no fracture", "fracture"]', 1, '',
            '2026-01-01 00:00:00');
        INSERT INTO labels (id, image_id, task_id, value, uncertain, source, reader,
            prediction_relation, created_at)
            VALUES (1, 1, 1, '0', 0, 'human', 'dr.five', 'none', '2026-01-01 00:00:00');
        INSERT INTO audit_events (id, at, who, action, entity, entity_id)
            VALUES (1, '2026-01-01 00:00:00', 'dr.five', 'label.set', 'label', 1);
        """
    )
    con.commit()
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


if __name__ == "__main__":
    make_0001(HERE / "skelex-0001.sqlite3")
    make_0005(HERE / "skelex-0005.sqlite3")
