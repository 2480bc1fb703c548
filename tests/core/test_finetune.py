"""Partial fine-tuning of the demo model's last encoder block on synthetic labels: only the
chosen blocks change, the result is a verified package whose embedding graph is the fine-tuned
encoder, too few labels are refused and a cancel leaves nothing behind."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.commands.common import CliError
from skelex_desktop.commands.finetune_cmd import cmd_finetune
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.heads.versions import applies_to
from skelex_desktop.core.inference.package import verify_package
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.training.finetune import (
    MIN_PER_CLASS,
    FinetuneError,
    FinetuneOptions,
    PartialClassifier,
    finetune,
    labelled_images,
    load_inputs,
    model_from_package,
    to_tensor,
)
from skelex_desktop.core.training.mae import MaskedAutoencoder
from skelex_desktop.core.training.mae_config import MaeConfig
from tests.core.test_embeddings import import_synthetic


def label_synthetic(db: Database, data_dir: Path, out: Path, n: int) -> int:
    """Import n synthetic images (half abnormal) and confirm their `abnormal` label."""
    truth = import_synthetic(db, data_dir, out, n=n, seed=3)
    with db.read() as s:
        images = dict(s.execute(select(Image.sop_instance_uid, Image.id)).all())
    for sop, image_id in images.items():
        confirm_label(db, image_id, "abnormal", truth[sop]["abnormal"], "dr.test")
    return len(images)


def namespace(settings: Settings, **kw: object) -> argparse.Namespace:
    base = {
        "data_dir": str(settings.data_dir),
        "db": None,
        "reader": None,
        "task": "abnormal",
        "blocks": 1,
        "epochs": 1,
        "seed": 0,
        "model": None,
        "name": None,
        "replace": False,
        "json": True,
    }
    return argparse.Namespace(**(base | kw))


def user_models(settings: Settings) -> list[str]:
    folder = Path(settings.data_dir) / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_partial_classifier_freezes_all_but_the_last_blocks() -> None:
    cfg = MaeConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    mae = MaskedAutoencoder(cfg)
    mae.init_weights(torch.Generator().manual_seed(0))
    net = PartialClassifier(mae, blocks=2, classes=3)
    trainable = {k for k, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(
        k.startswith(("mae.vit.layers.1.", "mae.vit.layers.2.", "mae.vit.layernorm.", "head."))
        for k in trainable
    )
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(net.embed(x), mae.embed(x), atol=1e-6)
    with pytest.raises(FinetuneError, match="between 1 and 3"):
        PartialClassifier(mae, blocks=4, classes=2)


def test_too_few_labels_are_refused(workspace, tmp_path: Path) -> None:
    settings = workspace.settings
    label_synthetic(workspace.db, settings.data_dir, tmp_path / "synth", n=12)
    data = labelled_images(workspace.db, "abnormal")
    assert data.counts["labelled"] == 12 and len(set(data.patients.tolist())) >= 2
    with pytest.raises(FinetuneError, match=f"label at least {MIN_PER_CLASS} per class"):
        finetune(workspace.db, settings, FinetuneOptions(task="abnormal", blocks=1))
    workspace.close()
    with pytest.raises(CliError, match="too few labels"):
        cmd_finetune(namespace(settings))
    with pytest.raises(CliError, match="--blocks must be at least 1"):
        cmd_finetune(namespace(settings, blocks=0))
    with pytest.raises(CliError, match="unknown task"):
        cmd_finetune(namespace(settings, task="no-such-task"))
    assert user_models(settings) == []


def test_finetune_exports_a_verified_package_of_the_trained_encoder(
    workspace, tmp_path: Path
) -> None:
    import onnxruntime as ort

    settings = workspace.settings
    settings.inference_threads = 2
    n = label_synthetic(workspace.db, settings.data_dir, tmp_path / "synth", n=2 * MIN_PER_CLASS)

    with pytest.raises(FinetuneError, match="between 1 and 6 for skelex-demo"):
        finetune(workspace.db, settings, FinetuneOptions(task="abnormal", blocks=7))

    # A cancel (here during the first epoch) leaves no package and no build folder.
    class CancelWhenTraining(RecordingProgress):
        def _report(self) -> None:
            super()._report()
            if self.status.startswith("fine-tuning") and self.done >= 1:
                self.cancel()

    with pytest.raises(Cancelled):
        finetune(
            workspace.db,
            settings,
            FinetuneOptions(task="abnormal", blocks=1, epochs=1),
            CancelWhenTraining(),
        )
    assert user_models(settings) == []

    progress = RecordingProgress()
    result = finetune(
        workspace.db,
        settings,
        FinetuneOptions(task="abnormal", blocks=1, epochs=2, seed=0),
        progress,
    )
    assert result.name == "skelex-demo-ft-abnormal-1" and user_models(settings) == [result.name]
    assert "reading images" in progress.statuses and "exporting ONNX graphs" in progress.statuses

    # The record: split, metrics and history, also in the manifest's provenance.
    record = result.record
    assert record["label_counts"]["labelled"] == n
    assert record["split"]["train_images"] + record["split"]["validation_images"] == n
    assert {"auroc", "balanced_accuracy", "nll"} <= set(record["validation"])
    assert 1 <= record["best_epoch"] <= len(record["history"]) <= 2
    manifest = verify_package(result.folder)
    assert manifest.sha256 == result.package_sha256
    # A new embedding graph: a new embedding identity, so the base package's heads and cached
    # embeddings do not carry over (the preprocessing is the base's).
    base_manifest = Registry.from_settings(settings).manifest("skelex-demo")
    assert manifest.data["preprocessing"] == base_manifest.data["preprocessing"]
    assert manifest.embedding_identity != base_manifest.embedding_identity
    assert not applies_to({"embedding_model": base_manifest.embedding_identity}, manifest)
    training = manifest.data["provenance"]["training"]
    assert training["method"] == "partial fine-tuning" and training["blocks"] == 1
    assert training["validation"] == record["validation"]
    checked = Registry.from_settings(settings).verify(result.name)
    assert checked.verified and checked.trust.startswith("fine-tuned 2")  # no manual step
    assert main(["--data-dir", str(settings.data_dir), "model", "verify", result.name]) == 0

    # Only the last block, the final norm and the head changed.
    base = model_from_package(Registry.from_settings(settings).manifest("skelex-demo"))
    tuned = model_from_package(manifest)
    before, after = base.state_dict(), tuned.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("vit.layers.5.", "vit.layernorm.")) for k in changed)
    assert any(k.startswith("vit.layers.5.") for k in changed)
    net = result.model
    assert net is not None
    assert all(torch.equal(after[k], v) for k, v in net.mae.state_dict().items())
    assert float(net.head.weight.detach().abs().sum()) > 0  # trained from zeros

    # The package's embedding graph is the fine-tuned torch encoder.
    data = labelled_images(workspace.db, "abnormal")
    x = to_tensor(load_inputs(data.refs[:1], manifest, None), manifest)
    with torch.no_grad():
        expected = net.embed(x).numpy()
    session = ort.InferenceSession(
        str(result.folder / "embedding.onnx"), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(None, {"pixel_values": x.numpy()})
    assert np.abs(got - expected).max() <= 1e-4

    # A second run with the same name is refused unless replacing.
    with pytest.raises(FinetuneError, match="already exists"):
        finetune(workspace.db, settings, FinetuneOptions(task="abnormal", blocks=1))
