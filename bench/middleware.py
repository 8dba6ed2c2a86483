"""Counts each request's SQL queries and their time; on only when BENCH_QUERY_COUNT=true.

The load generator reads `X-Query-Count` and `Server-Timing` (app = time in Django, db = time in
the database driver, both in milliseconds) from every response, so the report can say how much
of each figure is the database, the application, or what lies outside both (HTTP, gunicorn,
the network stack, waiting for a worker).
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        self.count += 1
        start = perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += perf_counter() - start


class QueryCountMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        counter = _Counter()
        start = perf_counter()
        with connection.execute_wrapper(counter):
            response = self.get_response(request)
        elapsed = perf_counter() - start
        response["X-Query-Count"] = str(counter.count)
        response["Server-Timing"] = f"app;dur={elapsed * 1000:.2f}, db;dur={counter.seconds * 1000:.2f}"
        return response
