"""cxr_pneumonia.client and `cxr predict --server` against a real `cxr serve` on loopback."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt
import pytest
from ports import free_port
from pydantic import BaseModel

from cxr_pneumonia.client import ApiError, AuthError, Client, ServerUnavailable
from cxr_pneumonia.client import models as client_models
from cxr_pneumonia.errors import InputError, RejectedImage
from cxr_pneumonia.store.db.base import utcnow
from cxr_pneumonia.store.jwt_keys import static_key

from .serving import Server, serving

pytestmark = pytest.mark.slow

SECRET = "client-tests-" + "x" * 40  # the server signs tokens with it, so a test can mint an expired one


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path
) -> Iterator[tuple[Server, str]]:
    """One server for the module, and a clinician API key made with `cxr keys create`."""
    tmp = tmp_path_factory.mktemp("client")
    env = {
        "CXR_JWT_SECRET": SECRET,
        "CXR_RATE_LIMIT": "10000/minute",
        "CXR_RATE_LIMIT_CLIENT": "10000/minute",
    }
    with serving(tmp, bundled_model_path, env=env) as server:
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "cxr_pneumonia.cli",
                "keys",
                "create",
                "client-tests",
                "--role",
                "clinician",
            ],
            env=server.env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        match = re.search(r"api key \(shown once\): (\S+)", created.stdout)
        assert created.returncode == 0 and match, created.stdout + created.stderr
        yield server, match.group(1)


@pytest.fixture
def client(served: tuple[Server, str]) -> Iterator[Client]:
    server, key = served
    with Client(server.url, api_key=key, backoff_seconds=0.05) as cxr:
        yield cxr


@pytest.fixture(scope="module")
def twenty_images(kermany: Path) -> list[Path]:
    normal = sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:10]
    pneumonia = sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:10]
    assert len(normal) == len(pneumonia) == 10
    return normal + pneumonia


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxr_pneumonia.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_predict_server_gives_the_rows_of_local_predict(
    served: tuple[Server, str], twenty_images: list[Path], pydicom_data_file: Any, tmp_path: Path
) -> None:
    server, key = served
    inputs = [*twenty_images, pydicom_data_file("RG3_UNCR.dcm")]  # 20 real radiographs and a refused knee
    files = [str(p) for p in inputs]
    local = _cli(["predict", "--format", "json", *files], server.env, tmp_path)
    remote = _cli(["predict", "--server", server.url, "--format", "json", *files],
                  {**server.env, "CXR_API_KEY": key}, tmp_path)  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    local_rows, remote_rows = json.loads(local.stdout)["results"], json.loads(remote.stdout)["results"]
    assert len(local_rows) == len(remote_rows) == 21
    for mine, theirs in zip(local_rows, remote_rows, strict=True):
        assert mine["path"] == theirs["path"]
        for field in ("status", "label", "subtype", "refer", "reason", "error"):
            assert mine.get(field) == theirs.get(field), (mine["path"], field)
        if mine["status"] == "ok":
            assert abs(mine["p_pneumonia"] - theirs["p_pneumonia"]) <= 1e-6
            assert mine["model"]["model_id"] == theirs["model"]["model_id"]
            assert mine["model"]["sha256"] == theirs["model"]["sha256"]
    assert {r["status"] for r in remote_rows} == {"ok", "refused"}
    assert remote_rows[-1]["reason"] == "not_chest"
    # the CSV rows agree too (paths, status, label, probabilities to 6 decimals, model)
    local_csv = _cli(["predict", "--format", "csv", *files], server.env, tmp_path).stdout
    remote_csv = _cli(["predict", "--server", server.url, "--format", "csv", *files],
                      {**server.env, "CXR_API_KEY": key}, tmp_path).stdout  # fmt: skip
    local_lines, remote_lines = local_csv.strip().splitlines(), remote_csv.strip().splitlines()
    assert len(local_lines) == len(remote_lines) == 22
    exact = (0, 1, 2, 4, 7, 9, 10)  # path, status, label, subtype, refer, reason, model
    for mine, theirs in zip(local_lines, remote_lines, strict=True):
        a, b = mine.split(","), theirs.split(",")
        assert [a[i] for i in exact] == [b[i] for i in exact], (mine, theirs)
        if a[3] and a[1] == "ok":
            assert abs(float(a[3]) - float(b[3])) <= 1.01e-6  # printed to 6 decimals


def test_predict_server_needs_a_key_and_a_server(served: tuple[Server, str], twenty_images: list[Path],
                                                 tmp_path: Path) -> None:  # fmt: skip
    server, key = served
    image = str(twenty_images[0])
    no_key = _cli(
        ["predict", "--server", server.url, "--api-key-env", "NO_SUCH_VAR", image], server.env, tmp_path
    )
    assert no_key.returncode == 2 and "NO_SUCH_VAR" in no_key.stderr
    wrong = _cli(
        ["predict", "--server", server.url, image], {**server.env, "CXR_API_KEY": "cxr_wrong"}, tmp_path
    )
    assert wrong.returncode == 2 and "unauthorized" in wrong.stderr
    down = f"http://127.0.0.1:{free_port()}"
    gone = _cli(["predict", "--server", down, image], {**server.env, "CXR_API_KEY": key}, tmp_path)
    assert gone.returncode == 2 and "unreachable" in gone.stderr


def test_the_client_reads_reviews_and_lists(client: Client, twenty_images: list[Path]) -> None:
    health = client.health()
    assert health.status == "ready" and health.model.ok
    first = client.predict(twenty_images[-1])
    assert first.label in ("normal", "pneumonia") and 0 <= first.p_pneumonia <= 1
    again = client.prediction(first.id)
    assert again.id == first.id and again.p_pneumonia == first.p_pneumonia
    review = client.review(first.id, "pneumonia", "bacterial")
    assert review.prediction_id == first.id and review.agrees is (first.label == "pneumonia")
    page = client.predictions(reviewed=True, limit=5)
    assert first.id in [p.id for p in page.items] and page.limit == 5
    assert (
        client.predictions(label="normal" if first.label == "pneumonia" else "pneumonia").items != page.items
    )
    png = client.heatmap(first.id)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    batch = client.predict_batch([twenty_images[0], b"not an image"])
    assert [item.ok for item in batch.results] == [True, False]
    assert batch.results[1].error is not None and batch.results[1].error.error != ""
    assert isinstance(batch.results[1].outcome(), InputError)


def test_errors_are_the_projects_exceptions(
    client: Client, served: tuple[Server, str], pydicom_data_file: Any
) -> None:
    with pytest.raises(InputError) as bad:
        client.predict(b"\x89PNG but not really")
    assert bad.value.code and bad.value.http_status == 400
    with pytest.raises(RejectedImage) as refused:
        client.predict(pydicom_data_file("RG3_UNCR.dcm"))
    assert refused.value.reason == "not_chest"
    with pytest.raises(ApiError) as missing:
        client.prediction("0" * 32)
    assert missing.value.code == "not_found" and missing.value.http_status == 404
    with pytest.raises(ApiError) as invalid:
        client.review("0" * 32, "maybe")
    assert invalid.value.code == "validation_error" and invalid.value.http_status == 422
    with Client(served[0].url, api_key="cxr_not-a-key") as stranger, pytest.raises(AuthError) as denied:
        stranger.predictions()
    assert denied.value.code == "unauthorized" and denied.value.http_status == 401


def test_an_expired_token_is_refused(served: tuple[Server, str]) -> None:
    server, _ = served
    now = utcnow()
    claims = {"sub": "1", "name": "admin", "iss": "cxr-pneumonia", "typ": "access", "jti": "t",
              "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)}  # fmt: skip
    key = static_key(SECRET)  # CXR_JWT_SECRET: the one static signing key, named by its kid
    expired = jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.kid})
    with Client(server.url, token=expired) as old, pytest.raises(AuthError) as denied:
        old.predictions()
    assert denied.value.code == "unauthorized" and denied.value.http_status == 401
    fresh = jwt.encode(
        {**claims, "iat": now, "exp": now + timedelta(minutes=5)},
        key.secret,
        algorithm="HS256",
        headers={"kid": key.kid},
    )
    with Client(server.url, token=fresh) as current:  # the same claims in date are accepted
        assert current.predictions(limit=1).limit == 1


class _FlakyProxy(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first ``failures`` requests, then forwards to the real server."""

    upstream = ""
    failures = 0
    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(self.headers.get("Idempotency-Key"))
        if len(type(self).seen) <= type(self).failures:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = httpx.post(self.upstream + self.path, content=body, headers=headers, timeout=60)
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers["content-type"])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args: Any) -> None:
        pass


