"""The DICOM node feeds the same drift monitor as the service (one store observer, one database)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select


def test_the_node_monitors_what_it_analyses(
    monitored_model_path: Path, kermany_capture: Path, tmp_path: Path
) -> None:
    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.dicom_node import DicomNode
    from cxr_pneumonia.monitoring.sample import Sample
    from cxr_pneumonia.store.db.models import MonitoringSample

    settings = Settings(data_dir=tmp_path / "data", model_path=monitored_model_path, _env_file=None)  # type: ignore[call-arg]
    node = DicomNode.from_settings(settings)
    assert node.monitor is not None
    try:
        outcome = node.processor.process(kermany_capture, "job-1")
        assert outcome is not None
        node.monitor.flush()
        with node.store.reading() as session:  # type: ignore[attr-defined]
            rows = session.scalars(select(MonitoringSample)).all()
        assert len(rows) == 1 and rows[0].source == "dicom" and rows[0].accepted
        sample = Sample.from_row(rows[0].row)
        assert sample.categorical["modality"] == "OT" and sample.categorical["view"] == "AP"
        assert sample.projection is not None and len(sample.projection) == 12
    finally:
        node.monitor.close()
        node.store.close()  # type: ignore[attr-defined]
