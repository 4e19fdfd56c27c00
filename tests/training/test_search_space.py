"""The tuning config: the checked-in example parses, trial values land in a valid TrainConfig, and a
bad `search:` or `tune:` section is a clear error (exit 2 from `cxr tune`, no stack trace)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cxr_pneumonia.cli import app
from cxr_pneumonia.errors import DataError
from cxr_pneumonia.training.search_space import load_tune_spec, parse_tune_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "tune-example.yaml"


def test_the_example_config_parses_into_a_space_and_a_base() -> None:
    spec = load_tune_spec(EXAMPLE)
    kinds = {d.key: d.kind for d in spec.space}
    assert kinds["lr"] == "float" and kinds["epochs"] == "int" and kinds["augment.degrees"] == "float"
    assert next(d for d in spec.space if d.key == "lr").log is True
    assert spec.direction == "maximize" and spec.pruner["type"] == "median"
    assert spec.sampler["seed"] == spec.base.seed  # seeded TPE
    cfg = spec.config_for({"lr": 1e-3, "epochs": 5, "augment.degrees": 3.0})
    assert (cfg.lr, cfg.epochs, cfg.augment.degrees) == (1e-3, 5, 3.0)
    assert cfg.augment.scale == spec.base.augment.scale  # untouched keys keep the base's values


def test_the_fingerprint_follows_the_space() -> None:
    raw = {"search": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}}
    wider = {"search": {"lr": {"low": 1e-5, "high": 1e-2, "log": True}}}
    assert parse_tune_spec(raw).fingerprint() == parse_tune_spec(dict(raw)).fingerprint()
    assert parse_tune_spec(raw).fingerprint() != parse_tune_spec(wider).fingerprint()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "needs a `search:` section"),
        ({"search": {"learning_rate": {"low": 1, "high": 2}}}, "not a training config key"),
        ({"search": {"lr": {"low": 0.0, "high": 1e-2, "log": True}}}, "log range needs low > 0"),
        ({"search": {"lr": {"low": 1e-2, "high": 1e-3}}}, "low < high"),
        ({"search": {"epochs": {"low": 2.5, "high": 6}}}, "integer key"),
        ({"search": {"backbone": {"low": 1, "high": 2}}}, "only numeric keys take a range"),
        ({"search": {"augment.scale": {"choices": [[0.9, 1.1]]}}}, "choices are numbers"),
        ({"search": {"lr": {"low": 1e-4, "high": 1e-2}}, "tune": {"metric": "accuracy"}}, "tune.metric"),
        (
            {"search": {"lr": {"low": 1e-4, "high": 1e-2}}, "tune": {"pruner": {"type": "median", "eta": 3}}},
            "does not take ['eta']",
        ),
        ({"search": {"lr": {"low": 1e-4, "high": 1e-2}}, "epochz": 3}, "unknown training config keys"),
    ],
)
def test_a_bad_tuning_config_is_a_clear_error(raw: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        parse_tune_spec(raw)
    assert message in caught.value.detail and caught.value.code == "bad_config"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    data = tmp_path / "data.csv"
    data.write_text("path,label\n")
    result = CliRunner().invoke(
        app,
        ["tune", "--data", str(data), "--config", str(path), "--trials", "2", "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 2 and "bad_config" in result.output
    assert "Traceback" not in result.output
