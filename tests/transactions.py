"""Rows that every test of a class reads, made once for the class instead of once per test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from pytest_django import DjangoDbBlocker


@contextmanager
def transaction_for_the_class(django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """A transaction around a class-scoped fixture's rows, rolled back after the class's tests.

    pytest-django runs each test in a transaction of its own (Django's TestCase); inside this
    one that becomes a savepoint, so every test sees exactly the rows made here and nothing a
    test before it changed. Only for tests that run in a transaction: a transaction=True test
    flushes the database, and would flush these rows too.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)
