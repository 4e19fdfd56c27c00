"""Fixtures for the DICOM node's tests: real Orthanc and dcmtk (installed by .ci/dicom.sh; the tests
skip, saying so, when they are absent), the real Store and Predictor, and the node in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .peers import NODE_AE, SENDER_AE, Orthanc, find_binary

KERMANY_IMAGE = Path("test") / "PNEUMONIA" / "person122_bacteria_582.jpeg"


@pytest.fixture(scope="session")
def dcmtk() -> dict[str, str]:
    tools = {name: find_binary(name) for name in ("echoscu", "storescu")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        pytest.skip(f"dcmtk is not installed ({', '.join(missing)} missing): run .ci/dicom.sh")
    return {name: str(path) for name, path in tools.items()}


@pytest.fixture(scope="session")
def orthanc_binary() -> str:
    path = find_binary("Orthanc")
    if path is None:
        pytest.skip("Orthanc is not installed: run .ci/dicom.sh")
    return path


@pytest.fixture
def orthanc_factory(orthanc_binary: str, tmp_path: Path) -> Iterator[Any]:
    started: list[Orthanc] = []

    def make(node_port: int = 0, *, start: bool = True, extra: dict[str, Any] | None = None) -> Orthanc:
        # Orthanc accepts stores from any AE by default; naming the node as a peer is what a real
        # PACS needs anyway (and what lets Orthanc query or echo it).
        pacs = Orthanc(
            orthanc_binary, tmp_path / f"orthanc{len(started)}", {"cxr": (NODE_AE, node_port or 104)}, extra
        )
        started.append(pacs)
        if start:
            pacs.start()
        return pacs

    yield make
    for pacs in started:
        pacs.stop()
        pacs.http.close()


@pytest.fixture
def orthanc(orthanc_factory: Any) -> Orthanc:
    return orthanc_factory()


@pytest.fixture(scope="session")
def kermany_capture(kermany: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Kermany radiograph stored the way many systems store a digitised film: a Secondary Capture
    (modality OT) with body part CHEST. Real pixels; the quality gate notes it is a capture."""
    import highdicom as hd
    import numpy as np
    from PIL import Image
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    source = kermany / KERMANY_IMAGE
    if not source.is_file():
        pytest.skip(f"{source} is missing")
    grey = np.asarray(Image.open(source).convert("L"))
    capture = hd.sc.SCImage(
        pixel_array=grey,
        photometric_interpretation="MONOCHROME2",
        bits_allocated=8,
        coordinate_system="PATIENT",
        study_instance_uid=generate_uid(),
        series_instance_uid=generate_uid(),
        sop_instance_uid=generate_uid(),
        series_number=1,
        instance_number=1,
        manufacturer="test fixture",
        patient_id="KERMANY-122",
        patient_name="Kermany^Fixture",
        patient_sex="M",
        patient_orientation=("R", "F"),
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    capture.BodyPartExamined = "CHEST"
    capture.ViewPosition = "AP"
    path = tmp_path_factory.mktemp("kermany") / "kermany-capture.dcm"
    capture.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def chest_files(pydicom_data_file: Any, shared_dicom: Path) -> list[Path]:
    """Real chest radiographs a good model accepts: RG1 (uncompressed and JPEG 2000) and the shared files."""
    return [
        pydicom_data_file("RG1_UNCR.dcm"),
        pydicom_data_file("RG1_J2KR.dcm"),
        *sorted(shared_dicom.glob("*.dcm")),
    ]


@pytest.fixture(scope="session")
def refused_files(pydicom_data_file: Any) -> dict[Path, str]:
    """Files the quality gate must refuse whatever the model, with the reason expected."""
    from pydicom.data import get_testdata_file

    ct = get_testdata_file("CT_small.dcm")
    assert ct is not None
    return {
        Path(str(ct)): "not_radiograph",
        pydicom_data_file("RG3_UNCR.dcm"): "not_chest",
        pydicom_data_file("RG3_J2KR.dcm"): "not_chest",
    }


@pytest.fixture
def store(tmp_path: Path) -> Any:
    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.store.facade import Store

    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    store = Store.from_settings(settings)
    yield store
    store.close()


@pytest.fixture
def node_factory(predictor: Any, store: Any, tmp_path: Path) -> Iterator[Any]:
    """DicomNode in-process on a free loopback port, with the real Store and Predictor."""
    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.dicom_node import DicomNode, NodeOptions

    nodes: list[DicomNode] = []

    def make(destination: str | None, **overrides: Any) -> DicomNode:
        settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
        values: dict[str, Any] = {
            "ae_title": NODE_AE,
            "bind": "127.0.0.1",
            "port": 0,
            "accept_aes": (SENDER_AE,),
            "destination": destination,
            "spool_dir": tmp_path / "spool",
            "retry_initial_seconds": 0.5,
            "retry_max_seconds": 2.0,
            **overrides,
        }
        node = DicomNode(NodeOptions.from_settings(settings, **values), predictor, store)
        nodes.append(node)
        node.start()
        return node

    yield make
    for node in nodes:
        node.stop()
