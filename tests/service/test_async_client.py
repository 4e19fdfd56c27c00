"""cxr_pneumonia.client.AsyncClient against a real `cxr serve` on loopback (the servers, images and the
503 proxy of test_client.py), run by anyio's pytest plugin (anyio ships with httpx)."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from ports import free_port

from cxr_pneumonia.client import ApiError, AsyncClient, AuthError, Client, ServerUnavailable
from cxr_pneumonia.errors import CXRError, InputError, RejectedImage
from cxr_pneumonia.inference.prediction import Prediction

from .serving import Server, serving
from .test_client import _cli, _FlakyProxy, served, twenty_images

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
__all__ = ["served", "twenty_images"]  # fixtures shared with test_client.py (one server per module)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def cxr(served: tuple[Server, str]) -> AsyncIterator[AsyncClient]:
    server, key = served
    async with AsyncClient(server.url, api_key=key, backoff_seconds=0.05) as client:
        yield client


async def test_concurrent_predictions_agree_with_the_sync_client(
    cxr: AsyncClient, served: tuple[Server, str], twenty_images: list[Path]
) -> None:
    images = twenty_images[::2]  # 5 normal, 5 pneumonia
    results = await asyncio.gather(*(cxr.predict(path) for path in images))
    assert len({r.id for r in results}) == len(images), "one stored prediction per upload"
    for path, result in zip(images, results, strict=True):
        assert result.input_sha256 == hashlib.sha256(path.read_bytes()).hexdigest(), "answers in call order"
    with Client(served[0].url, api_key=served[1]) as sync:
        for path, result in zip(images, results, strict=True):
            mine = sync.predict(path)
            assert (mine.label, mine.refer) == (result.label, result.refer)
            assert abs(mine.p_pneumonia - result.p_pneumonia) <= 1e-6
    assert {r.label for r in results} == {"normal", "pneumonia"}


async def test_every_call_reads_the_same_typed_results(
    cxr: AsyncClient, twenty_images: list[Path], pydicom_data_file: Any
) -> None:
    health = await cxr.health()
    assert health.status == "ready" and health.model.ok
    first = await cxr.predict(twenty_images[-1].read_bytes())
    again = await cxr.prediction(first.id)
    assert again.id == first.id and again.p_pneumonia == first.p_pneumonia
    review = await cxr.review(first.id, "pneumonia", "viral")
    assert review.prediction_id == first.id and review.subtype == "viral"
    page = await cxr.predictions(reviewed=True, limit=5)
    assert first.id in [p.id for p in page.items] and page.limit == 5
    assert (await cxr.heatmap(first.id)).startswith(b"\x89PNG\r\n\x1a\n")
    bundle = await cxr.fhir(first.id)
    assert bundle["resourceType"] == "Bundle"
    current = await cxr.current_model()
    assert (current["sha256"], current["version"]) == (first.model.sha256, first.model.version)
    assert any(first.model.version in str(m) for m in await cxr.models())
    batch = await cxr.predict_batch([twenty_images[0], b"not an image", pydicom_data_file("RG3_UNCR.dcm")])
    assert [item.ok for item in batch.results] == [True, False, False]
    assert isinstance(batch.results[1].outcome(), InputError)
    assert isinstance(batch.results[2].outcome(), RejectedImage)


async def test_iter_predict_keeps_input_order_with_unreadable_files(
    cxr: AsyncClient, served: tuple[Server, str], twenty_images: list[Path], pydicom_data_file: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG but not really")
    files = [twenty_images[0], tmp_path / "missing.jpeg", twenty_images[15], junk, tmp_path,
             pydicom_data_file("RG3_UNCR.dcm"), twenty_images[3]]  # fmt: skip
    mine = [outcome async for outcome in cxr.iter_predict(files, batch_size=3)]
    with Client(served[0].url, api_key=served[1]) as sync:
        theirs = list(sync.iter_predict(files, batch_size=3))
    assert [type(o) for o in mine] == [type(o) for o in theirs]
    assert [type(o).__name__ for o in mine] == ["Prediction", "CXRError", "Prediction", "InputError",
                                                "CXRError", "RejectedImage", "Prediction"]  # fmt: skip
    for path, outcome in zip(files, mine, strict=True):
        if isinstance(outcome, Prediction):
            assert outcome.input_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    unreadable = [o for o in mine if type(o) is CXRError]
    assert [o.code for o in unreadable] == ["unreadable_file"] * 2
    assert "missing.jpeg" in str(unreadable[0]) and isinstance(mine[5], RejectedImage)
    assert mine[5].reason == "not_chest"


async def test_errors_are_the_projects_exceptions(
    cxr: AsyncClient, served: tuple[Server, str], pydicom_data_file: Any
) -> None:
    with pytest.raises(InputError) as bad:
        await cxr.predict(b"\x89PNG but not really")
    assert bad.value.code and bad.value.http_status == 400
    with pytest.raises(RejectedImage) as refused:
        await cxr.predict(pydicom_data_file("RG3_UNCR.dcm"))
    assert refused.value.reason == "not_chest"
    with pytest.raises(ApiError) as missing:
        await cxr.prediction("0" * 32)
    assert missing.value.code == "not_found" and missing.value.http_status == 404
    with pytest.raises(ApiError) as invalid:
        await cxr.review("0" * 32, "maybe")
    assert invalid.value.code == "validation_error" and invalid.value.http_status == 422
    async with AsyncClient(served[0].url, api_key="cxr_not-a-key") as stranger:
        with pytest.raises(AuthError) as denied:
            await stranger.predictions()
        assert denied.value.code == "unauthorized" and denied.value.http_status == 401
    with pytest.raises(ValueError, match="not both"):
        AsyncClient(served[0].url, api_key="a", token="b")


async def test_login_swaps_the_key_for_a_bearer_token(
    served: tuple[Server, str], twenty_images: list[Path], tmp_path: Path
) -> None:
    server, key = served
    created = _cli(["users", "create", "dr.async", "--role", "clinician"], server.env, tmp_path)
    password = re.search(r"password \(shown once\): (\S+)", created.stdout)
    assert created.returncode == 0 and password, created.stdout + created.stderr
    async with AsyncClient(server.url) as cxr:
        with pytest.raises(AuthError) as wrong:
            await cxr.login("dr.async", "not the password")
        assert wrong.value.http_status == 401
        with pytest.raises(AuthError):
            await cxr.predictions()  # nothing sent yet: no credentials
    async with AsyncClient(server.url, api_key=key) as cxr:
        assert "dr.async" not in (await cxr.predict(twenty_images[2])).caller
        token = await cxr.login("dr.async", password.group(1))
        assert token and "dr.async" in (await cxr.predict(twenty_images[2])).caller  # the key is dropped
    async with AsyncClient(server.url, token=token) as again:  # the token alone is a credential
        assert (await again.predictions(limit=2)).limit == 2


@pytest.fixture
def flaky(served: tuple[Server, str]) -> Iterator[str]:
    """test_client.py's proxy: 503 (Retry-After: 0) to the first requests, then the real server."""
    _FlakyProxy.upstream, _FlakyProxy.failures, _FlakyProxy.seen = served[0].url, 2, []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    proxy.server_close()


