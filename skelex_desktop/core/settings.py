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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from skelex_desktop.core.names import InvalidName, check_name

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
    image_root: str = ""
    version: int = SETTINGS_VERSION

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded default: a SQLite file in the data dir."""
        return self.db_url or f"sqlite:///{self.data_dir / 'skelex.sqlite3'}"

    @property
    def image_root_path(self) -> Path | None:
        """The shared image folder on this workstation (None when not set): images imported
        from under it are stored relative to it (docs/TEAM.md, "Where the images live")."""
        return Path(self.image_root).expanduser() if self.image_root else None

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


FIX_OR_DELETE = "correct it, or delete the file to start from the defaults"


def _file_version(data: dict[str, Any], source: str) -> int:
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SettingsError(
            f"{source}: key 'version' must be a whole number from 1 to {SETTINGS_VERSION}, "
            f"got {_shown_json(version)}; {FIX_OR_DELETE}"
        )
    if version > SETTINGS_VERSION:
        raise SettingsError(
            f"{source}: settings file version {version} is newer than this application "
            f"(knows up to {SETTINGS_VERSION}); update SKELEX Desktop, or delete the file to "
            "start from the defaults"
        )
    return version


def upgrade_settings(data: dict[str, Any], source: str = SETTINGS_FILE) -> dict[str, Any]:
    """Apply the upgrade steps from the file's version to the current one; `source` names the
    file in messages."""
    version = _file_version(data, source)
    while version < SETTINGS_VERSION:
        data = UPGRADES[version](dict(data))
        version += 1
        data["version"] = version
    return data


def _whole_number_from_one(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"must be a whole number of at least 1, got {_shown_json(value)}"
    return None


def _text(value: object) -> str | None:
    return None if isinstance(value, str) else f"must be text, got {_shown_json(value)}"


def _folder(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be text, got {_shown_json(value)}"
    if value and not Path(value).expanduser().is_absolute():
        return f"must be an absolute folder path (or empty for none), got {_shown_json(value)}"
    return None


def _model_name(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    return f"must name a model (see `model list`), got {_shown_json(value)}"


def _reader_name(value: object) -> str | None:
    try:
        check_name(value)
    except InvalidName as exc:
        return str(exc)
    return None


def _shown_json(value: object) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"


# What each stored key must hold: a check returning the problem, or None when the value is fine.
CHECKS: dict[str, Callable[[object], str | None]] = {
    "db_url": _text,
    "reader": _reader_name,
    "inference_threads": _whole_number_from_one,
    "active_model": _model_name,
    "image_root": _folder,
}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"cannot read {path}: it is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8, or delete the file to start from the defaults"
        ) from exc
    try:
        stored = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"cannot read {path}: not valid JSON at line {exc.lineno}, column {exc.colno} "
            f"({exc.msg}); {FIX_OR_DELETE}"
        ) from exc
    if not isinstance(stored, dict):
        raise SettingsError(f"{path} does not hold a JSON object; {FIX_OR_DELETE}")
    return stored


def _apply_file(settings: Settings, path: Path) -> None:
    stored = upgrade_settings(_read_file(path), str(path))
    for key, value in stored.items():
        check = CHECKS.get(key)
        if check is None:
            continue  # "version", and keys of other versions or tools, are not settings
        problem = check(value)
        if problem is not None:
            raise SettingsError(
                f"{path}: key {key!r}: {problem}; correct it, or remove the key to use the default"
            )
        setattr(settings, key, check_name(value) if key == "reader" else value)
    settings.version = SETTINGS_VERSION


def load_settings(
    data_dir: str | Path | None = None,
    db_url: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Settings from options, environment (SKELEX_DATA_DIR, SKELEX_DB, SKELEX_IMAGE_ROOT) and
    the settings file."""
    env = os.environ if environ is None else environ
    chosen_dir = data_dir or env.get("SKELEX_DATA_DIR") or default_data_dir()
    settings = Settings(data_dir=Path(chosen_dir).expanduser())
    if settings.settings_path.exists():
        _apply_file(settings, settings.settings_path)
    settings.db_url = db_url or env.get("SKELEX_DB") or settings.db_url
    image_root = env.get("SKELEX_IMAGE_ROOT")
    if image_root:
        problem = _folder(image_root)
        if problem is not None:
            raise SettingsError(f"environment variable SKELEX_IMAGE_ROOT {problem}")
        settings.image_root = image_root
    return settings
