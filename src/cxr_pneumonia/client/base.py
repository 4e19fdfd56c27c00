"""What ``Client`` and ``AsyncClient`` share: the constructor's options, the credentials and the retry
rule (which answer is retried, and how long to wait). They differ only in how they send and sleep."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import httpx

from .calls import Call, credentials
from .errors import ServerUnavailable

HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
T = TypeVar("T")
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class ClientBase(Generic[HttpT, TransportT]):
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 10.0,
        transport: TransportT | None = None,
    ) -> None:
        headers = credentials(api_key, token)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._http: HttpT = self._connect(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def _connect(self, **options: Any) -> HttpT:
        """The httpx client (one connection pool) of this kind of client."""
        raise NotImplementedError

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt)
        if retry_after and retry_after.isdigit():
            delay = min(self.max_backoff_seconds, max(delay, float(retry_after)))
        return delay


class Tries(Generic[T]):
    """One call's tries. Iterating gives the seconds to wait before each try (0 before the first);
    after each, the client sets ``answer`` (a response) or ``failure`` (the service was not reached).
    The iteration stops at the final answer (``result()``), or raises ServerUnavailable when the last
    try could not reach the service."""

    def __init__(self, client: ClientBase[Any, Any], call: Call[T]) -> None:
        self.client, self.call = client, call
        self.answer: httpx.Response | None = None
        self.failure: httpx.TransportError | None = None

    def __iter__(self) -> Iterator[float]:
        yield 0.0
        retries = self.client.retries
        for attempt in itertools.count():
            if self.failure is not None:
                if attempt >= retries:
                    failure, call = self.failure, self.call
                    raise ServerUnavailable(
                        f"{call.method} {call.path}: {type(failure).__name__}: {failure}", "unreachable", 0
                    )
                delay = self.client._delay(attempt, None)
            else:
                assert self.answer is not None, "each try sets answer or failure"
                if self.answer.status_code not in self.call.retry or attempt >= retries:
                    return
                delay = self.client._delay(attempt, self.answer.headers.get("Retry-After"))
            self.answer = self.failure = None
            yield delay

    def result(self, headers: httpx.Headers) -> T:
        assert self.answer is not None
        return self.call.finish(self.answer, headers)
