"""The epoch loop: AdamW, warm-up + cosine schedule, class weights, early stopping, checkpoints."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from ..models.network import CXRNet
from . import distributed
from .calibration import p_pneumonia, probabilities
from .config import TrainConfig
from .distributed import SINGLE, Ranks
from .metrics import auroc

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def class_weights(targets: list[int], num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1) over the known classes."""
    counts = np.bincount([t for t in targets if t >= 0], minlength=num_classes).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    weights = counts.sum() / (num_classes * counts)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def loss_fn(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None, smoothing: float
) -> torch.Tensor:
    """Cross-entropy over (normal, bacterial, viral); target -1 (pneumonia, subtype unknown) is
    scored on the pneumonia marginal, log(p_bacterial + p_viral)."""
    known = targets >= 0
    parts = []
    if known.any():
        parts.append(
            F.cross_entropy(
                logits[known], targets[known], weight=weights, label_smoothing=smoothing, reduction="sum"
            )
        )
    if (~known).any():
        logp = F.log_softmax(logits[~known], dim=1)
        parts.append(-torch.logsumexp(logp[:, 1:], dim=1).sum())
    return torch.stack(parts).sum() / len(targets)


def mixup(images: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(blended images, the partner of each image (an index permutation), the weight of the first).

    Drawn from torch's global generator, which checkpoints carry, so a resumed run blends the same."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner = torch.randperm(len(images), device=images.device)
    return lam * images + (1.0 - lam) * images[partner], partner, lam


def mixup_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    partner: torch.Tensor,
    lam: float,
    weights: torch.Tensor | None,
    smoothing: float,
) -> torch.Tensor:
    """The loss of a blended batch: each label scored by its share of the blend."""
    return lam * loss_fn(logits, targets, weights, smoothing) + (1.0 - lam) * loss_fn(
        logits, targets[partner], weights, smoothing
    )


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_auroc: float
    val_subtype_auroc: float
    lr: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0
    best_score: float = -math.inf  # selection_score of best_epoch: higher is better
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def best_record(self) -> dict[str, float]:
        return next((h for h in self.history if h["epoch"] == self.best_epoch), {})


SELECTION_METRICS = ("val_auroc", "val_loss")


def selection_score(record: dict[str, float], metric: str) -> float:
    """The epoch's score under ``metric``, higher is better (NaN when undefined)."""
    if metric not in SELECTION_METRICS:
        raise ValueError(f"selection_metric must be one of {SELECTION_METRICS}, not {metric!r}")
    value = float(record[metric])
    return value if metric == "val_auroc" else -value


