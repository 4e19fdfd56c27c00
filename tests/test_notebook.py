"""examples/quickstart.ipynb runs from top to bottom (nbclient, a real kernel), and is committed
without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"


def test_the_committed_notebook_has_no_outputs() -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, f"cells {dirty} keep outputs: clear them before committing (outputs stay out of git)"


@pytest.mark.slow
def test_the_notebook_runs(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")
    pytest.importorskip("ipykernel", reason="ipykernel is in the dev extra")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("CXR_SHARED_DATA", str(shared_data))  # the kernel inherits it
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})  # fmt: skip
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )  # fmt: skip
    assert "AUROC" in text and "FHIR DiagnosticReport: preliminary" in text and "service stopped" in text
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 4  # the overlay, the ROC and reliability plots, the served heatmap
