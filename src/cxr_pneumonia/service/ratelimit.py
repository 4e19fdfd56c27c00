"""Rate limits per credential and per client address (``limits``: in memory, or Redis when configured)."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..config import Settings
from ..errors import CXRError

log = logging.getLogger(__name__)


class RateLimited(CXRError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RateLimitUnavailable(CXRError):
    code = "rate_limit_unavailable"
    http_status = 503


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        if settings.redis_url:
            storage = storage_from_string(settings.redis_url, key_prefix=f"{settings.redis_prefix}:limits")
        else:
            storage = storage_from_string("memory://")
        self.shared = bool(settings.redis_url)
        self.storage = storage  # also holds the sign-in failure counters (login_throttle.py)
        self._limiter = MovingWindowRateLimiter(storage)
        # Parsed at start-up so a typo in CXR_RATE_LIMIT* stops the service instead of every request.
        self.credential = parse(settings.rate_limit)
        self.client = parse(settings.rate_limit_client)
        self.anonymous = parse(settings.rate_limit_anonymous)

    def hit(self, item: RateLimitItem, scope: str, identity: str) -> None:
        """Count one request; raise RateLimited (with seconds to wait) when over the limit."""
        try:
            if self._limiter.hit(item, scope, identity):
                return
            reset = self._limiter.get_window_stats(item, scope, identity).reset_time
        except Exception as exc:  # the shared store is down: refuse rather than run unlimited
            log.error("rate-limit store unavailable: %s", type(exc).__name__)
            raise RateLimitUnavailable("the rate-limit store is unreachable; try again shortly") from exc
        retry_after = max(1, math.ceil(reset - time.time()))
        raise RateLimited(f"too many requests ({item}); retry in {retry_after} s", retry_after)
