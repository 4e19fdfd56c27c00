"""One training run end to end: data -> train -> calibrate on validation -> export -> package."""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.utils.data import DataLoader

from ..data.catalog import Manifest, scan
from ..data.dataset import (
    XRayTensorDataset,
    build_augment,
    build_grain,
    build_reframe,
    build_soften,
    build_stretch,
    decode_rows,
)
from ..data.labels import CLASSES
from ..data.splits import Holdouts, counts, training_holdouts
from ..errors import DataError
from ..imaging.preprocess import PreprocessSpec
from ..models.network import BackboneInfo, build_model
from . import distributed
from .calibration import fit_decision_rule
from .config import TrainConfig
from .distributed import SINGLE, Ranks
from .evaluate import record_shift_holdout
from .loop import (
    EpochRecord,
    TrainState,
    class_weights,
    load_checkpoint,
    make_ema,
    predict_logits,
    rescore_best,
    seed_everything,
    train_epochs,
    validation_scores,
)
from .package_writer import PackageInputs, write_package
from .tracking import Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    package_dir: Path
    best_epoch: int
    val_auroc: float
    rank: int = 0  # under torchrun: only rank 0's package_dir exists


def holdouts_for(manifest: Manifest, cfg: TrainConfig) -> Holdouts:
    """Training, validation and shift hold-out rows of a config, from the dataset's non-test rows."""
    return training_holdouts(manifest.rows, cfg.val_strategy, cfg.val_fraction, cfg.seed, cfg.shift_holdout)


