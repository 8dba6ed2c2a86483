"""Rate limits: how many times something happened for one key in a fixed window, in the shared cache.

The same mechanism as booking/throttle.py's date-of-birth limit, for any named limit (password
reset requests per client address and per email address use it). It lives in Django's cache,
which settings point at a store every web process shares: a per-process memory store would
give each gunicorn worker its own count.

Fixed windows, one set of tickets per key per window. Counting takes one ticket with
`cache.add` (an INSERT on the database cache, SET NX on Redis), which is atomic on every shared
backend. `cache.incr` would look simpler, but on the database cache it is a read then a write
(two processes can both read 3 and both write 4) and it resets the key's expiry to the cache's
default timeout. Keys are hashed, so the cache holds no addresses in the clear.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` events per key in each fixed window of `window_seconds`."""

    name: str
    limit: int
    window_seconds: int


def _ticket_keys(*, rate_limit: RateLimit, key: str, now: float) -> tuple[list[str], int]:
    window = int(now // rate_limit.window_seconds)
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    base = f"{rate_limit.name}:{digest}:{window}"
    # Kept a little past the window's end: clocks of different web servers differ slightly.
    expires_in = int((window + 1) * rate_limit.window_seconds - now) + 60
    return [f"{base}:{n}" for n in range(rate_limit.limit)], expires_in


def rate_limit_exceeded(*, rate_limit: RateLimit, key: str, now: float | None = None) -> bool:
    """Whether `key` has used up its events in the current window. One cache read."""
    keys, _ = _ticket_keys(rate_limit=rate_limit, key=key, now=time.time() if now is None else now)
    return len(cache.get_many(keys)) >= rate_limit.limit


def rate_limit_take(*, rate_limit: RateLimit, key: str, now: float | None = None) -> bool:
    """Count one event for `key`; False when the window's events were already used up.

    Claims the first free ticket; a ticket another process claimed first is skipped, so no
    event is lost to a race, and two processes racing for the last ticket can't both have it.
    Beyond the limit nothing more is stored.
    """
    keys, expires_in = _ticket_keys(rate_limit=rate_limit, key=key, now=time.time() if now is None else now)
    taken = cache.get_many(keys)
    return any(ticket not in taken and cache.add(ticket, 1, timeout=expires_in) for ticket in keys)
