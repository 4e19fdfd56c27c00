"""`cxr serve`: the REST API's command (users, keys, audit and db are the store's: store.commands).

Imported by cli.py at start-up, so only typer is imported here; everything else inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..store.commands import cli_actor, fail


def serve(
    host: Annotated[str, typer.Option(help="address to listen on (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Uvicorn worker processes")] = 1,
    tls_cert: Annotated[
        Path | None, typer.Option(help="serve HTTPS with this certificate chain (PEM) [CXR_TLS_CERT]")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="the certificate's private key (PEM, unencrypted) [CXR_TLS_KEY]")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(help="require client certificates signed by this CA bundle (PEM) [CXR_TLS_CA]"),
    ] = None,
) -> None:
    """Run the REST API (and the web page) under Uvicorn; migrations run first."""
    from ..config import get_settings
    from .server import prepare_multiprocess_metrics, run, tls_files

    given = {"tls_cert": tls_cert, "tls_key": tls_key, "tls_ca": tls_ca}
    settings = get_settings().model_copy(update={k: v for k, v in given.items() if v is not None})
    prepare_multiprocess_metrics(settings, workers)  # before anything imports prometheus_client
    from ..errors import CXRError
    from ..package import ModelPackage
    from ..registry.serving import ModelLoader
    from ..registry.uri import parse_model_uri
    from ..store.bootstrap import ensure_admin
    from ..store.facade import Store
    from .banner import banner

    try:
        tls = tls_files(settings)
    except CXRError as exc:
        raise fail(f"{exc.code}: {exc.detail}") from None
    scheme = "https" if tls is not None else "http"
    try:
        uri = parse_model_uri(settings.served_model_uri)
        # a registry version is downloaded (once per digest) and verified here, before any worker starts
        fetched = ModelLoader(settings).fetch(uri) if uri.in_registry else None
        package = ModelPackage.open(fetched.path if fetched else settings.served_model_uri)
    except CXRError as exc:
        raise fail(
            f"the model package cannot be served: {exc.detail} (set CXR_MODEL_URI or CXR_MODEL_PATH)"
        ) from None
    if fetched is not None and fetched.degraded:
        typer.echo(f"degraded: serving the cached package ({fetched.degraded})")
    store = Store.from_settings(settings)
    first = ensure_admin(store, cli_actor())
    store.close()
    if first is not None:
        # bandit B104 accepted: a comparison, not a bind (the banner shows a reachable address).
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # nosec B104
        typer.echo(banner(first, f"{scheme}://{shown_host}:{port}"))
        sys.stdout.flush()
    served = package.manifest.model_id + (f" (registry version {fetched.version})" if fetched else "")
    typer.echo(f"serving {served} on {scheme}://{host}:{port} with {workers} worker(s)")
    sys.stdout.flush()
    run(host, port, workers, settings, tls)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
