"""Idempotency-Key on /predict and /predict/batch: a retry returns the same record, never a second."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from cxr_pneumonia.store.db.base import utcnow
from cxr_pneumonia.store.db.models import IdempotencyRecord, PredictionRecord

from .conftest import API, Service, assert_error_body


def _count(service: Service) -> int:
    with service.store.reading() as session:
        return int(session.scalar(select(func.count()).select_from(PredictionRecord)) or 0)


def _predict(service: Service, data: bytes, key: str, role: str = "clinician", **params: object):
    return service.client.post(
        f"{API}/predict",
        files={"file": ("x.jpeg", data)},
        headers={**service.key(role), "Idempotency-Key": key},
        params=params,
    )


def test_a_retry_with_the_same_key_returns_the_same_record(service: Service, chest_jpeg: bytes) -> None:
    first = _predict(service, chest_jpeg, "retry-1")
    again = _predict(service, chest_jpeg, "retry-1")
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json() == first.json()
    assert again.headers["idempotent-replay"] == "true" and "idempotent-replay" not in first.headers
    assert _count(service) == 1
    # without a key, or with another, a new record is made
    assert _predict(service, chest_jpeg, "retry-2").json()["id"] != first.json()["id"]
    assert _count(service) == 2


def test_the_same_key_with_another_request_is_a_conflict(
    service: Service, accepted_images: list[bytes]
) -> None:
    assert _predict(service, accepted_images[0], "k").status_code == 200
    assert_error_body(_predict(service, accepted_images[1], "k"), 409, "idempotency_key_reused")
    assert_error_body(_predict(service, accepted_images[0], "k", source="web"), 409, "idempotency_key_reused")
    assert _count(service) == 1


def test_keys_are_per_caller_and_kept_for_a_day(service: Service, chest_jpeg: bytes) -> None:
    mine = _predict(service, chest_jpeg, "shared-name").json()["id"]
    theirs = _predict(service, chest_jpeg, "shared-name", role="integration").json()["id"]
    assert mine != theirs
    with service.store.transaction() as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(days=1, minutes=1)))
    assert _predict(service, chest_jpeg, "shared-name").json()["id"] != mine
    assert _count(service) == 3


def test_bad_keys_are_refused(service: Service, chest_jpeg: bytes) -> None:
    assert_error_body(_predict(service, chest_jpeg, "x" * 256), 400, "bad_idempotency_key")
    assert _count(service) == 0


def test_concurrent_requests_with_one_key_make_one_record(service: Service, chest_jpeg: bytes) -> None:
    ids: list[str] = []
    start = threading.Barrier(4)
    service.key("clinician")  # one caller: the key is made before the threads race

    def send() -> None:
        start.wait()
        ids.append(_predict(service, chest_jpeg, "race").json()["id"])

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert _count(service) == 1


def test_a_batch_retry_returns_the_same_records(service: Service, accepted_images: list[bytes]) -> None:
    files = [("files", (f"{i}.jpeg", data)) for i, data in enumerate(accepted_images[:2])]
    files.append(("files", ("empty.jpeg", b"")))
    headers = {**service.key("clinician"), "Idempotency-Key": "batch-1"}
    first = service.client.post(f"{API}/predict/batch", files=files, headers=headers).json()
    again = service.client.post(f"{API}/predict/batch", files=files, headers=headers)
    assert again.headers["idempotent-replay"] == "true"
    ids = [r["prediction"]["id"] for r in first["results"] if r["ok"]]
    assert [r["prediction"]["id"] for r in again.json()["results"] if r["ok"]] == ids and len(ids) == 2
    assert [r["ok"] for r in again.json()["results"]] == [True, True, False]
    assert _count(service) == 2
    other = service.client.post(f"{API}/predict/batch", files=files[:1], headers=headers)
    assert_error_body(other, 409, "idempotency_key_reused")
