"""`cxr serve`: prepare the database, greet a first user, run Uvicorn (one process or several)."""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .. import logs
from ..config import Settings
from ..tls import TlsFiles

APP_FACTORY = "cxr_pneumonia.service.app:create_app_from_env"


def prepare_multiprocess_metrics(settings: Settings, workers: int) -> Path | None:
    """With several workers, prometheus-client must keep values in files: set the directory before
    prometheus_client is first imported, in this process and (inherited) in every worker."""
    if workers <= 1:
        return None
    directory = (settings.data_dir / "prometheus").resolve()
    shutil.rmtree(directory, ignore_errors=True)  # stale files from a previous run would be summed in
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def tls_files(settings: Settings) -> TlsFiles | None:
    """The service's certificate, key and client CA (CXR_TLS_*), or None to serve plain HTTP."""
    if settings.tls_cert is None and settings.tls_key is None and settings.tls_ca is None:
        return None
    files = TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_ca)
    files.server_context()  # a bad certificate stops the start here, with a clear message
    return files


def _server_context(files: TlsFiles, _config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    # Module level (and the files picklable), so that every spawned worker builds its own context.
    return files.server_context()


def run(host: str, port: int, workers: int, settings: Settings, tls: TlsFiles | None = None) -> None:
    import uvicorn

    logs.configure(settings.log_level, settings.log_format)
    # Our handlers, not Uvicorn's; its access line (raw path and query) gives way to the middleware's.
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
    }
    if tls is not None:
        common["ssl_context_factory"] = partial(_server_context, tls)
    if workers > 1:
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, **common)
        return
    from .app import create_app

    uvicorn.run(create_app(settings), **common)