def test_retries_back_off_and_keep_one_idempotency_key(
    served: tuple[Server, str], twenty_images: list[Path]
) -> None:
    server, key = served
    _FlakyProxy.upstream, _FlakyProxy.failures, _FlakyProxy.seen = server.url, 2, []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        with Client(url, api_key=key, backoff_seconds=0.01) as cxr:
            result = cxr.predict(twenty_images[1])
            assert result.label in ("normal", "pneumonia")
            assert len(_FlakyProxy.seen) == 3 and len(set(_FlakyProxy.seen)) == 1 and _FlakyProxy.seen[0]
        _FlakyProxy.failures, _FlakyProxy.seen = 10, []
        with (
            Client(url, api_key=key, backoff_seconds=0.01, retries=2) as cxr,
            pytest.raises(ApiError) as busy,
        ):
            cxr.predict(twenty_images[1])
        assert busy.value.http_status == 503 and len(_FlakyProxy.seen) == 3
    finally:
        proxy.shutdown()
        proxy.server_close()
    with Client(f"http://127.0.0.1:{free_port()}", api_key=key, retries=1, backoff_seconds=0.01) as cxr, \
            pytest.raises(ServerUnavailable):  # fmt: skip
        cxr.health()


PAIRS: list[tuple[type[BaseModel], str]] = [
    (client_models.PredictionResult, "PredictionOut"),
    (client_models.PredictionPage, "PredictionPage"),
    (client_models.BatchResult, "BatchOut"),
    (client_models.BatchItem, "BatchItem"),
    (client_models.ReviewResult, "ReviewOut"),
    (client_models.FindingInfo, "FindingOut"),
    (client_models.ModelInfo, "ModelRefOut"),
    (client_models.TimingsInfo, "TimingsOut"),
    (client_models.ErrorInfo, "ErrorBody"),
    (client_models.Health, "ReadyOut"),
    (client_models.CheckInfo, "CheckOut"),
]


@pytest.mark.parametrize(("model", "schema_name"), PAIRS, ids=[name for _, name in PAIRS])
def test_client_models_match_the_openapi_schema(
    served: tuple[Server, str], model: type[BaseModel], schema_name: str
) -> None:
    schema = httpx.get(f"{served[0].url}/openapi.json", timeout=30).json()["components"]["schemas"][
        schema_name
    ]
    served_fields, mine = set(schema["properties"]), set(model.model_fields)
    assert mine <= served_fields, f"client fields the service does not send: {mine - served_fields}"
    assert set(schema.get("required", [])) <= mine, "fields the service always sends that the client drops"


def test_models_lists_the_registry(client: Client, served: tuple[Server, str]) -> None:
    paths = httpx.get(f"{served[0].url}/openapi.json", timeout=30).json()["paths"]
    if "/api/v1/models" not in paths:
        pytest.skip("GET /api/v1/models (the model registry, issue #17) is not in this service yet")
    models = client.models()
    assert models and all("version" in str(m) for m in models)


def test_the_client_needs_no_torch() -> None:
    code = "import sys, cxr_pneumonia.client; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env={**os.environ})
