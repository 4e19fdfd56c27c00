"""A training run's whole configuration: recorded with the run so it can be reproduced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..data.dataset import AugmentConfig


@dataclass(frozen=True)
class TrainConfig:
    name: str = "cxr-effnet-lite0"
    version: str = "1.0.0"
    backbone: str = "efficientnet-lite0"
    pretrained: bool = True
    image_size: int = 224
    # The input's intensity transform (imaging.preprocess.SUPPORTED_INTENSITY), recorded in the package's
    # preprocessing spec so serving applies it too: "none" or "equalize".
    intensity: str = "none"
    epochs: int = 12
    batch_size: int = 32
    lr: float = 6e-4
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    dropout: float = 0.2
    label_smoothing: float = 0.05
    # >0: mixup (Zhang et al. 2018): each batch is blended with a shuffled copy of itself, weight
    # lam ~ Beta(alpha, alpha), and scored against both labels by the same weights. 0: off.
    mixup_alpha: float = 0.0
    patience: int = 4  # epochs without a better validation score before stopping
    # What "better" means for keeping best.pt: "val_auroc" (higher) or "val_loss" (lower; a proper
    # scoring rule that still ranks epochs once validation AUROC saturates near 1).
    selection_metric: str = "val_auroc"
    val_fraction: float = 0.15
    # "random": a seeded, stratified patient split; "earliest": the earliest patient ids of every
    # series (data.splits.earliest_patients_split; docs/training.md says why).
    val_strategy: str = "random"
    # >0: also hold out the *latest* patients of every (class, series), this share of the images left
    # after validation, from training and from every fit: a second acquisition period, scored once the
    # package is built (`cxr evaluate --split shift-holdout`). 0: none (every run before 2.5.0).
    shift_holdout: float = 0.0
    # >0: validate, keep and export an exponential moving average of the weights (decay per step).
    ema_decay: float = 0.0
    seed: int = 20261122
    threads: int = 0  # 0: all cores
    class_weighting: bool = True
    max_images: int = 0  # >0: use at most this many training images (smoke tests)
    # calibration and package
    min_sensitivity: float = 0.95
    conformal_alpha: float = 0.05
    # Class-conditional (Mondrian) conformal: a quantile per class, each class covered on its own.
    conformal_mondrian: bool = False
    ood_percentile: float = 99.5  # above this validation percentile: atypical, referred
    # Above factor x that distance: refused as out of distribution. 1.3 answers (and refers) adult chest
    # radiographs, which the pediatric model never saw, and refuses photos, CT, MR and other body parts
    # (checked on the shared adult DICOMs and scikit-image photos; never on the Kermany test split).
    ood_refuse_factor: float = 1.3
    # With a population gate's outliers (radiographs of another population, answered and referred):
    # refuse above this percentile of their fitted half's distances instead, never below the atypical
    # threshold. What is further from the training images than 99% of another population's chest
    # radiographs is no chest radiograph the model has any business answering. 0: use the factor.
    ood_refuse_outlier_percentile: float = 0.0
    # Who the package is for (package.Population: age_years [low, high), modalities, views,
    # description); a DICOM whose attributes fall outside is flagged and referred. Empty: anyone.
    population: dict[str, Any] = field(default_factory=dict)
    # The population gate (training/ood.py fit_population_gate): {"outliers": a CSV (path,
    # patient_id) or folder of radiographs of another population, "fit_fraction": 0.5, "seed": 0,
    # "c": 0.01, "threshold": 0.5}. Only fit_fraction of the outliers' patients are fitted on; the
    # rest is left for measuring the gate. Empty: no gate (the Mahalanobis gate alone).
    population_gate: dict[str, Any] = field(default_factory=dict)
    # >0: heatmaps on a fixed scale, this percentile of the raw map peaks on validation pneumonia.
    heatmap_percentile: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["augment"]["scale"] = list(self.augment.scale)
        data["augment"]["crop_scale"] = list(self.augment.crop_scale)
        data["augment"]["reframe_scale"] = list(self.augment.reframe_scale)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        values = dict(data)
        if "augment" in values and isinstance(values["augment"], dict):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: Path) -> TrainConfig:
        return cls.from_dict(yaml.safe_load(path.read_text()) or {})

    def write_yaml(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def resolve_config(
    config: Path | None, out: Path, resume: bool, epochs: int | None, max_images: int | None
) -> TrainConfig:
    """The run's configuration: the YAML given (a resumed run keeps its recorded one), then overrides."""
    from dataclasses import replace

    recorded = out / "config.yaml"
    if config is None and resume and recorded.exists():
        config = recorded  # a resumed run keeps the configuration it started with
    cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    if max_images is not None:
        cfg = replace(cfg, max_images=max_images)
    return cfg
