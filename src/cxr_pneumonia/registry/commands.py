"""`cxr models ...`: thin doors onto the registry (registry/lifecycle.py). Needs MLflow (the
`registry` extra). Imported by cli.py at start-up, so only typer here; the rest inside the commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from .lifecycle import Registry

models_app = typer.Typer(
    help="The model registry (MLflow): register, promote, roll back.", no_args_is_help=True
)
NameOpt = Annotated[
    str | None, typer.Option("--name", help="registered model (default CXR_REGISTRY_MODEL_NAME)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _registry() -> Iterator[Registry]:
    from ..config import get_settings
    from ..errors import CXRError
    from ..store.commands import fail
    from .lifecycle import Registry

    registry = None
    try:
        registry = Registry(get_settings())
        yield registry
    except CXRError as exc:
        raise fail(f"[{exc.code}] {exc.detail}") from None
    finally:
        if registry is not None and registry._store is not None:
            registry._store.close()


def _name(name: str | None) -> str:
    from ..config import get_settings

    return name or get_settings().registry_model_name


def _actor() -> str:
    from ..store.commands import cli_actor

    return cli_actor()


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@models_app.command("register")
def register_version(
    package_dir: Annotated[Path, typer.Argument(help="a model package folder (model.json, model.onnx, ...)")],
    name: NameOpt = None,
    alias: Annotated[
        str | None, typer.Option(help="set this alias (champion: only while there is none)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a package as a new version (a no-op printing the version if its digest is there)."""
    from .lifecycle import describe

    with _registry() as registry:
        result = registry.register(package_dir, _name(name), alias, actor=_actor())
    info = {**describe(result.version), "created": result.created}
    if as_json:
        _echo_json(info)
    elif result.created:
        typer.echo(
            f"registered {info['name']} version {info['version']} ({info['package']}, digest {info['digest'][:12]}…)"
            + (f" as {alias}" if alias else "")
        )
    else:
        typer.echo(
            f"already registered: {info['name']} version {info['version']} has digest {info['digest'][:12]}…"
        )


@models_app.command("list")
def list_versions(name: NameOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered version, with its aliases, package and digest."""
    with _registry() as registry:
        rows = registry.listing(name)
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        aliases = ",".join(row["aliases"]) or "-"
        typer.echo(
            f"{row['name']:<20} v{row['version']:<4} {aliases:<20} {row['package']:<28} {row['digest'][:12]}"
        )


@models_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="registered model")],
    version: Annotated[str, typer.Argument(help="a version number or an alias")],
    as_json: JsonOpt = False,
) -> None:
    """One version: its tags (digest, lineage, code) and its recorded evaluations."""
    from .lifecycle import describe

    with _registry() as registry:
        info = describe(registry.get(name, version))
    if as_json:
        _echo_json(info)
        return
    for key, value in info.items():
        if key != "evaluations":
            typer.echo(f"{key:<16} {value}")
    for key, metrics in info["evaluations"].items():
        typer.echo(f"evaluation {key}: " + ", ".join(f"{m} {v:.4f}" for m, v in sorted(metrics.items())))


@models_app.command("compare")
def compare(
    name: Annotated[str, typer.Argument(help="registered model")],
    a: Annotated[str, typer.Argument(help="version or alias (e.g. champion)")],
    b: Annotated[str, typer.Argument(help="version or alias")],
    as_json: JsonOpt = False,
) -> None:
    """Recorded metrics side by side, and agreement on live traffic where the service ran both."""
    from .comparison import compare_versions

    with _registry() as registry:
        report = compare_versions(registry, name, a, b)
    if as_json:
        _echo_json(report)
        return
    typer.echo(
        f"{'evaluation':<28} {'metric':<12} {'v' + report['a']['version']:>10} {'v' + report['b']['version']:>10}"
    )
    for row in report["metrics"]:
        cells = [f"{v:.4f}" if isinstance(v, float) else "-" for v in (row["a"], row["b"])]
        typer.echo(f"{row['evaluation']:<28} {row['metric']:<12} {cells[0]:>10} {cells[1]:>10}")
    live = report["live"]
    if not live["pairs"]:
        typer.echo("live traffic: no input was answered by one and shadowed by the other")
        return
    typer.echo(
        f"live traffic: {live['pairs']} inputs, agreement {live['agreement']['value']:.3f}, "
        f"mean |Δp| {live['mean_abs_delta_p']:.4f}, flips {live['label_flips']}, reviewed {live['reviewed']}"
    )


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="registered model")],
    version: Annotated[str, typer.Argument(help="the version to point the alias at")],
    alias: Annotated[str, typer.Option(help="the alias to move")] = "champion",
    force: Annotated[bool, typer.Option(help="override a refusing gate (needs --reason)")] = False,
    reason: Annotated[str, typer.Option(help="why the gate is overridden (audited)")] = "",
) -> None:
    """Move an alias. For champion the gate must pass: same evaluation set, not worse beyond tolerances."""
    with _registry() as registry:
        result = registry.promote(name, version, alias, force=force, reason=reason, actor=_actor())
    gate = (
        f" (gate: {result.reason}{'; overridden: ' + reason if force and not result.passed else ''})"
        if result
        else ""
    )
    typer.echo(f"{name} {alias} -> version {version}{gate}")


@models_app.command("rollback")
def rollback(name: Annotated[str, typer.Argument(help="registered model")]) -> None:
    """Move champion back to the version it pointed to before."""
    with _registry() as registry:
        previous = registry.rollback(name, actor=_actor())
    typer.echo(f"{name} champion -> version {previous}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
