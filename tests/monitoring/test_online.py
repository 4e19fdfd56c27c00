"""The online monitor on a real database: rows per input, evaluations every K inputs, streaks kept
across a restart, tables bounded, and a broken database never failing a prediction."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from cxr_pneumonia.config import Settings
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.monitoring.detector import DriftConfig
from cxr_pneumonia.monitoring.online import OnlineMonitor, attach_monitor
from cxr_pneumonia.monitoring.reference import Reference
from cxr_pneumonia.store.db.models import MonitoringEvaluation, MonitoringSample
from cxr_pneumonia.store.facade import Store

CONFIG = DriftConfig(window=30, min_count=20, eval_every=5, eval_seconds=3600.0, persistence=2)


@pytest.fixture(scope="module")
def monitored(monitored_model_path: Path) -> tuple[Predictor, Reference]:
    predictor = Predictor.from_package(monitored_model_path)
    reference = Reference.in_package(predictor.package)
    assert reference is not None
    return predictor, reference


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.from_settings(Settings(_env_file=None, data_dir=tmp_path, database_url=None))  # type: ignore[call-arg]
    yield store
    store.close()


def _monitor(store: Store, monitored: tuple[Predictor, Reference], **kw) -> OnlineMonitor:
    predictor, reference = monitored
    return OnlineMonitor(store, reference, predictor.model_ref.digest, CONFIG, **kw)


def _count(store: Store, model: type) -> int:
    with store.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_rows_evaluations_and_streaks_survive_a_restart(
    store: Store, monitored: tuple[Predictor, Reference], kermany: Path, in_population_images, shifted
) -> None:
    predictor, _ = monitored
    monitor = _monitor(store, monitored)
    for path in in_population_images(30):
        monitor.observe_prediction(predictor.predict(path, heatmap=False), "api")
    first = monitor.flush()
    assert _count(store, MonitoringSample) == 30
    assert first is not None and first.window_size == 30
    assert {r["kind"] for r in first.results} == {"input", "feature", "output", "rate"}
    assert not first.summary["input"]["alarm"]  # in-population images

    # a restart: a new monitor on the same database continues the alarm streaks of the old one
    test_images = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:25]
    restarted = _monitor(store, monitored)
    streaks = []
    for i in range(0, 25, 5):
        for path in test_images[i : i + 5]:
            restarted.observe_prediction(predictor.predict(shifted(path), heatmap=False), "dicom")
        latest = restarted.flush()
        assert latest is not None
        streaks.append(max(r["streak"] for r in latest.results if r["kind"] == "input"))
    assert latest.summary["input"]["alarm"], latest.results
    assert streaks == sorted(streaks) and streaks[-1] >= CONFIG.persistence
    assert _count(store, MonitoringEvaluation) == 1 + 5  # once per 5 inputs, not per input
    assert restarted.history()[-1].id == latest.id


def test_refusals_are_counted_and_other_models_ignored(
    store: Store,
    monitored: tuple[Predictor, Reference],
    kermany: Path,
    bundled_model_path: Path,
    in_population_images,
) -> None:
    monitor = _monitor(store, monitored)
    other = Predictor.from_package(bundled_model_path)  # another digest: not what this reference describes
    monitor.observe_prediction(other.predict(in_population_images(2)[0], heatmap=False), "api")
    for _ in range(3):
        monitor.observe_refusal("not_radiograph", "api")
    monitor.flush()
    with store.reading() as session:
        rows = session.scalars(select(MonitoringSample)).all()
    assert [r.accepted for r in rows] == [False, False, False]
    assert rows[0].row == {"a": False, "s": "api", "r": "not_radiograph"}


def test_tables_stay_bounded(
    store: Store, monitored: tuple[Predictor, Reference], in_population_images
) -> None:
    predictor, _ = monitored
    monitor = _monitor(store, monitored, keep_samples=10, keep_evaluations=2)  # samples: at least a window
    prediction = predictor.predict(in_population_images(2)[0], heatmap=False)
    for _ in range(4):
        for _ in range(25):
            monitor.observe_prediction(prediction, "api")
        monitor.flush()
    assert _count(store, MonitoringSample) == CONFIG.window
    assert _count(store, MonitoringEvaluation) == 2


def test_a_broken_database_is_a_counted_gap_never_an_error(
    store: Store, monitored: tuple[Predictor, Reference], kermany: Path, in_population_images, shifted
) -> None:
    predictor, reference = monitored
    settings = Settings(_env_file=None, data_dir=store.settings.data_dir, database_url=None)  # type: ignore[call-arg]
    monitor = attach_monitor(store, predictor.model_ref.digest, reference, settings)
    assert monitor is not None
    try:
        with store.engine.begin() as connection:
            connection.execute(text("DROP TABLE monitoring_samples"))
        # the prediction commits through the store (its observer is now also the monitor) as usual
        prediction = predictor.predict(in_population_images(2)[0], heatmap=False)
        prediction_id = store.record_prediction(prediction, source="api", caller="test")
        assert prediction_id
        assert monitor.flush() is None
        deadline_gaps = sum(monitor.gaps.values())
        assert monitor.gaps["write_error"] >= 1 and deadline_gaps >= 1
    finally:
        monitor.close()


def test_report_from_the_database(
    tmp_path: Path, monitored: tuple[Predictor, Reference], monitored_model_path: Path,
    in_population_images, shifted, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app
    from cxr_pneumonia.config import get_settings
    from cxr_pneumonia.store.records import add_review, get_prediction

    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    store = Store.from_settings(get_settings())
    predictor, _ = monitored
    monitor = _monitor(store, monitored)
    store.observer = monitor
    for i, path in enumerate(in_population_images(30)):
        prediction = predictor.predict(shifted(path) if i >= 15 else path, heatmap=False)
        prediction_id = store.record_prediction(prediction, source="api", caller="test")
        with store.transaction() as session:
            row = get_prediction(session, prediction_id)
            assert row is not None
            add_review(session, row, reviewer="test", label="pneumonia" if i % 2 else "normal", subtype=None)
        if i % 5 == 4:
            monitor.flush()
    store.close()
    out = tmp_path / "report"
    done = CliRunner().invoke(app, ["monitor", "report", "--since", "2020-01-01", "--out", str(out),
                                    "--model", str(monitored_model_path)])  # fmt: skip
    get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    page = (out / "index.html").read_text()
    assert "30 monitored inputs" in page and "30 reviewed cases" in page and "sensitivity" in page
    for name in ("drift_over_time.png", "reliability.png", "hist_input_mean.png", "hist_p_pneumonia.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f'src="{name}"' in page