async def test_503_is_retried_with_one_idempotency_key(
    flaky: str, served: tuple[Server, str], twenty_images: list[Path]
) -> None:
    key = served[1]
    async with AsyncClient(flaky, api_key=key, backoff_seconds=0.01) as cxr:
        result = await cxr.predict(twenty_images[1])
    assert result.label in ("normal", "pneumonia")
    assert len(_FlakyProxy.seen) == 3 and len(set(_FlakyProxy.seen)) == 1 and _FlakyProxy.seen[0]
    _FlakyProxy.failures, _FlakyProxy.seen = 10, []
    async with AsyncClient(flaky, api_key=key, backoff_seconds=0.01, retries=2) as cxr:
        with pytest.raises(ApiError) as busy:
            await cxr.predict(twenty_images[1])
    assert busy.value.http_status == 503 and len(_FlakyProxy.seen) == 3
    async with AsyncClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff_seconds=0.01) as down:
        with pytest.raises(ServerUnavailable) as gone:
            await down.health()
    assert gone.value.code == "unreachable"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path) -> Iterator[tuple[str, str]]:
    """A second real server whose credentials may make 3 requests a second (then 429, Retry-After: 1)."""
    tmp = tmp_path_factory.mktemp("limited")
    with serving(tmp, bundled_model_path, env={"CXR_RATE_LIMIT": "3/second"}) as server:
        created = _cli(["keys", "create", "limited", "--role", "clinician"], server.env, tmp)
        match = re.search(r"api key \(shown once\): (\S+)", created.stdout)
        assert created.returncode == 0 and match, created.stdout + created.stderr
        yield server.url, match.group(1)


async def test_429_waits_for_retry_after_and_records_each_upload_once(
    limited: tuple[str, str], twenty_images: list[Path]
) -> None:
    url, key = limited
    images = twenty_images[4:10]
    async with AsyncClient(url, api_key=key, retries=0) as impatient:
        outcomes = await asyncio.gather(
            *(impatient.predictions(limit=1) for _ in range(5)), return_exceptions=True
        )
    refused = [o for o in outcomes if isinstance(o, ApiError)]
    assert refused and all(e.http_status == 429 and e.code == "rate_limited" for e in refused)
    await anyio.sleep(1.1)  # the window of those five
    started = time.monotonic()
    async with AsyncClient(url, api_key=key, backoff_seconds=0.01, max_backoff_seconds=5) as cxr:
        results = await asyncio.gather(*(cxr.predict(path) for path in images))
        assert time.monotonic() - started >= 1.0, "the 429s were retried after Retry-After, not 0.01 s"
        page = await cxr.predictions(limit=50)
    assert len(results) == 6 and all(r.label in ("normal", "pneumonia") for r in results)
    assert page.total == 6, "a retried upload is stored once"
