"""The ``cxr`` command: thin doors onto the modules; no logic of its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from typer.core import TyperArgument, TyperOption

from . import __version__
from . import config as _telemetry_off  # noqa: F401 - imported first: it turns library telemetry off
from .errors import CXRError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .inference import Prediction, Predictor


_TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "Path": "PATH"}


def _readable_type(shown: Callable[[Any, Any], str | None]) -> Callable[[Any, Any], str | None]:
    """What a mature CLI shows after an option: nothing for a flag, TEXT, INTEGER, PATH... otherwise.

    Typer 0.2x prints the annotation instead (``<bool>`` after every flag, ``<list[str]>``).
    """

    def display(self: Any, ctx: Any) -> str | None:
        raw = shown(self, ctx)
        if raw is None or getattr(self, "is_flag", False) or raw in ("<bool>", "bool"):
            return None
        inner = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
        if inner.startswith("list[") and inner.endswith("]"):
            return _TYPE_NAMES.get(inner[5:-1], inner[5:-1].upper()) + "..."
        return _TYPE_NAMES.get(inner, inner.upper() if raw.startswith("<") else inner)

    return display


TyperOption.display_type_rich = _readable_type(TyperOption.display_type_rich)  # type: ignore[method-assign,assignment]
TyperArgument.display_type_rich = _readable_type(TyperArgument.display_type_rich)  # type: ignore[method-assign,assignment]

app = typer.Typer(
    help="CXR Pneumonia Detector: decision support, not a diagnosis.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Datasets: catalog and manifests.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
err_console = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cxr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """CXR Pneumonia Detector: decision support, not a diagnosis."""


def _fail(exc: CXRError) -> typer.Exit:
    err_console.print(f"[red]error[/red] {escape(f'[{exc.code}]')} {escape(exc.detail)}")
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
    if summary["dvc"]:
        console.print(_dvc_line(summary["dvc"]))
    console.print(
        f"duplicate images: {len(summary['duplicates'])} "
        f"({summary['duplicates_across_splits']} across splits); unreadable: {len(summary['unreadable'])}; "
        f"patients in several splits: {len(summary['patients_in_several_splits'])} "
        f"({len(summary['patients_in_several_splits_same_label'])} with the same label on both sides)"
    )


def _dvc_line(dvc: dict[str, Any]) -> str:
    dirty = " (uncommitted changes)" if dvc["git_dirty"] else ""
    revision = f"git {dvc['git_revision']}{dirty}" if dvc["git_revision"] else "not in a git repository"
    return f"DVC version {dvc['md5']} ({escape(dvc['source'])}), {revision}"


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="dataset folder or CSV")],
    out: Annotated[Path, typer.Option(help="run directory (checkpoints, log, package)")],
    config: Annotated[Path | None, typer.Option(help="YAML training config")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the run directory's last checkpoint")] = False,
    epochs: Annotated[int | None, typer.Option(help="override the config's epochs")] = None,
    max_images: Annotated[int | None, typer.Option(help="use at most this many training images")] = None,
    nproc: Annotated[
        int, typer.Option(min=1, help="processes on this machine (>1: torchrun, DistributedDataParallel)")
    ] = 1,
) -> None:
    """Train, calibrate on validation, export ONNX and write a model package (needs the train extra)."""
    from .training.config import resolve_config
    from .training.run import train as run_training

    try:
        cfg = resolve_config(config, out, resume, epochs, max_images)
        if nproc > 1:
            from .training.launch import launch, rank_arguments

            status = launch(
                nproc, cfg.batch_size, rank_arguments(data, out, config, resume, epochs, max_images)
            )
            if status:
                raise typer.Exit(code=status)
            return
        result = run_training(data, out, cfg, resume=resume, console=console)
    except CXRError as exc:
        raise _fail(exc) from None
    console.print(f"best epoch {result.best_epoch}, validation AUROC {result.val_auroc:.4f}")
    console.print(f"package: {result.package_dir}")


@app.command()
def ensemble(
    member: Annotated[list[Path], typer.Option(help="a member package (give two or more)")],
    data: Annotated[Path, typer.Option(help="the dataset the members were trained on (folder or CSV)")],
    out: Annotated[
        Path, typer.Option(help="where to write the ensemble package (must not exist or be empty)")
    ],
    version: Annotated[str, typer.Option(help="the ensemble package's version")],
    name: Annotated[str | None, typer.Option(help="its name (default: the first member's)")] = None,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="quantize the composed graph to int8 (calibrated on training images)"),
    ] = False,
    int8_calibration: Annotated[
        str, typer.Option(help="--int8: activation ranges from minmax, percentile or entropy")
    ] = "minmax",
    int8_depthwise: Annotated[
        bool, typer.Option("--int8-depthwise", help="--int8: quantize the depthwise convolutions too")
    ] = False,
) -> None:
    """Compose trained packages into one ensemble package (one graph), fitted on their shared
    validation hold-out: members' weights unchanged, never the test split (needs the train extra)."""
    from .training.ensemble import build_ensemble

    try:
        made = build_ensemble(
            member,
            data,
            out,
            version=version,
            name=name,
            int8=int8,
            calibration_method=int8_calibration,
            int8_depthwise=int8_depthwise,
        )
    except CXRError as exc:
        raise _fail(exc) from None
    console.print(f"{made.model_id} written to {out}: {len(member)} members, {_rule_summary(made)}")


