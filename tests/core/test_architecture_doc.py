"""docs/ARCHITECTURE.md's generated part matches the code: its tree lists every module and its
layer diagram every layer of the import-linter contracts."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def test_the_generated_part_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "architecture_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_document_names_every_layer_and_module() -> None:
    text = DOC.read_text(encoding="utf-8")
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for contract in contracts["contracts"]:
        assert contract["name"] in text
        for layer in contract.get("layers", []):
            for part in layer.split("|"):
                assert part.strip().removeprefix("skelex_desktop.") in text
    for path in (ROOT / "skelex_desktop").rglob("*.py"):
        if "migrations" not in path.parts and path.name != "__init__.py":
            assert f" {path.name} " in text, path
