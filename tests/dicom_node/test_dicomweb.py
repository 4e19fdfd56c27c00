"""DICOMweb in and out, against a real Orthanc with Debian's DICOMweb plugin: a radiograph sent to the
service by STOW-RS is analysed by the node, and its SR and Secondary Capture go back into Orthanc by
STOW-RS, where QIDO-RS finds them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import uvicorn
from dicomweb_client.api import DICOMwebClient
from fhir.resources.R4B.bundle import Bundle
from ports import free_port

from .peers import prediction_records, wait_for

pytestmark = pytest.mark.dcmtk

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
SR_STORAGE = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR (what the node sends)


@pytest.fixture
def dicomweb_orthanc(orthanc_factory: Any) -> Any:
    if not PLUGIN.is_file():
        missing = f"Orthanc's DICOMweb plugin is not installed ({PLUGIN}): run .ci/dicom.sh"
        if os.environ.get("CI") == "true":  # .ci/run installs it: missing there is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    return orthanc_factory(extra={"Plugins": [str(PLUGIN)]})


@pytest.fixture
def service_url(tmp_path: Path, bundled_model_path: Path, predictor: Any) -> Iterator[tuple[str, Any]]:
    """The REST service on a loopback port (uvicorn in a thread), sharing the node's database and spool."""
    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.service.app import create_app

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", model_path=bundled_model_path,  # type: ignore[call-arg]
                        dicom_spool_dir=tmp_path / "spool", web_dir=tmp_path / "no-web", rate_limit="1000/minute")  # fmt: skip
    app = create_app(settings, predictor)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=30)
    yield f"http://127.0.0.1:{port}", app.state.cxr.store
    server.should_exit = True
    thread.join(30)


def _key(store: Any, role: str) -> str:
    from cxr_pneumonia.store import accounts
    from cxr_pneumonia.store.security.roles import Role

    with store.transaction() as session:
        _, token = accounts.create_key(session, f"dicomweb-{role}", Role(role), created_by="test")
    return token


def test_stow_in_analysed_results_stowed_back_and_found_by_qido(
    dicomweb_orthanc: Any, service_url: tuple[str, Any], node_factory: Any, store: Any, shared_dicom: Path
) -> None:
    url, service_store = service_url
    pacs_web = f"http://127.0.0.1:{dicomweb_orthanc.http_port}/dicom-web"
    node = node_factory(None, destination_dicomweb=pacs_web)
    source = pydicom.dcmread(sorted(shared_dicom.glob("*.dcm"))[0])
    study = str(source.StudyInstanceUID)

    # A VNA pushes the radiograph to us over HTTP, with the library a DICOMweb client would use.
    vna = DICOMwebClient(url=f"{url}/dicomweb", headers={"X-API-Key": _key(service_store, "integration")})
    answer = vna.store_instances([source])
    assert [str(i.ReferencedSOPInstanceUID) for i in answer.ReferencedSOPSequence] == [
        str(source.SOPInstanceUID)
    ]
    assert "FailedSOPSequence" not in answer

    records = wait_for(lambda: prediction_records(store), timeout=60)
    assert node.wait_until_idle(60)
    record = records[0]
    assert record.source == "dicom" and record.caller == "dicom:DICOMWEB"
    assert record.extra["study_instance_uid"] == study

    # QIDO-RS on the PACS finds our SR and Secondary Capture in the radiograph's study.
    pacs = DICOMwebClient(url=pacs_web)
    deadline = time.monotonic() + 30
    found: dict[str, str] = {}
    while time.monotonic() < deadline and len(found) < 2:
        for instance in pacs.search_for_instances(study_instance_uid=study):
            ds = pydicom.Dataset.from_json(instance)
            found[str(ds.SOPInstanceUID)] = str(ds.SOPClassUID)
        time.sleep(0.2)
    assert found.get(record.extra["sr_sop_instance_uid"]) == SR_STORAGE
    assert record.extra["sc_sop_instance_uid"] in found
    sr_series = pacs.search_for_series(study_instance_uid=study, search_filters={"Modality": "SR"})
    assert len(sr_series) == 1
    sr = pacs.retrieve_instance(study, pydicom.Dataset.from_json(sr_series[0]).SeriesInstanceUID,
                                record.extra["sr_sop_instance_uid"])  # fmt: skip
    assert (
        "not a diagnosis" in str(sr).lower()
        or sr.CompletionFlag == "PARTIAL"
        or sr.VerificationFlag == "UNVERIFIED"
    )

    # The EHR side of the same prediction: its FHIR bundle points at the DICOM study.
    clinician = {"X-API-Key": _key(service_store, "clinician")}
    bundle = httpx.get(f"{url}/api/v1/predictions/{record.id}/fhir", headers=clinician, timeout=30).json()
    Bundle.model_validate(bundle)
    report = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    assert report["imagingStudy"][0]["identifier"]["value"] == f"urn:oid:{study}"
