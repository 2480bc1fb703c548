"""Partial fine-tuning: the last N encoder blocks of a package's MAE plus a linear head.

`finetune(db, settings, options, progress)` trains the last `blocks` transformer blocks and the
final layer norm of the package's encoder together with a linear classifier on the embedding
(mean of the final-norm patch tokens) for ONE task, from current, certain human labels. The
rest of the encoder and the whole decoder stay frozen. One patient-grouped fold of five is held
out for validation; training stops early when the validation loss has not improved for
`patience` epochs and the best epoch's weights are kept.

The result goes through the ordinary import path: a Hugging Face folder (`save_checkpoint`) in a
temporary folder, `import_checkpoint` into `data_dir/models/<base>-ft-<task>-<N>`, with the
training record (validation metrics, label counts, split, base package) in the manifest's
`provenance.training`; the new manifest is recorded in the data dir's trust store as fine-tuned,
so it loads without a manual step. Only a trusted base package is fine-tuned. A package keeps no torch weights, so the base model is rebuilt from the
named initializers of its reconstruction graph (`model_from_package`) and checked against both
ONNX graphs before training starts.

Refused (FinetuneError) when a class has fewer than `MIN_PER_CLASS` (20) usable labels, when
fewer than two classes are labelled, or when there are too few patients to hold one out.
Importing this module imports torch: only `core/training` may do that.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.heads.metrics import classification_report, softmax
from skelex_desktop.core.heads.splits import SplitError, grouped_stratified_folds
from skelex_desktop.core.heads.training_set import DatasetError, TaskSpec, human_labels, task_specs
from skelex_desktop.core.inference.embeddings import ImageRef
from skelex_desktop.core.inference.interfaces import ServiceSettings
from skelex_desktop.core.inference.package import (
    NAME_CHARS,
    Manifest,
    PackageError,
)
from skelex_desktop.core.inference.trust import FINE_TUNED
from skelex_desktop.core.progress import Progress, check
from skelex_desktop.core.training.checkpoint import save_checkpoint
from skelex_desktop.core.training.mae import MaskedAutoencoder
from skelex_desktop.core.training.mae_config import MaeConfig
from skelex_desktop.core.training.package_writer import (
    PARITY_TOLERANCE,
    ImportOptions,
    import_checkpoint,
)

if TYPE_CHECKING:  # onnx is imported where a package's graph is read
    import onnx

MIN_PER_CLASS = 20  # usable labels per labelled class before fine-tuning is offered
VALIDATION_FOLDS = 5  # one patient-grouped fold of five (~20%) is held out
TRAINING_RECORD = "skelex_training.json"  # read by import_checkpoint into provenance.training


class FinetuneError(ValueError):
    """Fine-tuning cannot run as asked; the message says why."""


@dataclass
class FinetuneOptions:
    """What to fine-tune and how."""

    task: str
    blocks: int
    epochs: int = 10
    seed: int = 0
    model: str | None = None  # base package (default: the active model)
    name: str | None = None  # package name (default: <base>-ft-<task>-<blocks>)
    replace: bool = False
    batch_size: int = 16
    lr: float = 1e-4  # encoder blocks and final norm
    head_lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 3
    threads: int | None = None  # default: settings.inference_threads
    min_per_class: int = MIN_PER_CLASS


@dataclass
class LabelledImages:
    """Images with a usable label for one task: refs, class indices, patient ids."""

    spec: TaskSpec
    refs: list[ImageRef]
    labels: np.ndarray
    patients: np.ndarray
    counts: dict[str, Any]


@dataclass
class FinetuneResult:
    """The imported package and what training measured."""

    name: str
    folder: Path
    package_sha256: str
    record: dict[str, Any] = field(default_factory=dict)
    model: PartialClassifier | None = field(default=None, repr=False)  # the trained network

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": str(self.folder),
            "package_sha256": self.package_sha256,
            **self.record,
        }


# ---------------------------------------------------------------- labels (no torch needed)


def labelled_images(db: Database, task: str) -> LabelledImages:
    """Every image with a current, certain human label for `task` (uncertain ones counted)."""
    (spec,) = task_specs(db, [task])
    refs, labels, patients = [], [], []
    counts: dict[str, Any] = {
        "labelled": 0,
        "uncertain": 0,
        "per_class": dict.fromkeys(spec.classes, 0),
    }
    for label in human_labels(db, [spec]):
        if label.index is None:
            counts["uncertain"] += 1
            continue
        refs.append(label.image)
        labels.append(label.index)
        patients.append(label.patient)
        counts["labelled"] += 1
        counts["per_class"][spec.classes[label.index]] += 1
    return LabelledImages(
        spec, refs, np.asarray(labels, np.int64), np.asarray(patients, dtype=str), counts
    )


def check_enough(data: LabelledImages, min_per_class: int = MIN_PER_CLASS) -> None:
    """Raise FinetuneError unless two or more classes each have `min_per_class` labels."""
    present = {c: n for c, n in data.counts["per_class"].items() if n}
    name = data.spec.name
    if len(present) < 2:
        raise FinetuneError(
            f"task {name!r}: fine-tuning needs labels of at least two classes "
            f"(have {present or 'none'})"
        )
    few = {c: n for c, n in present.items() if n < min_per_class}
    if few:
        listed = ", ".join(f"{c!r}: {n}" for c, n in few.items())
        raise FinetuneError(
            f"task {name!r}: too few labels to fine-tune ({listed}); label at "
            f"least {min_per_class} per class, or train a head on frozen "
            "embeddings ('skelex-desktop train')"
        )


def validation_split(labels: np.ndarray, patients: np.ndarray, seed: int) -> np.ndarray:
    """Boolean [N]: True for the held-out patient-grouped fold (one of `VALIDATION_FOLDS`)."""
    try:
        folds = grouped_stratified_folds(labels, patients, VALIDATION_FOLDS, seed=seed)
    except SplitError as exc:
        raise FinetuneError(f"cannot hold out a validation fold: {exc}") from exc
    val = folds == 0
    if len(set(labels[val].tolist())) < len(set(labels.tolist())):
        raise FinetuneError("the validation fold lacks a class: label more patients of every class")
    return val


def package_name(base: str, task: str, blocks: int) -> str:
    """`<base>-ft-<task>-<blocks>` with characters a package name cannot hold replaced."""
    safe = "".join(c if c in NAME_CHARS else "_" for c in task)
    return f"{base}-ft-{safe}-{blocks}"


# ---------------------------------------------------------------- base weights from ONNX


def _linear_weights(
    graph: onnx.GraphProto, tensors: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Weights of every `X.bias`-bearing linear: the MatMul operand feeding the bias's Add.

    The dynamo exporter keeps bias, norm and embedding initializers under their parameter
    names but stores each linear weight transposed under an anonymous name; following
    `MatMul(x, W^T) -> Add(., bias)` recovers it by structure, not by guessing names.
    """
    producer = {out: node for node in graph.node for out in node.output}
    found: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type != "Add":
            continue
        bias = next((i for i in node.input if i.endswith(".bias") and i in tensors), None)
        if bias is None:
            continue
        other = next(i for i in node.input if i != bias)
        matmul = producer.get(other)
        if matmul is None or matmul.op_type != "MatMul" or matmul.input[1] not in tensors:
            continue
        found[bias.removesuffix(".bias") + ".weight"] = tensors[matmul.input[1]].T
    return found


