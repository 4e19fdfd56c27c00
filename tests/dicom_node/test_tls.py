"""DICOM over TLS: the node accepts only callers with a certificate its CA signed, and sends results to
a TLS destination (Orthanc) that checks the node's certificate. Real certificates, real dcmtk and Orthanc."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE

from cxr_pneumonia.config import Settings
from cxr_pneumonia.dicom_node import NodeOptions
from cxr_pneumonia.dicom_node.options import ConfigError
from cxr_pneumonia.dicom_node.syntaxes import VERIFICATION
from cxr_pneumonia.dicom_node.tls import TlsConfigError, TlsOptions
from cxr_pneumonia.errors import CXRError

from .certs import Authority, Identity
from .peers import NODE_AE, SENDER_AE, audit_events, echoscu, prediction_records, storescu, wait_for


class Pki:
    """A hospital CA with the node's and a modality's certificates, and a stranger's CA and certificate."""

    def __init__(self, root: Path) -> None:
        self.ca = Authority.create(root, "hospital")
        self.node = self.ca.issue(root, "cxr-node")
        self.modality = self.ca.issue(root, "modality")
        self.pacs = self.ca.issue(root, "pacs")
        self.stranger_ca = Authority.create(root, "stranger")
        self.stranger = self.stranger_ca.issue(root, "stranger")

    def node_tls(self) -> dict[str, Any]:
        return {"tls_cert": self.node.cert, "tls_key": self.node.key, "tls_ca": self.ca.pem}

    def dcmtk(self, who: Identity, trusted: Authority | None = None) -> tuple[Path, Path, Path]:
        return who.key, who.cert, (trusted or self.ca).pem


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


def _echo(port: int, context: ssl.SSLContext | None) -> bool:
    """A C-ECHO from pynetdicom, over TLS with ``context`` (None: plain TCP)."""
    ae = AE(ae_title=SENDER_AE)
    ae.acse_timeout = ae.network_timeout = ae.connection_timeout = 10
    ae.add_requested_context(VERIFICATION)
    tls_args = (context, "127.0.0.1") if context is not None else None
    assoc = ae.associate("127.0.0.1", port, ae_title=NODE_AE, tls_args=tls_args)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return bool(status) and int(status.Status) == 0


def _client(pki: Pki, who: Identity | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(pki.ca.pem))
    if who is not None:
        context.load_cert_chain(str(who.cert), str(who.key))
    return context


# ---- configuration ---------------------------------------------------------------------------------
def _options(tmp_path: Path, **overrides: Any) -> NodeOptions:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    return NodeOptions.from_settings(settings, ae_title=NODE_AE, **overrides)


def test_tls_configuration_mistakes_stop_the_start(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="needs its private key"):
        _options(tmp_path, listen_tls=True, tls_cert=pki.node.cert)
    with pytest.raises(TlsConfigError, match="does not exist"):
        _options(tmp_path, listen_tls=True, tls_cert=pki.node.cert, tls_key=tmp_path / "missing.key")
    with pytest.raises(TlsConfigError, match="cannot be used"):  # a key that is not the certificate's
        _options(tmp_path, listen_tls=True, tls_cert=pki.node.cert, tls_key=pki.modality.key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsConfigError, match="CA bundle"):
        _options(tmp_path, listen_tls=True, **{**pki.node_tls(), "tls_ca": garbage})
    with pytest.raises(ConfigError, match="certificate and private key"):
        _options(tmp_path, listen_tls=True)
    with pytest.raises(ConfigError, match="needs a destination"):
        _options(tmp_path, destination_tls=True, **pki.node_tls())
    options = _options(tmp_path, listen_tls=True, **pki.node_tls())
    assert options.listen_tls and not options.destination_tls
    assert isinstance(options.tls, TlsOptions) and options.tls.ca == pki.ca.pem
    assert issubclass(TlsConfigError, CXRError)  # the command line reports it like any other


# ---- listening --------------------------------------------------------------------------------------
def test_a_tls_node_talks_only_to_callers_with_a_certificate_from_its_ca(node_factory: Any, pki: Pki) -> None:
    node = node_factory(destination=None, listen_tls=True, **pki.node_tls())
    port = node.address[1]
    assert _echo(port, _client(pki, pki.modality))
    assert not _echo(port, None)  # plain TCP
    assert not _echo(port, _client(pki, None))  # TLS without a client certificate
    assert not _echo(port, _client(pki, pki.stranger))  # a certificate from another CA
    assert _echo(port, _client(pki, pki.modality))  # and the node still serves after all that


