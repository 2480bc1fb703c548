"""Where the images live (issue #19): paths stored relative to the shared image folder.

Two workstations share one PostgreSQL database and mount the same image folder at different
places (here: two copies of it). Workstation A imports from its mount, which stores the paths as
`root:<relative path>`; A's copy is then removed, so whatever workstation B reads (the worklist,
an image's details, `analyze`, a label file naming B's paths, a PNG export) can only come from
B's own copy, found through B's `image_root`. A workstation without the setting, or with it set
to a folder that does not hold the image, is told which setting to set. Without a root (SQLite,
single user) paths are stored absolute as before.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.ingest.image_paths import ImageRootError
from skelex_desktop.core.ingest.pixels import read_frame
from skelex_desktop.core.review.decisions import image_details
from skelex_desktop.core.settings import SettingsError, load_settings
from skelex_desktop.core.synth import SynthConfig, generate_dataset
from skelex_desktop.core.workspace import open_workspace
from tests.core.postgres_server import find_pg_bin
from tests.core.team_db import Team, cluster_url_fixture  # noqa: F401 - the fixture
from tests.core.test_ingest_helpers import write_raster

HOW_TO_SET = "set image_root in settings.json or SKELEX_IMAGE_ROOT on this workstation"
needs_postgres = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL not installed")


def _workstation(tmp_path: Path, name: str, image_root: Path | None) -> Path:
    """A data dir whose settings.json sets `image_root` (none when None)."""
    data_dir = tmp_path / f"ws-{name}"
    data_dir.mkdir()
    settings = {"version": 1} | ({"image_root": str(image_root)} if image_root else {})
    (data_dir / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return data_dir


def _cli(url: str | None, data_dir: Path, *args: str) -> int:
    return main([*(["--db", url] if url else []), "--data-dir", str(data_dir), *args])


@contextmanager
def _reading(url: str | None, data_dir: Path) -> Iterator[Session]:
    """A read session of the workspace a workstation's data dir (and the team URL) give."""
    ws = open_workspace(load_settings(data_dir=data_dir, db_url=url))
    try:
        with ws.db.read() as session:
            yield session
    finally:
        ws.close()


@needs_postgres
def test_two_workstations_read_their_own_mount_of_the_shared_folder(
    cluster_url: str,  # noqa: F811 - the fixture
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SKELEX_IMAGE_ROOT", raising=False)
    url = Team(cluster_url, tmp_path).url()
    mount_a, mount_b = tmp_path / "mnt-a" / "images", tmp_path / "mnt-b" / "shared images"
    generate_dataset(mount_a / "knee", SynthConfig(n=1, seed=3, fmt="dicom", size=256, workers=1))
    dicoms = sorted((mount_a / "knee").rglob("*.dcm"))
    shutil.copytree(mount_a, mount_b)
    ws_a = _workstation(tmp_path, "a", mount_a)
    ws_b = _workstation(tmp_path, "b", mount_b)

    assert _cli(url, ws_a, "import", str(mount_a / "knee"), "--json") == 0
    capsys.readouterr()
    with _reading(url, ws_a) as s:
        stored = dict(s.execute(select(Image.id, Image.file_path)).all())
        sops = dict(s.execute(select(Image.id, Image.sop_instance_uid)).all())
        image_id = min(stored)
        assert image_details(s, image_id).file_path.is_relative_to(mount_a)
    assert sorted(stored.values()) == sorted(
        f"root:{p.relative_to(mount_a).as_posix()}" for p in dicoms
    )
    relative = {i: p.removeprefix("root:") for i, p in stored.items()}
    assert all((mount_b / r).is_file() for r in relative.values())
    shutil.rmtree(mount_a)  # from now on only B's copy exists

    assert _cli(url, ws_b, "worklist", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(row["image_id"] for row in listed["rows"]) == sorted(stored)

    with _reading(url, ws_b) as s:
        details = image_details(s, image_id)
        assert details.file_path == mount_b / relative[image_id]
        frame = read_frame(details.file_path, details.frame)
    assert frame.shape == (details.rows, details.cols)

    assert _cli(url, ws_b, "analyze", "--all", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["analysed"], summary["failed"]) == (len(stored), {})

    labels = tmp_path / "labels" / "labels.csv"  # B names its images by B's paths
    labels.parent.mkdir()
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "task", "value"])
        for r in relative.values():
            writer.writerow([str(mount_b / r), "tumour_category", "benign"])
    assert _cli(url, ws_b, "--reader", "dr.b", "label", "import", str(labels)) == 0
    assert f"imported {len(stored)} labels" in capsys.readouterr().out

    out = tmp_path / "export"
    export = ["export", "--format", "csv", "--images", "png16", "--status", "any"]
    assert _cli(url, ws_b, *export, "--out", str(out)) == 0
    capsys.readouterr()
    with (out / "labels.csv").open(newline="", encoding="utf-8") as handle:
        rows = {row["sop_instance_uid"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == sorted(sops.values())
    png = cv2.imread(str(out / rows[sops[image_id]]["file"]), cv2.IMREAD_UNCHANGED)
    source = read_frame(mount_b / relative[image_id], 0)
    assert png.dtype == np.uint16 and png.shape == source.shape
    np.testing.assert_array_equal(png, source.values.astype(np.uint16))

    # A workstation without the setting: one clear message naming it, nothing half done.
    ws_c = _workstation(tmp_path, "c", None)
    assert _cli(url, ws_c, "analyze", str(image_id)) == 1
    assert HOW_TO_SET in capsys.readouterr().err
    assert _cli(url, ws_c, *export, "--out", str(tmp_path / "export-c")) == 1
    assert HOW_TO_SET in capsys.readouterr().err
    assert not (tmp_path / "export-c").exists()
    with (
        _reading(url, ws_c) as s,
        pytest.raises(ImageRootError, match="stored relative to the shared image folder"),
    ):
        image_details(s, image_id)
    # ... which the environment can give instead of settings.json
    monkeypatch.setenv("SKELEX_IMAGE_ROOT", str(mount_b))
    with _reading(url, ws_c) as s:
        assert image_details(s, image_id).file_path == mount_b / relative[image_id]
    # A root that does not hold the image (the folder not mounted there): the same advice.
    monkeypatch.setenv("SKELEX_IMAGE_ROOT", str(tmp_path / "mnt-a" / "images"))
    with _reading(url, ws_c) as s, pytest.raises(ImageRootError) as raised:
        image_details(s, image_id)
    message = str(raised.value)
    assert str(tmp_path / "mnt-a" / "images" / relative[image_id]) in message
    assert "not found" in message and HOW_TO_SET in message
    assert _cli(url, ws_c, "analyze", str(image_id), "--json") == 1  # reported, exit 1
    failed = json.loads(capsys.readouterr().out)["failed"]
    assert list(failed) == [str(image_id)] and HOW_TO_SET in failed[str(image_id)]
    # A label file naming images by their paths under this workstation's root is matched by
    # the stored relative path, even with no file there to compare contents with.
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "task", "value"])
        for r in relative.values():
            writer.writerow([str(tmp_path / "mnt-a" / "images" / r), "tumour_category", "benign"])
    assert _cli(url, ws_c, "--reader", "dr.c", "label", "import", str(labels)) == 0
    assert f"imported {len(stored)} labels" in capsys.readouterr().out


