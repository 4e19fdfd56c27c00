"""`cxr serve --tls-cert --tls-key [--tls-ca]`: HTTPS on loopback with a test-made CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from dicom_node.certs import Authority  # the DICOM TLS tests' throw-away CA

from cxr_pneumonia.service.middleware import HSTS
from cxr_pneumonia.tls import TlsFiles

from .conftest import API
from .test_serve import serving

pytestmark = pytest.mark.slow


def _trusting(authority: Authority, identity: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(authority.pem))
    if identity is not None:
        context.load_cert_chain(str(identity[0]), str(identity[1]))
    return context


def test_https_with_a_server_certificate(tmp_path: Path, bundled_model_path: Path) -> None:
    ca = Authority.create(tmp_path / "pki", "hospital")
    server_id = ca.issue(tmp_path / "pki", "cxr-service")
    args = ("--tls-cert", str(server_id.cert), "--tls-key", str(server_id.key))
    with serving(tmp_path, bundled_model_path, *args, scheme="https", verify=_trusting(ca)) as server:
        assert any("https://" in line for line in server.stdout)
        answer = httpx.get(f"{server.url}{API}/health/live", verify=_trusting(ca), timeout=10)
        assert answer.status_code == 200
        assert answer.headers["strict-transport-security"] == HSTS
        plain = server.url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):  # plain HTTP to the TLS port gets no answer
            httpx.get(f"{plain}{API}/health/live", timeout=10)
        tls12 = _trusting(ca)
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2  # the floor is still served
        assert httpx.get(f"{server.url}{API}/health/live", verify=tls12, timeout=10).status_code == 200


def test_the_server_context_refuses_old_protocols_and_weak_suites(tmp_path: Path) -> None:
    ca = Authority.create(tmp_path / "pki", "hospital")
    server_id = ca.issue(tmp_path / "pki", "cxr-service")
    context = TlsFiles(server_id.cert, server_id.key, None).server_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA" in name) for name in tls12)


def test_a_client_certificate_is_required_with_a_ca(tmp_path: Path, bundled_model_path: Path) -> None:
    ca = Authority.create(tmp_path / "pki", "hospital")
    server_id = ca.issue(tmp_path / "pki", "cxr-service")
    client_id = ca.issue(tmp_path / "pki", "ward-pc")
    stranger = Authority.create(tmp_path / "other", "elsewhere").issue(tmp_path / "other", "laptop")
    args = ("--tls-cert", str(server_id.cert), "--tls-key", str(server_id.key), "--tls-ca", str(ca.pem))
    known = _trusting(ca, (client_id.cert, client_id.key))
    with serving(tmp_path, bundled_model_path, *args, scheme="https", verify=known) as server:
        assert httpx.get(f"{server.url}{API}/health/live", verify=known, timeout=10).status_code == 200
        for context in (_trusting(ca), _trusting(ca, (stranger.cert, stranger.key))):
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{server.url}{API}/health/live", verify=context, timeout=10).raise_for_status()


def test_a_certificate_without_its_key_stops_the_start(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cxr_pneumonia.cli import app

    ca = Authority.create(tmp_path / "pki", "hospital")
    result = CliRunner().invoke(app, ["serve", "--tls-cert", str(ca.pem)])
    assert result.exit_code == 2
    assert "tls_config" in result.output and "private key" in result.output
