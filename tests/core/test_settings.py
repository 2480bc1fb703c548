"""Settings: precedence of options, environment and file; versioned upgrades; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skelex_desktop.core import settings as settings_module
from skelex_desktop.core.settings import SETTINGS_VERSION, SettingsError, load_settings


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path, environ={})
    assert s.database_url == f"sqlite:///{tmp_path / 'skelex.sqlite3'}"
    assert s.reader and s.inference_threads >= 1 and s.active_model == "skelex-demo"


def test_precedence_option_then_environment_then_file(tmp_path: Path) -> None:
    env_dir, opt_dir = tmp_path / "env", tmp_path / "opt"
    env = {"SKELEX_DATA_DIR": str(env_dir), "SKELEX_DB": "sqlite:///env.db"}
    assert load_settings(environ=env).data_dir == env_dir
    assert load_settings(data_dir=opt_dir, environ=env).data_dir == opt_dir
    assert load_settings(environ=env).db_url == "sqlite:///env.db"
    assert load_settings(db_url="sqlite:///opt.db", environ=env).db_url == "sqlite:///opt.db"
    stored = load_settings(data_dir=opt_dir, environ={})
    stored.db_url, stored.reader = "sqlite:///file.db", "dr.file"
    stored.save()
    again = load_settings(data_dir=opt_dir, environ={})
    assert (again.db_url, again.reader) == ("sqlite:///file.db", "dr.file")
    assert load_settings(data_dir=opt_dir, environ=env).db_url == "sqlite:///env.db"


def test_save_is_atomic_and_versioned(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path, environ={})
    s.save()
    data = json.loads((tmp_path / "settings.json").read_text())
    assert data["version"] == SETTINGS_VERSION and "data_dir" not in data
    assert not list(tmp_path.glob("*.tmp"))


def test_older_file_is_upgraded_step_by_step(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"version": 1, "threads": 3}))

    def rename_threads(data: dict) -> dict:
        data["inference_threads"] = data.pop("threads")
        return data

    monkeypatch.setattr(settings_module, "SETTINGS_VERSION", 2)
    monkeypatch.setitem(settings_module.UPGRADES, 1, rename_threads)
    s = load_settings(data_dir=tmp_path, environ={})
    assert s.inference_threads == 3 and s.version == 2


def test_newer_or_broken_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": SETTINGS_VERSION + 1}))
    with pytest.raises(SettingsError, match="newer than this application"):
        load_settings(data_dir=tmp_path, environ={})
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(data_dir=tmp_path, environ={})


def test_every_stored_setting_is_checked_on_load() -> None:
    """A new setting needs a check of its value, or a broken file would be accepted silently."""
    from dataclasses import fields

    from skelex_desktop.core.settings import CHECKS, Settings

    assert set(CHECKS) == {f.name for f in fields(Settings)} - {"data_dir", "version"}


def test_a_valid_file_is_loaded_with_the_reader_name_trimmed(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(
        json.dumps({"version": 1, "reader": "  dr.ok ", "inference_threads": 2}), encoding="utf-8"
    )
    s = load_settings(data_dir=tmp_path, environ={})
    assert (s.reader, s.inference_threads) == ("dr.ok", 2)
