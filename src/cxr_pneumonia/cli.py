"""The ``cxr`` command: thin doors onto the modules; no logic of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from .errors import CXRError

app = typer.Typer(help="CXR Pneumonia Detector: decision support, not a diagnosis.", no_args_is_help=True)
data_app = typer.Typer(help="Datasets: catalog and manifests.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
err_console = Console(stderr=True)


def _fail(exc: CXRError) -> typer.Exit:
    err_console.print(f"[red]error[/red] [{exc.code}] {exc.detail}")
    return typer.Exit(code=2)


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="PNG, JPEG, TIFF or DICOM file")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show an image's format, size, non-identifying metadata and pixel statistics."""
    from .imaging import load

    try:
        xray = load(file)
    except CXRError as exc:
        raise _fail(exc) from None
    report = {"file": str(file), "sha256": xray.sha256, **xray.meta.to_dict(), "pixels": xray.pixel_stats()}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(show_header=False)
    for key, value in report.items():
        if value is not None and value != [] and value != ():
            table.add_row(key, str(value))
    console.print(table)


@data_app.command("scan")
def data_scan(
    root: Annotated[
        Path, typer.Argument(help="ROOT/<split>/<CLASS>/*, ROOT/<CLASS>/*, or a CSV path,label[,...]")
    ],
    manifest_out: Annotated[Path | None, typer.Option(help="write the manifest CSV here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Catalog a dataset: counts, patients, duplicates, unreadable files, and a version id."""
    from .data.catalog import scan

    try:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("scanning", total=None)
            manifest = scan(root, progress=lambda i, n: progress.update(task, completed=i, total=n))
    except CXRError as exc:
        raise _fail(exc) from None
    if manifest_out is not None:
        manifest.write_csv(manifest_out)
    summary = manifest.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(
        title=f"dataset {summary['version_id']} ({summary['images']} images, {summary['patients']} patients)"
    )
    for column in ("split", "images", "patients", "normal", "pneumonia", "bacterial", "viral"):
        table.add_column(column, justify="right")
    for split, c in summary["splits"].items():
        table.add_row(
            split,
            str(c.get("total", 0)),
            str(c["patients"]),
            *(str(c.get(k, 0)) for k in ("normal", "pneumonia", "bacterial", "viral")),
        )
    console.print(table)
    console.print(
        f"duplicate images: {len(summary['duplicates'])} "
        f"({summary['duplicates_across_splits']} across splits); unreadable: {len(summary['unreadable'])}; "
        f"patients in several splits: {len(summary['patients_in_several_splits'])}"
    )


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="dataset folder or CSV")],
    out: Annotated[Path, typer.Option(help="run directory (checkpoints, log, package)")],
    config: Annotated[Path | None, typer.Option(help="YAML training config")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the run directory's last checkpoint")] = False,
    epochs: Annotated[int | None, typer.Option(help="override the config's epochs")] = None,
    max_images: Annotated[int | None, typer.Option(help="use at most this many training images")] = None,
) -> None:
    """Train, calibrate on validation, export ONNX and write a model package (needs the train extra)."""
    from dataclasses import replace

    from .training.config import TrainConfig
    from .training.run import train as run_training

    recorded = out / "config.yaml"
    if config is None and resume and recorded.exists():
        config = recorded  # a resumed run keeps the configuration it started with
    cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    if max_images is not None:
        cfg = replace(cfg, max_images=max_images)
    try:
        result = run_training(data, out, cfg, resume=resume, console=console)
    except CXRError as exc:
        raise _fail(exc) from None
    console.print(f"best epoch {result.best_epoch}, validation AUROC {result.val_auroc:.4f}")
    console.print(f"package: {result.package_dir}")


# ---- command groups defined next to the code they drive (each module imports lazily) ----------
# (one line each; keep heavy imports out of module level so `cxr predict` starts fast)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
