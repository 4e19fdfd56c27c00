"""MLflow experiment tracking for training runs (local sqlite store unless configured)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import get_settings
from ..store.private import make_private
from .config import TrainConfig

if TYPE_CHECKING:
    from ..data.dvc import DvcVersion

log = logging.getLogger(__name__)


def open_mlflow() -> Any:
    """MLflow, telemetry off, pointed at the configured tracking URI and the project's experiment."""
    from ..registry.mlflow_env import import_mlflow

    mlflow = import_mlflow()  # telemetry off before MLflow loads
    settings = get_settings()
    uri = settings.resolved_mlflow_uri
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if folder == settings.data_dir.resolve():  # the service's data dir is private
            make_private(folder)
        folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


EXPERIMENT = "cxr-pneumonia"


class Tracker:
    """Logs params, per-epoch metrics, curves and the package to one MLflow run (nested under
    ``parent_run_id`` when given: a tuning trial under its study's run).

    A tracking failure is logged loudly but does not throw away an hour of training.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: Path,
        dataset_version: str,
        dvc: DvcVersion | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> None:
        self.out_dir = out_dir
        self._mlflow: Any = None
        if not enabled:  # a torchrun rank other than 0: rank 0 alone logs the run
            return
        try:
            mlflow = open_mlflow()
            run_id_file = out_dir / "mlflow_run_id"
            run_id = run_id_file.read_text().strip() if run_id_file.exists() else None
            run = mlflow.start_run(
                run_id=run_id,
                run_name=out_dir.name,
                nested=parent_run_id is not None,
                parent_run_id=parent_run_id,
            )
            run_id_file.write_text(run.info.run_id)
            self._mlflow = mlflow
            if run_id is None:
                flat = {k: v for k, v in cfg.to_dict().items() if k != "augment"}
                flat.update({f"augment_{k}": v for k, v in cfg.to_dict()["augment"].items()})
                mlflow.log_params(flat)
                mlflow.set_tags({"dataset_version": dataset_version, **dvc_tags(dvc), **(tags or {})})
            log.info("MLflow run %s at %s", run.info.run_id, mlflow.get_tracking_uri())
        except Exception as exc:
            log.error("MLflow tracking is OFF for this run: %r", exc)

    def log_params(self, params: dict[str, Any]) -> None:
        self._safe(lambda m: m.log_params(params))

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and k != "epoch"}
        self._safe(lambda m: m.log_metrics(clean, step=step))

    def finish(self, package_dir: Path, history: list[dict[str, float]]) -> None:
        def _finish(m: Any) -> None:
            (self.out_dir / "history.json").write_text(json.dumps(history, indent=1))
            _plot_curves(history, self.out_dir / "curves.png")
            m.log_artifact(str(self.out_dir / "history.json"))
            m.log_artifact(str(self.out_dir / "curves.png"))
            m.log_artifact(str(self.out_dir / "config.yaml"))
            m.log_artifacts(str(package_dir), artifact_path="package")
            m.end_run()

        self._safe(_finish)

    def end(self, status: str, tags: dict[str, str] | None = None) -> None:
        """Close the run without a package: KILLED (a pruned trial) or FAILED."""

        def _end(m: Any) -> None:
            if tags:
                m.set_tags(tags)
            m.end_run(status=status)

        self._safe(_end)

    def _safe(self, action: Any) -> None:
        if self._mlflow is None:
            return
        try:
            action(self._mlflow)
        except Exception as exc:
            log.error("MLflow logging failed: %r", exc)


def dvc_tags(dvc: DvcVersion | None) -> dict[str, str]:
    if dvc is None:
        return {}
    return {
        "dvc_md5": dvc.md5,
        "data_git_revision": dvc.git_revision or "",
        "data_git_dirty": str(dvc.git_dirty),
    }


def _plot_curves(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="val NLL")
    ax1.set_xlabel("epoch")
    ax1.legend()
    ax2.plot(epochs, [h["val_auroc"] for h in history], label="val AUROC (pneumonia)")
    ax2.plot(epochs, [h["val_subtype_auroc"] for h in history], label="val AUROC (bacterial vs viral)")
    ax2.set_xlabel("epoch")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
