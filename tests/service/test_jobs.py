"""Training jobs from the service (POST/GET /api/v1/admin/jobs, jobs/): a recalibration of the served
model on clinicians' reviewed predictions of real radiographs, run in its own process to the end and
registered as a challenger; one job at a time; a failing job says why; a restart interrupts a job
whose process is gone."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from reviewed_cases import review_real_cases as reviewed
from sqlalchemy import select
from tiny_dataset import write_tiny_csv

from cxr_pneumonia.jobs.kinds import has_torch, has_tune_command
from cxr_pneumonia.package import ModelPackage
from cxr_pneumonia.store.db.models import AuditEvent, PredictionRecord

from .conftest import API, Service, assert_error_body

JOBS = f"{API}/admin/jobs"
PER_CLASS = 30  # with 30% held out, 21 of each class remain to fit on (at least 20 are needed)


def review_real_cases(service: Service, kermany: Path, per_class: int) -> int:
    return reviewed(service.client, service.key("clinician"), kermany, per_class)


def wait_for(
    service: Service, job_id: str, until: Callable[[dict[str, Any]], bool], seconds: float = 300
) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = service.client.get(f"{JOBS}/{job_id}", headers=service.key("admin")).json()
        if until(job):
            return job
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not get there in {seconds:.0f} s: {job}")


def ended(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "interrupted")


def audit_actions(service: Service, action: str) -> list[AuditEvent]:
    with service.store.reading() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def registry_uri(request: pytest.FixtureRequest) -> str | None:
    """The real `mlflow server` of the registry tests, where MLflow is installed (always in CI)."""
    if importlib.util.find_spec("mlflow") is None and os.environ.get("CI") != "true":
        return None
    return str(request.getfixturevalue("mlflow_server").url)


def test_a_recalibration_job_runs_to_the_end_and_is_registered_as_a_challenger(
    make_service: Callable[..., Service], kermany: Path, bundled_model_path: Path, registry_uri: str | None
) -> None:
    name = f"jobs-test-{os.getpid()}-{time.time_ns()}"
    service = make_service(mlflow_tracking_uri=registry_uri, registry_model_name=name)
    reviewed = review_real_cases(service, kermany, PER_CLASS)
    with service.store.reading() as session:
        logits = list(session.scalars(select(PredictionRecord.logits)))
    assert len(logits) == reviewed and all(isinstance(v, list) and len(v) == 3 for v in logits)

    admin = service.key("admin")
    started = service.client.post(JOBS, json={"kind": "recalibrate", "seed": 7}, headers=admin)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert started.json()["status"] in ("queued", "running")

    second = service.client.post(JOBS, json={"kind": "recalibrate"}, headers=admin)
    body = assert_error_body(second, 409, "job_running")
    assert body["running_job"] == job_id

    job = wait_for(service, job_id, ended)
    assert job["status"] == "succeeded", job["error"] or job["log_tail"]
    assert job["progress"] == 1.0 and "fitting the decision rule" in job["log_tail"]
    result = job["result"]
    parent = ModelPackage.open(bundled_model_path).manifest
    child = ModelPackage.open(Path(result["package"])).manifest  # every file verified
    assert child.digest == result["digest"] != parent.digest
    assert child.parent is not None and child.parent["digest"] == parent.digest
    assert child.parent["recalibrated_on"]["description"].startswith(
        f"recalibrated on {reviewed} reviewed cases from "
    )
    assert child.files["model.onnx"] == parent.files["model.onnx"]

    evaluation = result["evaluation"]
    assert evaluation["cases"] == "held_out"
    held = child.parent["recalibrated_on"]["held_out"]
    assert held == 18 and evaluation["before"]["n"] == evaluation["after"]["n"] == held
    assert evaluation["before"]["temperature"] == parent.calibration.temperature
    assert (
        evaluation["after"]["temperature"] == child.calibration.temperature != parent.calibration.temperature
    )

    if registry_uri is None:
        assert result["registry"]["registered"] is False
    else:
        from cxr_pneumonia.registry.lifecycle import Registry

        assert result["registry"] == {"registered": True, "name": name, "version": "1", "alias": "challenger"}
        registry = Registry(service.settings, service.store)
        challenger = registry.get(name, "challenger")
        assert challenger.digest == child.digest
        assert registry.champion(name) is None  # never promoted

    starts, finishes = audit_actions(service, "job_start"), audit_actions(service, "job_finish")
    assert [e.detail["job_id"] for e in starts] == [job_id]
    assert [(e.detail["job_id"], e.outcome, e.detail["digest"]) for e in finishes] == [
        (job_id, "ok", child.digest)
    ]
    listed = service.client.get(JOBS, headers=admin).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]


def test_a_job_on_too_few_reviewed_cases_fails_and_says_why(
    make_service: Callable[..., Service], kermany: Path
) -> None:
    service = make_service()
    review_real_cases(service, kermany, 4)
    started = service.client.post(JOBS, json={"kind": "recalibrate"}, headers=service.key("admin"))
    assert started.status_code == 202, started.text
    job = wait_for(service, started.json()["id"], ended)
    assert job["status"] == "failed"
    assert "recalibration needs at least 20 normal cases" in job["error"], job
    assert job["result"] is None
    (finish,) = audit_actions(service, "job_finish")
    assert finish.outcome == "failed" and "at least 20" in finish.detail["error"]
    # the claim was released: another job may start
    again = service.client.post(
        JOBS, json={"kind": "recalibrate", "holdout": 0}, headers=service.key("admin")
    )
    assert again.status_code == 202, again.text
    wait_for(service, again.json()["id"], ended)


def test_bad_job_requests_are_4xx(make_service: Callable[..., Service], tmp_path: Path) -> None:
    allowed = tmp_path / "datasets"
    allowed.mkdir()
    service = make_service(job_data_roots=str(allowed))
    admin = service.key("admin")
    outside = service.client.post(JOBS, json={"kind": "train", "data": "/etc"}, headers=admin)
    assert "outside the allowed dataset roots" in assert_error_body(outside, 422, "job_rejected")["detail"]
    missing = service.client.post(JOBS, json={"kind": "train", "data": str(allowed / "nope")}, headers=admin)
    assert "does not exist" in assert_error_body(missing, 422, "job_rejected")["detail"]
    wrong = service.client.post(JOBS, json={"kind": "recalibrate", "data": str(allowed)}, headers=admin)
    assert "takes no data" in assert_error_body(wrong, 422, "job_rejected")["detail"]
    assert_error_body(
        service.client.post(JOBS, json={"kind": "recalibrate", "holdout": 0.9}, headers=admin), 422
    )
    assert_error_body(service.client.post(JOBS, json={"kind": "bake"}, headers=admin), 422)
    assert_error_body(service.client.get(f"{JOBS}/{'0' * 32}", headers=admin), 404)
    clinician = service.client.post(JOBS, json={"kind": "recalibrate"}, headers=service.key("clinician"))
    assert_error_body(clinician, 403)
    assert audit_actions(service, "job_start") == []


def test_train_and_tune_need_what_this_install_has(
    make_service: Callable[..., Service], kermany: Path, tmp_path: Path
) -> None:
    """Where the train extra is installed, a tune job runs a real (tiny) study to its best config;
    where it is not (the serving image), train and tune are refused with 409, saying why."""
    allowed = tmp_path / "datasets"
    allowed.mkdir()
    data = write_tiny_csv(kermany, allowed / "tiny.csv", per_class=8)
    config = allowed / "search.yaml"
    config.write_text(
        "epochs: 1\nbatch_size: 8\nval_fraction: 0.25\nseed: 7\nimage_size: 64\n"
        "search:\n  lr: {low: 1.0e-4, high: 1.0e-3, log: true}\n"
        "tune:\n  study_name: job-study\n  pruner: {type: none}\n  sampler: {seed: 7}\n"
    )
    service = make_service(job_data_roots=f"{allowed},{kermany}")
    body = {"kind": "tune", "data": str(data), "config": str(config), "trials": 2}
    answer = service.client.post(JOBS, json=body, headers=service.key("admin"))
    if not (has_torch() and has_tune_command()):
        detail = assert_error_body(answer, 409, "job_kind_unavailable")["detail"]
        assert (
            ("recalibrate jobs only" in detail) if not has_torch() else ("`cxr tune` is not part" in detail)
        )
        return
    assert answer.status_code == 202, answer.text
    job = wait_for(service, answer.json()["id"], ended, seconds=1200)
    assert job["status"] == "succeeded", job["error"] or job["log_tail"]
    output = Path(job["result"]["output"])
    trials = json.loads((output / "trials.json").read_text())
    assert sum(t["state"] == "COMPLETE" for t in trials["trials"]) == 2, trials
    assert "lr" in yaml.safe_load((output / "best.yaml").read_text())


def test_a_restart_marks_a_job_whose_process_is_gone_as_interrupted(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    data_dir = tmp_path / "shared"
    first = make_service(data_dir=data_dir)
    started = first.client.post(JOBS, json={"kind": "recalibrate"}, headers=first.key("admin"))
    assert started.status_code == 202, started.text
    job = wait_for(first, started.json()["id"], lambda j: j["status"] != "queued")
    assert job["status"] == "running", job  # the runner took it; its `cxr recalibrate` is starting
    with first.store.reading() as session:
        from cxr_pneumonia.store.db.models import Job

        row = session.get(Job, job["id"])
        assert row is not None and row.pid is not None
        pid = row.pid
    os.killpg(pid, signal.SIGKILL)  # the runner and its command die without a word (a crash, a reboot)
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    assert wait_for(first, job["id"], lambda j: True)["status"] == "running"  # nobody has noticed yet

    restarted = make_service(data_dir=data_dir)
    after = restarted.client.get(f"{JOBS}/{job['id']}", headers=restarted.key("admin")).json()
    assert after["status"] == "interrupted"
    assert "runner process is gone" in after["error"]
    (finish,) = audit_actions(restarted, "job_finish")
    assert finish.outcome == "interrupted" and finish.detail["job_id"] == job["id"]
    nxt = restarted.client.post(JOBS, json={"kind": "recalibrate"}, headers=restarted.key("admin"))
    assert nxt.status_code == 202, nxt.text  # the claim was released
    wait_for(restarted, nxt.json()["id"], ended)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'replicas.sqlite3'}"


def test_the_claim_admits_one_job_across_replicas(database_url: str, tmp_path: Path) -> None:
    """Two replicas (two stores on one database) starting jobs at the same moment: one wins, the
    others get the winner's id; once it ends, the next may start."""
    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.jobs import queue
    from cxr_pneumonia.jobs.errors import JobBusy
    from cxr_pneumonia.store.facade import Store

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[call-arg]
    replicas = [Store.from_settings(settings), Store.from_settings(settings)]
    try:
        barrier = threading.Barrier(8)
        won: list[str] = []
        refused: list[str] = []

        def start(store: Store) -> None:
            barrier.wait()
            try:
                won.append(queue.create(store, "recalibrate", {}, actor="test").id)
            except JobBusy as busy:
                refused.append(busy.extra["running_job"])

        threads = [threading.Thread(target=start, args=(replicas[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1 and len(refused) == 7
        assert set(refused) == {won[0]}
        queue.finish(replicas[0], won[0], queue.FAILED, error="test")
        assert queue.create(replicas[1], "recalibrate", {}, actor="test").id != won[0]
    finally:
        for store in replicas:
            store.close()


def test_a_job_silent_for_too_long_on_another_host_is_interrupted(tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from cxr_pneumonia.config import Settings
    from cxr_pneumonia.jobs import queue
    from cxr_pneumonia.store.db.base import utcnow
    from cxr_pneumonia.store.db.models import Job
    from cxr_pneumonia.store.facade import Store

    store = Store.from_settings(Settings(_env_file=None, data_dir=tmp_path, database_url=None))  # type: ignore[call-arg]
    try:
        job = queue.create(store, "recalibrate", {}, actor="test")
        # its runner on another machine reported 10 s ago: alive as far as anyone can tell
        with store.transaction() as session:
            session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(
                    status="running",
                    host="another-host",
                    pid=1,
                    heartbeat_at=utcnow() - timedelta(seconds=10),
                )
            )
        assert queue.recover(store, stale_seconds=120) == []
        with store.transaction() as session:
            session.execute(
                update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(seconds=300))
            )
        assert queue.recover(store, stale_seconds=120) == [job.id]
        ended = queue.get(store, job.id)
        assert ended.status == "interrupted" and ended.lock is None and "no heartbeat" in (ended.error or "")
    finally:
        store.close()


def test_logits_survive_the_result_cache(service: Service, chest_jpeg: bytes) -> None:
    """A prediction served from a cache (Redis keeps it as JSON) still records its logits."""
    from cxr_pneumonia.inference.prediction import Prediction

    predictor = service.app.state.cxr.predictor
    fresh = predictor.predict(chest_jpeg, use_cache=False)
    assert fresh.logits is not None and len(fresh.logits) == 3
    again = Prediction.from_dict(fresh.to_dict(include_heatmap=True, include_logits=True))
    assert again.logits == fresh.logits
    assert "logits" not in fresh.to_dict()  # not part of the API's answer


@pytest.mark.slow
def test_a_train_job_on_an_allowed_dataset_writes_a_package_and_registers_it(
    make_service: Callable[..., Service], kermany: Path, tmp_path: Path, registry_uri: str | None
) -> None:
    """A real (tiny) `cxr train` run as a job: 48 Kermany train images, one epoch. A CSV under an
    allowed root that names images outside the roots is refused first."""
    if not has_torch():
        pytest.skip("train jobs need the train extra (PyTorch)")
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    data = write_tiny_csv(kermany, datasets / "tiny.csv")
    config = datasets / "tiny.yaml"
    config.write_text("epochs: 1\nbatch_size: 16\nval_fraction: 0.25\nseed: 7\n")
    body = {"kind": "train", "data": str(data), "config": str(config), "epochs": 1}

    narrow = make_service(job_data_roots=str(datasets))
    refused = narrow.client.post(JOBS, json=body, headers=narrow.key("admin"))
    assert (
        "48 images outside the allowed dataset roots"
        in assert_error_body(refused, 422, "job_rejected")["detail"]
    )

    name = f"jobs-train-{os.getpid()}-{time.time_ns()}"
    service = make_service(
        job_data_roots=f"{datasets},{kermany}", mlflow_tracking_uri=registry_uri, registry_model_name=name
    )
    started = service.client.post(JOBS, json=body, headers=service.key("admin"))
    assert started.status_code == 202, started.text
    job = wait_for(service, started.json()["id"], ended, seconds=1200)
    assert job["status"] == "succeeded", job["error"] or job["log_tail"]
    package = ModelPackage.open(Path(job["result"]["package"])).manifest
    assert package.digest == job["result"]["digest"]
    assert job["result"]["evaluation"]["cases"] == "validation"
    if registry_uri is not None:
        assert job["result"]["registry"]["alias"] == "challenger"