@torch.no_grad()
def predict_logits(model: CXRNet, loader: DataLoader[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits (N, 3), pooled features (N, C), targets (N,)) without augmentation."""
    model.eval()
    device = next(model.parameters()).device
    all_logits, all_pooled, all_targets = [], [], []
    for images, targets in loader:
        logits, features = model(images.to(device).contiguous(memory_format=torch.channels_last))
        all_logits.append(logits.float().cpu().numpy())
        all_pooled.append(features.mean(dim=(2, 3)).float().cpu().numpy())
        all_targets.append(np.asarray(targets))
    return np.concatenate(all_logits), np.concatenate(all_pooled), np.concatenate(all_targets)


def validation_scores(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
    """(mean NLL, pneumonia AUROC, bacterial-vs-viral AUROC among known subtypes)."""
    probs = probabilities(logits)
    y_pneumonia = (targets != 0).astype(int)
    auc = auroc(y_pneumonia, p_pneumonia(probs))
    known = targets > 0
    sub = float("nan")
    if known.any():
        p_viral = probs[known, 2] / np.maximum(probs[known, 1] + probs[known, 2], 1e-12)
        sub = auroc((targets[known] == 2).astype(int), p_viral)
    logp = np.log(np.maximum(probs, 1e-12))
    rows = np.arange(len(targets))
    nll = np.where(
        targets >= 0, -logp[rows, np.maximum(targets, 0)], -np.log(np.maximum(1 - probs[:, 0], 1e-12))
    )
    return float(nll.mean()), auc, sub


def make_ema(model: CXRNet, decay: float) -> AveragedModel | None:
    """An exponential moving average of the weights (and BatchNorm buffers), or None when off."""
    if decay <= 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def evaluated_model(model: CXRNet, ema: AveragedModel | None) -> CXRNet:
    """What is validated, kept as best and exported: the EMA weights when there are some."""
    return model if ema is None else ema.module  # type: ignore[return-value]


def train_epochs(
    model: CXRNet,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any],
    cfg: TrainConfig,
    checkpoint_dir: Path,
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    weights: torch.Tensor | None,
    on_epoch: Callable[[EpochRecord], None],
    on_step: Callable[[int, int, float], None],
    ema: AveragedModel | None = None,
    ranks: Ranks = SINGLE,
) -> TrainState:
    """Run epochs from ``state.epoch`` to ``cfg.epochs``; saves last.pt every epoch, best.pt on gain.

    Across ranks (``ranks``): forward/backward through DDP, train loss summed over ranks, validation
    sharded and gathered (every rank then takes the same early-stopping and best decisions), and only
    rank 0 saves."""
    import time

    net = distributed.wrap(model, ranks)
    steps_per_epoch = len(train_loader)
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        if epoch - state.best_epoch > cfg.patience and state.best_epoch > 0:
            log.info("early stop: no better %s for %d epochs", cfg.selection_metric, cfg.patience)
            break
        started = time.monotonic()
        distributed.seed_epoch(train_loader, cfg.seed, epoch, ranks)
        model.train()
        running, seen = 0.0, 0
        lr = cfg.lr
        for batch, (images, targets) in enumerate(train_loader):
            lr = lr_at(state.step, total_steps, warmup_steps, cfg.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images, targets = images.to(ranks.device), targets.to(ranks.device)
            if cfg.mixup_alpha > 0:
                images, partner, lam = mixup(images, cfg.mixup_alpha)
            logits, _ = net(images.contiguous(memory_format=torch.channels_last))
            if cfg.mixup_alpha > 0:
                loss = mixup_loss(logits, targets, partner, lam, weights, cfg.label_smoothing)
            else:
                loss = loss_fn(logits, targets, weights, cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            state.step += 1
            running += loss.item() * len(targets)
            seen += len(targets)
            on_step(batch + 1, steps_per_epoch, running / seen)
        loss_sum, count = distributed.sum_across(ranks, running, seen)  # the global train loss
        scored = evaluated_model(model, ema)
        distributed.sync_buffers(scored, ranks)
        logits, _, targets_np = predict_logits(scored, val_loader)
        logits, targets_np = distributed.gather_shards(ranks, logits, targets_np)
        val_loss, val_auc, val_sub = validation_scores(logits, targets_np)
        record = EpochRecord(
            epoch, loss_sum / max(count, 1), val_loss, val_auc, val_sub, lr, time.monotonic() - started
        )
        state.epoch = epoch
        state.history.append(record.as_dict())
        # The first epoch always counts as best, so a package exists even when the score is undefined.
        score = selection_score(record.as_dict(), cfg.selection_metric)
        improved = state.best_epoch == 0 or (not math.isnan(score) and score > state.best_score)
        if improved:
            state.best_score, state.best_epoch = score, epoch
            if ranks.is_main:
                torch.save({"model": scored.state_dict(), "epoch": epoch}, checkpoint_dir / "best.pt")
        if ranks.is_main:
            save_checkpoint(checkpoint_dir / "last.pt", model, optimizer, state, ema)
        on_epoch(record)
    return state


def save_checkpoint(
    path: Path,
    model: CXRNet,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    ema: AveragedModel | None = None,
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "ema": None if ema is None else ema.state_dict(),
            "optimizer": optimizer.state_dict(),
            "state": state.__dict__,
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
        },
        tmp,
    )
    tmp.replace(path)  # atomic: a crash mid-save never leaves a half-written checkpoint


def load_checkpoint(
    path: Path, model: CXRNet, optimizer: torch.optim.Optimizer, ema: AveragedModel | None = None
) -> TrainState:
    # bandit B614 accepted: our own training checkpoint (optimizer state needs full unpickling), never a download
    data = torch.load(path, map_location="cpu", weights_only=False)  # nosec B614
    model.load_state_dict(data["model"])
    if ema is not None and data.get("ema") is not None:
        ema.load_state_dict(data["ema"])
    optimizer.load_state_dict(data["optimizer"])
    torch.set_rng_state(data["rng"]["torch"])
    np.random.set_state(data["rng"]["numpy"])
    random.setstate(data["rng"]["python"])
    saved = dict(data["state"])
    saved.pop("best_auroc", None)  # checkpoints before selection_metric: rescored below
    return TrainState(**saved)


def rescore_best(state: TrainState, metric: str) -> None:
    """Score the kept best.pt epoch under ``metric``, so a resumed run may change what it selects on:
    best.pt stays the incumbent and a later epoch replaces it only if it scores higher."""
    record = state.best_record()
    if record:
        state.best_score = selection_score(record, metric)
