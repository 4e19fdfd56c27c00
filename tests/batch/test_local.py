"""`cxr predict --format jsonl|parquet` on this machine: CSV manifests, rows appended, a re-run resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import read_jsonl, run_predict


@pytest.fixture(scope="module")
def images(kermany: Path) -> list[Path]:
    return sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:6]


def test_a_killed_job_resumes_without_repeating_a_row(images: list[Path], tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\n" + "".join(f"{p}\n" for p in images))
    output = tmp_path / "rows.jsonl"
    done = run_predict([str(manifest), "--format", "jsonl", "--output", str(output)])
    assert done.returncode == 0, done.stderr
    full = read_jsonl(output)
    # As a killed run leaves it: the first rows, and the next one cut short.
    lines = output.read_text().splitlines(keepends=True)
    output.write_text("".join(lines[:2]) + lines[2][:40])
    again = run_predict([str(manifest), "--format", "jsonl", "--output", str(output)])
    assert again.returncode == 0, again.stderr
    assert "2 inputs already in" in again.stderr
    resumed = read_jsonl(output)
    assert sorted(r["path"] for r in resumed) == sorted(map(str, images))
    assert {r["path"]: r["p_pneumonia"] for r in resumed} == {r["path"]: r["p_pneumonia"] for r in full}
    third = run_predict([str(manifest), "--format", "jsonl", "--output", str(output)])
    assert "6 inputs already in" in third.stderr and len(read_jsonl(output)) == len(images)


def test_parquet_output_holds_the_same_rows_and_resumes(images: list[Path], tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet output needs pyarrow (the cluster extra)")
    jsonl, parquet = tmp_path / "rows.jsonl", tmp_path / "rows.parquet"
    folder = images[0].parent
    assert (
        run_predict([str(folder / "IM-000*.jpeg"), "--format", "jsonl", "--output", str(jsonl)]).returncode
        == 0
    )
    first = run_predict([str(p) for p in images[:3]] + ["--format", "parquet", "--output", str(parquet)])
    assert first.returncode == 0, first.stderr
    second = run_predict([str(folder / "IM-000*.jpeg"), "--format", "parquet", "--output", str(parquet)])
    assert second.returncode == 0, second.stderr
    rows = [row for part in sorted(parquet.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]
    expected = {r["path"]: r for r in read_jsonl(jsonl)}
    assert len(rows) == len(expected) and {r["path"] for r in rows} == set(expected)
    for row in rows:
        assert (
            row["sha256"] == expected[row["path"]]["sha256"]
            and row["label"] == expected[row["path"]]["label"]
        )


def test_a_manifest_without_a_path_column_is_a_clear_error(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text("file,label\nx.png,normal\n")
    done = run_predict([str(manifest), "--format", "jsonl"])
    assert done.returncode == 2 and "needs a 'path' column" in done.stderr


def test_ray_wants_a_resumable_format(images: list[Path]) -> None:
    done = run_predict([str(images[0]), "--ray", "local"])
    assert done.returncode == 2 and "--ray writes jsonl or parquet" in done.stderr
