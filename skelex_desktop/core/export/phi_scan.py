"""The verification pass: search every exported file for the original identifying values.

Every file name and every byte that can carry text is searched, case-insensitively and on word
boundaries: text files (CSV by column, JSON/JSONL by key), every DICOM element except the pixel
data (recursively through sequences, file meta and preamble included) and every PNG chunk except
the compressed image data (IDAT). Pixel payloads are excluded because text found by chance in
compressed or raw pixel bytes means nothing; burned-in text is handled by the BurnedInAnnotation
rule instead.

A hit is reported unless `phi_allowed.Allowances` tolerates it: the export's own words (split,
task and class names, layout words) where our writers put them, and an institution named like
its device maker inside the device attributes the Basic Profile keeps.
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
from skelex_desktop.core.export.phi_allowed import Allowances, Place
from skelex_desktop.core.progress import Progress, check

PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}  # PixelData, Float/DoubleFloat PixelData
TEXT_SUFFIXES = {".csv", ".jsonl", ".json", ".yaml", ".yml", ".txt", ".md"}
PARQUET_MAGIC = b"PAR1"
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

    def hits(self, text: str) -> Iterator[tuple[str, Identifier]]:
        """Every (matched text, identifier) in `text`."""
        for pattern in self._patterns:
            if pattern is not None:
                for match in pattern.finditer(text):
                    yield match.group(0), self._lookup[match.group(0).lower()]

    def first(self, text: str) -> Identifier | None:
        return next((ident for _, ident in self.hits(text)), None)


def _alternation(values: list[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(set(values), key=len, reverse=True))


Located = tuple[str, str, str, str]  # (location, role, field, text); role as in phi_allowed.Place


def _last_key(path: str) -> str:
    return re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1])


def _csv_texts(text: str) -> Iterator[Located]:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0] if rows else []
    for cell in header:
        yield "header", "key", cell, cell
    for n, row in enumerate(rows[1:], start=2):
        for i, cell in enumerate(row):
            column = header[i] if i < len(header) else f"column {i + 1}"
            yield f"line {n}, column {column}", "value", column, cell


def _json_texts(value: Any, path: str) -> Iterator[tuple[str, str, str, str]]:
    """(key path, role, field, text) of every key and scalar of a JSON value."""
    if isinstance(value, dict):
        for key, sub in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, "key", str(key), str(key)
            yield from _json_texts(sub, where)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _json_texts(sub, f"{path}[{i}]")
    elif value is not None:
        yield path or "value", "value", _last_key(path), str(value)


def _yaml_texts(text: str) -> Iterator[Located]:
    """`key: value` lines of our flat YAML (data.yaml); an indented line belongs to its parent."""
    parent = ""
    for n, line in enumerate(text.splitlines(), start=1):
        key, colon, value = line.partition(":")
        if not colon:
            yield f"line {n}", "raw", "", line
            continue
        if not line.startswith((" ", "-")):
            parent = key.strip()
        yield f"line {n}, key {key.strip()}", "key", key.strip(), key.strip()
        value = value.strip().strip("\"'")
        yield f"line {n}, key {key.strip()}", "value", parent, value


def _structured(name: str, text: str) -> list[Located] | None:
    suffix = Path(name).suffix.lower()
    try:
        if suffix == ".csv":
            return list(_csv_texts(text))
        if suffix == ".jsonl":
            return [
                (f"line {n}, key {k}", role, field, v)
                for n, line in enumerate(text.splitlines(), start=1)
                if line.strip()
                for k, role, field, v in _json_texts(json.loads(line), "")
            ]
        if suffix == ".json":
            return [(f"key {k}", r, f, v) for k, r, f, v in _json_texts(json.loads(text), "")]
        if suffix in (".yaml", ".yml"):
            return list(_yaml_texts(text))
    except (ValueError, csv.Error):
        return None
    return None


def _text_file_texts(name: str, data: bytes) -> Iterator[Located]:
    text = data.decode("utf-8", errors="replace")
    yield "whole file", "raw", "", text
    parsed = _structured(name, text)
    if parsed is not None:
        yield from parsed
        return
    for n, line in enumerate(text.splitlines(), start=1):  # did not parse: every line as is
        yield f"line {n}", "raw", "", line


def _element_texts(ds: Dataset, path: str) -> Iterator[Located]:
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
            yield f"element {where}", "element", name, bytes(value).decode("latin-1")
        elif value is not None:
            yield f"element {where}", "element", name, str(value)


def _dicom_texts(data: bytes) -> Iterator[Located]:
    yield "preamble", "raw", "", data[:128].decode("latin-1")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # unreadable: search the raw bytes instead
        yield "bytes", "raw", "", data.decode("latin-1")
        return
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        yield from _element_texts(meta, "file meta ")
    yield from _element_texts(ds, "")


def _png_texts(data: bytes) -> Iterator[Located]:
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
        yield f"PNG chunk {kind.decode('latin-1')}", "raw", "", text.decode("latin-1")
    if pos < len(data):
        yield "bytes after the PNG end", "raw", "", data[pos:].decode("latin-1")


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return data


def _parquet_texts(data: bytes) -> Iterator[Located]:
    """Column names, schema metadata and every value of a Parquet file; raw bytes when pyarrow
    cannot read it."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        table = pq.read_table(io.BytesIO(data))
    except Exception:  # no pyarrow, or not a table it reads: search the raw bytes
        yield "bytes", "raw", "", data.decode("latin-1")
        return
    for key, value in (table.schema.metadata or {}).items():
        where = f"schema metadata {key.decode('latin-1')}"
        yield where, "key", key.decode("latin-1"), key.decode("latin-1")
        try:
            parsed = json.loads(value)
        except ValueError:
            yield where, "raw", "", value.decode("latin-1")
            continue
        yield from ((f"{where}, key {k}", r, f, v) for k, r, f, v in _json_texts(parsed, ""))
    for column in table.column_names:
        yield "column names", "key", column, column
        for n, cell in enumerate(table.column(column).to_pylist(), start=1):
            for k, role, field, v in _json_texts(cell, column):
                yield f"row {n}, column {k}", role, field, v


