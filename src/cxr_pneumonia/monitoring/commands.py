"""`cxr monitor reference|replay`: thin doors onto monitoring/. Only typer at import time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

monitor_app = typer.Typer(
    help="Production monitoring: drift references and offline replay.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@monitor_app.command("reference")
def reference_command(
    package: Annotated[Path, typer.Argument(help="the model package to add a reference to")],
    data: Annotated[
        Path, typer.Option("--data", help="its training data: a folder (Kermany layout) or a CSV")
    ],
    out: Annotated[Path, typer.Option("--out", help="where to write the new package")],
    max_images: Annotated[int, typer.Option(help="cap on validation images used (0: all)")] = 800,
) -> None:
    """Build the monitoring reference from the validation side of DATA (never test) and write a new
    package with it (version +monN, the old package as parent)."""
    from ..config import get_settings
    from ..errors import CXRError
    from ..inference import Predictor
    from .packaging import write_with_reference
    from .provide import reference_from_data

    try:
        predictor = Predictor.from_package(package)
        reference = reference_from_data(predictor, get_settings(), data, max_images=max_images)
        written = write_with_reference(predictor.package, reference, out)
    except CXRError as exc:
        raise _fail(exc.detail) from exc
    m = written.manifest
    typer.echo(json.dumps({"package": str(out), "model_id": m.model_id, "digest": m.digest,
                           "parent": m.parent, "reference_images": reference.size}))  # fmt: skip


@monitor_app.command("replay")
def replay_command(
    sources: Annotated[list[str], typer.Argument(help="folders, files or globs, replayed in this order")],
    model: Annotated[
        Path | None, typer.Option("--model", help="model package (default: the bundled one)")
    ] = None,
    reference_data: Annotated[
        Path | None,
        typer.Option("--reference-data", help="data to build a reference from if the package has none"),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="shuffle seed (default fixed)")] = None,
    no_shuffle: Annotated[bool, typer.Option("--no-shuffle", help="keep each source's file order")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Run images through the monitor, source after source, and report when each test first alarmed."""
    from ..config import get_settings
    from ..errors import CXRError
    from ..inference import Predictor
    from .detector import DriftConfig
    from .provide import reference_for
    from .replay import DEFAULT_SEED, ordered_sources, replay

    settings = get_settings()
    try:
        ordered_sources(sources, seed=0, shuffle=False)  # a bad source fails before any reference is built
        predictor = Predictor.from_package(model or settings.model_path, min_side=settings.min_side)
        reference = reference_for(predictor, settings, reference_data)
        result = replay(
            predictor,
            reference,
            sources,
            config=DriftConfig.from_settings(settings),
            seed=DEFAULT_SEED if seed is None else seed,
            shuffle=not no_shuffle,
        )
    except CXRError as exc:
        raise _fail(exc.detail) from exc
    data = result.to_dict()
    if as_json:
        typer.echo(json.dumps(data))
        return
    for source in data["sources"]:
        typer.echo(f"{source['path']}: images {source['start']}..{source['start'] + source['count'] - 1}")
    for test in data["tests"]:
        typer.echo(f"{test['kind']:8} {test['name']:24} first alarm: {test['first_alarm']}")


@monitor_app.command("report")
def report_command(
    since: Annotated[datetime, typer.Option("--since", help="from this date or time (UTC), e.g. 2026-12-01")],
    out: Annotated[Path, typer.Option("--out", help="directory for index.html and its PNG plots")],
    model: Annotated[
        Path | None, typer.Option("--model", help="the served package (default: CXR_MODEL_PATH)")
    ] = None,
) -> None:
    """An HTML report from the service's database: reference vs window histograms, drift over time,
    the newest tests, and a reliability diagram of the reviewed cases."""
    from ..config import get_settings
    from ..errors import CXRError
    from ..inference import Predictor
    from ..store.facade import Store
    from .provide import cached_reference
    from .report import write_report

    settings = get_settings()
    try:
        predictor = Predictor.from_package(model or settings.model_path)
        reference = cached_reference(predictor, settings)
        if reference is None:
            raise _fail("the package has no monitoring reference: make one with `cxr monitor reference`")
        store = Store.from_settings(settings)
        try:
            index = write_report(store, reference, predictor.model_ref.digest, out,
                                 since=since if since.tzinfo else since.replace(tzinfo=UTC),
                                 alpha=settings.monitoring_alpha, min_reviews=settings.monitoring_min_reviews)  # fmt: skip
        finally:
            store.close()
    except CXRError as exc:
        raise _fail(exc.detail) from exc
    typer.echo(str(index))
