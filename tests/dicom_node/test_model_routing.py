"""The DICOM node follows the service's routing: A/B by StudyInstanceUID (a study never flips between
models), each record naming its arm; the shadow's answers are stored, never sent to the PACS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from bundled_model import BUNDLED_VERSION
from pydicom.uid import generate_uid
from registry_helpers import derive_package
from sqlalchemy import select

from cxr_pneumonia.config import Settings
from cxr_pneumonia.dicom_node.outbox import Outbox
from cxr_pneumonia.dicom_node.processor import Processor
from cxr_pneumonia.registry.serving import ModelLoader, ModelRouter, in_challenger_arm
from cxr_pneumonia.store.db.models import PredictionRecord, ShadowPrediction


def test_ab_by_study_and_a_silent_shadow(
    kermany_capture: Path, bundled_model_path: Path, store: Any, tmp_path: Path
) -> None:
    other = derive_package(
        bundled_model_path, tmp_path / "challenger", version="1.1.0", temperature_factor=0.8
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", model_uri=str(bundled_model_path),
        ab_model_uri=str(other), ab_percent=50, shadow_model_uri=str(other),
    )  # fmt: skip
    router = ModelRouter(settings, store, ModelLoader(settings)).start()
    outbox = Outbox(tmp_path / "spool")
    processor = Processor(router.champion.predictor, store, outbox, refusal_sr=False, models=router)  # type: ignore[union-attr]
    source = pydicom.dcmread(kermany_capture)
    studies = [generate_uid() for _ in range(8)]
    outcomes = []
    for index, study in enumerate(studies * 2):  # two instances of every study
        source.StudyInstanceUID = study
        source.SOPInstanceUID = generate_uid()
        path = tmp_path / f"in-{index}.dcm"
        source.save_as(path, enforce_file_format=True)
        outcomes.append(processor.process(path, f"job-{index}"))
    assert [o.status for o in outcomes] == ["analysed"] * 16
    router.shadow_runner.join()  # type: ignore[union-attr]
    with store.reading() as session:
        records = list(session.scalars(select(PredictionRecord)))
        shadows = list(session.scalars(select(ShadowPrediction)))
    arms: dict[str, set[str]] = {}
    for record in records:
        study = record.extra["study_instance_uid"]
        arms.setdefault(study, set()).add(record.extra["model"]["arm"])
        assert record.model_version == (
            "1.1.0" if record.extra["model"]["arm"] == "challenger" else BUNDLED_VERSION
        )
    for study, seen in arms.items():
        assert seen == {"challenger" if in_challenger_arm(study, 50) else "champion"}
    assert {p.prediction_id for p in shadows} == {r.id for r in records}  # every answer shadowed
    assert len(outbox.pending()) == 2 * 16  # one SR + one capture per answered instance: no shadow's
    router.close()
