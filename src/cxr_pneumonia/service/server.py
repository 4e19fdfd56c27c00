"""`cxr serve`: prepare the database, greet a first user, run Uvicorn (one process or several)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..config import Settings

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


def run(host: str, port: int, workers: int, settings: Settings) -> None:
    import uvicorn

    log_level = settings.log_level.lower()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if workers > 1:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            proxy_headers=True,
        )
        return
    from .app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, proxy_headers=True)
