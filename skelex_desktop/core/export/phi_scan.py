"""The verification pass: search every exported file for the original identifying values.

Every file name and every byte that can carry text is searched, case-insensitively and on word
boundaries: text files (CSV by column, JSON/JSONL by key), every DICOM element except the pixel
data (recursively through sequences, file meta and preamble included) and every PNG chunk except
the compressed image data (IDAT). Pixel payloads are excluded because text found by chance in
compressed or raw pixel bytes means nothing; burned-in text is handled by the BurnedInAnnotation
rule instead.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from skelex_desktop.core.export.identities import Identifier, IdentifierSet
from skelex_desktop.core.progress import Progress, check

PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}  # PixelData, Float/DoubleFloat PixelData
TEXT_SUFFIXES = {".csv", ".jsonl", ".json", ".yaml", ".yml", ".txt", ".md"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Finding:
    """An identifying value found in an exported file."""

    file: str
    location: str
    identifier: Identifier

    def describe(self) -> str:
        ident = self.identifier
        return f"{ident.field} of {ident.owner} found in {self.file} ({self.location})"


class Matcher:
    """One compiled search for all identifiers (text on word boundaries, UIDs whole)."""

    def __init__(self, identifiers: IdentifierSet) -> None:
        self._lookup: dict[str, Identifier] = {}
        texts: list[str] = []
        uids: list[str] = []
        for ident in identifiers:
            self._lookup[ident.value.lower()] = ident
            (uids if ident.kind == "uid" else texts).append(ident.value)
        self._patterns = [
            re.compile(rf"(?<![0-9A-Za-z])(?:{_alternation(texts)})(?![0-9A-Za-z])", re.I)
            if texts
            else None,
            re.compile(rf"(?<![0-9.])(?:{_alternation(uids)})(?![0-9]|\.[0-9])") if uids else None,
        ]

    def first(self, text: str) -> Identifier | None:
        for pattern in self._patterns:
            if pattern is None:
                continue
            match = pattern.search(text)
            if match:
                return self._lookup[match.group(0).lower()]
        return None


def _alternation(values: list[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(set(values), key=len, reverse=True))


def _csv_texts(text: str) -> Iterator[tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0] if rows else []
    yield "header", ",".join(header)
    for n, row in enumerate(rows[1:], start=2):
        for i, cell in enumerate(row):
            column = header[i] if i < len(header) else f"column {i + 1}"
            yield f"line {n}, column {column}", cell


def _json_texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield f"{path}.{key}" if path else str(key), str(key)
            yield from _json_texts(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _json_texts(sub, f"{path}[{i}]")
    elif value is not None:
        yield path or "value", str(value)


def _text_file_texts(name: str, data: bytes) -> Iterator[tuple[str, str]]:
    text = data.decode("utf-8", errors="replace")
    yield "whole file", text
    suffix = Path(name).suffix.lower()
    try:
        if suffix == ".csv":
            yield from _csv_texts(text)
        elif suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield from (
                        (f"line {n}, key {k}", v) for k, v in _json_texts(json.loads(line), "")
                    )
        elif suffix == ".json":
            yield from ((f"key {k}", v) for k, v in _json_texts(json.loads(text), ""))
    except (ValueError, csv.Error):
        pass
    for n, line in enumerate(text.splitlines(), start=1):
        yield f"line {n}", line


def _element_texts(ds: Dataset, path: str) -> Iterator[tuple[str, str]]:
    for element in ds:
        name = element.keyword or str(element.tag)
        where = f"{path}{name}"
        if int(element.tag) in PIXEL_TAGS:
            continue
        if element.VR == "SQ":
            for i, item in enumerate(element.value or []):
                yield from _element_texts(item, f"{where}[{i}].")
            continue
        value = element.value
        if isinstance(value, bytes | bytearray):
            yield f"element {where}", bytes(value).decode("latin-1")
        elif value is not None:
            yield f"element {where}", str(value)


def _dicom_texts(data: bytes) -> Iterator[tuple[str, str]]:
    yield "preamble", data[:128].decode("latin-1")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # unreadable: search the raw bytes instead
        yield "bytes", data.decode("latin-1")
        return
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from _element_texts(meta, "file meta ")
    yield from _element_texts(ds, "")


def _png_texts(data: bytes) -> Iterator[tuple[str, str]]:
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            continue
        text = body
        if kind == b"zTXt" and b"\0" in body:
            key, _, rest = body.partition(b"\0")
            text = key + b" " + _inflate(rest[1:])
        elif kind == b"iTXt" and b"\0" in body:
            key, _, rest = body.partition(b"\0")
            compressed = rest[:1] == b"\x01"
            fields = rest[2:].split(b"\0", 2)
            payload = fields[-1]
            text = (
                key
                + b" "
                + b" ".join(fields[:-1])
                + b" "
                + (_inflate(payload) if compressed else payload)
            )
        yield f"PNG chunk {kind.decode('latin-1')}", text.decode("latin-1")
    if pos < len(data):
        yield "bytes after the PNG end", data[pos:].decode("latin-1")


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return data


def file_texts(name: str, data: bytes) -> Iterator[tuple[str, str]]:
    """(location, text) pairs of one exported file, by its kind."""
    if data[128:132] == b"DICM":
        yield from _dicom_texts(data)
    elif data.startswith(PNG_SIGNATURE):
        yield from _png_texts(data)
    elif Path(name).suffix.lower() in TEXT_SUFFIXES:
        yield from _text_file_texts(name, data)
    else:
        yield "bytes", data.decode("latin-1")


def scan_tree(
    root: Path, identifiers: IdentifierSet, progress: Progress | None = None
) -> list[Finding]:
    """Every file under `root` in which an identifying value survives (first hit per file)."""
    matcher = Matcher(identifiers)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if progress is not None:
        progress.set_total(len(files))
        progress.set_status("checking the export for identifying values")
    findings: list[Finding] = []
    for path in files:
        check(progress)
        rel = path.relative_to(root).as_posix()
        hit = matcher.first(rel)
        finding = (
            Finding(rel, "file name", hit) if hit else scan_file(rel, path.read_bytes(), matcher)
        )
        if finding is not None:
            findings.append(finding)
        if progress is not None:
            progress.advance(current=rel)
    return findings


def scan_file(name: str, data: bytes, matcher: Matcher) -> Finding | None:
    """The first identifying value in one file, with the most precise location known."""
    whole: Identifier | None = None
    for location, text in file_texts(name, data):
        hit = matcher.first(text)
        if location == "whole file":
            if hit is None:
                return None
            whole = hit
        elif hit is not None:
            return Finding(name, location, hit)
    return Finding(name, "file content", whole) if whole is not None else None
