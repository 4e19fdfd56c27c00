"""The node in-process, against real Orthanc and dcmtk: association, analysis, results, refusals."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image

from cxr_pneumonia.errors import RejectedImage

from .peers import (
    ORTHANC_AE,
    SENDER_AE,
    Orthanc,
    audit_events,
    echoscu,
    prediction_records,
    storescu,
    wait_for,
)
from .results import SCHEME, coded, numeric, processing_equipment, referenced_sources, texts

pytestmark = pytest.mark.dcmtk


def check_results(orthanc: Orthanc, source_path: Path, predictor: Any) -> None:
    """The SR and the Secondary Capture for ``source_path`` are in Orthanc, in the source's study,
    and say what the Predictor says about the same file."""
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    try:
        expected = predictor.predict(source_path, use_cache=False)
    except RejectedImage as exc:
        pytest.fail(f"the model refuses {source_path.name} ({exc}); a good chest model accepts it")
    found: dict[str, Any] = {}
    for instance in orthanc.instances():
        ds = orthanc.dataset(instance)
        if ds.StudyInstanceUID != source.StudyInstanceUID or ds.Modality not in ("SR", "OT"):
            continue
        refs = [str(r.ReferencedSOPInstanceUID) for r in ds.get("SourceImageSequence", [])]
        if ds.Modality == "SR":
            refs = referenced_sources(ds)
        if str(source.SOPInstanceUID) in refs and abs(_sr_or_banner_p(ds) - expected.p_pneumonia) < 1e-3:
            found[ds.Modality] = (instance, ds)
    assert set(found) == {"SR", "OT"}, f"results for {source_path.name} missing: {sorted(found)}"
    _, sr = found["SR"]
    sc_id, sc = found["OT"]
    for result in (sr, sc):
        assert result.StudyInstanceUID == source.StudyInstanceUID
        assert result.PatientID == source.PatientID
        assert result.PatientName == source.PatientName
        assert result.SeriesInstanceUID != source.SeriesInstanceUID
        assert result.SOPInstanceUID != source.SOPInstanceUID
        assert result.Manufacturer == "CXR Pneumonia Detector"
        [equipment] = processing_equipment(result)
        assert expected.model.sha256 in equipment.SoftwareVersions
        assert f"{expected.model.name} {expected.model.version}" == equipment.ManufacturerModelName
    assert sr.SeriesInstanceUID != sc.SeriesInstanceUID  # one modality per series
    # The SR: the same probability as the Predictor on the same file, the label, the statement.
    assert numeric(sr, "P-PNEUMONIA") == pytest.approx(expected.p_pneumonia, abs=1e-6)
    assert numeric(sr, "P-BACTERIAL") == pytest.approx(expected.p_bacterial, abs=1e-6)
    assert numeric(sr, "P-VIRAL") == pytest.approx(expected.p_viral, abs=1e-6)
    label = ("SCT", "233604007") if expected.label == "pneumonia" else (SCHEME, "NO-PNEUMONIA")
    assert coded(sr, "DCM", "121071") == label
    assert coded(sr, SCHEME, "REFER") == ("SCT", "373066001" if expected.refer else "373067005")
    assert any("not a diagnosis" in text for text in texts(sr))
    assert sr.VerificationFlag == "UNVERIFIED"
    # The Secondary Capture opens as an image (Orthanc renders it) with the heatmap's colour in it.
    rendered = orthanc.http.get(f"/instances/{sc_id}/preview").raise_for_status()
    image = np.asarray(Image.open(io.BytesIO(rendered.content)).convert("RGB"), dtype=np.int16)
    assert image.shape[0] > 200 and image.shape[1] > 200
    colourfulness = np.abs(image[..., 0] - image[..., 2]).mean()
    # Heatmaps are on the package's fixed scale: only a map with real heat must show colour (a faint
    # one, e.g. of an adult's radiograph the model sees little in, is rightly almost grey).
    assert expected.heatmap is not None
    if float(expected.heatmap.max()) >= 0.3:
        assert colourfulness > 2.0, "the capture shows no heatmap colour"
    assert sc.BurnedInAnnotation == "YES"
    assert "not a diagnosis" in sc.ImageComments


def _sr_or_banner_p(ds: Any) -> float:
    """The probability a result states: the SR's NUM item, or the capture's banner (3 decimals)."""
    if ds.Modality == "SR":
        return numeric(ds, "P-PNEUMONIA")
    match = re.search(r"p(?:\(pneumonia\))? = ([0-9.]+)", str(ds.ImageComments))
    assert match, ds.ImageComments
    return float(match.group(1))


def test_echo_is_answered(node_factory: Any, dcmtk: dict[str, str]) -> None:
    node = node_factory(destination=None)
    result = echoscu(dcmtk, node.address[1])
    assert result.returncode == 0, result.stderr


def test_unknown_calling_ae_is_rejected_at_association_and_audited(
    node_factory: Any, dcmtk: dict[str, str], store: Any
) -> None:
    node = node_factory(destination=None)
    result = echoscu(dcmtk, node.address[1], calling="INTRUDER")
    assert result.returncode != 0
    assert "Rejected" in result.stderr or "rejected" in result.stderr.lower()
    [event] = wait_for(lambda: audit_events(store, "dicom.associate"))
    assert (event.actor, event.outcome) == ("dicom:INTRUDER", "rejected")
    assert event.detail["reason"] == "calling AE title not accepted"


def test_wrong_called_ae_is_rejected(node_factory: Any, dcmtk: dict[str, str]) -> None:
    node = node_factory(destination=None)
    assert echoscu(dcmtk, node.address[1], called="NOT_THE_NODE").returncode != 0
    assert echoscu(dcmtk, node.address[1]).returncode == 0


def test_capture_of_a_chest_film_gets_sr_and_sc_in_its_study(
    node_factory: Any,
    orthanc: Orthanc,
    dcmtk: dict[str, str],
    kermany_capture: Path,
    predictor: Any,
    store: Any,
) -> None:
    # The PACS holds the original (as it would: it is what it sends to the node) ...
    assert storescu(dcmtk, orthanc.dicom_port, [kermany_capture], called=ORTHANC_AE).returncode == 0
    [original] = orthanc.instances()
    node = node_factory(destination=orthanc.destination)
    sent = storescu(dcmtk, node.address[1], [kermany_capture])
    assert sent.returncode == 0, sent.stderr
    assert node.wait_until_idle(120)
    check_results(orthanc, kermany_capture, predictor)
    # ... and files the SR and the capture in the original's study, as Orthanc itself sees it.
    study = orthanc.http.get(f"/instances/{original}/study").raise_for_status().json()
    assert len(study["Series"]) == 3
    assert len(orthanc.instances()) == 3
    [accepted] = audit_events(store, "predict")
    assert (accepted.actor, accepted.outcome) == (f"dicom:{SENDER_AE}", "accepted")
    [record] = prediction_records(store)
    source = pydicom.dcmread(kermany_capture, stop_before_pixels=True)
    assert (record.source, record.caller, record.client) == ("dicom", f"dicom:{SENDER_AE}", "127.0.0.1")
    assert record.extra["sop_instance_uid"] == source.SOPInstanceUID
    assert record.extra["study_instance_uid"] == source.StudyInstanceUID
    assert record.id == accepted.detail["prediction_id"]
    assert record.p_pneumonia == predictor.predict(kermany_capture).p_pneumonia
    delivered = audit_events(store, "dicom.send")
    assert [e.outcome for e in delivered] == ["delivered", "delivered"]
    assert not list(node.spool.incoming.glob("*.dcm")), "the received instance was kept"


def test_chest_radiographs_get_results_matching_the_predictor(
    node_factory: Any, orthanc: Orthanc, dcmtk: dict[str, str], chest_files: list[Path], predictor: Any
) -> None:
    node = node_factory(destination=orthanc.destination)
    sent = storescu(dcmtk, node.address[1], chest_files)
    assert sent.returncode == 0, sent.stderr
    assert node.wait_until_idle(300)
    for path in chest_files:
        check_results(orthanc, path, predictor)
    assert len(orthanc.instances()) == 2 * len(chest_files)


def test_refused_instances_get_no_image_and_their_reason_in_the_audit_trail(
    node_factory: Any, orthanc: Orthanc, dcmtk: dict[str, str], refused_files: dict[Path, str], store: Any
) -> None:
    node = node_factory(destination=orthanc.destination)
    sent = storescu(dcmtk, node.address[1], list(refused_files))
    assert sent.returncode == 0, sent.stderr  # acknowledged: refusing is the analysis' job, not the network's
    assert node.wait_until_idle(120)
    assert orthanc.instances() == []
    refusals = audit_events(store, "predict")
    assert sorted(e.detail["reason"] for e in refusals) == sorted(refused_files.values())
    assert all(
        (e.outcome, e.actor, e.detail["source"]) == ("refused", f"dicom:{SENDER_AE}", "dicom")
        for e in refusals
    )


def test_refusal_sr_says_why_when_configured(
    node_factory: Any, orthanc: Orthanc, dcmtk: dict[str, str], pydicom_data_file: Any
) -> None:
    tibia = pydicom_data_file("RG3_UNCR.dcm")
    node = node_factory(destination=orthanc.destination, refusal_sr=True)
    assert storescu(dcmtk, node.address[1], [tibia]).returncode == 0
    assert node.wait_until_idle(120)
    [instance] = orthanc.instances()
    sr = orthanc.dataset(instance)
    source = pydicom.dcmread(tibia, stop_before_pixels=True)
    assert (sr.Modality, sr.StudyInstanceUID, sr.PatientID) == (
        "SR",
        source.StudyInstanceUID,
        source.PatientID,
    )
    assert coded(sr, "DCM", "121071") == (SCHEME, "NOT-ANALYSED")
    assert "not_chest" in texts(sr)
    assert any("EXTREMITY" in text for text in texts(sr))
    assert referenced_sources(sr) == [source.SOPInstanceUID]


def test_results_wait_for_a_stopped_destination_and_all_arrive(
    node_factory: Any, orthanc_factory: Any, dcmtk: dict[str, str], kermany_capture: Path, store: Any
) -> None:
    pacs = orthanc_factory(start=False)  # the destination is down
    node = node_factory(destination=pacs.destination)
    assert storescu(dcmtk, node.address[1], [kermany_capture]).returncode == 0
    assert wait_for(lambda: len(node.outbox.pending()) == 2, timeout=120)
    assert not node.wait_until_idle(3), "results cannot have been delivered to a stopped destination"
    assert node.sender is not None and node.sender.next_due() is not None  # backing off
    pacs.start()
    assert node.wait_until_idle(60)
    assert sorted(pacs.by_modality()) == ["OT", "SR"]
    assert [e.outcome for e in audit_events(store, "dicom.send")] == ["delivered", "delivered"]


def test_an_acknowledged_instance_survives_a_crash_before_analysis(
    node_factory: Any,
    orthanc: Orthanc,
    dcmtk: dict[str, str],
    kermany_capture: Path,
    predictor: Any,
    store: Any,
    tmp_path: Path,
) -> None:
    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.dicom_node import DicomNode, NodeOptions

    # Only the network side runs, as if the process died right after acknowledging the C-STORE.
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    options = NodeOptions.from_settings(settings, bind="127.0.0.1", port=0, spool_dir=tmp_path / "spool",
                                        destination=orthanc.destination)  # fmt: skip
    crashed = DicomNode(options, predictor, store)
    port = crashed.scp.start()[1]
    try:
        assert storescu(dcmtk, port, [kermany_capture]).returncode == 0
    finally:
        crashed.scp.stop()
    assert len(crashed.spool.pending()) == 1 and orthanc.instances() == []
    restarted = node_factory(destination=orthanc.destination)  # same spool directory
    assert restarted.wait_until_idle(120)
    assert sorted(orthanc.by_modality()) == ["OT", "SR"]
    check_results(orthanc, kermany_capture, predictor)


def test_received_instances_are_kept_only_when_configured(
    node_factory: Any, dcmtk: dict[str, str], kermany_capture: Path, pydicom_data_file: Any
) -> None:
    node = node_factory(destination=None, keep_received=True)
    files = [kermany_capture, pydicom_data_file("RG3_UNCR.dcm")]  # analysed and refused alike
    assert storescu(dcmtk, node.address[1], files).returncode == 0
    assert wait_for(lambda: len(list(node.spool.kept.glob("*.dcm"))) == 2, timeout=120)
    kept = sorted(pydicom.dcmread(p).SOPInstanceUID for p in node.spool.kept.glob("*.dcm"))
    assert kept == sorted(pydicom.dcmread(p).SOPInstanceUID for p in files)
    assert node.spool.pending() == []
