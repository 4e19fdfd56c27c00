"""`cxr --help` reads like a mature CLI's: a version, no annotation metavars, summaries not broken."""

from __future__ import annotations

import re

import click
import pytest
import typer
from typer.testing import CliRunner

from cxr_pneumonia import __version__
from cxr_pneumonia.cli import app

RUNNER = CliRunner()


def _help(*args: str) -> str:
    result = RUNNER.invoke(app, [*args, "--help"], env={"COLUMNS": "160", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_version() -> None:
    result = RUNNER.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"cxr {__version__}"


@pytest.mark.parametrize("command", [(), *_commands(typer.main.get_group(app))], ids=" ".join)
def test_no_help_shows_python_annotations(command: tuple[str, ...]) -> None:
    text = _help(*command)
    assert not re.search(r"<(bool|list\[\w+\]|str|int|path|float)>", text), text


def test_the_dicom_node_summary_is_one_sentence_unbroken() -> None:
    row = next(line for line in _help().splitlines() if "dicom-node" in line)
    assert "Secondary Capture" in row, row
