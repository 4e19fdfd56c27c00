"""``cxr dicom-node``: run the DICOM node in the foreground until interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("dicom-node")(dicom_node)


def dicom_node(
    ae_title: Annotated[str | None, typer.Option(help="this node's AE title [CXR_DICOM_AE_TITLE]")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [CXR_DICOM_PORT, 11112]")] = None,
    bind: Annotated[str | None, typer.Option(help="address to listen on [CXR_DICOM_BIND, 0.0.0.0]")] = None,
    destination: Annotated[
        str | None, typer.Option(help="AE@HOST:PORT receiving the results [CXR_DICOM_DESTINATION]")
    ] = None,
    destination_dicomweb: Annotated[
        str | None,
        typer.Option(
            help="DICOMweb base URL receiving the results by STOW-RS [CXR_DICOM_DESTINATION_DICOMWEB]"
        ),
    ] = None,
    accept_ae: Annotated[
        list[str] | None,
        typer.Option(help="calling AE title allowed to send (repeat; default: any) [CXR_DICOM_ACCEPT_AES]"),
    ] = None,
    spool_dir: Annotated[
        Path | None, typer.Option(help="received-instance queue and result outbox [CXR_DICOM_SPOOL_DIR]")
    ] = None,
    keep_received: Annotated[
        bool | None, typer.Option("--keep-received/--no-keep-received", help="keep instances after analysis")
    ] = None,
    refusal_sr: Annotated[
        bool | None,
        typer.Option("--refusal-sr/--no-refusal-sr", help="send an SR saying why an image was refused"),
    ] = None,
    retry_initial: Annotated[float | None, typer.Option(help="first retry delay, seconds")] = None,
    retry_max: Annotated[float | None, typer.Option(help="longest retry delay, seconds")] = None,
    retry_max_attempts: Annotated[
        int | None, typer.Option(help="park a result after this many refusals (0: never)")
    ] = None,
    tls: Annotated[
        bool | None, typer.Option("--tls/--no-tls", help="listen with TLS only [CXR_DICOM_TLS]")
    ] = None,
    destination_tls: Annotated[
        bool | None,
        typer.Option(
            "--destination-tls/--no-destination-tls", help="send results over TLS [CXR_DICOM_DESTINATION_TLS]"
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="this node's certificate, PEM [CXR_DICOM_TLS_CERT]")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="its private key, PEM [CXR_DICOM_TLS_KEY]")] = None,
    tls_ca: Annotated[
        Path | None, typer.Option(help="CA bundle the peers' certificates must chain to [CXR_DICOM_TLS_CA]")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="model package [CXR_MODEL_PATH]")] = None,
) -> None:
    """Receive radiographs from a PACS; send back a Structured Report and a Secondary Capture.

    The Secondary Capture shows the heatmap. Decision support, not a diagnosis.
    """
    import logging
    import signal
    import threading

    from rich.console import Console
    from rich.markup import escape

    from .. import logs
    from ..config import get_settings
    from ..errors import CXRError
    from .node import DicomNode
    from .options import NodeOptions

    settings = get_settings()
    if model is not None:
        settings = settings.model_copy(
            update={"model_uri": str(model)}
        )  # a --model path wins over CXR_MODEL_URI
    logs.configure(settings.log_level, settings.log_format)
    # pynetdicom logs every PDU at INFO, and highdicom names the source instance's UID: their warnings
    # are what an operator needs.
    for noisy in ("pynetdicom", "highdicom"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    console = Console(stderr=True)
    try:
        options = NodeOptions.from_settings(
            settings,
            ae_title=ae_title,
            port=port,
            bind=bind,
            destination=destination,
            destination_dicomweb=destination_dicomweb,
            accept_aes=tuple(accept_ae) if accept_ae else None,
            spool_dir=spool_dir,
            keep_received=keep_received,
            refusal_sr=refusal_sr,
            retry_initial_seconds=retry_initial,
            retry_max_seconds=retry_max,
            retry_max_attempts=retry_max_attempts,
            listen_tls=tls,
            destination_tls=destination_tls,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
        )
        node = DicomNode.from_settings(settings, options)
        host, bound = node.start()
    except CXRError as exc:
        console.print(f"[red]error[/red] {escape(f'[{exc.code}] {exc.detail}')}")
        raise typer.Exit(code=2) from None
    except OSError as exc:  # port in use, a port below 1024 without the right, unwritable spool, ...
        console.print(f"[red]error[/red] cannot start the DICOM node: {escape(str(exc))}")
        raise typer.Exit(code=2) from None

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    target = options.destination or options.destination_dicomweb or "nowhere yet (results wait in the outbox)"
    over = " over TLS" if options.listen_tls else ""
    typer.echo(
        f"DICOM node {options.ae_title} listening on {host}:{bound}{over}; results to {target}", err=True
    )
    try:
        stop.wait()
    finally:
        node.stop()
        typer.echo("DICOM node stopped", err=True)
