"""Schemathesis against the app's own OpenAPI schema, authenticated: no 5xx, no response off-schema.

Driven through schemathesis' Python API (operation strategies + Hypothesis) rather than its pytest
plugin, whose fixture loader does not run under the pytest version used here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import API, Service
from .test_roles import PUBLIC, REQUIRED

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ADMIN_PREFIXES = (f"{API}/users", f"{API}/keys", f"{API}/audit", f"{API}/admin/jobs")
OPERATIONS = sorted(set(REQUIRED) | PUBLIC)  # test_roles checks this is every operation of the schema
MODES = {schemathesis.GenerationMode.POSITIVE: 15, schemathesis.GenerationMode.NEGATIVE: 10}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, bundled_model_path, predictor, chest_jpeg: bytes):
    """One app for the whole module (a fresh database per operation would only cost time)."""
    from fastapi.testclient import TestClient

    from cxr_pneumonia.service.app import create_app

    from .conftest import service_settings

    settings_ = service_settings(tmp_path_factory.mktemp("fuzz"), bundled_model_path, batch_max_files=4)
    app = create_app(settings_, predictor)
    service = Service(app, TestClient(app), settings_)
    service.predict(chest_jpeg)  # some history to list
    yield service
    _wait_for_jobs(service)
    service.close()


def _wait_for_jobs(service: Service, seconds: float = 120) -> None:
    """A fuzzed POST /admin/jobs may have started a real recalibration (it fails: nothing is
    reviewed): let its process end before the database goes."""
    import time

    from cxr_pneumonia.jobs.queue import running_job

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with service.store.reading() as session:
            if running_job(session) is None:
                return
        time.sleep(0.2)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_api_keeps_its_schema(fuzzed: Service, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    operation = schema[path][method]
    # Each operation is called with a role allowed to use it, so the fuzzing reaches the route's logic.
    headers = fuzzed.key("admin" if path.startswith(ADMIN_PREFIXES) else "clinician")
    spec = fuzzed.app.openapi()["paths"][path][method.lower()]
    has_inputs = bool(spec.get("parameters") or spec.get("requestBody"))
    for mode, examples in MODES.items():
        if mode is schemathesis.GenerationMode.NEGATIVE and not has_inputs:
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.filter_too_much,
                HealthCheck.data_too_large,
            ],
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        _run_retrying_the_ast_race(run)


def _run_retrying_the_ast_race(run: Callable[[], None]) -> None:
    """CPython 3.11 keeps the AST constructor's recursion counter per interpreter, not per thread
    (python/cpython#106905): Hypothesis parsing source on this thread while another thread parses too
    can raise a SystemError that says nothing about the API. The run is derandomised, so the retry
    replays the same cases; any other error, or this one twice, fails the test."""
    try:
        run()
    except SystemError as exc:
        if sys.version_info >= (3, 12) or "AST constructor recursion depth mismatch" not in str(exc):
            raise
        run()