def test_without_a_root_paths_stay_absolute_and_copies_go_to_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SKELEX_IMAGE_ROOT", raising=False)
    folder = tmp_path / "images"
    inside = write_raster(folder / "in.png", np.full((40, 50), 90, np.uint8))
    write_raster(folder / "copied" / "c.png", np.full((30, 30), 20, np.uint8))
    outside = write_raster(tmp_path / "elsewhere" / "out.png", np.full((20, 30), 60, np.uint8))
    plain = _workstation(tmp_path, "plain", None)
    assert _cli(None, plain, "import", str(inside)) == 0
    rooted = _workstation(tmp_path, "rooted", folder)
    assert _cli(None, rooted, "import", str(inside), str(outside)) == 0
    assert _cli(None, rooted, "import", "--copy", str(folder / "copied")) == 0
    capsys.readouterr()
    with _reading(None, plain) as s:
        assert list(s.scalars(select(Image.file_path))) == [os.path.abspath(inside)]
        (image_id,) = s.scalars(select(Image.id))
        assert image_details(s, image_id).file_path == inside
    with _reading(None, rooted) as s:
        paths = list(s.scalars(select(Image.file_path).order_by(Image.id)))
    assert sorted(paths[:2]) == sorted(["root:in.png", str(outside)])  # one import
    assert Path(paths[2]).is_relative_to(rooted / "store")  # --copy: the managed store


def test_image_root_setting_must_be_an_absolute_folder(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text('{"image_root": "images"}', encoding="utf-8")
    with pytest.raises(SettingsError, match="key 'image_root': must be an absolute folder"):
        load_settings(data_dir=tmp_path, environ={})
    (tmp_path / "settings.json").write_text('{"image_root": 7}', encoding="utf-8")
    with pytest.raises(SettingsError, match="key 'image_root': must be text"):
        load_settings(data_dir=tmp_path, environ={})
    (tmp_path / "settings.json").write_text('{"image_root": ""}', encoding="utf-8")
    assert load_settings(data_dir=tmp_path, environ={}).image_root_path is None
    env = {"SKELEX_IMAGE_ROOT": "relative/images"}
    with pytest.raises(SettingsError, match="SKELEX_IMAGE_ROOT must be an absolute folder"):
        load_settings(data_dir=tmp_path, environ=env)
    env = {"SKELEX_IMAGE_ROOT": str(tmp_path / "mnt")}
    assert load_settings(data_dir=tmp_path, environ=env).image_root_path == tmp_path / "mnt"
