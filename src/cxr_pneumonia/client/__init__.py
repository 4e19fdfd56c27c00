"""A Python client of the REST service (httpx; no PyTorch): typed results, retries, project errors.

from cxr_pneumonia.client import Client
with Client("http://127.0.0.1:8000", api_key="...") as cxr:
    result = cxr.predict("chest.jpeg")

from cxr_pneumonia.client import AsyncClient
async with AsyncClient("http://127.0.0.1:8000", api_key="...") as cxr:
    results = await asyncio.gather(*(cxr.predict(path) for path in paths))
"""

from __future__ import annotations

from .aio import AsyncClient
from .errors import ApiError, AuthError, ServerUnavailable
from .http import Client
from .models import BatchItem, BatchResult, PredictionPage, PredictionResult, ReviewResult

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthError",
    "BatchItem",
    "BatchResult",
    "Client",
    "PredictionPage",
    "PredictionResult",
    "ReviewResult",
    "ServerUnavailable",
]
