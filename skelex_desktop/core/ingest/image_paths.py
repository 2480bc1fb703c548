"""Where an image's file is: stored paths relative to the shared image folder, and their
resolution on this workstation.

An image imported from under the workstation's `image_root` (the setting) is stored as
`root:<path relative to it, with forward slashes>`, anything else as its absolute path. Every
reader of `Image.file_path` turns the stored text into a path here with `resolve_image_path`, so
two workstations that mount the same folder at different places read the same files.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session

from skelex_desktop.core.db.engine import IMAGE_ROOT_INFO

ROOT_PREFIX = "root:"
HOW_TO_SET = "set image_root in settings.json or SKELEX_IMAGE_ROOT on this workstation"


class ImageRootError(FileNotFoundError):
    """A stored image path that cannot be found on this workstation; the message says why."""


def stored_image_path(path: str | Path, image_root: Path | None) -> str:
    """What the database stores for the file at `path`: `root:<relative path>` when it lies
    under `image_root`, else its absolute path."""
    absolute = os.path.abspath(path)
    relative = _under(Path(absolute), image_root)
    return absolute if relative is None else ROOT_PREFIX + relative


def root_relative(stored: str) -> str | None:
    """The path relative to the shared image folder of a `root:` stored path, else None."""
    return stored[len(ROOT_PREFIX) :] if stored.startswith(ROOT_PREFIX) else None


def resolve_image_path(stored: str, image_root: Path | None, must_exist: bool = True) -> Path:
    """The file a stored image path names on this workstation.

    A `root:` path is joined to `image_root`; without one, or (with `must_exist`) when the
    file is not there, ImageRootError names the setting. Absolute paths are returned as they
    are (a missing one is reported by whoever reads it).
    """
    relative = root_relative(stored)
    if relative is None:
        return Path(stored)
    if image_root is None:
        raise ImageRootError(
            f"the image file {relative!r} is stored relative to the shared image folder, which is "
            f"not set on this workstation; {HOW_TO_SET} (the folder's path here)"
        )
    path = image_root.joinpath(*PurePosixPath(relative).parts)
    if must_exist and not path.is_file():
        raise ImageRootError(
            f"{path} not found: this image is stored relative to the shared image folder, set to "
            f"{image_root} here; mount the folder there, or {HOW_TO_SET} to where it is mounted"
        )
    return path


def session_image_root(session: Session) -> Path | None:
    """The image root of the workstation whose `Database` opened `session`."""
    root = session.info.get(IMAGE_ROOT_INFO)
    return root if isinstance(root, Path) else None


def _under(path: Path, image_root: Path | None) -> str | None:
    """`path` relative to `image_root` in POSIX form, or None when it is not under it."""
    if image_root is None:
        return None
    try:
        relative = path.relative_to(os.path.abspath(image_root))
    except ValueError:
        return None
    return relative.as_posix() if relative.parts else None