@app.command()
def soup(
    run: Annotated[list[Path], typer.Option(help="a finished training run folder (give two or more)")],
    data: Annotated[Path, typer.Option(help="the dataset the runs were trained on (folder or CSV)")],
    out: Annotated[Path, typer.Option(help="where to write the soup's package (must not exist or be empty)")],
    version: Annotated[str, typer.Option(help="the soup package's version")],
    name: Annotated[str | None, typer.Option(help="its name (default: the config's)")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML whose post-training settings to use (default: the best ingredient's config)"),
    ] = None,
) -> None:
    """Average the weights of trained runs (a greedy soup, chosen on their shared validation hold-out)
    into one network, calibrated and packaged as a run is: never the test split (needs the train extra)."""
    from .training.soup import build_soup

    try:
        made = build_soup(run, data, out, version=version, name=name, config=config)
    except CXRError as exc:
        raise _fail(exc) from None
    record = made.training["soup"]
    console.print(
        f"{made.model_id} written to {out}: {record['kept']} of {len(run)} runs averaged, "
        f"scaled validation NLL {record['scaled_val_nll']:.4f}, {_rule_summary(made)}"
    )


@app.command()
def tune(
    data: Annotated[Path, typer.Option(help="dataset folder or CSV")],
    config: Annotated[Path, typer.Option(help="YAML: a base training config with `search:` and `tune:`")],
    trials: Annotated[
        int, typer.Option(help="trials to finish (completed or pruned), counting earlier runs")
    ],
    out: Annotated[Path, typer.Option(help="study folder: study.db, trials/, trials.json, best.yaml")],
    timeout: Annotated[float | None, typer.Option(help="start no new trial after this many seconds")] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default sqlite:///OUT/study.db)")
    ] = None,
) -> None:
    """Tune hyperparameters on validation (Optuna, pruned per epoch); resumable (needs the train extra)."""
    from .training.tune import tune as run_tuning

    try:
        result = run_tuning(data, config, trials, out, timeout=timeout, storage=storage, console=console)
    except CXRError as exc:
        raise _fail(exc) from None
    counts = ", ".join(f"{n} {state.lower()}" for state, n in result.counts.items() if n)
    console.print(f"study {result.study_name} ({result.storage}): {counts}")
    if result.best_config is None:
        err_console.print("[red]error[/red] no trial completed: no best config")
        raise typer.Exit(code=1)
    console.print(f"best trial {result.best_trial}: {result.best_value:.4f}; config: {result.best_config}")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="dataset folder or CSV (path,label[,subtype,patient_id,split])")],
    model: Annotated[Path | None, typer.Option(help="model package (default: the bundled one)")] = None,
    split: Annotated[
        str,
        typer.Option(
            help="split to evaluate: test, train, val, all, or shift-holdout (the package's own latest-patients"
            " hold-out, recomputed from its training config on the data it was trained on)"
        ),
    ] = "test",
    out: Annotated[Path | None, typer.Option(help="write report.json, report.md and plots here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    record: Annotated[
        bool, typer.Option(help="record the metrics in the package's model.json and card")
    ] = False,
) -> None:
    """Evaluate a model package on labelled data through ONNX Runtime (what is served)."""
    import sys

    from .training.evaluate import evaluate as run_evaluation
    from .training.evaluate import record_in_package, write_outputs
    from .training.report import markdown_report

    try:
        predictor = _open_predictor(model)
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("evaluating", total=None)
            report, items = run_evaluation(
                predictor, data, split, progress=lambda i, n: progress.update(task, completed=i, total=n)
            )
    except CXRError as exc:
        raise _fail(exc) from None
    if out is not None:
        write_outputs(report, items, out)
    if record:
        record_in_package(predictor.package.path, report, "cxr " + " ".join(sys.argv[1:]))
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.items() if k != "reliability"}, indent=2))
    else:
        console.print(markdown_report(report))


