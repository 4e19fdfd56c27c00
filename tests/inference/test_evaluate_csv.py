"""`cxr evaluate --data my.csv` on a path,label CSV (no split column) evaluates every row and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_a_csv_without_a_split_column_is_evaluated_whole(
    kermany: Path, bundled_model_path: Path, tmp_path: Path
) -> None:
    rows = [(path, "normal") for path in sorted((kermany / "test" / "NORMAL").glob("*.jpeg"))[:3]]
    rows += [(path, "pneumonia") for path in sorted((kermany / "test" / "PNEUMONIA").glob("*.jpeg"))[:3]]
    csv = tmp_path / "my.csv"
    csv.write_text("path,label\n" + "".join(f"{path},{label}\n" for path, label in rows))
    command = ["evaluate", "--data", str(csv), "--model", str(bundled_model_path), "--json", "--no-record"]
    done = subprocess.run(
        [sys.executable, "-m", "cxr_pneumonia.cli", *command],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["images"] == len(rows) or report.get("n", len(rows)) == len(rows)
    assert "every row was evaluated" in report["split_note"]
