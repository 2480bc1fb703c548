"""Pretraining: seeded, resumable from its checkpoint, result loadable as a HF folder."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skelex_desktop.core.progress import Cancelled, RecordingProgress  # noqa: E402
from skelex_desktop.core.training.checkpoint import load_checkpoint  # noqa: E402
from skelex_desktop.core.training.mae_config import MaeConfig  # noqa: E402
from skelex_desktop.core.training.pretrain import (  # noqa: E402
    PretrainConfig,
    pretrain,
    render_pool,
)

TINY = MaeConfig(
    image_size=32,
    patch_size=8,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=64,
)


class CancelInTraining(RecordingProgress):
    """Cancels once `after` training steps are done (the pool rendering is not counted)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def _report(self) -> None:
        super()._report()
        if self.status == "pretraining" and self.done >= self.after:
            self.cancel()


def _cfg(steps: int) -> PretrainConfig:
    return PretrainConfig(
        model=TINY,
        pool_size=3,
        synth_size=48,
        batch_size=4,
        lr=1e-3,
        warmup_steps=1,
        total_steps=steps,
        checkpoint_every=1,
    )


def test_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    straight = pretrain(tmp_path / "a", _cfg(4), threads=1)
    assert straight.finished and straight.steps == 4 and straight.images_seen == 16
    with pytest.raises(Cancelled):
        pretrain(tmp_path / "b", _cfg(4), CancelInTraining(after=2), threads=1)
    assert json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[-1])["step"] == 2
    resumed = pretrain(tmp_path / "b", _cfg(4), threads=1)
    assert resumed.steps == 4
    a, b = load_checkpoint(straight.hf_dir), load_checkpoint(resumed.hf_dir)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6), name
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert json.loads((straight.hf_dir / "skelex_training.json").read_text())["steps"] == 4
    assert summary["steps"] == 4 and summary["device"] == "cpu"
    losses = [json.loads(line)["loss"] for line in (tmp_path / "a" / "log.jsonl").open()]
    assert len(losses) == 4
    with pytest.raises(ValueError, match="other settings"):
        pretrain(tmp_path / "b", PretrainConfig(**{**_cfg(4).__dict__, "lr": 5e-4}), threads=1)


def test_pool_rendered_by_several_processes_equals_one_process() -> None:
    cfg = PretrainConfig(model=TINY, pool_size=5, synth_size=40)
    one = render_pool(cfg, None, workers=1)
    with patch("skelex_desktop.core.training.pretrain.POOL_CHUNK", 2):
        several = render_pool(cfg, None, workers=2)
    assert one.shape == (5, 40, 40) and one.dtype == np.uint8
    assert np.array_equal(one, several)
    assert len({one[i].tobytes() for i in range(5)}) == 5  # five different radiographs