def file_texts(name: str, data: bytes) -> Iterator[Located]:
    """(location, role, field, text) of one exported file, by its kind."""
    if data[128:132] == b"DICM":
        yield from _dicom_texts(data)
    elif data.startswith(PNG_SIGNATURE):
        yield from _png_texts(data)
    elif data.startswith(PARQUET_MAGIC) and data.endswith(PARQUET_MAGIC):
        yield from _parquet_texts(data)
    elif Path(name).suffix.lower() in TEXT_SUFFIXES:
        yield from _text_file_texts(name, data)
    else:
        yield "bytes", "raw", "", data.decode("latin-1")


def scan_tree(
    root: Path, identifiers: IdentifierSet, progress: Progress | None = None
) -> list[Finding]:
    """Every file under `root` in which an identifying value survives (first hit per file)."""
    matcher = Matcher(identifiers)
    allowed = Allowances.for_export(root, identifiers.device_values)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if progress is not None:
        progress.set_total(len(files))
        progress.set_status("checking the export for identifying values")
    findings: list[Finding] = []
    for path in files:
        check(progress)
        rel = path.relative_to(root).as_posix()
        hit = _reported(matcher, allowed, Place(rel, "path"), rel)
        finding = (
            Finding(rel, "file name", hit)
            if hit
            else scan_file(rel, path.read_bytes(), matcher, allowed)
        )
        if finding is not None:
            findings.append(finding)
        if progress is not None:
            progress.advance(current=rel)
    return findings


def _reported(matcher: Matcher, allowed: Allowances, place: Place, text: str) -> Identifier | None:
    """The first hit in `text` that `allowed` does not tolerate at `place`."""
    for found, ident in matcher.hits(text):
        if not allowed.allows(place, text, found, ident):
            return ident
    return None


def scan_file(
    name: str, data: bytes, matcher: Matcher, allowed: Allowances | None = None
) -> Finding | None:
    """The first identifying value in one file, with the most precise location known.

    Without `allowed`, every hit is reported (nothing is the export's own word)."""
    allowed = allowed or Allowances((), ())
    for location, role, field, text in file_texts(name, data):
        if location == "whole file":
            if matcher.first(text) is None:
                return None  # nothing anywhere: no need to look closer
            continue
        hit = _reported(matcher, allowed, Place(name, role, field), text)
        if hit is not None:
            return Finding(name, location, hit)
    return None
