"""scripts/pretrain_demo.sh, the one prepared script that rebuilds the demo package, run in
miniature (a few steps, a tiny pool, a few calibration images) with both recipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pretrain_demo.sh"


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    full_env = {
        **os.environ,
        "PY": sys.executable,
        "CLI": str(bin_dir / "skelex-desktop"),
        "RUN": str(tmp_path / "run"),
        "MODELS_DIR": str(tmp_path / "models"),
        "STEPS": "2",
        "WARMUP": "1",
        "POOL": "6",
        "CALIBRATE": "4",
        "VERSION": "0.0.1",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], cwd=tmp_path, env=full_env, capture_output=True, text=True
    )


@pytest.mark.parametrize("recipe", ["cpu", "gpu"])
def test_pretrain_demo_script_builds_a_verified_calibrated_package(
    tmp_path: Path, recipe: str
) -> None:
    done = run_script(tmp_path, RECIPE=recipe, BATCH="4")
    assert done.returncode == 0, done.stderr[-2000:]
    package = tmp_path / "models" / "skelex-demo"
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["version"] == "0.0.1"
    assert manifest["errormap"]["lowpass_sigma"] == 2.0
    assert "4 images" in manifest["errormap"]["calibration"]["data"]
    # the verification was of this package, not of the bundled one
    assert "skelex-demo 0.0.1: all " in done.stdout
    assert f" files verified ({package})" in done.stdout
    assert (tmp_path / "run" / "hf" / "config.json").is_file()
    # the bundled package is untouched
    assert (
        json.loads((ROOT / "models" / "skelex-demo" / "manifest.json").read_text())["version"]
        != "0.0.1"
    )


def test_pretrain_demo_script_refuses_an_unknown_recipe(tmp_path: Path) -> None:
    done = run_script(tmp_path, RECIPE="tpu")
    assert done.returncode == 2
    assert "RECIPE must be gpu or cpu" in done.stderr
    assert not (tmp_path / "run").exists()
