"""Running work in real threads that start together, each with its own database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.models import Model


def race(work: Callable[[int], object], threads: int) -> list[object]:
    """Run work(i) in `threads` threads released at once by a barrier; each result or exception."""
    barrier = threading.Barrier(threads)
    results: list[object] = [None] * threads

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as error:  # the test inspects what each thread met
            results[i] = error
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return results


def lock_waiters() -> int:
    """How many sessions on this database are waiting for a lock right now."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class RowLockHolder:
    """Hold one row's lock (`SELECT ... FOR UPDATE`) from a second connection until released.

    Widens a race's window: whoever needs that row waits at exactly that point, so another
    thread's work can be slotted in before it goes on.
    """

    def __init__(self, model: type[Model], pk: int) -> None:
        self.model, self.pk = model, pk
        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                # Raw SQL, so a control test that patches select_for_update away still holds it;
                # the table name is the model's own, never input.
                table = connections["default"].ops.quote_name(self.model._meta.db_table)
                cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [self.pk])  # noqa: S608
                if cursor.fetchone() is not None:
                    self.holding.set()
                self.release.wait(timeout=60)
        finally:
            connections.close_all()

    def __enter__(self) -> RowLockHolder:
        self.thread.start()
        assert self.holding.wait(timeout=30), "the row lock was never taken"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(timeout=30)


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Start work() in a thread with its own connection; the list gets its result or exception."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(work())
        except Exception as error:  # the test inspects what the thread met
            result.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


class PauseAt:
    """Stop whichever thread calls `target.name` (a function) until released, then let it go on.

    A pause that holds no database lock of its own: the thread keeps whatever locks its
    transaction already took, so another thread's work can be slotted in at exactly that point.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        real = getattr(target, name)

        def paused(*args: Any, **kwargs: Any) -> Any:
            self.reached.set()
            assert self.release.wait(timeout=60), "the pause was never released"
            return real(*args, **kwargs)

        monkeypatch.setattr(target, name, paused)

    def __enter__(self) -> PauseAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
