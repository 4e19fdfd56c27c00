"""Request parameter types shared by several routes, with their bounds in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

from ..store.db.base import as_utc

_EARLIEST, _LATEST = datetime(1970, 1, 1), datetime(2200, 1, 1)


def _moment(value: datetime) -> datetime:
    """Aware UTC within 1970..2200 (a naive value is read as UTC). Bounded so that no date a client
    can send overflows a conversion or a database type further on."""
    try:
        utc = as_utc(value)
    except OverflowError as exc:
        raise ValueError("the date is out of range") from exc
    if not _EARLIEST <= utc.replace(tzinfo=None) < _LATEST:
        raise ValueError("dates must lie between 1970 and 2200")
    return utc


Moment = Annotated[datetime, AfterValidator(_moment)]
PredictionId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="a prediction id")]
