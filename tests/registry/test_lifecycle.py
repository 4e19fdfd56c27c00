"""Register, promote (the gate passing, refusing, forced), roll back: on a real `mlflow server` and on
the embedded local store (sqlite, no server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bundled_model import BUNDLED_ID, BUNDLED_VERSION
from registry_helpers import MlflowServer, derive_package, require_mlflow
from sqlalchemy import select
from typer.testing import CliRunner

from cxr_pneumonia.config import Settings, get_settings
from cxr_pneumonia.registry.errors import PromotionRefused, RegistryError
from cxr_pneumonia.registry.lifecycle import Registry
from cxr_pneumonia.store.db.models import AuditEvent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, bundled_model_path: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packages")
    return {
        "champion": bundled_model_path,
        "better": derive_package(
            bundled_model_path, root / "better", version="1.1.0", temperature_factor=0.98
        ),
        "worse": derive_package(bundled_model_path, root / "worse", version="1.2.0", metric_shift=0.05),
        "unevaluated": derive_package(
            bundled_model_path, root / "uneval", version="1.3.0", keep_evaluations=False
        ),
    }


@pytest.fixture(params=["server", "embedded"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    require_mlflow()
    if request.param == "server":
        server: MlflowServer = request.getfixturevalue("mlflow_server")
        uri = server.url
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.sqlite3'}"
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", database_url=None, mlflow_tracking_uri=uri
    )  # type: ignore[call-arg]
    registry = Registry(settings)
    yield registry
    registry.store.close()


def _events(registry: Registry, action: str) -> list[dict[str, Any]]:
    with registry.store.reading() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return [{"outcome": e.outcome, **e.detail} for e in rows]


def test_register_tags_the_package_and_a_digest_registers_once(
    registry: Registry, packages: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    name = f"reg-{request.node.callspec.id}"
    first = registry.register(packages["champion"], name, alias="champion")
    assert first.created and first.version.version == "1" and "champion" in first.version.aliases
    tags = first.version.tags
    assert (
        tags["cxr.digest"] == "df32246c65d44324b38fe07a7e38b2893d7da090610ed3b7ce3d8006529c51bb"
        or len(tags["cxr.digest"]) == 64
    )
    assert tags["cxr.package_name"] == "cxr-effnet-lite0" and tags["cxr.package_version"] == BUNDLED_VERSION
    assert tags["cxr.dataset_version"] and tags["cxr.code_version"]
    assert any(k.startswith("cxr.eval.") and k.endswith(".auroc") for k in tags)
    again = registry.register(packages["champion"], name)
    assert not again.created and again.version.version == "1"
    # champion can be set on register only while there is none
    with pytest.raises(PromotionRefused):
        registry.register(packages["better"], name, alias="champion")
    derived = registry.register(packages["better"], name)
    assert derived.version.version == "2" and derived.version.tags["cxr.parent_digest"] == tags["cxr.digest"]
    listed = registry.listing(name)
    assert [v["version"] for v in listed] == ["1", "2"] and listed[0]["aliases"] == ["champion"]


def test_promotion_gate_force_and_rollback(
    registry: Registry, packages: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    name = f"gate-{request.node.callspec.id}"
    registry.register(packages["champion"], name, alias="champion")
    for key in ("unevaluated", "worse", "better"):
        registry.register(packages[key], name)  # versions 2, 3, 4
    with pytest.raises(PromotionRefused, match="no evaluation recorded"):
        registry.promote(name, "2", "champion")
    with pytest.raises(PromotionRefused, match=r"worse than the champion.*auroc"):
        registry.promote(name, "3", "champion")
    assert registry.champion(name).version == "1"  # type: ignore[union-attr]
    refused = [e for e in _events(registry, "model_promote") if e["outcome"] == "refused"]
    assert len(refused) == 2 and "no evaluation" in refused[0]["gate"]

    result = registry.promote(name, "4", "champion")
    assert result is not None and result.passed
    assert registry.champion(name).version == "4"  # type: ignore[union-attr]

    with pytest.raises(RegistryError, match=r"--reason"):
        registry.promote(name, "3", "champion", force=True)
    registry.promote(name, "3", "champion", force=True, reason="site validation on 2,000 local studies")
    forced = _events(registry, "model_promote")[-1]
    assert forced["outcome"] == "forced" and forced["forced"] is True
    assert forced["reason"] == "site validation on 2,000 local studies" and forced["to"] == "3"

    assert registry.rollback(name) == "4"
    assert registry.rollback(name) == "1"
    assert registry.champion(name).version == "1"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(name)
    assert [e["to"] for e in _events(registry, "model_rollback")] == ["4", "1"]


def test_the_cli_registers_lists_and_refuses_clearly(
    tmp_path: Path, bundled_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default: `cxr models register --alias champion` and `list --json` on a sqlite store."""
    require_mlflow()
    from cxr_pneumonia.cli import app

    monkeypatch.setenv("CXR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXR_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.sqlite3'}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        done = runner.invoke(app, ["models", "register", str(bundled_model_path), "--alias", "champion"])
        assert done.exit_code == 0, done.output
        assert "registered cxr-pneumonia version 1" in done.output
        again = runner.invoke(app, ["models", "register", str(bundled_model_path)])
        assert again.exit_code == 0 and "already registered" in again.output
        listed = runner.invoke(app, ["models", "list", "--json"])
        rows = json.loads(listed.stdout)
        assert rows[0]["aliases"] == ["champion"] and rows[0]["package"] == BUNDLED_ID
        missing = runner.invoke(app, ["models", "show", "cxr-pneumonia", "7"])
        assert missing.exit_code == 2 and "registry_error" in missing.output
        compared = runner.invoke(app, ["models", "compare", "cxr-pneumonia", "champion", "1", "--json"])
        assert compared.exit_code == 0, compared.output
        assert json.loads(compared.stdout)["metrics"][0]["metric"] == "auroc"
    finally:
        get_settings.cache_clear()
