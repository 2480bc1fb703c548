"""`skelex-desktop export` on the command line: options, --json, one-line failures."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import pytest

from skelex_desktop.commands import export_cmd
from skelex_desktop.commands.common import CliError
from tests.core.export_fixtures import N_IMAGES, ExportWorld, leftovers, open_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportWorld]:
    w = open_world(tmp_path_factory.mktemp("cli"), n=8)
    w.workspace.close()  # the command opens the workspace itself
    yield w


def _parser() -> argparse.ArgumentParser:
    """The global options of `skelex-desktop` and the export command, as cli.py builds them."""
    from skelex_desktop import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if sub.choices["export"].get_default("handler") is export_cmd.cmd_export:
        return parser
    fresh = argparse.ArgumentParser(prog="skelex-desktop")
    for option in ("--db", "--data-dir", "--reader"):
        fresh.add_argument(option)
    commands = fresh.add_subparsers(dest="command")

    def add(name: str, handler: Any, help_text: str, **kw: Any) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_text, **kw)
        p.set_defaults(handler=handler)
        return p

    export_cmd.register(add)
    return fresh


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    args = _parser().parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
    except CliError as exc:
        print(f"skelex-desktop: {exc}", file=__import__("sys").stderr)
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_exports_several_formats_as_json(world: ExportWorld, capsys):
    out = world.root / "cli-out"
    code, stdout, _ = _run(
        [
            "--data-dir",
            str(world.root / "data"),
            "export",
            "--format",
            "csv,coco,dicom-sr",
            "--out",
            str(out),
            "--deidentify",
            "--task",
            "fracture",
            "--split",
            "0.5,0.25,0.25",
            "--seed",
            "3",
            "--images",
            "png8",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(stdout)
    assert data["images"] == 8 and data["out"] == str(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["split"]["seed"] == 3 and manifest["selection"]["tasks"] == ["fracture"]
    assert manifest["images"] == "png8" and manifest["formats"] == ["csv", "coco", "dicom-sr"]
    assert N_IMAGES >= 8


def test_cli_failures_are_one_line_and_non_zero(world: ExportWorld, capsys):
    data = ["--data-dir", str(world.root / "data")]
    code, _, err = _run(
        data + ["export", "--format", "xml", "--out", str(world.root / "x")], capsys
    )
    assert code == 2 and "unknown format 'xml'" in err and err.count("\n") == 1
    code, _, err = _run(
        data + ["export", "--format", "csv", "--out", str(world.root / "y"), "--status", "new"],
        capsys,
    )
    assert code == 1 and "nothing to export" in err and err.count("\n") == 1
    code, _, err = _run(
        data
        + [
            "export",
            "--format",
            "csv",
            "--out",
            str(world.root / "z"),
            "--reader",
            "nobody",
            "--from",
            "2000-01-01",
        ],
        capsys,
    )
    assert code == 1 and "nothing to export" in err
    assert not (world.root / "y").exists() and leftovers(world.root) == []
