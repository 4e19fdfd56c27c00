"""The audit chain: every action recorded, tampering found and named, read through the API and the CLI."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cxr_pneumonia.cli import app as cli_app
from cxr_pneumonia.config import get_settings
from cxr_pneumonia.service.routes.audit import _cell
from cxr_pneumonia.store import audit
from cxr_pneumonia.store.db.models import AuditEvent

from .conftest import API, Service


@pytest.fixture
def busy(service: Service, accepted_images: list[bytes]) -> Service:
    """A service with logins, predictions, a refusal, reads and a review behind it."""
    clinician = service.user("dr.ann", "clinician")
    first = service.predict(accepted_images[0], headers=clinician).json()
    service.predict(accepted_images[1])
    service.predict(b"", headers=clinician)
    service.client.get(f"{API}/predictions", headers=clinician)
    service.client.post(
        f"{API}/predictions/{first['id']}/review", json={"label": "normal"}, headers=clinician
    )
    return service


def _verify(service: Service) -> audit.ChainReport:
    with service.store.reading() as session:
        return audit.verify(session)


def _execute(service: Service, sql: str, **params: object) -> None:
    with service.store.engine.begin() as connection:
        connection.execute(text(sql), params)


def test_actions_are_chained_events(busy: Service) -> None:
    report = _verify(busy)
    assert report.ok, report.detail
    assert report.predictions == 2 and report.events >= 6
    with busy.store.reading() as session:
        events = session.query(AuditEvent).order_by(AuditEvent.seq).all()
    actions = [(e.action, e.outcome) for e in events]
    for expected in [
        ("login", "ok"),
        ("predict", "accepted"),
        ("predict", "refused"),
        ("read_predictions", "ok"),
        ("review", "ok"),
    ]:
        assert expected in actions
    assert events[0].prev_hash == audit.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
    assert all(e.client == "testclient" and e.request_id for e in events if e.action != "create_key")


def test_an_altered_event_is_named(busy: Service) -> None:
    _execute(busy, "UPDATE audit_events SET outcome = 'ok' WHERE seq = 3")
    report = _verify(busy)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "altered", 3)


def test_a_removed_event_is_named(busy: Service) -> None:
    _execute(busy, "DELETE FROM audit_events WHERE seq = 4")
    report = _verify(busy)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "removed", 4)


def test_an_inserted_or_replaced_event_is_named(busy: Service) -> None:
    # A forger who rewrites event 2 and fixes its own hash still cannot relink event 3 to it.
    with busy.store.transaction() as session:
        event = session.get(AuditEvent, 2)
        assert event is not None
        event.actor = "user:someone-else"
        event.hash = audit.event_hash(event)
    report = _verify(busy)
    assert (report.ok, report.problem, report.first_bad_seq) == (False, "inserted", 2)


def test_a_changed_prediction_is_caught_by_its_digest(busy: Service) -> None:
    _execute(busy, "UPDATE predictions SET p_pneumonia = 0.001, label = 'normal'")
    report = _verify(busy)
    assert (report.ok, report.problem) == (False, "prediction_altered")
    assert report.first_bad_prediction


def test_a_removed_prediction_or_a_cut_off_tail_is_caught(busy: Service, chest_jpeg: bytes) -> None:
    last = busy.predict(chest_jpeg).json()["id"]
    _execute(busy, "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")
    report = _verify(busy)  # the chain itself is still well formed: only the record check sees it
    assert (report.ok, report.problem, report.first_bad_prediction) == (False, "prediction_unaudited", last)
    _execute(busy, "DELETE FROM predictions WHERE id = :id", id=last)
    assert _verify(busy).ok  # event and record both gone from the tail: only an external anchor shows it
    _execute(busy, "DELETE FROM reviews")
    _execute(
        busy, "DELETE FROM predictions WHERE id = (SELECT id FROM predictions ORDER BY created_at LIMIT 1)"
    )
    assert _verify(busy).problem == "prediction_removed"


def test_audit_api_filters_and_csv(busy: Service) -> None:
    auditor = busy.key("auditor")
    page = busy.client.get(
        f"{API}/audit", params={"action": "predict", "outcome": "refused"}, headers=auditor
    ).json()
    assert page["total"] == 1 and page["items"][0]["detail"]["reason"] == "empty_file"
    exported = busy.client.get(f"{API}/audit", params={"format": "csv", "limit": 1000}, headers=auditor)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["seq"] == "1" and {"actor", "action", "hash", "prev_hash"} <= set(rows[0])
    newest = busy.client.get(f"{API}/audit", params={"order": "newest", "limit": 3}, headers=auditor).json()
    seqs = [item["seq"] for item in newest["items"]]
    assert seqs == sorted(seqs, reverse=True) and seqs[0] == newest["total"]  # the latest event first
    assert busy.client.get(f"{API}/audit", params={"order": "sideways"}, headers=auditor).status_code == 422
    verify = busy.client.get(f"{API}/audit/verify", headers=busy.key("admin")).json()
    assert verify["ok"] is True and verify["head_hash"]
    assert busy.client.get(f"{API}/audit", headers=busy.key("clinician")).status_code == 403


def test_csv_cells_cannot_become_formulas() -> None:
    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("-1") == "'-1" and _cell("user:a") == "user:a"


@pytest.fixture
def cli_env(busy: Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    monkeypatch.setenv("CXR_DATA_DIR", str(busy.settings.data_dir))
    monkeypatch.delenv("CXR_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield busy
    get_settings.cache_clear()


def test_cli_audit_verify(cli_env: Service) -> None:
    runner = CliRunner()
    intact = runner.invoke(cli_app, ["audit", "verify"])
    assert intact.exit_code == 0 and intact.output.startswith("intact:"), intact.output
    _execute(cli_env, "UPDATE audit_events SET detail = '{}' WHERE seq = 5")
    broken = runner.invoke(cli_app, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN (altered)" in broken.output and "event 5" in broken.output
