"""A weight soup from trained runs: one network whose weights are the mean of several runs' weights.

Networks fine-tuned from one starting point with one recipe often sit in one basin of the loss, so the
mean of their weights is itself a good network, and often one more robust to a shift than any of them
(Wortsman et al., "Model soups", ICML 2022), served at the cost of one. The greedy soup orders the
ingredients by their own temperature-scaled validation NLL, starts from the best and keeps each next one
only if averaging it in does not raise the soup's; everything is scored on the ingredients' shared
validation hold-out, which none of them trained on. The soup is then calibrated, exported and packaged
exactly as a training run packages its best epoch. The test split is never read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.catalog import scan
from ..data.dataset import XRayTensorDataset, decode_rows
from ..data.labels import CLASSES
from ..errors import DataError
from ..imaging.preprocess import PreprocessSpec
from ..models.network import BackboneInfo, CXRNet, build_model
from ..package import ModelPackage, PackageManifest, sha256_file
from .calibration import fit_temperature, nll
from .config import TrainConfig
from .evaluate import record_shift_holdout
from .loop import predict_logits
from .package_writer import PackageInputs, write_package
from .run import data_inputs, fit_on_validation, shared_split, split_counts

log = logging.getLogger(__name__)

METHOD = (
    "greedy soup (Wortsman et al. 2022): ingredients ordered by their own temperature-scaled validation "
    "NLL; each kept if the uniform mean of the kept weights does not raise the soup's"
)
StateDict = dict[str, torch.Tensor]


@dataclass
class Ingredient:
    """One trained run: its recorded config and the weights of its best epoch."""

    run: Path
    cfg: TrainConfig
    weights: StateDict
    checkpoint_sha256: str
    best_epoch: int | None
    package_digest: str | None  # of the run's own package, when it wrote one


def load_ingredient(run: Path) -> Ingredient:
    """Read ``run/config.yaml`` and ``run/checkpoints/best.pt`` (what `cxr train` leaves)."""
    config, checkpoint = run / "config.yaml", run / "checkpoints" / "best.pt"
    for needed in (config, checkpoint):
        if not needed.is_file():
            raise DataError(
                f"{run} is not a finished training run: {needed.name} is missing", code="not_a_run"
            )
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    digest = None
    package_json = run / "package" / "model.json"
    if package_json.is_file():
        digest = json.loads(package_json.read_text()).get("digest")
    return Ingredient(
        run=run,
        cfg=TrainConfig.from_yaml(config),
        weights=saved["model"],
        checkpoint_sha256=sha256_file(checkpoint),
        best_epoch=saved.get("epoch"),
        package_digest=digest,
    )


def average_weights(states: Sequence[StateDict]) -> StateDict:
    """The uniform mean of state dicts of one architecture. Floating tensors (weights and batch-norm
    statistics) are averaged; integer buffers (batch-norm step counts) are taken from the first."""
    if not states:
        raise ValueError("nothing to average")
    keys = list(states[0])
    for state in states[1:]:
        if list(state) != keys or any(state[k].shape != states[0][k].shape for k in keys):
            raise DataError(
                "the ingredients are not one architecture: their weights differ", code="members_differ"
            )
    return {
        k: (
            torch.stack([s[k].float() for s in states]).mean(dim=0).to(states[0][k].dtype)
            if states[0][k].is_floating_point()
            else states[0][k].clone()
        )
        for k in keys
    }


def greedy_soup(
    ingredients: Sequence[StateDict], score: Callable[[StateDict], float]
) -> tuple[list[int], list[float], list[float]]:
    """Indices of the kept ingredients (in the order tried), each ingredient's own score and the
    soup's score after each one was tried. Lower scores are better."""
    own = [score(w) for w in ingredients]
    order = sorted(range(len(ingredients)), key=lambda i: own[i])
    kept = [order[0]]
    best = own[order[0]]
    trail = [best]
    for i in order[1:]:
        candidate = score(average_weights([ingredients[j] for j in [*kept, i]]))
        trail.append(candidate)
        if candidate <= best:
            kept.append(i)
            best = candidate
    return kept, own, trail


def scaled_nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """3-class NLL after a temperature fitted on the same images (what the package will serve)."""
    return nll(logits, targets, fit_temperature(logits, targets))


