"""The many-clinicians times pages measured in this process, through Django's test client.

No HTTP and no gunicorn: the request through Django's middleware, the view, the queries and the
template, as a worker spends it. For each page (the first times page and a day's page, for a
link to any clinician and to one practitioner): a browser per link gives the date of birth,
then the page is asked for `requests` times round the browsers after 20 unrecorded warm-up
requests, and each answer's time, SQL query count (the bench middleware's X-Query-Count),
size, number of radios and this thread's CPU time is kept.
"""

from __future__ import annotations

import time
from typing import Any

from django.test import Client

from bench.load import LABELS, percentile
from bench.plan import WARMUP

HOST: dict[str, Any] = {"HTTP_HOST": "127.0.0.1"}
# In-process budgets for these pages (issue 12).
P50_BUDGET_MS = 8.0
P99_BUDGET_MS = 20.0
QUERY_BUDGET = 4
SIZE_BUDGET = 60_000
PAGES = {
    "g_any_first": ("any", ""),
    "g_any_day": ("any", "day"),
    "g_one_first": ("one", ""),
    "g_one_day": ("one", "day"),
}


def _dob(iso: str) -> dict[str, str]:
    year, month, day = iso.split("-")
    return {"day": str(int(day)), "month": str(int(month)), "year": year}


def clinic_pages_in_process(plan: dict) -> dict[str, dict]:
    """Each clinic page's figures: p50/p99/max ms, queries, largest size, most radios."""
    handler = Client().handler
    results = {}
    for name, (kind, query) in PAGES.items():
        group = plan["clinic"][kind]
        browsers = []
        for patient in group["patients"]:
            browser = Client(**HOST, HTTP_X_FORWARDED_FOR=patient["ip"])
            browser.handler = handler  # one handler, as a worker has (the middleware built once)
            response = browser.post(f"/b/{patient['token']}", _dob(patient["dob"]))
            if response.status_code != 302:
                raise RuntimeError(f"date of birth: HTTP {response.status_code}")
            path = f"/b/{patient['token']}/times" + (f"?day={group['day']}" if query else "")
            browsers.append((browser, path))
        timings: list[float] = []
        cpu: list[float] = []
        queries: list[int] = []
        sizes: list[int] = []
        radios: list[int] = []
        for n in range(WARMUP + plan["clinic"]["requests"]):
            browser, path = browsers[n % len(browsers)]
            started, started_cpu = time.perf_counter(), time.thread_time()
            response = browser.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            elapsed_cpu = (time.thread_time() - started_cpu) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {response.status_code}")
            if n < WARMUP:
                continue
            timings.append(elapsed)
            cpu.append(elapsed_cpu)
            queries.append(int(response["X-Query-Count"]))
            sizes.append(len(response.content))
            radios.append(response.content.count(b'type="radio"'))
        results[name] = {
            "label": LABELS[name],
            "count": len(timings),
            "p50": round(percentile(timings, 50), 2),
            "p99": round(percentile(timings, 99), 2),
            "max": round(max(timings), 2),
            # This process's own CPU time: what the request costs in Python when other work
            # on the machine stretches the wall-clock figures.
            "cpu_p50": round(percentile(cpu, 50), 2),
            "queries_min": min(queries),
            "queries_max": max(queries),
            "bytes_max": max(sizes),
            "radios_max": max(radios),
        }
    return results


def clinic_budgets(in_process: dict[str, dict]) -> list[dict]:
    """PASS or FAIL for each page against the in-process budgets."""
    found = []
    for page in in_process.values():
        passed = (
            page["p50"] <= P50_BUDGET_MS
            and page["p99"] <= P99_BUDGET_MS
            and page["queries_max"] <= QUERY_BUDGET
            and page["bytes_max"] < SIZE_BUDGET
        )
        found.append(
            {
                "budget": f"{page['label']}, in-process: p50 ≤ {P50_BUDGET_MS:g} ms, p99 ≤ {P99_BUDGET_MS:g} ms, "
                f"≤ {QUERY_BUDGET} queries, < {SIZE_BUDGET // 1000} KB",
                "measured": f"p50 {page['p50']:.1f} ms, p99 {page['p99']:.1f} ms, {page['queries_max']} queries, "
                f"{page['bytes_max'] / 1000:.1f} KB, {page['radios_max']} radios",
                "passed": passed,
            }
        )
    return found