def split_for_training(manifest: Manifest, cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """Training and validation rows. The test split and the shift hold-out are never touched here."""
    return rows_to_fit(holdouts_for(manifest, cfg), cfg)


def rows_to_fit(sides: Holdouts, cfg: TrainConfig) -> tuple[list[Any], list[Any]]:
    """The training and validation rows of ``sides`` a run uses (``max_images`` samples both)."""
    train_rows, val_rows = sides.train, sides.val
    if cfg.max_images and len(train_rows) > cfg.max_images:
        rng = np.random.default_rng(cfg.seed)
        keep = sorted(rng.choice(len(train_rows), cfg.max_images, replace=False).tolist())
        train_rows = [train_rows[i] for i in keep]
        val_rows = _stratified_head(val_rows, max(8, cfg.max_images // 4), cfg.seed)
    if not train_rows or not val_rows:
        raise DataError("training needs images on both the train and validation sides", code="data_empty")
    return train_rows, val_rows


@contextmanager
def log_to(out_dir: Path, enabled: bool = True) -> Iterator[None]:
    """The package's log records into out_dir/train.log while the block runs (rank 0 alone writes it)."""
    if not enabled:
        yield
        return
    handler = logging.FileHandler(out_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("cxr_pneumonia")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def train(
    data: Path, out_dir: Path, cfg: TrainConfig, resume: bool = False, console: Console | None = None
) -> TrainResult:
    """One run; under torchrun, one rank of it (rank 0 writes everything, docs/training.md)."""
    ranks = distributed.setup(cfg.batch_size, cfg.threads)
    console = console if console is not None and ranks.is_main else Console(quiet=not ranks.is_main)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with log_to(out_dir, enabled=ranks.is_main):
            return _train(data, out_dir, cfg, resume, console, ranks)
    finally:
        distributed.teardown(ranks)


@dataclass
class PreparedData:
    """The catalogued, split and decoded images of a run (a tuning study reuses them across trials)."""

    manifest: Manifest
    train_rows: list[Any]
    val_rows: list[Any]
    spec: PreprocessSpec
    train_images: Any
    val_images: Any
    shift_rows: list[Any] = field(default_factory=list)  # held out from everything (cfg.shift_holdout)


@dataclass
class Fitted:
    """What the epoch loop leaves: the model (best.pt is on disk), its backbone and the loop state."""

    model: Any
    backbone: BackboneInfo
    state: TrainState
    val_ds: XRayTensorDataset
    val_loader: DataLoader[Any]


def new_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def prepare_data(data: Path, cfg: TrainConfig, progress: Progress) -> PreparedData:
    """Catalogue, split by patient (train/validation only) and decode once, as serving preprocesses."""
    scan_task = progress.add_task("cataloguing", total=None, info="")
    manifest = scan(data, progress=lambda i, n: progress.update(scan_task, completed=i, total=n))
    sides = holdouts_for(manifest, cfg)
    train_rows, val_rows = rows_to_fit(sides, cfg)
    spec = PreprocessSpec(size=cfg.image_size, intensity=cfg.intensity)
    decode_task = progress.add_task("decoding", total=len(train_rows) + len(val_rows), info="")
    train_images = decode_rows(
        manifest, train_rows, spec, lambda i: progress.update(decode_task, completed=i)
    )
    val_images = decode_rows(
        manifest, val_rows, spec, lambda i: progress.update(decode_task, completed=len(train_rows) + i)
    )
    return PreparedData(manifest, train_rows, val_rows, spec, train_images, val_images, sides.shift)


def write_data_record(prepared: PreparedData, out_dir: Path) -> None:
    """manifest.csv, split.json and dataset.json (the manifest hash and the DVC version) of a run."""
    manifest = prepared.manifest
    manifest.write_csv(out_dir / "manifest.csv")
    (out_dir / "split.json").write_text(
        json.dumps(
            {
                "train": [r.path for r in prepared.train_rows],
                "val": [r.path for r in prepared.val_rows],
                "shift_holdout": [r.path for r in prepared.shift_rows],
            },
            indent=0,
        )
    )
    (out_dir / "dataset.json").write_text(json.dumps(dataset_record(manifest), indent=1))
    log.info(
        "dataset %s%s: train %s, val %s, shift hold-out %s",
        manifest.version_id,
        f" (DVC {manifest.dvc.md5} at git {manifest.dvc.git_revision})" if manifest.dvc else "",
        counts(prepared.train_rows),
        counts(prepared.val_rows),
        counts(prepared.shift_rows),
    )


def dataset_record(manifest: Manifest) -> dict[str, Any]:
    return {"dataset_version": manifest.version_id, "dvc": manifest.dvc.to_dict() if manifest.dvc else None}


def fit(
    prepared: PreparedData,
    out_dir: Path,
    cfg: TrainConfig,
    progress: Progress,
    console: Console,
    tracker: Tracker,
    resume: bool = False,
    on_record: Callable[[EpochRecord], None] | None = None,
    ranks: Ranks = SINGLE,
) -> Fitted:
    """The epoch loop over prepared data; ``on_record`` sees every epoch's validation record (and may
    raise to stop the run, as a tuning pruner does). Under torchrun, one rank's share of it."""
    checkpoint_dir = out_dir / "checkpoints"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads and not ranks.distributed:  # under torchrun, distributed.setup divides the cores
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    train_rows, val_rows, spec = prepared.train_rows, prepared.val_rows, prepared.spec
    train_ds = XRayTensorDataset(
        prepared.train_images,
        train_rows,
        spec,
        augment=build_augment(cfg.augment, cfg.image_size),
        reframe=build_reframe(cfg.augment, spec),
        stretch=build_stretch(cfg.augment, spec),
        grain=build_grain(cfg.augment, spec),
        soften=build_soften(cfg.augment, spec),
    )
    val_ds = XRayTensorDataset(prepared.val_images, val_rows, spec)
    train_loader = distributed.train_loader(train_ds, cfg.batch_size, cfg.seed, ranks)
    val_loader = DataLoader(val_ds, batch_size=distributed.VAL_BATCH)

    model, backbone = build_model(cfg.backbone, len(CLASSES), cfg.pretrained, cfg.dropout)
    if cfg.pretrained and not backbone.pretrained:
        console.print(f"[bold red]WARNING: {cfg.backbone} has no offline weights; training from scratch.")
    model = model.to(ranks.device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = class_weights(train_ds.targets, len(CLASSES)) if cfg.class_weighting else None
    if weights is not None:
        weights = weights.to(ranks.device)

    ema = make_ema(model, cfg.ema_decay)
    state = TrainState()
    last = checkpoint_dir / "last.pt"
    if resume and last.exists():
        state = load_checkpoint(last, model, optimizer, ema)
        rescore_best(state, cfg.selection_metric)
        log.info("resumed after epoch %d (best epoch %d)", state.epoch, state.best_epoch)
    distributed.assert_same(ranks, "resumed checkpoint", [state.epoch, state.step])

    tracker.log_params(
        {
            "train_images": len(train_rows),
            "val_images": len(val_rows),
            "backbone_weights": backbone.weights_source,
        }
    )
    epoch_task = progress.add_task("epochs", total=cfg.epochs, completed=state.epoch, info="")
    step_task = progress.add_task("batches", total=len(train_loader), info="")

    def on_step(batch: int, total: int, loss: float) -> None:
        progress.update(step_task, completed=batch, total=total, info=f"loss {loss:.4f}")

    def on_epoch(record: EpochRecord) -> None:
        log.info("epoch %d: %s", record.epoch, record.as_dict())
        tracker.log_metrics(record.as_dict(), step=record.epoch)
        progress.update(
            epoch_task,
            completed=record.epoch,
            info=f"val AUROC {record.val_auroc:.4f}, loss {record.val_loss:.4f}",
        )
        progress.reset(step_task)
        if on_record is not None:
            on_record(record)

    state = train_epochs(
        model,
        train_loader,
        distributed.validation_shard(val_ds, ranks),
        cfg,
        checkpoint_dir,
        state,
        optimizer,
        weights,
        on_epoch,
        on_step,
        ema=ema,
        ranks=ranks,
    )
    return Fitted(model, backbone, state, val_ds, val_loader)


def _train(
    data: Path, out_dir: Path, cfg: TrainConfig, resume: bool, console: Console, ranks: Ranks
) -> TrainResult:
    if ranks.is_main:
        cfg.write_yaml(out_dir / "config.yaml")
    log.info("training %s with %s", cfg.name, json.dumps(cfg.to_dict()))
    if ranks.distributed:
        log.info("torchrun job: %s", distributed.describe(ranks))

    with new_progress(console) as progress:
        prepared = prepare_data(data, cfg, progress)
        split = {"train": [r.path for r in prepared.train_rows], "val": [r.path for r in prepared.val_rows]}
        distributed.assert_same(ranks, "patient split", [prepared.manifest.version_id, split])
        if ranks.is_main:
            write_data_record(prepared, out_dir)
        manifest = prepared.manifest
        tracker = Tracker(cfg, out_dir, manifest.version_id, dvc=manifest.dvc, enabled=ranks.is_main)
        fitted_loop = fit(prepared, out_dir, cfg, progress, console, tracker, resume=resume, ranks=ranks)
        model, state, val_ds, val_loader = (
            fitted_loop.model,
            fitted_loop.state,
            fitted_loop.val_ds,
            fitted_loop.val_loader,
        )
        if not ranks.is_main:  # rank 0 alone calibrates, exports and packages
            return TrainResult(out_dir, out_dir / "package", state.best_epoch, _best_auroc(state), ranks.rank)
        model = model.to("cpu")  # export and the package's references run on the CPU
        progress.add_task("calibrating and exporting", total=None, info="")
        best = torch.load(out_dir / "checkpoints" / "best.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(best["model"])
        model.eval()
        val_logits, _, val_targets = predict_logits(model, val_loader)

    fitted = fit_on_validation(val_logits, val_targets, cfg)
    package_dir = out_dir / "package"
    if package_dir.exists():
        shutil.rmtree(package_dir)
    parity_images = np.stack([val_ds[i][0].numpy() for i in range(min(16, len(val_ds)))])
    train_rows, val_rows = prepared.train_rows, prepared.val_rows
    write_package(
        PackageInputs(
            model=model,
            cfg=cfg,
            spec=prepared.spec,
            backbone=fitted_loop.backbone,
            fitted=fitted,
            dataset_version=manifest.version_id,
            history=state.history,
            best_epoch=state.best_epoch,
            split_counts=split_counts(train_rows, val_rows, prepared.shift_rows),
            parity_images=parity_images,
            **data_inputs(manifest, train_rows, val_rows, data),
        ),
        package_dir,
    )
    if cfg.shift_holdout:  # scored once, after everything is fitted: nothing is chosen on it here
        shift = record_shift_holdout(package_dir, data)
        log.info("shift hold-out (%d images): %s", shift["images"], json.dumps(shift["pneumonia"]))
    tracker.log_metrics({f"final_{k}": v for k, v in fitted["metrics"].items() if isinstance(v, float)})
    tracker.finish(package_dir, state.history)
    console.print(f"[green]Model package written to {package_dir}")
    return TrainResult(out_dir, package_dir, state.best_epoch, _best_auroc(state))


def data_inputs(manifest: Manifest, train_rows: list[Any], val_rows: list[Any], data: Path) -> dict[str, Any]:
    """What a package writer needs to know of the images a package was made from (PackageInputs)."""
    return {
        "data_source": str(data),
        "ood_train": [manifest.absolute(r) for r in train_rows],
        "ood_val": [manifest.absolute(r) for r in val_rows],
        "val_labels": [r.label for r in val_rows],
        "val_patients": [r.patient_id for r in val_rows],
        "dataset_dvc": manifest.dvc.to_dict() if manifest.dvc else None,
    }


def split_counts(train_rows: list[Any], val_rows: list[Any], shift_rows: list[Any]) -> dict[str, Any]:
    """The package's record of its sides (the shift hold-out only where there is one)."""
    sides = {"train": counts(train_rows), "val": counts(val_rows)}
    if shift_rows:
        sides["shift_holdout"] = counts(shift_rows)
    return sides


def shared_split(manifest: Any, configs: Sequence[TrainConfig]) -> tuple[list[Any], list[Any], list[Any]]:
    """The training, validation and shift hold-out rows every member of a combined model (an ensemble,
    a soup) was trained, selected and not trained with: the same for all, or refused."""
    sides = [holdouts_for(manifest, cfg) for cfg in configs]
    splits = [rows_to_fit(s, cfg) for s, cfg in zip(sides, configs, strict=True)]
    shifts = [{r.path for r in s.shift} for s in sides]
    first_val = {r.path for r in splits[0][1]}
    for i, (_, val_rows) in enumerate(splits[1:], start=1):
        if {r.path for r in val_rows} != first_val:
            raise DataError(
                f"member {i} was validated on another hold-out than member 0: the combined model "
                "would be chosen and fitted on images a member was trained on",
                code="members_differ",
            )
        if shifts[i] != shifts[0]:
            raise DataError(
                f"member {i} has another shift hold-out than member 0: one of them trained on images "
                "the other holds out, so the combined model would have no hold-out of its own",
                code="members_differ",
            )
    return splits[0][0], splits[0][1], sides[0].shift


def _best_auroc(state: TrainState) -> float:
    return state.best_record().get("val_auroc", math.nan)


def fit_on_validation(val_logits: np.ndarray, val_targets: np.ndarray, cfg: TrainConfig) -> dict[str, Any]:
    """Temperature, threshold and conformal quantile: validation only (the OOD reference is fitted
    on the exported graph by the package writer)."""
    started = time.monotonic()
    rule = fit_decision_rule(
        val_logits, val_targets, cfg.min_sensitivity, cfg.conformal_alpha, cfg.conformal_mondrian
    )
    nll, auc, sub_auc = validation_scores(val_logits, val_targets)
    metrics = {
        "val_auroc": auc,
        "val_subtype_auroc": sub_auc,
        "val_nll": nll,
        "val_ece_before": rule.ece_before,
        "val_ece_after": rule.ece_after,
        "val_sensitivity_at_threshold": rule.sensitivity,
        "val_specificity_at_threshold": rule.specificity,
    }
    log.info(
        "fitted on validation in %.1fs: T=%.3f threshold=%.4f q=%.4f (per class %s) %s",
        time.monotonic() - started,
        rule.temperature,
        rule.threshold,
        rule.conformal_quantile,
        rule.conformal_quantiles,
        metrics,
    )
    return {
        "temperature": rule.temperature,
        "threshold": rule.threshold,
        "conformal_quantile": rule.conformal_quantile,
        "conformal_quantiles": rule.conformal_quantiles,
        "metrics": metrics,
        "operating_point": f"highest validation specificity with sensitivity >= {cfg.min_sensitivity:.2f}",
    }


def _stratified_head(rows: list[Any], n: int, seed: int) -> list[Any]:
    """A seeded sample of ``n`` rows that keeps every class present (smoke-test runs)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    by_class: dict[str, list[Any]] = {}
    for i in order:
        by_class.setdefault(rows[i].subtype or rows[i].label, []).append(rows[i])
    picked: list[Any] = []
    while len(picked) < min(n, len(rows)):
        for group in by_class.values():
            if group and len(picked) < n:
                picked.append(group.pop())
    return picked