def build_soup(
    runs: Sequence[Path],
    data: Path,
    out_dir: Path,
    *,
    version: str,
    name: str | None = None,
    config: Path | None = None,
) -> PackageManifest:
    """Write the greedy soup of the ``runs`` to ``out_dir``; returns its manifest. The package's
    post-training settings (operating point, conformal level, OOD and refusal rules, population gate)
    come from ``config`` when given, else from the best ingredient's recorded config."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir} exists and is not empty", code="out_exists")
    if len(runs) < 2:
        raise DataError("a soup needs at least two training runs", code="usage")
    ingredients = [load_ingredient(r) for r in runs]
    settings = TrainConfig.from_yaml(config) if config else None
    _check_one_recipe_start(
        [(str(i.run), i.cfg) for i in ingredients] + ([(str(config), settings)] if settings else [])
    )
    manifest = scan(data, verify=False)
    _check_dataset(ingredients, manifest.version_id, data)
    train_rows, val_rows, shift_rows = shared_split(manifest, [i.cfg for i in ingredients])
    if settings:  # its hold-outs too must be the ingredients' (it decides which images are scored after)
        shared_split(manifest, [ingredients[0].cfg, settings])

    spec = PreprocessSpec(size=ingredients[0].cfg.image_size, intensity=ingredients[0].cfg.intensity)
    val_ds = XRayTensorDataset(decode_rows(manifest, val_rows, spec), val_rows, spec)
    loader = DataLoader(val_ds, batch_size=64)
    model, backbone = build_model(
        ingredients[0].cfg.backbone, len(CLASSES), pretrained=False, dropout=ingredients[0].cfg.dropout
    )
    model.eval()

    def score(weights: StateDict) -> float:
        logits, _, targets = _logits(model, weights, loader)
        return scaled_nll(logits, targets)

    kept, own, trail = greedy_soup([i.weights for i in ingredients], score)
    log.info("greedy soup keeps %s of %d (scaled validation NLL %s)", kept, len(ingredients), trail)
    leader = ingredients[kept[0]]
    base = settings or leader.cfg
    cfg = replace(base, name=name or base.name, version=version)

    val_logits, _, val_targets = _logits(
        model, average_weights([ingredients[i].weights for i in kept]), loader
    )
    fitted = fit_on_validation(val_logits.astype(np.float64), val_targets, cfg)
    record = _soup_record(ingredients, kept, own, trail)
    out_dir.mkdir(parents=True, exist_ok=True)
    built = write_package(
        PackageInputs(
            model=model,
            cfg=cfg,
            spec=spec,
            backbone=BackboneInfo(
                name=backbone.name,
                channels=backbone.channels,
                pretrained=True,
                weights_source="the mean of its ingredients' trained weights; training.soup lists them",
            ),
            fitted=fitted,
            dataset_version=manifest.version_id,
            history=[],
            best_epoch=0,
            split_counts=split_counts(train_rows, val_rows, shift_rows),
            parity_images=np.stack([val_ds[i][0].numpy() for i in range(min(16, len(val_ds)))]),
            **data_inputs(manifest, train_rows, val_rows, data),
            training_extra={"soup": record},
        ),
        out_dir,
    )
    if cfg.shift_holdout:  # scored once, after everything is fitted on validation
        record_shift_holdout(out_dir, data)
        built = ModelPackage.open(out_dir).manifest
    return built


def _logits(
    model: CXRNet, weights: StateDict, loader: DataLoader[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model.load_state_dict(weights)
    with torch.inference_mode():
        return predict_logits(model, loader)


def _check_one_recipe_start(named: Sequence[tuple[str, TrainConfig]]) -> None:
    """Averaging only makes sense for one architecture, one input and one starting point."""
    first_name, first = named[0]
    for who, cfg in named[1:]:
        for what, mine, theirs in (
            ("backbone", cfg.backbone, first.backbone),
            ("starting weights (pretrained)", cfg.pretrained, first.pretrained),
            ("image size", cfg.image_size, first.image_size),
            ("intensity", cfg.intensity, first.intensity),
        ):
            if mine != theirs:
                raise DataError(
                    f"{who} and {first_name} differ in {what}: their weights cannot be averaged",
                    code="members_differ",
                )


def _check_dataset(ingredients: Sequence[Ingredient], version_id: str, data: Path) -> None:
    for ingredient in ingredients:
        record = ingredient.run / "dataset.json"
        trained_on = json.loads(record.read_text()).get("dataset_version") if record.is_file() else None
        if trained_on != version_id:
            raise DataError(
                f"{ingredient.run} was trained on dataset version {trained_on}, {data} is {version_id}: "
                "its validation hold-out cannot be recomputed from it",
                code="dataset_mismatch",
            )


def _soup_record(
    ingredients: Sequence[Ingredient], kept: Sequence[int], own: Sequence[float], trail: Sequence[float]
) -> dict[str, Any]:
    tried = sorted(range(len(ingredients)), key=lambda i: own[i])
    return {
        "method": METHOD,
        "kept": len(kept),
        "scaled_val_nll": min(trail),  # a step is kept only when it does not raise the soup's NLL
        "ingredients": [
            {
                "run": ingredients[i].run.name,
                "version": ingredients[i].cfg.version,
                "seed": ingredients[i].cfg.seed,
                "best_epoch": ingredients[i].best_epoch,
                "checkpoint_sha256": ingredients[i].checkpoint_sha256,
                "package_digest": ingredients[i].package_digest,
                "own_scaled_val_nll": own[i],
                "soup_scaled_val_nll_when_tried": trail[step],
                "kept": i in kept,
            }
            for step, i in enumerate(tried)
        ],
    }
