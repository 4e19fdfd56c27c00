"""`cxr tune`: an Optuna study over a declared search space, chosen on validation only.

Every trial is a real training run (training/run.py: the same split by patient, the same loop) that
reports its validation metric each epoch; the pruner stops the trials that fall behind. The study
lives in its storage (SQLite in the output folder by default), so a killed `cxr tune` resumes: its
finished trials are kept and a trial that was running when it died is run again (docs/training.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from ..errors import DataError
from .config import TrainConfig
from .loop import EpochRecord
from .run import PreparedData, fit, log_to, new_progress, prepare_data, write_data_record
from .search_space import TuneSpec, load_tune_spec
from .tracking import Tracker, open_mlflow

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what counts towards --trials
FINGERPRINT_ATTR = "cxr_fingerprint"
PARENT_RUN_ATTR = "mlflow_parent_run_id"


@dataclass(frozen=True)
class TuneResult:
    study_name: str
    storage: str
    best_trial: int | None
    best_value: float | None
    counts: dict[str, int]
    best_config: Path | None


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def tune(
    data: Path,
    config: Path,
    trials: int,
    out: Path,
    timeout: float | None = None,
    storage: str | None = None,
    console: Console | None = None,
) -> TuneResult:
    """Run the study until ``trials`` trials have completed or been pruned (counting the ones a
    previous run of the same study left), or ``timeout`` seconds have passed."""
    if trials < 1:
        raise DataError("--trials must be at least 1", code="bad_config")
    console = console or Console()
    spec = load_tune_spec(config)
    out.mkdir(parents=True, exist_ok=True)
    url = storage or default_storage(out)
    study = _open_study(spec, url)
    remaining = trials - _count(study, FINISHED)
    parent = _ParentRun(study, spec, url)
    cache: dict[tuple[Any, ...], PreparedData] = {}
    try:
        if remaining > 0:
            console.print(
                f"study {spec.study_name}: {trials - remaining} of {trials} trials done, {remaining} to go"
            )
            study.optimize(
                lambda trial: _objective(trial, spec, data, out, console, parent.run_id, cache),
                n_trials=remaining,
                timeout=timeout,
                callbacks=[
                    optuna.study.MaxTrialsCallback(trials, states=FINISHED),
                    lambda s, _t: _after_trial(s, spec, url, out),
                ],
                gc_after_trial=True,
            )
        result = _finish(study, spec, url, out)
    finally:
        parent.close(out)
    return result


def _after_trial(study: optuna.Study, spec: TuneSpec, url: str, out: Path) -> None:
    write_summary(study, spec, url, out)  # trials.json after every trial: progress a reader can follow


def _open_study(spec: TuneSpec, url: str) -> optuna.Study:
    try:
        with _experimental_ok():
            storage = optuna.storages.RDBStorage(
                url,
                heartbeat_interval=spec.heartbeat_interval,
                grace_period=spec.grace_period,
                # A trial whose process died (heartbeat stale) is failed and enqueued again, same params.
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
    except Exception as exc:  # a URL SQLAlchemy cannot open: say so, no stack trace
        raise DataError(f"cannot open the study storage {url}: {exc}", code="bad_storage") from None
    study = optuna.create_study(
        study_name=spec.study_name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(**spec.sampler),
        pruner=_pruner(spec.pruner),
        direction=optuna.study.StudyDirection.MAXIMIZE
        if spec.direction == "maximize"
        else optuna.study.StudyDirection.MINIMIZE,
        load_if_exists=True,
    )
    recorded = study.user_attrs.get(FINGERPRINT_ATTR)
    if recorded is None:
        study.set_user_attr(FINGERPRINT_ATTR, spec.fingerprint())
        study.set_user_attr("metric", spec.metric)
    elif recorded != spec.fingerprint():
        raise DataError(
            f"study {spec.study_name!r} in {url} was started with another base config, search space or "
            "metric: give another --out, --storage or tune.study_name",
            code="study_mismatch",
        )
    return study


@contextmanager
def _experimental_ok() -> Iterator[None]:
    """Heartbeats and their retry are "experimental" in Optuna (since 2.8/2.9): the documented way a
    study survives a killed worker, used knowingly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in settings.items() if k != "type"}
    if settings["type"] == "median":
        return optuna.pruners.MedianPruner(**options)
    if settings["type"] == "hyperband":
        return optuna.pruners.HyperbandPruner(**options)
    return optuna.pruners.NopPruner()


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _data_key(data: Path, cfg: TrainConfig) -> tuple[Any, ...]:
    """What decides the prepared images: trials that agree on it share one decoding."""
    return (
        str(data),
        cfg.image_size,
        cfg.intensity,
        cfg.max_images,
        cfg.val_strategy,
        cfg.val_fraction,
        cfg.seed,
    )


