"""Image references of an imported label or box file (SOP UID or file path) -> image ids.

A reference is tried, in this order, as
1. a SOP Instance UID;
2. a file path: an absolute path as it is, a relative one joined to the folder of the file
   being imported (what SynthMSK's `ground_truth.csv` holds), compared with the paths the
   images were imported from (for a path under this workstation's shared image folder, also
   with the path stored relative to it, `root:...`);
3. the content of that file, when it exists (an image imported with `--copy` points at its
   copy in the store, whose sha256 is the original's);
4. for a relative path, the imported path that ends with it, component by component (a path
   relative to the folder the images were imported from, given in a file kept elsewhere);
   several such images is ambiguous and refused with the candidates named.

A multi-frame file is its first frame's image, as everywhere else.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from skelex_desktop.core.db.models import Image
from skelex_desktop.core.ingest.image_paths import (
    resolve_image_path,
    root_relative,
    session_image_root,
    stored_image_path,
)
from skelex_desktop.core.names import shown

HASH_BLOCK = 1 << 20
PATH_SHOWN = 4096  # paths are shown whole in reasons, up to this length


@dataclass
class ImageRefs:
    """Resolves the references of one imported file, whose folder is `base`."""

    session: Session
    base: Path
    _tails: dict[str, dict[str, tuple[int, int]]] | None = field(default=None, repr=False)

    def resolve(self, refs: Iterable[str]) -> tuple[dict[str, int], dict[str, str]]:
        """(ref -> image id) of the references found, (ref -> reason) of the others."""
        wanted = set(refs)
        found: dict[str, int] = {}
        reasons: dict[str, str] = {}
        found |= _lowest_frames(self.session, Image.sop_instance_uid, {r: r for r in wanted})
        paths = {ref: self.path_of(ref) for ref in wanted - found.keys()}
        found |= _lowest_frames(self.session, Image.file_path, paths)
        root = session_image_root(self.session)
        stored = {ref: stored_image_path(p, root) for ref, p in paths.items() if ref not in found}
        rooted = {ref: s for ref, s in stored.items() if root_relative(s) is not None}
        found |= _lowest_frames(self.session, Image.file_path, rooted)
        on_disk = {ref: path for ref, path in paths.items() if ref not in found}
        found |= self._by_content({ref: p for ref, p in on_disk.items() if os.path.isfile(p)})
        for ref in sorted(wanted - found.keys()):
            image_id, reason = self._by_tail(ref)
            if image_id is not None:
                found[ref] = image_id
            else:
                reasons[ref] = reason or _not_found(ref, paths[ref])
        return found, reasons

    def path_of(self, ref: str) -> str:
        """The absolute, normalised path a reference names (relative: to the file's folder)."""
        return os.path.abspath(ref if os.path.isabs(ref) else os.path.join(self.base, ref))

    def _by_content(self, paths: dict[str, str]) -> dict[str, int]:
        digests: dict[str, str] = {}
        for ref, path in paths.items():
            try:
                digests[ref] = _sha256(path)
            except OSError:
                continue  # not readable: reported as not found, with the path it looked at
        return _lowest_frames(self.session, Image.content_hash, digests)

    def _by_tail(self, ref: str) -> tuple[int | None, str]:
        """The one imported image whose path ends with relative path `ref`, or a reason."""
        parts = _parts(ref)
        if os.path.isabs(ref) or not parts:
            return None, ""
        matches = {
            path: image_id
            for path, (_frame, image_id) in self._tail_index().get(parts[-1], {}).items()
            if PurePath(path).parts[-len(parts) :] == parts
        }
        if len(matches) == 1:
            return next(iter(matches.values())), ""
        if not matches:
            return None, ""
        some = ", ".join(shown(p, PATH_SHOWN) for p in sorted(matches)[:3])
        return None, (
            f"{shown(ref, PATH_SHOWN)} is ambiguous: {len(matches)} imported images end with it ({some}"
            f"{', ...' if len(matches) > 3 else ''}); give the path relative to this file's "
            "folder, an absolute path or the SOP Instance UID"
        )

    def _tail_index(self) -> dict[str, dict[str, tuple[int, int]]]:
        """File name -> {imported path: (frame, image id) of its first frame}, read once."""
        if self._tails is None:
            self._tails = {}
            query = select(Image.file_path, Image.frame, Image.id)
            root = session_image_root(self.session)
            for stored, frame, image_id in self.session.execute(query):
                path = _shown_path(stored, root)
                paths = self._tails.setdefault(PurePath(path).name, {})
                if path not in paths or frame < paths[path][0]:
                    paths[path] = (frame, image_id)
        return self._tails


def _lowest_frames(
    session: Session, column: InstrumentedAttribute[str], keys: dict[str, str]
) -> dict[str, int]:
    """(ref -> image id of the lowest frame) of the refs whose key `column` holds, where one
    file holds the key (several files with one key: ambiguous, left unresolved)."""
    if not keys:
        return {}
    best: dict[str, tuple[str, int, int]] = {}  # key -> (file path, frame, image id)
    files: dict[str, set[str]] = {}
    query = select(column, Image.file_path, Image.frame, Image.id)
    for key, path, frame, image_id in session.execute(query.where(column.in_(set(keys.values())))):
        files.setdefault(key, set()).add(path)
        if key not in best or frame < best[key][1]:
            best[key] = (path, frame, image_id)
    if column is not Image.sop_instance_uid:
        best = {key: hit for key, hit in best.items() if len(files[key]) == 1}
    return {ref: best[key][2] for ref, key in keys.items() if key in best}


def _shown_path(stored: str, root: Path | None) -> str:
    """A stored image path as a path: under the image root when it is relative to it (its
    relative part when no root is set here), else as stored."""
    relative = root_relative(stored)
    if relative is None:
        return stored
    return relative if root is None else str(resolve_image_path(stored, root, must_exist=False))


def _parts(ref: str) -> tuple[str, ...]:
    """The components of a relative path, without '.'; empty when it climbs ('..')."""
    parts = tuple(p for p in PurePath(ref.replace("\\", "/")).parts if p not in (".", ""))
    return () if ".." in parts else parts


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _not_found(ref: str, path: str) -> str:
    where = ""
    if not os.path.isabs(ref) and os.path.isfile(path):
        where = f" (the file {shown(path, PATH_SHOWN)} exists but was not imported)"
    return (
        f"no image with SOP Instance UID or file path {shown(ref, PATH_SHOWN)}{where}; import the image "
        "first (`skelex-desktop import`) or correct the reference"
    )