@app.command()
def recalibrate(
    model: Annotated[Path, typer.Option(help="the model package to recalibrate")],
    out: Annotated[Path, typer.Option(help="where to write the new package (must not exist or be empty)")],
    data: Annotated[
        Path | None, typer.Option(help="the site's labelled cases: folder or CSV (path,label,...)")
    ] = None,
    from_reviews: Annotated[
        bool,
        typer.Option(
            "--from-reviews", help="fit on the store's reviewed predictions (their stored logits), no images"
        ),
    ] = False,
    split: Annotated[str, typer.Option(help="rows of the data to fit on: all, or a split name")] = "all",
    holdout: Annotated[
        float, typer.Option(help="--from-reviews: share of reviewed cases held out to measure on")
    ] = 0.3,
    seed: Annotated[int, typer.Option(help="--from-reviews: seed of the held-out split")] = 0,
    version: Annotated[str | None, typer.Option(help="the new package's version")] = None,
    result_json: Annotated[
        Path | None, typer.Option(help="also write the new package and its evaluation here (JSON)")
    ] = None,
) -> None:
    """Refit temperature, threshold and conformal quantile on a site's labelled cases (--data) or on
    the clinicians' reviewed predictions (--from-reviews): a new package version (same weights) whose
    model.json names its parent and the cases."""
    if (data is None) == (not from_reviews):
        raise _fail(CXRError("give either --data or --from-reviews", code="usage")) from None
    evaluation = None
    try:
        if from_reviews:
            child, evaluation = _recalibrate_from_reviews(model, out, holdout, seed, version)
        else:
            from .training.recalibrate import recalibrate as run_recalibration

            assert data is not None
            child = run_recalibration(model, data, out, split=split, version=version)
    except CXRError as exc:
        raise _fail(exc) from None
    parent = child.parent["model_id"] if child.parent else "?"
    console.print(f"{child.model_id} written to {out} (parent {parent}): {_rule_summary(child)}")
    if result_json is not None:
        result = {"package": str(out.resolve()), "model_id": child.model_id, "digest": child.digest}
        result_json.write_text(json.dumps({**result, "parent": child.parent, "evaluation": evaluation}))
    if evaluation is None:
        console.print(f"evaluate it on cases it was not fitted on: cxr evaluate --model {out} --data ...")


def _rule_summary(manifest: Any) -> str:
    """A package's fitted decision rule in one line: temperature, threshold, conformal quantile(s)."""
    cal = manifest.calibration
    quantiles = cal.conformal_quantiles or cal.conformal_quantile
    return f"T={cal.temperature:.3f}, threshold {cal.threshold:.4f}, quantiles {quantiles}"


