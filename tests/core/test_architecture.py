"""The import rules: a Qt-free core, layers no module crosses upward (import-linter contracts
in pyproject.toml), no import cycle even through imports inside functions, and no heavy import
from `import skelex_desktop`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import skelex_desktop

ROOT = Path(skelex_desktop.__file__).resolve().parent
QT_IMPORT = re.compile(r"^\s*(import|from)\s+PySide6\b|import_module\(.PySide6", re.MULTILINE)

BLOCK_AND_IMPORT = r"""
import importlib, importlib.abc, json, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "PySide6" or name.startswith("PySide6."):
            raise ImportError(f"PySide6 is blocked: {name}")
        return None

sys.meta_path.insert(0, Block())
import skelex_desktop.core as core
failed = {}
for info in pkgutil.walk_packages(core.__path__, "skelex_desktop.core."):
    if ".migrations" in info.name:
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed[info.name] = repr(exc)
print(json.dumps({"failed": failed, "qt": [m for m in sys.modules if m.startswith("PySide6")]}))
"""


def _run(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_core_module_imports_with_qt_blocked() -> None:
    result = _run(BLOCK_AND_IMPORT)
    assert result["failed"] == {}
    assert result["qt"] == []


def test_no_core_source_imports_pyside6_even_lazily() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "core").rglob("*.py")
        if QT_IMPORT.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_import_linter_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint)], capture_output=True, text=True, cwd=ROOT.parent, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    declared = (ROOT.parent / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    assert declared >= 4
    assert f"Contracts: {declared} kept, 0 broken" in result.stdout


def test_package_import_is_light() -> None:
    code = (
        "import json, sys, skelex_desktop, skelex_desktop.cli, skelex_desktop.core.workspace\n"
        "skelex_desktop.cli.build_parser()\n"
        "heavy = ('torch', 'onnxruntime', 'PySide6', 'transformers')\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(out.stdout.strip()) == []
