"""Failed date-of-birth tries per client address, across links, in the shared cache.

Each link locks after five wrong dates by itself; this limit stops one address trying a few
dates on each of many links. booking/links.py `booking_link_check_dob` applies both. It lives in Django's cache, which
settings point at a store every web process shares (the database cache by default, Redis
when CACHE_URL says so): a per-process memory store would give each gunicorn worker its own
count.

Fixed ten-minute windows, one counter per address per window. Counting takes one ticket per
failure with `cache.add` (an INSERT on the database cache, SET NX on Redis), which is atomic on
every shared backend. `cache.incr` would look simpler, but on the database cache it is a read
then a write (two processes can both read 3 and both write 4) and it resets the key's expiry to
the cache's default timeout.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache

FAILED_TRIES_LIMIT = 20
WINDOW_SECONDS = 10 * 60


def _ticket_keys(ip_address: str | None, now: float) -> tuple[list[str], int]:
    window = int(now // WINDOW_SECONDS)
    # Hashed so the cache holds no addresses in the clear and any IPv6 spelling makes a valid key.
    address = hashlib.sha256((ip_address or "unknown").encode()).hexdigest()[:32]
    base = f"dob-failures:{address}:{window}"
    # Kept a little past the window's end: clocks of different web servers differ slightly.
    expires_in = int((window + 1) * WINDOW_SECONDS - now) + 60
    return [f"{base}:{n}" for n in range(FAILED_TRIES_LIMIT)], expires_in


def dob_failures_exceeded(*, ip_address: str | None, now: float | None = None) -> bool:
    """Whether this address has used up its failed tries in the current window. One cache read."""
    keys, _ = _ticket_keys(ip_address, time.time() if now is None else now)
    return len(cache.get_many(keys)) >= FAILED_TRIES_LIMIT


def dob_failure_record(*, ip_address: str | None, now: float | None = None) -> int:
    """Count one failed try for this address. Returns the failures counted in this window.

    Claims the first free ticket; a ticket another process claimed first is skipped, so no
    failure is lost to a race. Beyond the limit nothing more is stored.
    """
    keys, expires_in = _ticket_keys(ip_address, time.time() if now is None else now)
    taken = cache.get_many(keys)
    for position, key in enumerate(keys):
        if key not in taken and cache.add(key, 1, timeout=expires_in):
            return position + 1
    return FAILED_TRIES_LIMIT
