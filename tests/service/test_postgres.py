"""The PostgreSQL path against a real server (CXR_TEST_POSTGRES_URL; `.ci/services.sh` starts one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect, text

from cxr_pneumonia.store import audit
from cxr_pneumonia.store.db.engine import make_engine
from cxr_pneumonia.store.db.migrate import current_revision, head_revision, upgrade
from cxr_pneumonia.store.facade import Store

from .conftest import API, Service, service_settings

pytestmark = pytest.mark.postgres


def test_migrations_create_the_schema_and_are_idempotent(postgres_url: str) -> None:
    engine = make_engine(
        postgres_url.replace("postgresql+psycopg://", "postgresql://")
    )  # plain URL works too
    assert engine.dialect.driver == "psycopg"
    upgrade(engine)
    upgrade(engine)  # a second replica starting later: no-op
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"users", "api_keys", "predictions", "reviews", "audit_events", "images"} <= tables
    engine.dispose()


def test_the_api_on_postgres(make_service, postgres_url: str, accepted_images: list[bytes]) -> None:
    service: Service = make_service(database_url=postgres_url, store_images=True)
    assert service.store.engine.dialect.name == "postgresql"
    clinician = service.user("dr.pg", "clinician")
    made = [service.predict(data, headers=clinician).json() for data in accepted_images[:3]]
    service.predict(b"", headers=clinician)  # a refusal: an event, no record
    page = service.client.get(f"{API}/predictions", params={"limit": 2}, headers=clinician).json()
    assert page["total"] == 3 and [p["id"] for p in page["items"]] == [made[2]["id"], made[1]["id"]]
    since = made[1]["created_at"]
    assert (
        service.client.get(f"{API}/predictions", params={"since": since}, headers=clinician).json()["total"]
        == 2
    )
    review = service.client.post(
        f"{API}/predictions/{made[0]['id']}/review",
        json={"label": "pneumonia", "subtype": "viral"},
        headers=clinician,
    )
    assert review.status_code == 201
    image = service.client.get(made[0]["image_url"], headers=clinician)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    ready = service.client.get(f"{API}/health/ready").json()
    assert ready["database"] == {"ok": True, "detail": "postgresql reachable"}
    with service.store.reading() as session:
        report = audit.verify(session)
    assert report.ok and report.predictions == 3, report.detail


def test_concurrent_writers_keep_one_chain(
    tmp_path, bundled_model_path, postgres_url: str, predictor, chest_jpeg: bytes
) -> None:
    settings = service_settings(tmp_path, bundled_model_path, database_url=postgres_url)
    replicas = [Store.from_settings(settings) for _ in range(2)]  # two processes' worth of pools
    prediction = predictor.predict(chest_jpeg)

    def work(i: int) -> None:
        store = replicas[i % 2]
        for j in range(10):
            if j % 3 == 0:
                store.record_prediction(prediction, source="api", caller=f"key:{i}")
            else:
                store.audit("read_predictions", actor=f"key:{i}", outcome="ok", detail={"j": j})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    with replicas[0].reading() as session:
        report = audit.verify(session)
    assert report.ok, report.detail
    assert (report.events, report.head_seq, report.predictions) == (80, 80, 32)
    for store in replicas:
        store.close()


def test_tampering_is_found_on_postgres(make_service, postgres_url: str, chest_jpeg: bytes) -> None:
    service: Service = make_service(database_url=postgres_url)
    service.predict(chest_jpeg)
    service.predict(chest_jpeg)
    with service.store.engine.begin() as connection:
        connection.execute(text("""UPDATE audit_events SET detail = '{"label": "normal"}' WHERE seq = 2"""))
    with service.store.reading() as session:
        report = audit.verify(session)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "altered", 2)