def _recalibrate_from_reviews(
    model: Path, out: Path, holdout: float, seed: int, version: str | None
) -> tuple[Any, dict[str, Any]]:
    from .config import get_settings
    from .store.facade import Store
    from .training.recalibrate_reviews import recalibrate_from_reviews

    def progress(fraction: float, stage: str) -> None:
        typer.echo(f"[progress {fraction:.2f}] {stage}")  # read by the job runner (jobs/runner.py)

    store = Store.from_settings(get_settings())
    try:
        done = recalibrate_from_reviews(
            model,
            store,
            out,
            source=store.label,
            holdout=holdout,
            seed=seed,
            version=version,
            progress=progress,
        )
    finally:
        store.close()
    for when in ("before", "after"):
        m = done.evaluation[when]
        shown = ", ".join(
            f"{name} {m[key]:.3f}" if isinstance(m[key], float) else f"{name} -"
            for name, key in (("sensitivity", "sensitivity"), ("specificity", "specificity"), ("ECE", "ece"))
        )
        typer.echo(
            f"{when} ({done.evaluation['cases']}, n={m['n']}): {shown}, referred {m['referral_rate']:.3f}"
        )
    for warning in done.evaluation.get("warnings", []):
        typer.echo(f"warning: the new rule is worse on these cases: {warning}", err=True)
    return done.manifest, done.evaluation


@app.command()
def predict(
    paths: Annotated[
        list[str], typer.Argument(help="files, directories (recursive) or globs; PNG/JPEG/DICOM")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="package path or models:/NAME@ALIAS, models:/NAME/VERSION (default CXR_MODEL_URI)"),
    ] = None,
    heatmaps: Annotated[Path | None, typer.Option(help="write a heatmap overlay PNG per image here")] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table, json, csv; or jsonl, parquet (appended to, resumable)")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option(help="write the results to this file (parquet: a folder of parts)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="images per inference batch")] = 16,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="read on a Ray cluster: its ADDRESS (host:port), auto, or local (needs the cluster extra; "
            "jsonl or parquet output)",
        ),
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="send the files to a running `cxr serve` at this URL instead")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="with --server: the environment variable holding the API key")
    ] = "CXR_API_KEY",
) -> None:
    """Read chest radiographs (files, folders, globs, CSV manifests with a path column). Exit code 0 when
    every input was read or refused, 1 when any failed."""
    from .batch.job import FORMATS
    from .batch.sources import expand_sources
    from .inference.output import PredictOutcome, render, write_heatmap

    if output_format not in ("table", "json", "csv", *FORMATS):
        raise typer.BadParameter("use table, json, csv, jsonl or parquet", param_hint="--format")
    if ray is not None and output_format not in FORMATS:
        raise typer.BadParameter("--ray writes jsonl or parquet", param_hint="--format")
    if output_format == "parquet" and output is None:
        raise typer.BadParameter("parquet output needs --output DIR", param_hint="--output")
    try:
        files, problems = expand_sources(paths)
    except CXRError as exc:
        raise _fail(exc) from None
    for problem in problems:
        err_console.print(f"[yellow]skipped[/yellow] {problem}")
    if not files:
        err_console.print("[red]error[/red] no input files")
        raise typer.Exit(code=2)
    if server is not None and (model is not None or heatmaps is not None):
        raise typer.BadParameter("--model and --heatmaps are local options", param_hint="--server")
    if server is not None and (ray is not None or output_format in FORMATS):
        raise typer.BadParameter("--server writes table, json or csv, without --ray", param_hint="--server")
    if output_format in FORMATS:
        if isinstance(model, str) and model.startswith("models:/"):
            raise typer.BadParameter(
                "--format jsonl/parquet and --ray read a package path, not a registry URI",
                param_hint="--model",
            )
        package = Path(model) if model is not None else None
        _predict_batch(files, problems, output_format, output, package, heatmaps, batch_size, ray)
    try:
        if server is not None:
            results = _served_results(server, api_key_env, files, batch_size)
        else:
            predictor = _open_predictor(model)
            results = predictor.iter_predict(files, heatmap=heatmaps is not None, batch_size=batch_size)
        outcomes: list[PredictOutcome] = []
        with Progress(console=err_console, transient=True, disable=len(files) < 4) as progress:
            task = progress.add_task("reading", total=len(files))
            for path, result in zip(files, results, strict=True):
                outcome = PredictOutcome.of(path, result)
                if heatmaps is not None and outcome.prediction is not None:
                    write_heatmap(path, outcome.prediction, heatmaps)
                outcomes.append(outcome)
                progress.advance(task)
    except CXRError as exc:  # a local model that cannot load; a server that refuses us or is down
        raise _fail(exc) from None
    text = render(outcomes, output_format)
    if output is not None:
        output.write_text(text)
    else:
        typer.echo(text)
    _summarise(PredictOutcome.summary(outcomes), problems)