def model_from_package(manifest: Manifest, threads: int = 1) -> MaskedAutoencoder:
    """The torch MAE of a verified package, rebuilt from its reconstruction graph's weights.

    Checked against the package's reconstruction and embedding graphs (onnxruntime) on seeded
    inputs; PackageError when a weight cannot be recovered or the result differs.
    """
    import onnx
    from onnx import numpy_helper

    from skelex_desktop.core.training.onnx_export import check_parity

    config = manifest.data.get("architecture", {}).get("config")
    if not isinstance(config, dict):
        raise PackageError(f"{manifest.name}: the manifest records no architecture config")
    model = MaskedAutoencoder(MaeConfig.from_hf(config))
    graph_file = manifest.folder / manifest.graph("reconstruction").file
    proto = onnx.load(str(graph_file))  # external data, if any, is read from beside it
    tensors = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    state: dict[str, np.ndarray] = {}
    for key, value in tensors.items():
        if key.startswith("model."):
            state[key.removeprefix("model.")] = value
    state.update(
        {k.removeprefix("model."): v for k, v in _linear_weights(proto.graph, tensors).items()}
    )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise PackageError(
            f"{manifest.name}: cannot recover {len(missing)} weight(s) from "
            f"its reconstruction graph (e.g. {missing[0]}); fine-tune from the "
            "original Hugging Face checkpoint instead"
        )
    loaded = {}
    for key, ref in expected.items():
        weight = torch.from_numpy(np.array(state[key], np.float32, copy=True))
        if tuple(weight.shape) != tuple(ref.shape):
            raise PackageError(
                f"{manifest.name}: recovered weight {key} has shape "
                f"{tuple(weight.shape)}, the config implies {tuple(ref.shape)}"
            )
        loaded[key] = weight
    model.load_state_dict(loaded, strict=True)
    model.eval()
    specs = [manifest.graph(g) for g in ("reconstruction", "embedding")]
    if all(spec.file == f"{spec.name}.onnx" for spec in specs):
        report = check_parity(model, manifest.folder, threads=threads)
    else:  # check_parity reads the standard file names: copy the graphs under them
        with tempfile.TemporaryDirectory() as tmp:
            for spec in specs:
                shutil.copyfile(manifest.folder / spec.file, Path(tmp) / f"{spec.name}.onnx")
                for name in spec.files[1:]:  # external data, found beside the graph by name
                    shutil.copyfile(manifest.folder / name, Path(tmp) / name)
            report = check_parity(model, Path(tmp), threads=threads)
    if (
        report.max_abs_reconstruction > PARITY_TOLERANCE
        or not report.masks_equal
        or report.max_abs_embedding > PARITY_TOLERANCE
    ):
        raise PackageError(
            f"{manifest.name}: the weights rebuilt from ONNX do not reproduce its graphs ({report})"
        )
    return model


