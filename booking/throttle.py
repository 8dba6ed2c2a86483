"""Counting attempts per key in fixed windows, in the database: the per-address date-of-birth limit.

Each link locks after five wrong dates by itself (booking/links.py); that answers someone
guessing one patient's date of birth. The per-address limit here answers one client trying a
few dates on each of many links: FAILED_TRIES_LIMIT wrong dates per address per ten-minute
window, counted only when a link actually evaluated and counted the date (a try a locked link
refused, or a malformed date, never counts), so a burst on one link adds at most five.
booking/links.py `booking_link_check_dob` applies both.

The counts are rows of `AttemptCount`, one per key per window, bumped by one
`INSERT ... ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count`: atomic in PostgreSQL
(parallel tries each get their own number, none lost) and never culled, unlike a cache, whose
database backend keeps 300 entries by default and forgot busy addresses' counts under load.
Rows of windows that have ended are deleted as new windows start.

`attempts_record` and `attempts_exceeded` are the reusable part: any limit of "N attempts per
key per window" (password resets, say) can use them with its own key prefix. Keys are stored
only as a SHA-256 digest, so no address or email sits in the table in clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from datetime import UTC, datetime, timedelta

from django.db import connection

from booking.models import AttemptCount

FAILED_TRIES_LIMIT = 20
WINDOW_SECONDS = 10 * 60
# A row outlives its window a little: clocks of different web servers differ slightly.
CLOCK_SKEW = timedelta(seconds=60)
# Expired rows deleted per new window: bounded, so no request pays for a backlog at once.
CLEANUP_BATCH = 1000


def _window(*, key: str, window_seconds: int, now: float | None) -> tuple[str, datetime]:
    now = time.time() if now is None else now
    start = datetime.fromtimestamp(now // window_seconds * window_seconds, UTC)
    return hashlib.sha256(key.encode()).hexdigest(), start


def attempts_record(*, key: str, window_seconds: int, now: float | None = None) -> int:
    """Count one attempt for `key` in the current fixed window. Returns the attempts counted so far.

    One atomic upsert on the (key, window) row: parallel callers each get their own count, and
    none is lost. Locks that row until the caller's transaction ends (at once in autocommit).
    The first attempt of a window also deletes a batch of rows whose windows have ended,
    skipping rows another transaction holds, so it never waits on or deadlocks with them.
    """
    digest, start = _window(key=key, window_seconds=window_seconds, now=now)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO booking_attemptcount (key_digest, window_start, expires_at, count)
            VALUES (%s, %s, %s, 1)
            ON CONFLICT (key_digest, window_start) DO UPDATE SET count = booking_attemptcount.count + 1
            RETURNING count
            """,
            [digest, start, start + timedelta(seconds=window_seconds) + CLOCK_SKEW],
        )
        (count,) = cursor.fetchone()
        if count == 1:
            cursor.execute(
                """
                DELETE FROM booking_attemptcount WHERE id IN (
                    SELECT id FROM booking_attemptcount WHERE expires_at < %s LIMIT %s FOR UPDATE SKIP LOCKED
                )
                """,
                [start - CLOCK_SKEW, CLEANUP_BATCH],
            )
    return count


def attempts_counted(*, key: str, window_seconds: int, now: float | None = None) -> int:
    """The attempts counted for `key` in the current window. One indexed read."""
    digest, start = _window(key=key, window_seconds=window_seconds, now=now)
    counts = AttemptCount.objects.filter(key_digest=digest, window_start=start).values_list("count", flat=True)
    return next(iter(counts), 0)


def attempts_exceeded(*, key: str, limit: int, window_seconds: int, now: float | None = None) -> bool:
    """Whether `key` has used up its `limit` attempts in the current window. One indexed read."""
    return attempts_counted(key=key, window_seconds=window_seconds, now=now) >= limit


def address_bucket(ip_address: str | None) -> str:
    """What one client's address counts as: an IPv4 address, or an IPv6 address's /64.

    One IPv6 subscriber (a home, a phone) is usually given a whole /64, so counting single IPv6
    addresses would give one attacker 2**64 separate limits.
    """
    try:
        address = ipaddress.ip_address(ip_address or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _dob_key(ip_address: str | None) -> str:
    return f"dob-failures:{address_bucket(ip_address)}"


def dob_failures_exceeded(*, ip_address: str | None, now: float | None = None) -> bool:
    """Whether this address has used up its wrong dates of birth in the current window."""
    return attempts_exceeded(key=_dob_key(ip_address), limit=FAILED_TRIES_LIMIT, window_seconds=WINDOW_SECONDS, now=now)


def dob_failures_counted(*, ip_address: str | None, now: float | None = None) -> int:
    """The wrong dates of birth counted for this address in the current window."""
    return attempts_counted(key=_dob_key(ip_address), window_seconds=WINDOW_SECONDS, now=now)


def dob_failure_record(*, ip_address: str | None, now: float | None = None) -> int:
    """Count one wrong date of birth a link evaluated for this address. Returns the window's count."""
    return attempts_record(key=_dob_key(ip_address), window_seconds=WINDOW_SECONDS, now=now)
