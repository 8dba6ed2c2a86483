"""The query every patient page starts with, the link and what it joins, prepared once per connection.

Finding a link by its token's digest joins five tables (organisation, patient, type, location,
practitioner), and at bench scale PostgreSQL spends longer planning that join (about 1.1 ms)
than running it (0.15 ms), on every page a patient opens; Django's compiling of the same
queryset costs about as much again in Python. So the statement is compiled from the ORM's own
queryset once per process and PREPAREd once per database connection: each page then sends
`EXECUTE` with the digest, and after its first few runs PostgreSQL reuses the plan (a unique
index lookup whatever the digest, so the generic plan is the right one). The rows become model
instances the way the ORM's own iterator makes them (its converters and related populators).

The PREPARE goes in the same round trip as the connection's first EXECUTE, so it is one
statement to Django's query counting like any other lookup. `DATABASE_PREPARED_LINK_LOOKUP=false`
turns it off (docs/deployment.md: a pooler in transaction mode, such as PgBouncer's, can't keep a
connection's prepared statements); the plain queryset is then used.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.query import get_related_populators

from booking.models import BookingLink
from booking.offers import agreements_sharing

JOINED = ("organisation", "patient", "appointment_type", "location", "practitioner")
_MARK = "0" * 64


def booking_links_joined() -> models.QuerySet[BookingLink]:
    """The link with everything a patient's page shows of it; a lazy load raises (FETCH_RAISE).

    The patient's pages use only what is joined here: a lazy load raises in the tests instead of
    adding a query to every page in production. `still_shared` comes with it: whether a host's
    type is still shared with the sender at the link's location (booking/offers.py, which reads
    it instead of asking again), so a hub's link costs no second query.
    """
    return (
        BookingLink.objects.select_related(*JOINED)
        .annotate(
            still_shared=models.Exists(
                agreements_sharing(
                    partner=models.OuterRef("organisation_id"),
                    host=models.OuterRef("appointment_type__organisation_id"),
                    appointment_type=models.OuterRef("appointment_type_id"),
                    location=models.OuterRef("location_id"),
                )
            )
        )
        .fetch_mode(models.FETCH_RAISE)
        .order_by()
    )


@dataclass(frozen=True)
class _Statement:
    name: str
    text: str  # with $1, $2... for the parameters
    params: tuple[Any, ...]  # the compiled parameters, _MARK where the digest goes
    select: list[Any]
    klass_info: dict[str, Any]
    annotations: dict[str, int]  # annotation name -> its column in the row
    converters: dict[int, Any]


@cache
def _statement(alias: str) -> _Statement:
    compiler = booking_links_joined().filter(token_digest=_MARK)[:1].query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    # The digest is one parameter; the others are the ORM's own constants (the EXISTS's LIMIT 1).
    if [param for param in params if param == _MARK] != [_MARK] or sql.count("%s") != len(params) or "%%" in sql:
        raise RuntimeError("The link lookup's SQL is not the statement with one digest it is prepared as.")
    pieces = sql.split("%s")
    text = pieces[0] + "".join(f"${number}{piece}" for number, piece in enumerate(pieces[1:], start=1))
    # Named for its text: a changed model (a new column) is a new statement, never a stale one.
    name = "booking_link_find_" + hashlib.sha256(text.encode()).hexdigest()[:16]
    converters = compiler.get_converters([column for column, _, _ in compiler.select])
    return _Statement(
        name, text, tuple(params), compiler.select, compiler.klass_info, compiler.annotation_col_map, converters
    )


# The database connections (psycopg's, one per thread) on which the statement is prepared: a new
# connection (a reconnect, another thread) isn't in it, and prepares it with its first lookup.
_prepared: weakref.WeakSet[Any] = weakref.WeakSet()
_prepared_lock = threading.Lock()


def booking_link_by_digest(digest: str, *, alias: str = DEFAULT_DB_ALIAS) -> BookingLink | None:
    """The link whose token has this digest, with its joined rows, or None. One statement."""
    if not settings.DATABASE_PREPARED_LINK_LOOKUP:
        return booking_links_joined().filter(token_digest=digest).first()
    statement = _statement(alias)
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    with _prepared_lock:
        prepared = raw in _prepared
    params = [digest if param == _MARK else param for param in statement.params]
    arguments = ", ".join(["%s"] * len(params))
    with connection.cursor() as cursor:
        if prepared:
            cursor.execute(f"EXECUTE {statement.name}({arguments})", params)
        else:
            # Both in one round trip (the simple query protocol takes several statements); the
            # cursor's first result is PREPARE's, the row is in the second.
            cursor.execute(
                f"PREPARE {statement.name} AS {statement.text}; EXECUTE {statement.name}({arguments})", params
            )
            cursor.nextset()
            with _prepared_lock:
                _prepared.add(raw)
        row = cursor.fetchone()
    if row is None:
        return None
    return _instance(statement, connection.alias, row)


def _instance(statement: _Statement, alias: str, row: tuple[Any, ...]) -> BookingLink:
    # What django.db.models.query.ModelIterable does with a row, for this one statement.
    values = list(row)
    if statement.converters:
        _convert(statement.converters, values, connections[alias])
    info = statement.klass_info
    fields = info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    names = [column[0].target.attname for column in statement.select[start:end]]
    link = BookingLink.from_db(alias, names, values[start:end], fetch_mode=models.FETCH_RAISE)
    for populator in get_related_populators(info, statement.select, alias, models.FETCH_RAISE):
        populator.populate(values, link)
    for name, position in statement.annotations.items():
        setattr(link, name, values[position])
    return link


def _convert(converters: dict[int, Any], values: list[Any], connection: Any) -> None:
    # SQLCompiler.apply_converters, for one row.
    for position, (functions, expression) in converters.items():
        value = values[position]
        for function in functions:
            value = function(value, expression, connection)
        values[position] = value