def _objective(
    trial: optuna.Trial,
    spec: TuneSpec,
    data: Path,
    out: Path,
    console: Console,
    parent_run_id: str | None,
    cache: dict[tuple[Any, ...], PreparedData],
) -> float:
    params = {d.key: d.suggest(trial) for d in spec.space}
    cfg = spec.config_for(params)
    trial_dir = out / "trials" / f"{trial.number:04d}"
    trial_dir.mkdir(parents=True, exist_ok=True)
    trial.set_user_attr("dir", str(trial_dir))
    with log_to(trial_dir):
        cfg.write_yaml(trial_dir / "config.yaml")
        log.info("trial %d of study %s: %s", trial.number, spec.study_name, json.dumps(params))
        with new_progress(console) as progress:
            key = _data_key(data, cfg)
            if key not in cache:
                cache.clear()  # one decoded dataset in memory at a time
                cache[key] = prepare_data(data, cfg, progress)
            prepared = cache[key]
            write_data_record(prepared, trial_dir)
            tracker = Tracker(
                cfg,
                trial_dir,
                prepared.manifest.version_id,
                dvc=prepared.manifest.dvc,
                parent_run_id=parent_run_id,
                tags={"optuna.study": spec.study_name, "optuna.trial": str(trial.number)},
            )
            history: list[dict[str, float]] = []

            def on_record(record: EpochRecord) -> None:
                history.append(record.as_dict())
                value = float(getattr(record, spec.metric))
                trial.report(value, record.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {record.epoch}: {spec.metric} {value:.4f}")

            try:
                fitted = fit(prepared, trial_dir, cfg, progress, console, tracker, on_record=on_record)
            except optuna.TrialPruned as pruned:
                log.info("trial %d pruned at %s", trial.number, pruned)
                tracker.end("KILLED", {"optuna.state": "PRUNED"})
                raise
            except BaseException:
                tracker.end("FAILED", {"optuna.state": "FAIL"})
                raise
            finally:
                (trial_dir / "history.json").write_text(json.dumps(history, indent=1))
                trial.set_user_attr("epochs_run", len(history))
                # A trial's weights are not kept: best.yaml is trained again with `cxr train`.
                shutil.rmtree(trial_dir / "checkpoints", ignore_errors=True)
    state = fitted.state
    value = float(state.best_record().get(spec.metric, math.nan))
    trial.set_user_attr("best_epoch", state.best_epoch)
    tracker.log_metrics({f"trial_{spec.metric}": value})
    tracker.end("FINISHED", {"optuna.state": "COMPLETE"})
    return value  # NaN (validation with one class): Optuna records the trial as FAIL


def _finish(study: optuna.Study, spec: TuneSpec, url: str, out: Path) -> TuneResult:
    summary = write_summary(study, spec, url, out)
    best = _best(study)
    best_path = None
    if best is not None:
        best_path = out / "best.yaml"
        cfg = spec.config_for(best.params)
        header = (
            f"# cxr tune: study {spec.study_name}, trial {best.number}, validation {spec.metric} "
            f"{best.value:.6f} (best epoch {best.user_attrs.get('best_epoch', '?')}).\n"
            f"# Train it: cxr train --data <the tuned data> --config {best_path.name} --out runs/<name>\n"
        )
        best_path.write_text(header + yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return TuneResult(
        study_name=spec.study_name,
        storage=url,
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
        counts=summary["counts"],
        best_config=best_path,
    )


def _best(study: optuna.Study) -> FrozenTrial | None:
    return study.best_trial if _count(study, (TrialState.COMPLETE,)) else None


def write_summary(study: optuna.Study, spec: TuneSpec, url: str, out: Path) -> dict[str, Any]:
    """DIR/trials.json: every trial's state, parameters, per-epoch values and result."""
    trials = study.get_trials(deepcopy=False)
    best = _best(study)
    summary = {
        "study_name": spec.study_name,
        "storage": url,
        "metric": spec.metric,
        "direction": spec.direction,
        "pruner": spec.pruner,
        "sampler": {"type": "tpe", **spec.sampler},
        "counts": {state.name: sum(t.state == state for t in trials) for state in TrialState},
        "best_trial": best.number if best else None,
        "best_value": best.value if best else None,
        "updated": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "trials": [_trial_record(t) for t in trials],
    }
    tmp = out / "trials.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    tmp.replace(out / "trials.json")  # a reader never sees half a file
    return summary


def _trial_record(t: FrozenTrial) -> dict[str, Any]:
    duration = t.duration.total_seconds() if t.duration else None
    with _experimental_ok():
        retry_of = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": t.params,
        "intermediate_values": {str(k): v for k, v in sorted(t.intermediate_values.items())},
        "best_epoch": t.user_attrs.get("best_epoch"),
        "epochs_run": t.user_attrs.get("epochs_run"),
        "seconds": duration,
        "dir": t.user_attrs.get("dir"),
        "retry_of": retry_of,
    }


class _ParentRun:
    """The study's MLflow run, parent of every trial's run; reopened when the study resumes."""

    def __init__(self, study: optuna.Study, spec: TuneSpec, url: str) -> None:
        self.run_id: str | None = None
        self._mlflow: Any = None
        try:
            mlflow = open_mlflow()
            known = study.user_attrs.get(PARENT_RUN_ATTR)
            run = _start(mlflow, known, spec.study_name)
            if run.info.run_id != known:
                study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
                mlflow.log_params({"metric": spec.metric, "storage": url, "pruner": json.dumps(spec.pruner)})
                mlflow.log_dict(
                    [d.__dict__ | {"choices": list(d.choices)} for d in spec.space], "search_space.json"
                )
            mlflow.set_tag("optuna.study", spec.study_name)
            self.run_id, self._mlflow = run.info.run_id, mlflow
        except Exception as exc:
            log.error("MLflow tracking is OFF for this study: %r", exc)

    def close(self, out: Path) -> None:
        if self._mlflow is None:
            return
        try:
            for name in ("trials.json", "best.yaml"):
                if (out / name).exists():
                    self._mlflow.log_artifact(str(out / name))
            self._mlflow.end_run()
        except Exception as exc:
            log.error("MLflow logging failed: %r", exc)


def _start(mlflow: Any, run_id: str | None, name: str) -> Any:
    if run_id is not None:
        try:
            return mlflow.start_run(run_id=run_id)
        except Exception as exc:  # the run is not in this tracking store: a new parent run
            log.warning("MLflow run %s of the study not found (%r): starting a new one", run_id, exc)
    return mlflow.start_run(run_name=name)
