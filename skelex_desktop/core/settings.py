"""Typed, versioned settings in one place.

Resolution order for every value: command-line option, then environment variable, then the
settings file `settings.json` in the data dir, then the built-in default. The file carries a
`version`; older files are upgraded step by step on load, newer ones are refused.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "skelex-desktop"
SETTINGS_VERSION = 1
SETTINGS_FILE = "settings.json"
DEFAULT_MODEL = "skelex-demo"

# version N -> function turning a version-N dict into a version-(N+1) dict
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class SettingsError(ValueError):
    """A settings file that cannot be used; the message says why."""


def default_reader() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reader"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass
class Settings:
    """Everything configurable, with the data dir it was loaded from."""

    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str = ""
    reader: str = field(default_factory=default_reader)
    inference_threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    active_model: str = DEFAULT_MODEL
    version: int = SETTINGS_VERSION

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded default: a SQLite file in the data dir."""
        return self.db_url or f"sqlite:///{self.data_dir / 'skelex.sqlite3'}"

    @property
    def settings_path(self) -> Path:
        return self.data_dir / SETTINGS_FILE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("data_dir")
        return data

    def save(self) -> None:
        """Write the settings file atomically (temporary file, then rename)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.settings_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.settings_path)


def upgrade_settings(data: dict[str, Any]) -> dict[str, Any]:
    """Apply the upgrade steps from the file's version to the current one."""
    version = int(data.get("version", 1))
    if version > SETTINGS_VERSION:
        raise SettingsError(
            f"settings file version {version} is newer than this application "
            f"(knows up to {SETTINGS_VERSION}); update SKELEX Desktop"
        )
    while version < SETTINGS_VERSION:
        data = UPGRADES[version](dict(data))
        version += 1
        data["version"] = version
    return data


def load_settings(
    data_dir: str | Path | None = None,
    db_url: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Settings from options, environment (SKELEX_DATA_DIR, SKELEX_DB) and the settings file."""
    env = os.environ if environ is None else environ
    chosen_dir = data_dir or env.get("SKELEX_DATA_DIR") or default_data_dir()
    settings = Settings(data_dir=Path(chosen_dir).expanduser())
    if settings.settings_path.exists():
        try:
            stored = json.loads(settings.settings_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SettingsError(f"cannot read {settings.settings_path}: {exc}") from exc
        if not isinstance(stored, dict):
            raise SettingsError(f"{settings.settings_path} does not hold a JSON object")
        stored = upgrade_settings(stored)
        known = {f.name for f in fields(Settings)} - {"data_dir"}
        for key, value in stored.items():
            if key in known:
                setattr(settings, key, value)
        settings.version = SETTINGS_VERSION
    settings.db_url = db_url or env.get("SKELEX_DB") or settings.db_url
    return settings