# ---------------------------------------------------------------- the trainable model


class PartialClassifier(nn.Module):
    """The MAE encoder with a frozen prefix, the last `blocks` blocks trainable, a linear head.

    `embed` equals `MaskedAutoencoder.embed` (what the exported embedding graph computes).
    """

    def __init__(self, mae: MaskedAutoencoder, blocks: int, classes: int) -> None:
        super().__init__()
        depth = len(mae.vit.layers)
        if not 1 <= blocks <= depth:
            raise FinetuneError(
                f"--blocks must be between 1 and {depth} for this model (got {blocks})"
            )
        self.mae = mae
        self.split = depth - blocks
        self.head = nn.Linear(mae.config.hidden_size, classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        for p in mae.parameters():
            p.requires_grad_(False)
        for p in self.trainable_encoder_parameters():
            p.requires_grad_(True)

    def trainable_encoder_parameters(self) -> list[nn.Parameter]:
        vit = self.mae.vit
        params = [p for layer in vit.layers[self.split :] for p in layer.parameters()]
        return params + list(vit.layernorm.parameters())

    def frozen_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLS + patch tokens after the frozen blocks, [B, 1 + L, D] (no gradient)."""
        vit = self.mae.vit
        with torch.no_grad():
            tokens = vit.tokens(pixel_values)
            cls = vit.embeddings.cls_token + vit.embeddings.position_embeddings[:, :1, :]
            x = torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
            for layer in vit.layers[: self.split]:
                x = layer(x)
        return x

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.frozen_tokens(pixel_values)
        for layer in self.mae.vit.layers[self.split :]:
            x = layer(x)
        return self.mae.vit.layernorm(x)[:, 1:, :].mean(dim=1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(pixel_values))


# ---------------------------------------------------------------- data


def load_inputs(refs: list[ImageRef], manifest: Manifest, progress: Progress | None) -> np.ndarray:
    """[N, S, S, 3] uint8 model inputs, made exactly as for the error map and embeddings."""
    from skelex_desktop.core.inference.preprocess import to_model_u8
    from skelex_desktop.core.ingest.pixels import read_frame

    if progress:
        progress.set_total(len(refs))
        progress.set_status("reading images")
    out = []
    for ref in refs:
        check(progress)
        decoded = read_frame(ref.file_path, ref.frame)
        pixels = decoded.model_pixels
        out.append(to_model_u8(pixels, manifest.preprocessing)[0])
        if progress:
            progress.advance(1, current=str(ref.image_id))
    return np.stack(out)


def to_tensor(
    u8: np.ndarray, manifest: Manifest, augment: torch.Generator | None = None
) -> torch.Tensor:
    """Normalised [B, 3, S, S]; with a generator, light augmentation first: a horizontal flip
    (p = 0.5) and intensity jitter (contrast x U(0.9, 1.1), brightness + U(-0.05, 0.05))."""
    prep = manifest.preprocessing
    x = torch.from_numpy(u8).float().div_(255.0).permute(0, 3, 1, 2)
    if augment is not None:
        batch = x.shape[0]
        flip = torch.rand(batch, generator=augment) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        contrast = 0.9 + 0.2 * torch.rand(batch, 1, 1, 1, generator=augment)
        brightness = 0.1 * torch.rand(batch, 1, 1, 1, generator=augment) - 0.05
        x = (x * contrast + brightness).clamp_(0.0, 1.0)
    mean = torch.tensor(prep.mean, dtype=torch.float32)[None, :, None, None]
    std = torch.tensor(prep.std, dtype=torch.float32)[None, :, None, None]
    return ((x - mean) / std).contiguous()


def _logits(net: PartialClassifier, u8: np.ndarray, manifest: Manifest, batch: int) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        parts = [
            net(to_tensor(u8[i : i + batch], manifest)).numpy() for i in range(0, len(u8), batch)
        ]
    return np.concatenate(parts).astype(np.float64)


def _nll(logits: np.ndarray, y: np.ndarray) -> float:
    probs = softmax(logits)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


# ---------------------------------------------------------------- training


def train_partial(
    net: PartialClassifier,
    u8: np.ndarray,
    y: np.ndarray,
    val: np.ndarray,
    manifest: Manifest,
    options: FinetuneOptions,
    progress: Progress | None,
) -> dict[str, Any]:
    """Train in place with early stopping on validation loss; the best epoch's weights are
    restored. Returns the per-epoch history and the best epoch."""
    gen = torch.Generator().manual_seed(options.seed)
    trainable = {k for k, p in net.named_parameters() if p.requires_grad}
    optimiser = torch.optim.AdamW(
        [
            {"params": net.trainable_encoder_parameters(), "lr": options.lr},
            {"params": list(net.head.parameters()), "lr": options.head_lr},
        ],
        weight_decay=options.weight_decay,
    )
    train_idx = np.flatnonzero(~val)
    counts = np.bincount(y[train_idx], minlength=net.head.out_features).astype(np.float64)
    weight = torch.tensor(
        np.where(
            counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, int((counts > 0).sum())), 0.0
        ),
        dtype=torch.float32,
    )
    steps = -(-len(train_idx) // options.batch_size)
    if progress:
        progress.set_total(options.epochs * steps)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, stale = np.inf, -1, None, 0
    for epoch in range(options.epochs):
        if progress:
            progress.set_status(f"fine-tuning, epoch {epoch + 1}/{options.epochs}")
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        total = 0.0
        for start in range(0, len(order), options.batch_size):
            check(progress)
            idx = order[start : start + options.batch_size]
            x = to_tensor(u8[idx], manifest, augment=gen)
            target = torch.from_numpy(y[idx])
            loss = F.cross_entropy(net(x), target, weight=weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
            if progress:
                progress.advance()
        check(progress)
        val_loss = _nll(_logits(net, u8[val], manifest, options.batch_size), y[val])
        history.append(
            {"epoch": epoch + 1, "train_loss": total / len(train_idx), "val_loss": val_loss}
        )
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, stale = val_loss, epoch + 1, 0
            best_state = {
                k: v.detach().clone() for k, v in net.state_dict().items() if k in trainable
            }
        else:
            stale += 1
            if stale >= options.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state, strict=False)
    net.eval()
    return {
        "history": history,
        "best_epoch": best_epoch,
        "stopped_early": len(history) < options.epochs,
    }


def finetune(
    db: Database,
    settings: ServiceSettings,
    options: FinetuneOptions,
    progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune the last `options.blocks` blocks for `options.task` and import the result as
    a new package in `settings.data_dir/models`; nothing is left behind on error or cancel."""
    from skelex_desktop.core.inference.registry import Registry

    if options.epochs < 1:
        raise FinetuneError(f"--epochs must be at least 1 (got {options.epochs})")
    if options.batch_size < 1:
        raise FinetuneError(f"the batch size must be at least 1 (got {options.batch_size})")
    try:
        data = labelled_images(db, options.task)
    except DatasetError as exc:
        raise FinetuneError(str(exc)) from exc
    check_enough(data, options.min_per_class)
    val = validation_split(data.labels, data.patients, options.seed)
    base = options.model or settings.active_model
    registry = Registry.from_settings(settings)
    manifest = registry.manifest(base)  # trusted and verified, or refused
    depth = int(manifest.data.get("architecture", {}).get("config", {}).get("num_hidden_layers", 0))
    if not 1 <= options.blocks <= depth:
        raise FinetuneError(
            f"--blocks must be between 1 and {depth} for {base} (got {options.blocks})"
        )
    models_dir = Path(settings.data_dir) / "models"
    name = options.name or package_name(base, data.spec.name, options.blocks)
    if (models_dir / name).exists() and not options.replace:
        raise FinetuneError(
            f"a model package named '{name}' already exists in {models_dir}; "
            "choose another name or replace it"
        )
    threads = int(options.threads or settings.inference_threads or 1)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    started = time.monotonic()
    try:
        torch.manual_seed(options.seed)
        if progress:
            progress.set_status(f"rebuilding {base} from its ONNX graphs")
        mae = model_from_package(manifest, threads)
        net = PartialClassifier(mae, options.blocks, len(data.spec.classes))
        u8 = load_inputs(data.refs, manifest, progress)
        fit = train_partial(net, u8, data.labels, val, manifest, options, progress)
        logits = _logits(net, u8[val], manifest, options.batch_size)
        report = classification_report(data.labels[val], logits, data.spec.kind)
        record = {
            "method": "partial fine-tuning",
            "base_package": base,
            "base_package_sha256": manifest.sha256,
            "task": data.spec.to_json(),
            "blocks": options.blocks,
            "trainable_encoder": [f"vit.layers.{i}" for i in range(net.split, len(mae.vit.layers))]
            + ["vit.layernorm"],
            "options": {
                k: v
                for k, v in asdict(options).items()
                if k not in ("task", "model", "name", "replace")
            },
            "label_counts": data.counts,
            "split": {
                "validation": f"one patient-grouped stratified fold of {VALIDATION_FOLDS}",
                "train_images": int((~val).sum()),
                "validation_images": int(val.sum()),
                "validation_patients": len(set(data.patients[val].tolist())),
            },
            "validation": _jsonable(report),
            **fit,
            "seconds": round(time.monotonic() - started, 1),
            "threads": threads,
        }
        check(progress)
        with tempfile.TemporaryDirectory(prefix=".skelex-finetune-") as tmp:
            hf = Path(tmp) / "hf"
            save_checkpoint(mae, hf)
            (hf / TRAINING_RECORD).write_text(
                json.dumps(_jsonable(record), indent=2), encoding="utf-8"
            )
            imported = import_checkpoint(
                hf,
                models_dir,
                ImportOptions(
                    name=name,
                    resize=str(manifest.data["preprocessing"].get("resize", "resize")),
                    version=str(manifest.version or "1.0"),
                    licence=str(manifest.data.get("licence") or "as the base package"),
                    threads=threads,
                    replace=options.replace,
                ),
                progress,
                registry.trust,
                FINE_TUNED,
            )
    finally:
        torch.set_num_threads(previous_threads)
    folder = models_dir / name
    final = registry.manifest(name)  # recorded as fine-tuned by the app: trusted
    record["parity"] = imported.get("parity")
    return FinetuneResult(name, folder, final.sha256, _jsonable(record), net)


def _jsonable(value: Any) -> Any:
    """Numpy scalars and arrays turned into JSON types, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
