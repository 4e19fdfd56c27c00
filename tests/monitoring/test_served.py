"""The door's monitors follow the answering models: each prediction reaches the monitor of the model
that answered it, a swap starts the new package's monitor and retires the old one's."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select

from cxr_pneumonia.config import Settings
from cxr_pneumonia.inference import Predictor
from cxr_pneumonia.monitoring.served import ModelMonitors
from cxr_pneumonia.package import ModelPackage, write_manifest
from cxr_pneumonia.store.db.models import MonitoringSample
from cxr_pneumonia.store.facade import Store


def _samples(store: Store, digest: str) -> int:
    with store.reading() as session:
        return int(session.scalar(select(func.count()).where(MonitoringSample.model_digest == digest)) or 0)


def test_predictions_go_to_the_monitor_of_the_model_that_answered(
    tmp_path: Path, monitored_model_path: Path, in_population_images
) -> None:
    challenger_path = (
        tmp_path / "challenger"
    )  # the same weights and reference, another version: another digest
    shutil.copytree(monitored_model_path, challenger_path)
    manifest = ModelPackage.open(challenger_path).manifest
    write_manifest(challenger_path, replace(manifest, version=f"{manifest.version}.challenger"))
    champion, challenger = (
        Predictor.from_package(monitored_model_path),
        Predictor.from_package(challenger_path),
    )
    assert champion.model_ref.digest != challenger.model_ref.digest

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=None)  # type: ignore[call-arg]
    store = Store.from_settings(settings)
    monitors = ModelMonitors.attach(store, settings, champion, [challenger])
    try:
        image = in_population_images(2)[0]
        store.record_prediction(champion.predict(image, heatmap=False), source="api", caller="test")
        for _ in range(2):
            store.record_prediction(challenger.predict(image, heatmap=False), source="api", caller="test")
        store.audit(
            "predict", actor="test", outcome="refused", detail={"reason": "bad_image", "source": "api"}
        )
        for monitor in monitors.monitors():
            monitor.flush()
        assert monitors.primary is not None and monitors.primary.model_digest == champion.model_ref.digest
        assert _samples(store, champion.model_ref.digest) == 2  # its prediction and the refusal
        assert _samples(store, challenger.model_ref.digest) == 2

        old = monitors.primary
        monitors.follow(challenger)  # the challenger promoted: the only model served
        assert monitors.primary is not None and monitors.primary.model_digest == challenger.model_ref.digest
        assert monitors.get(champion.model_ref.digest) is None and old._thread is None  # retired, closed
        store.record_prediction(champion.predict(image, heatmap=False), source="api", caller="test")
        monitors.primary.flush()
        assert _samples(store, champion.model_ref.digest) == 2  # a model no longer served is not monitored
    finally:
        monitors.close()
        store.close()
