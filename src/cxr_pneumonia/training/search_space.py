"""A tuning configuration: a base training config plus a ``search:`` space and a ``tune:`` section.

```yaml
epochs: 6                      # any TrainConfig key: the base every trial starts from
search:                        # TrainConfig keys (augment.<key> for augmentation) -> a distribution
  lr: {low: 1.0e-4, high: 3.0e-3, log: true}
  epochs: {low: 3, high: 8}    # an int key (its default is an int): suggest_int
  augment.degrees: {low: 0.0, high: 12.0, step: 1.0}
  backbone: {choices: [efficientnet-lite0, timm/resnet18]}
tune:
  study_name: cxr-tune
  metric: val_auroc            # maximised (val_loss: minimised), reported every epoch
  sampler: {seed: 1, n_startup_trials: 10}
  pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 1}   # or hyperband, or none
```
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..data.dataset import AugmentConfig
from ..errors import DataError
from .config import TrainConfig

METRICS = {"val_auroc": "maximize", "val_loss": "minimize"}
PRUNERS = ("median", "hyperband", "none")
_PRUNER_KEYS = {
    "median": {"n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"},
    "hyperband": {"min_resource", "max_resource", "reduction_factor", "bootstrap_count"},
    "none": set(),
}
_SAMPLER_KEYS = {"seed", "n_startup_trials", "multivariate", "constant_liar"}


def _bad(detail: str) -> DataError:
    return DataError(detail, code="bad_config")


@dataclass(frozen=True)
class Dimension:
    """One searched key: a float or int range (optionally log or stepped), or a list of choices."""

    key: str  # "lr" or "augment.degrees"
    kind: str  # "float" | "int" | "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            step = int(self.step) if self.step else 1
            return trial.suggest_int(
                self.key, int(self.low or 0), int(self.high or 0), step=step, log=self.log
            )
        return trial.suggest_float(
            self.key, float(self.low or 0), float(self.high or 0), step=self.step, log=self.log
        )


@dataclass(frozen=True)
class TuneSpec:
    base: TrainConfig
    space: tuple[Dimension, ...]
    study_name: str = "cxr-tune"
    metric: str = "val_auroc"
    sampler: dict[str, Any] = field(default_factory=dict)
    pruner: dict[str, Any] = field(default_factory=lambda: {"type": "median"})
    # Seconds between a running trial's heartbeats in the storage; a trial whose heartbeat stopped for
    # grace_period (a killed `cxr tune`) is marked FAIL and run again with the same parameters.
    heartbeat_interval: int = 60
    grace_period: int | None = None

    @property
    def direction(self) -> str:
        return METRICS[self.metric]

    def config_for(self, params: dict[str, Any]) -> TrainConfig:
        """The base config with the trial's values in place (validated as a TrainConfig)."""
        data = self.base.to_dict()
        for key, value in params.items():
            section, _, name = key.rpartition(".")
            (data[section] if section else data)[name] = value
        return TrainConfig.from_dict(data)

    def fingerprint(self) -> str:
        """What a resumed study must match: the base config, the space and the metric."""
        content = {
            "base": self.base.to_dict(),
            "space": [d.__dict__ | {"choices": list(d.choices)} for d in self.space],
            "metric": self.metric,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_tune_spec(path: Path) -> TuneSpec:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _bad(f"cannot read the tuning config {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise _bad(f"{path}: a tuning config is a mapping of keys")
    return parse_tune_spec(raw)


def parse_tune_spec(raw: dict[str, Any]) -> TuneSpec:
    values = dict(raw)
    search = values.pop("search", None) or {}
    tune = values.pop("tune", None) or {}
    if not isinstance(search, dict) or not search:
        raise _bad("the tuning config needs a `search:` section naming at least one key")
    if not isinstance(tune, dict):
        raise _bad("`tune:` is a mapping (study_name, metric, sampler, pruner)")
    try:
        base = TrainConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        raise _bad(f"the base training config: {exc}") from None
    space = tuple(_dimension(str(key), spec, base) for key, spec in search.items())
    unknown = set(tune) - {"study_name", "metric", "sampler", "pruner", "heartbeat_interval", "grace_period"}
    if unknown:
        raise _bad(f"unknown `tune:` keys {sorted(unknown)}")
    metric = str(tune.get("metric", "val_auroc"))
    if metric not in METRICS:
        raise _bad(f"tune.metric must be one of {sorted(METRICS)}, not {metric!r}")
    sampler = dict(tune.get("sampler") or {})
    if set(sampler) - _SAMPLER_KEYS:
        raise _bad(f"unknown tune.sampler keys {sorted(set(sampler) - _SAMPLER_KEYS)}")
    sampler.setdefault("seed", base.seed)  # seeded: the same study proposes the same trials
    pruner = dict(tune.get("pruner") or {"type": "median"})
    kind = str(pruner.get("type", "median"))
    if kind not in PRUNERS:
        raise _bad(f"tune.pruner.type must be one of {PRUNERS}, not {kind!r}")
    extra = set(pruner) - {"type"} - _PRUNER_KEYS[kind]
    if extra:
        raise _bad(f"tune.pruner ({kind}) does not take {sorted(extra)}")
    heartbeat = int(tune.get("heartbeat_interval", 60))
    grace = tune.get("grace_period")
    if heartbeat < 1 or (grace is not None and int(grace) < heartbeat):
        raise _bad("tune.heartbeat_interval must be >= 1 and grace_period >= heartbeat_interval")
    return TuneSpec(
        base=base,
        space=space,
        study_name=str(tune.get("study_name", "cxr-tune")),
        metric=metric,
        sampler=sampler,
        pruner={"type": kind, **pruner},
        heartbeat_interval=heartbeat,
        grace_period=int(grace) if grace is not None else None,
    )


def _dimension(key: str, spec: Any, base: TrainConfig) -> Dimension:
    default = _default_of(key, base)
    if not isinstance(spec, dict):
        raise _bad(f"search.{key}: give {{low, high[, log, step]}} or {{choices: [...]}}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or set(spec) != {"choices"}:
            raise _bad(f"search.{key}: `choices` is a non-empty list, alone")
        if not all(c is None or isinstance(c, bool | int | float | str) for c in choices):
            raise _bad(f"search.{key}: choices are numbers, strings, booleans or null")
        return Dimension(key, "categorical", choices=tuple(choices))
    unknown = set(spec) - {"low", "high", "log", "step"}
    if unknown or not {"low", "high"} <= set(spec):
        raise _bad(f"search.{key}: a range is {{low, high[, log, step]}} (got {sorted(spec)})")
    if isinstance(default, bool) or not isinstance(default, int | float):
        raise _bad(f"search.{key}: only numeric keys take a range (use choices)")
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise _bad(f"search.{key}: low and high are numbers with low < high")
    if log and low <= 0:
        raise _bad(f"search.{key}: a log range needs low > 0")
    step = spec.get("step")
    if step is not None and (log or not isinstance(step, int | float) or step <= 0):
        raise _bad(f"search.{key}: step is a positive number, not with log")
    kind = "int" if isinstance(default, int) else "float"
    if kind == "int" and not all(float(v).is_integer() for v in (low, high)):
        raise _bad(f"search.{key} is an integer key: low and high are integers")
    return Dimension(key, kind, float(low), float(high), log, float(step) if step is not None else None)


def _default_of(key: str, base: TrainConfig) -> Any:
    section, _, name = key.rpartition(".")
    if section not in ("", "augment") or "." in section:
        raise _bad(f"search.{key}: searchable keys are training config keys or augment.<key>")
    target: Any = base.augment if section else base
    known = {f.name for f in fields(AugmentConfig if section else TrainConfig)}
    if name not in known or name == "augment":
        raise _bad(f"search.{key}: not a training config key")
    return getattr(target, name)
