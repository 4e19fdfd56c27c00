"""`cxr data scan` names the DVC version (md5 and git revision) of a DVC-tracked dataset, read from the
files real `dvc add` / `dvc repro` wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cxr_pneumonia.cli import app
from cxr_pneumonia.data.catalog import scan


def _scan_json(path: Path) -> dict:
    result = CliRunner().invoke(app, ["data", "scan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_scan_names_the_dvc_md5_and_git_revision(dvc_repo) -> None:
    summary = _scan_json(dvc_repo.dataset)
    dvc = summary["dvc"]
    md5 = dvc_repo.dvc_md5()
    assert dvc["md5"] == md5 and md5.endswith(".dir")
    # the md5 is DVC's own: the directory listing it names is in the DVC cache and the local remote
    assert (dvc_repo.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    assert dvc["nfiles"] == summary["images"] == 12
    assert dvc["git_revision"] == dvc_repo.head() and dvc["git_dirty"] is False
    assert dvc["source"] == str(dvc_repo.root / "xrays.dvc") and dvc["stage"] is None

    shown = CliRunner().invoke(app, ["data", "scan", str(dvc_repo.dataset)])
    assert f"DVC version {md5}" in shown.output and dvc_repo.head() in shown.output

    # A new data version whose .dvc file is not committed yet: a new md5, and dirty.
    before = summary
    next(dvc_repo.dataset.glob("NORMAL/*.jpeg")).unlink()
    dvc_repo.run("dvc", "add", "-q", "xrays")  # a new DVC version, its .dvc file not committed
    after = _scan_json(dvc_repo.dataset)
    assert after["dvc"]["md5"] == dvc_repo.dvc_md5() != before["dvc"]["md5"]
    assert after["version_id"] != before["version_id"]  # the manifest hash follows the content too
    assert after["dvc"]["git_revision"] == before["dvc"]["git_revision"]
    assert after["dvc"]["git_dirty"] is True


def test_a_dvc_lock_stage_output_is_recognised(dvc_repo) -> None:
    dvc_repo.run(
        "dvc", "stage", "add", "-q", "-n", "copy", "-d", "xrays", "-o", "copied", "cp -r xrays copied"
    )
    dvc_repo.run("dvc", "repro", "-q")
    dvc_repo.run("git", "add", "dvc.yaml", "dvc.lock", ".gitignore")
    dvc_repo.run("git", "commit", "-q", "-m", "a derived dataset")
    lock = yaml.safe_load((dvc_repo.root / "dvc.lock").read_text())
    (out,) = lock["stages"]["copy"]["outs"]
    dvc = scan(dvc_repo.root / "copied").dvc
    assert dvc is not None
    assert dvc.md5 == out["md5"] and dvc.stage == "copy" and dvc.source == str(dvc_repo.root / "dvc.lock")
    assert dvc.git_revision == dvc_repo.head() and dvc.git_dirty is False


def test_an_untracked_dataset_has_no_dvc_version(kermany: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain" / "NORMAL"
    plain.mkdir(parents=True)
    for image in sorted((kermany / "train" / "NORMAL").glob("IM-*.jpeg"))[:2]:
        shutil.copy2(image, plain / image.name)
    plain = plain.parent
    assert scan(plain).dvc is None
    assert _scan_json(plain)["dvc"] is None
