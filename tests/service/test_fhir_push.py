"""CXR_FHIR_URL: every accepted prediction reaches a FHIR endpoint (a small one this test starts on
loopback, validating what it receives with fhir.resources), through the persistent outbox."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from cxr_pneumonia.integration.fhir_push import STAGED, SUFFIX

from .conftest import Service


@dataclass
class FhirEndpoint:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    down: bool = False  # answer 503 to everything (a server being restarted)

    def ids(self) -> list[str]:
        return [b["id"] for b in self.received]


@pytest.fixture
def fhir_endpoint() -> Iterator[FhirEndpoint]:
    endpoint = FhirEndpoint("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if endpoint.down:
                return self._answer(503, {"resourceType": "OperationOutcome", "issue": []})
            try:
                bundle = Bundle.model_validate_json(body)  # R4B, as an EHR would parse it
                assert (
                    bundle.type == "transaction" and self.headers["Content-Type"] == "application/fhir+json"
                )
                assert all(e.request is not None and e.request.method == "PUT" for e in bundle.entry or [])
            except Exception as exc:
                endpoint.invalid.append(str(exc)[:500])
                return self._answer(400, {"resourceType": "OperationOutcome", "issue": []})
            endpoint.received.append(json.loads(body))
            self._answer(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": []})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield endpoint
    server.shutdown()
    server.server_close()


def _wait(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _pushing(make_service: Callable[..., Service], endpoint: FhirEndpoint, data_dir: Path) -> Service:
    return make_service(data_dir=data_dir, fhir_url=endpoint.url, fhir_retry_initial_seconds=0.2,
                        fhir_retry_max_seconds=0.5)  # fmt: skip


def test_every_accepted_prediction_is_pushed_once_even_through_an_outage(
    make_service: Callable[..., Service],
    fhir_endpoint: FhirEndpoint,
    accepted_images: list[bytes],
    tmp_path: Path,
) -> None:
    service = _pushing(make_service, fhir_endpoint, tmp_path / "data")
    outbox = tmp_path / "data" / "fhir" / "outbox"
    with service.client:  # runs the app's lifespan: the push sender starts and stops with it
        fhir_endpoint.down = True
        ids = [service.predict(data).json()["id"] for data in accepted_images[:3]]
        assert service.predict(b"not an image").status_code == 400  # refused: nothing to push
        time.sleep(1.0)
        assert fhir_endpoint.received == [] and len(list(outbox.glob("*.json"))) == 3  # waiting, not lost
        fhir_endpoint.down = False
        assert _wait(lambda: sorted(fhir_endpoint.ids()) == sorted(ids)), fhir_endpoint.ids()
        assert _wait(lambda: not list(outbox.glob("*.json")))
    assert fhir_endpoint.invalid == []
    assert sorted(fhir_endpoint.ids()) == sorted(ids)  # each once
    report = fhir_endpoint.received[0]["entry"][0]
    assert report["request"] == {"method": "PUT", "url": f"DiagnosticReport/{fhir_endpoint.ids()[0]}"}


def test_a_restart_settles_what_a_crash_left_staged(
    make_service: Callable[..., Service],
    fhir_endpoint: FhirEndpoint,
    accepted_images: list[bytes],
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    service = _pushing(make_service, fhir_endpoint, data_dir)
    with service.client:
        recorded = service.predict(accepted_images[0]).json()["id"]
        assert _wait(lambda: fhir_endpoint.ids() == [recorded])
    outbox = data_dir / "fhir" / "outbox"
    bundle = json.dumps(fhir_endpoint.received[0])
    # a crash right after the commit (bundle staged, never released) and one before it (never recorded)
    (outbox / f"{recorded}{SUFFIX}{STAGED}").write_text(bundle)
    (outbox / f"{'f' * 32}{SUFFIX}{STAGED}").write_text(bundle.replace(recorded, "f" * 32))
    fhir_endpoint.received.clear()
    restarted = _pushing(make_service, fhir_endpoint, data_dir)
    with restarted.client:
        assert _wait(lambda: fhir_endpoint.ids() == [recorded])
        assert _wait(lambda: not list(outbox.iterdir()))
    assert fhir_endpoint.ids() == [recorded]