@pytest.mark.dcmtk
def test_dcmtk_stores_over_tls_and_the_image_is_analysed(
    node_factory: Any, pki: Pki, dcmtk: dict[str, str], kermany_capture: Path, store: Any
) -> None:
    node = node_factory(destination=None, listen_tls=True, **pki.node_tls())
    port = node.address[1]
    assert echoscu(dcmtk, port).returncode != 0  # plain: refused
    stranger = echoscu(dcmtk, port, tls=pki.dcmtk(pki.stranger, pki.ca))
    assert stranger.returncode != 0
    echoed = echoscu(dcmtk, port, tls=pki.dcmtk(pki.modality))
    assert echoed.returncode == 0, echoed.stderr
    sent = storescu(dcmtk, port, [kermany_capture], tls=pki.dcmtk(pki.modality))
    assert sent.returncode == 0, sent.stderr
    assert node.wait_until_idle(120)
    [record] = prediction_records(store)
    assert record.source == "dicom" and record.caller == f"dicom:{SENDER_AE}"
    assert wait_for(lambda: len(node.outbox.pending()) == 2)  # SR and capture, waiting for a destination


# ---- sending ----------------------------------------------------------------------------------------
def orthanc_tls(
    identity: Identity, trusted: Authority, *, require_client_certificate: bool
) -> dict[str, Any]:
    """Orthanc's configuration for DICOM over TLS (Orthanc 1.9 and later)."""
    return {
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": str(identity.cert),
        "DicomTlsPrivateKey": str(identity.key),
        "DicomTlsTrustedCertificates": str(trusted.pem),
        "DicomTlsRemoteCertificateRequired": require_client_certificate,
    }


@pytest.mark.dcmtk
def test_results_reach_a_tls_pacs_that_checks_the_nodes_certificate(
    node_factory: Any,
    orthanc_factory: Any,
    pki: Pki,
    dcmtk: dict[str, str],
    kermany_capture: Path,
    store: Any,
) -> None:
    pacs = orthanc_factory(extra=orthanc_tls(pki.pacs, pki.ca, require_client_certificate=True))
    node = node_factory(destination=pacs.destination, destination_tls=True, **pki.node_tls())
    assert storescu(dcmtk, node.address[1], [kermany_capture]).returncode == 0  # plain in, TLS out
    assert node.wait_until_idle(120)
    assert len(pacs.wait_for_instances(2)) == 2
    assert [e.outcome for e in audit_events(store, "dicom.send")] == ["delivered", "delivered"]


@pytest.mark.dcmtk
def test_a_pacs_with_a_certificate_from_another_ca_gets_nothing(
    node_factory: Any, orthanc_factory: Any, pki: Pki, dcmtk: dict[str, str], kermany_capture: Path
) -> None:
    pacs = orthanc_factory(extra=orthanc_tls(pki.stranger, pki.ca, require_client_certificate=False))
    node = node_factory(destination=pacs.destination, destination_tls=True, **pki.node_tls())
    assert storescu(dcmtk, node.address[1], [kermany_capture]).returncode == 0
    assert wait_for(lambda: len(node.outbox.pending()) == 2, timeout=120)  # analysed, results queued
    sender = node.sender
    assert sender is not None
    assert wait_for(lambda: sender.next_due() is not None, timeout=30)  # the handshake failed: backing off
    assert len(node.outbox.pending()) == 2 and pacs.instances() == []


def test_a_connection_that_never_says_hello_does_not_block_other_callers(node_factory: Any, pki: Pki) -> None:
    """The TLS handshake must not run in the loop that accepts connections: one silent client (or a
    port scanner) would otherwise shut every modality out."""
    node = node_factory(destination=None, listen_tls=True, **pki.node_tls())
    port = node.address[1]
    with socket.create_connection(("127.0.0.1", port)) as silent:
        started = time.monotonic()
        assert _echo(port, _client(pki, pki.modality))
        assert time.monotonic() - started < 5
        silent.sendall(b"")  # still open: the echo did not wait for it to go away
