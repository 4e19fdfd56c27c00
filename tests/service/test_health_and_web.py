"""Health, the model card, and the web page served at /."""

from __future__ import annotations

import re
from pathlib import Path

from bundled_model import BUNDLED_ID

from .conftest import API, Service, assert_error_body


def test_live_and_ready(service: Service) -> None:
    assert service.client.get(f"{API}/health/live").json() == {"status": "ok"}
    ready = service.client.get(f"{API}/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["model"]["ok"] and body["database"]["ok"]
    assert "cxr-effnet-lite0" in body["model"]["detail"]


def test_ready_reports_the_database_going_away(service: Service) -> None:
    database = service.settings.data_dir / "cxr.sqlite3"
    service.store.close()
    database.rename(database.with_suffix(".moved"))
    database.mkdir()  # a directory where the database file was: SQLite cannot open it
    response = service.client.get(f"{API}/health/ready")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False and response.json()["status"] == "not_ready"


def test_without_a_usable_model_the_app_runs_but_is_not_ready(
    make_service, tmp_path: Path, chest_jpeg: bytes
) -> None:
    service = make_service(own_predictor=True, model_path=tmp_path / "no-such-package")
    ready = service.client.get(f"{API}/health/ready")
    assert ready.status_code == 503 and ready.json()["model"]["ok"] is False
    assert "no model.json" in ready.json()["model"]["detail"]
    assert_error_body(service.predict(chest_jpeg), 503, "model_error")
    assert_error_body(
        service.client.get(f"{API}/models/current", headers=service.key("auditor")), 503, "model_error"
    )


def test_current_model_has_metadata_and_card(service: Service) -> None:
    body = service.client.get(f"{API}/models/current", headers=service.key("integration")).json()
    assert body["model_id"] == BUNDLED_ID and len(body["sha256"]) == 64
    assert body["classes"] == ["normal", "bacterial", "viral"]
    assert body["calibration"]["threshold"] > 0 and body["preprocess"]["size"] == 224
    assert body["card"].strip() and "not a diagnosis" in body["disclaimer"]


def test_the_web_page_is_served_at_the_root_when_present(make_service, tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>CXR</title><script src='app.js'></script>")
    (web / "app.js").write_text("console.log('hi')")
    service = make_service(web_dir=web)
    page = service.client.get("/")
    assert page.status_code == 200 and "<title>CXR</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"] and page.headers["x-request-id"]
    assert service.client.get("/app.js").text == "console.log('hi')"
    assert service.client.get(f"{API}/health/live").status_code == 200  # the API still wins its paths
    assert "content-security-policy" not in service.client.get("/docs").headers  # Swagger UI keeps its own


def test_the_api_docs_need_no_internet(service: Service) -> None:
    """Swagger UI and ReDoc load their scripts from this server, not from a CDN."""
    for page in ("/docs", "/redoc"):
        html = service.client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
        assert assets, f"{page} loads no scripts or styles"
        for url in assets:
            assert url.startswith("/docs/assets/"), f"{page} loads {url} from elsewhere"
            assert service.client.get(url).status_code == 200
        assert "cdn." not in html


def test_without_a_web_page_the_root_is_a_json_404(service: Service) -> None:
    assert_error_body(service.client.get("/"), 404, "not_found")
    assert service.client.get("/docs").status_code == 200
    assert service.client.get("/openapi.json").json()["info"]["title"] == "CXR Pneumonia Detector"
