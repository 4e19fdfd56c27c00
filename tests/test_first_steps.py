"""What a new user trips on: the README names a real file, `make run PORT=...`, and how to predict."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cxr_pneumonia.service.banner import banner
from cxr_pneumonia.store.bootstrap import FirstLogin

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_predicts_on_a_file_that_exists() -> None:
    text = (ROOT / "README.md").read_text()
    uploads = re.findall(r"-F file=@(\S+)", text)
    assert uploads, "the README's first steps upload no file"
    if not (ROOT.parent / "shared" / "data").is_dir():
        pytest.skip("the real data is not beside the checkout (../shared/data)")
    for upload in uploads:
        assert (ROOT / upload).is_file(), f"{upload} does not exist beside the checkout"


def test_make_run_takes_a_port() -> None:
    done = subprocess.run(
        ["make", "-n", "-W", ".venv/.installed-base", "run", "PORT=8080"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert re.search(r"cxr serve --port 8080\b", done.stdout), done.stdout + done.stderr


def test_the_banner_and_readme_say_how_to_get_someone_who_can_predict() -> None:
    login = FirstLogin(username="admin", password="x" * 20)
    for text in (banner(login, "http://127.0.0.1:8000"), (ROOT / "README.md").read_text()):
        assert "cxr users create" in text and "--role clinician" in text
