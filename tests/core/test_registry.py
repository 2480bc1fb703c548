"""Model registry: listing, verification, refusal of damaged packages, atomic import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skelex_desktop.cli import main
from skelex_desktop.core.inference.package import PackageError
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.settings import Settings
from tests.core.test_mae_helpers import copy_tiny_package, write_png


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SKELEX_BUNDLED_MODELS", str(tmp_path / "bundled"))
    data = tmp_path / "data"
    copy_tiny_package(data / "models")
    return data


def test_model_list_and_verify_via_cli(data_dir: Path, capsys) -> None:
    assert main(["--data-dir", str(data_dir), "model", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["version"], r["verified"], r["origin"]) for r in rows] == [
        ("tiny", "1.0", True, "user")
    ]
    assert rows[0]["size_bytes"] > 0
    assert rows[0]["trusted"] is True and rows[0]["trust"].startswith("imported 2")
    assert main(["--data-dir", str(data_dir), "model", "verify", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "all 6 files verified" in out and "manifest trusted (imported 2" in out


def test_bundled_packages_are_listed_and_user_ones_shadow_them(data_dir: Path, capsys) -> None:
    bundled = data_dir.parent / "bundled"
    copy_tiny_package(bundled)
    (bundled / "tiny").rename(bundled / "other")
    assert main(["--data-dir", str(data_dir), "model", "list", "--json"]) == 0
    rows = {r["name"]: r["origin"] for r in json.loads(capsys.readouterr().out)}
    assert rows == {"other": "bundled", "tiny": "user"}


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_package_is_refused_with_a_clear_message(
    data_dir: Path, damage: str, capsys, tmp_path: Path
) -> None:
    graph = data_dir / "models" / "tiny" / "reconstruction.onnx"
    if damage == "flip":
        _flip_byte(graph)
    elif damage == "truncate":
        graph.write_bytes(graph.read_bytes()[:1000])
    else:
        graph.unlink()
    assert main(["--data-dir", str(data_dir), "model", "verify", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "reconstruction.onnx" in err and "tiny" in err
    assert {"flip": "sha256", "truncate": "truncated", "delete": "missing"}[damage] in err
    assert main(["--data-dir", str(data_dir), "model", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verified"] is False and "reconstruction.onnx" in row["problem"]
    service = ErrorMapService(Settings(data_dir=data_dir, inference_threads=1), "tiny")
    with pytest.raises(PackageError, match="reconstruction.onnx"):
        service.analyse_file(write_png(tmp_path / "x.png"))
    assert service._runtime is None  # nothing was loaded


def test_damage_after_listing_is_still_caught_when_loading(data_dir: Path, tmp_path: Path) -> None:
    service = ErrorMapService(Settings(data_dir=data_dir, inference_threads=1), "tiny")
    manifest = service.registry.manifest("tiny")
    _flip_byte(data_dir / "models" / "tiny" / "reconstruction.onnx")
    from skelex_desktop.core.inference.session import open_graph

    with pytest.raises(PackageError, match="sha256"):
        open_graph(manifest, "reconstruction", 1)


def test_tampered_manifest_is_refused(data_dir: Path, capsys) -> None:
    path = data_dir / "models" / "tiny" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["embedding.onnx"]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))
    assert main(["--data-dir", str(data_dir), "model", "verify", "tiny"]) == 1
    err = capsys.readouterr().err
    assert "files/embedding.onnx/sha256 changed" in err and "model trust tiny" in err
    # trusting that manifest explicitly is refused too: its files do not match it
    assert main(["--data-dir", str(data_dir), "model", "trust", "tiny"]) == 1
    assert "embedding.onnx fails its sha256 check" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "model", "verify", "tiny"]) == 1
    capsys.readouterr()
    path.write_text("{not json")
    assert main(["--data-dir", str(data_dir), "model", "verify", "tiny"]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_unknown_model_and_existing_name(data_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["--data-dir", str(data_dir), "model", "verify", "nope"]) == 1
    assert "no model package named 'nope' (installed: tiny)" in capsys.readouterr().err
    from skelex_desktop.core.training.checkpoint import save_checkpoint
    from tests.core.test_mae_helpers import tiny_model

    save_checkpoint(tiny_model(), tmp_path / "hf")
    assert (
        main(
            ["--data-dir", str(data_dir), "model", "import", str(tmp_path / "hf"), "--name", "tiny"]
        )
        == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert (
        main(
            [
                "--data-dir",
                str(data_dir),
                "model",
                "import",
                str(tmp_path / "missing"),
                "--name",
                "x",
            ]
        )
        == 1
    )
    assert "not a folder" in capsys.readouterr().err
    leftovers = [p.name for p in (data_dir / "models").iterdir()]
    assert leftovers == ["tiny"]  # no half-written package or build folder left behind
