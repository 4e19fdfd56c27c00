"""Sign-in throttling that slows a password guesser without locking out everyone behind the same NAT.

Failures are counted per account and per (account, address); after a few free attempts each further
failure locks that scope for twice as long as the last (progressive back-off, capped). The address
alone only has a high rate limit, so a hospital's many users sharing one address can still sign in
while someone hammers ``admin`` from it. Every lock is audited. Counters live in the rate limiter's
store (memory, or Redis shared by workers and replicas).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Protocol, cast

from limits import parse

from ..config import Settings
from ..store.facade import Store
from .ratelimit import RateLimited, RateLimiter

WINDOW_SECONDS = 15 * 60  # failures older than this are forgotten


class Caller(Protocol):  # deps.RequestContext (not imported: deps imports the state that holds this)
    @property
    def client(self) -> str | None: ...
    @property
    def client_key(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...


class Counters(Protocol):  # the synchronous part of a limits storage (memory or Redis)
    def get(self, key: str) -> int: ...
    def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...
    def get_expiry(self, key: str) -> float: ...
    def clear(self, key: str) -> None: ...


@dataclass(frozen=True)
class Scope:
    name: str  # "account" | "account_address"
    key: str
    free: int  # failures allowed before the first lock


class LoginThrottle:
    def __init__(self, settings: Settings, limiter: RateLimiter, store: Store) -> None:
        self.limiter = limiter
        self.storage = cast(Counters, limiter.storage)
        self.store = store
        self.address_rate = parse(settings.login_rate_address)
        self.free_account = settings.login_free_failures_account
        self.free_pair = settings.login_free_failures
        self.initial = settings.login_backoff_initial_seconds
        self.longest = settings.login_backoff_max_seconds

    def _scopes(self, username: str, client: str) -> tuple[Scope, ...]:
        account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return (
            Scope("account_address", f"{account}:{client}", self.free_pair),
            Scope("account", account, self.free_account),
        )

    def before(self, username: str, ctx: Caller) -> None:
        """Refuse (429 with Retry-After) a sign-in while its account or (account, address) is locked."""
        self.limiter.hit(self.address_rate, "login_address", ctx.client_key)
        for scope in self._scopes(username, ctx.client_key):
            lock = f"login:lock:{scope.name}:{scope.key}"
            if self.storage.get(lock) > 0:
                wait = max(1, math.ceil(self.storage.get_expiry(lock) - time.time()))
                raise RateLimited(f"too many failed sign-ins for this account; retry in {wait} s", wait)

    def failed(self, username: str, ctx: Caller) -> None:
        """Count a failure; lock the scopes that are past their free attempts, and audit the locks."""
        for scope in self._scopes(username, ctx.client_key):
            failures = self.storage.incr(f"login:fail:{scope.name}:{scope.key}", WINDOW_SECONDS)
            if failures <= scope.free:
                continue
            seconds = min(self.longest, self.initial * 2 ** (failures - scope.free - 1))
            self.storage.incr(f"login:lock:{scope.name}:{scope.key}", max(1, math.ceil(seconds)))
            self.store.audit(
                "login_lockout",
                actor=f"user:{username[:64]}",
                outcome="denied",
                client=ctx.client,
                request_id=ctx.request_id,
                detail={"scope": scope.name, "failures": failures, "locked_seconds": math.ceil(seconds)},
            )

    def succeeded(self, username: str, ctx: Caller) -> None:
        for scope in self._scopes(username, ctx.client_key):
            self.storage.clear(f"login:fail:{scope.name}:{scope.key}")