def _summarise(counts: dict[str, int], problems: list[str]) -> None:
    """The closing line of `cxr predict` on stderr, and its exit code (1 when anything failed)."""
    total, unflagged = counts.get("total", 0), counts.get("unflagged", 0)
    err_console.print(
        f"{total} inputs: {counts.get('pneumonia', 0)} pneumonia, {counts.get('normal', 0)} normal, "
        f"{counts.get('refer', 0)} to refer, {counts.get('refused', 0)} refused, {counts.get('failed', 0)} failed"
        + (f", {len(problems)} skipped" if problems else "")
        + f"; answered with no refer flag: {unflagged}"
        + (f" ({unflagged / total:.1%})" if total else "")
    )
    raise typer.Exit(code=1 if counts.get("failed") or problems else 0)


def _predict_batch(
    files: list[Path],
    problems: list[str],
    fmt: str,
    output: Path | None,
    model: Path | None,
    heatmaps: Path | None,
    batch_size: int,
    ray: str | None,
) -> None:
    """`cxr predict --format jsonl|parquet [--ray ...]`: rows appended as they come; a re-run on the same
    output skips the inputs it already holds."""
    from .batch import sinks
    from .batch.job import Job
    from .config import get_settings

    settings = get_settings()
    job = Job(files, fmt, output, model or settings.model_path, settings, ray=ray, heatmaps=heatmaps,
              batch_size=batch_size)  # fmt: skip
    try:
        items = job.todo()
        if job.skipped:
            err_console.print(f"{job.skipped} inputs already in {output}: skipped")
        sink = sinks.open_sink(fmt, output) if output is not None else None
        write = sink.write if sink is not None else (lambda row: typer.echo(json.dumps(row)))
        try:
            with Progress(console=err_console, transient=True, disable=len(items) < 4) as progress:
                task = progress.add_task("reading" + (f" on Ray ({ray})" if ray else ""), total=len(items))
                job.run(items, write, lambda: progress.advance(task))
        finally:
            if sink is not None:
                sink.close()
    except CXRError as exc:
        raise _fail(exc) from None
    _summarise(job.counts, problems)


def _served_results(
    server: str, api_key_env: str, files: list[Path], batch_size: int
) -> Iterator[Prediction | CXRError]:
    import os

    from .client import Client

    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise CXRError(f"set {api_key_env} to an API key of the server (cxr keys create)", code="no_api_key")
    with Client(server, api_key=api_key) as client:
        yield from client.iter_predict(files, batch_size=batch_size)


def _open_predictor(model: Path | str | None) -> Predictor:
    """A path or registry URI (models:/...); default CXR_MODEL_URI, else CXR_MODEL_PATH."""
    from .config import get_settings
    from .registry.serving import ModelLoader

    settings = get_settings()
    predictor, degraded = ModelLoader(settings).load_predictor(str(model or settings.served_model_uri))
    if degraded:
        err_console.print(
            f"[yellow]degraded[/yellow] the registry did not answer; cached package: {escape(degraded)}"
        )
    return predictor


# ---- command groups defined next to the code they drive (each module imports lazily) ----------
# (one line each; keep heavy imports out of module level so `cxr predict` starts fast)
from .service.commands import register as _register_service  # noqa: E402

_register_service(app)  # serve
from .store.commands import register as _register_store  # noqa: E402

_register_store(app)  # users, keys, audit, db
from .dicom_node.commands import register as _register_dicom  # noqa: E402

_register_dicom(app)  # dicom-node
from .registry.commands import register as _register_models  # noqa: E402

_register_models(app)  # models
from .monitoring.commands import register as _register_monitor  # noqa: E402

_register_monitor(app)  # monitor


def main() -> None:
    app()


if __name__ == "__main__":
    main()
