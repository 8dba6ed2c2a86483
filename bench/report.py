"""The budgets, the terminal summary, and the figures block of docs/benchmarks.md.

Only the text between the two markers is rewritten; the explanation around it is written by
hand and kept.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.environment import ROOT
from bench.in_process import QUERY_BUDGET, SIZE_BUDGET, clinic_budgets
from bench.plan import WARMUP

DOCS = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench:figures:start (written by `make bench`; edits here are replaced) -->"
END = "<!-- bench:figures:end -->"

# The budgets on a 2-core machine.
P99_BUDGETS_MS = {"b_times": 50, "e_search": 50, "c_book": 60}
# Issue 13: changing an appointment, through gunicorn like booking.
P99_BUDGETS_MS["h_change"] = 60
# The many-clinicians pages through gunicorn (their in-process budgets are in bench/in_process.py).
CLINIC_P99_BUDGET_MS = 50
# The reminder sweep: queuing 1,000 due reminders among 100,000 booked appointments, and the
# queries a batch (messaging/reminders.py; tests/messaging/test_reminders.py counts them too).
REMINDER_SWEEP_BUDGET_SECONDS = 5.0
REMINDER_QUERIES_PER_BATCH = 7
# A campaign's invitations: 10,000 made (links, messages, audit events, task rows) in one
# pacing run, and the queries a batch (tests/messaging/test_campaign_pacing_queries.py counts them too).
CAMPAIGN_PACING_BUDGET_SECONDS = 60.0
CAMPAIGN_QUERIES_PER_BATCH = 14
RACE_SLOTS = 20
# Checking a campaign's 10,000-row list (issue 15), in the scheduler's job; and its queries a
# batch (tests/messaging/test_campaign_lists.py counts them at two sizes).
CAMPAIGN_LIST_BUDGET_SECONDS = 10.0
CAMPAIGN_LIST_QUERIES_PER_BATCH = 6
# The campaign page at 10,000 rows, in-process (issue 15, item 7; bench/campaign_funnel.py). A
# manager's page that refreshes itself every 10 s: within 100 ms reads as instant, and the cost
# must not grow with the list (the same queries whatever its size).
CAMPAIGN_PAGE_P50_BUDGET_MS = 100.0


def budgets(results: dict) -> list[dict]:
    scenarios = results["scenarios"]
    found = []
    for name, limit in P99_BUDGETS_MS.items():
        p99 = scenarios[name]["p99"]
        found.append(
            {"budget": f"{scenarios[name]['label']}: p99 ≤ {limit} ms", "measured": f"{p99:.1f} ms",
             "passed": p99 <= limit}
        )  # fmt: skip
    for name, scenario in scenarios.items():
        if not name.startswith("g_"):
            continue
        found.append(
            {
                "budget": f"{scenario['label']}, through gunicorn: p99 ≤ {CLINIC_P99_BUDGET_MS} ms, "
                f"≤ {QUERY_BUDGET} queries, < {SIZE_BUDGET // 1000} KB",
                "measured": f"p99 {scenario['p99']:.1f} ms, {scenario.get('queries_max')} queries, "
                f"{scenario.get('bytes_max', 0) / 1000:.1f} KB",
                "passed": scenario["p99"] <= CLINIC_P99_BUDGET_MS
                and (scenario.get("queries_max") or 0) <= QUERY_BUDGET
                and scenario.get("bytes_max", 0) < SIZE_BUDGET,
            }
        )
    found += clinic_budgets(results.get("in_process", {}))
    race = scenarios["d_race"]
    in_database = results["checks"]["race_bookings_in_database"]
    errors = race["server_errors"] + race["unexpected"] + race["client_errors"]
    found.append(
        {
            "budget": f"(d) exactly {RACE_SLOTS} bookings and 0 errors; every loser told the time was taken",
            "measured": f"{race['bookings']} booked ({in_database} in the database), {race['taken']} told taken, "
            f"{race['server_errors']} 5xx, {race['unexpected'] + race['client_errors']} other errors",
            "passed": race["bookings"] == RACE_SLOTS == in_database
            and errors == 0
            and race["taken"] == race["count"] - RACE_SLOTS,
        }
    )
    unexpected = {name: s["unexpected"] for name, s in scenarios.items() if s["unexpected"] and name != "d_race"}
    found.append(
        {
            "budget": "Every other request answered as expected (no 5xx, no unexpected status)",
            "measured": ", ".join(f"{name}: {count}" for name, count in unexpected.items()) or "all as expected",
            "passed": not unexpected,
        }
    )
    return (
        found
        + reminder_budgets(results)
        + campaign_list_budgets(results)
        + campaign_pacing_budgets(results)
        + campaign_page_budgets(results)
    )


def reminder_budgets(results: dict) -> list[dict]:
    sweep = results.get("reminders")
    if not sweep:
        return []
    return [
        {
            "budget": f"Reminder sweep: {sweep['due']:,} due among {sweep['appointments']:,} booked queued in "
            f"≤ {REMINDER_SWEEP_BUDGET_SECONDS:g} s, {REMINDER_QUERIES_PER_BATCH} queries a batch, by index",
            "measured": f"{sweep['queued'] + sweep['not_sent']:,} in {sweep['seconds']:.2f} s, "
            f"{sweep['queries_per_batch']} queries a batch, "
            f"{'by' if sweep['plan_uses_index'] else '**not** by'} the booked-start index",
            "passed": sweep["queued"] + sweep["not_sent"] == sweep["due"]
            and sweep["seconds"] <= REMINDER_SWEEP_BUDGET_SECONDS
            and sweep["queries_per_batch"] == REMINDER_QUERIES_PER_BATCH
            and sweep["plan_uses_index"],
        }
    ]


def campaign_pacing_budgets(results: dict) -> list[dict]:
    pacing = results.get("campaign_pacing")
    if not pacing:
        return []
    return [
        {
            "budget": f"Campaign: {pacing['rows']:,} patients' invitations made in "
            f"≤ {CAMPAIGN_PACING_BUDGET_SECONDS:g} s, {CAMPAIGN_QUERIES_PER_BATCH} queries a batch",
            "measured": f"{pacing['invited'] + pacing['unreachable']:,} in {pacing['seconds']:.2f} s, "
            f"{pacing['queries_per_batch']} queries a batch",
            "passed": pacing["invited"] + pacing["unreachable"] == pacing["rows"]
            and pacing["seconds"] <= CAMPAIGN_PACING_BUDGET_SECONDS
            and pacing["queries_per_batch"] == CAMPAIGN_QUERIES_PER_BATCH,
        }
    ]


def campaign_list_budgets(results: dict) -> list[dict]:
    check = results.get("campaign_lists")
    if not check:
        return []
    return [
        {
            "budget": f"Campaign list check: {check['rows']:,} rows in < {CAMPAIGN_LIST_BUDGET_SECONDS:g} s, "
            f"{CAMPAIGN_LIST_QUERIES_PER_BATCH} queries a batch",
            "measured": f"{check['checked']:,} in {check['seconds']:.2f} s, "
            f"{check['queries_per_batch']} queries a batch",
            "passed": check["checked"] == check["rows"]
            and check["status"] == "checked"
            and check["seconds"] < CAMPAIGN_LIST_BUDGET_SECONDS
            and check["queries_per_batch"] == CAMPAIGN_LIST_QUERIES_PER_BATCH,
        }
    ]


def campaign_pacing_markdown(results: dict) -> list[str]:
    pacing = results.get("campaign_pacing")
    if not pacing:
        return []
    return [
        "",
        f"**Campaign invitations** (`bench/campaign_pacing.py`, in-process, no server): a campaign of "
        f"{pacing['rows']:,} found rows for one practice's type and location ({pacing['free_times']:,} free times), "
        f"paced in one run: **{pacing['seconds']:.2f} s** ({pacing['seconds'] / max(pacing['rows'], 1) * 1000:.2f} ms "
        f"a row, {pacing['database_seconds']:.2f} s of it in the database) for {pacing['invited']:,} invitations "
        f"(link, message, audit event and task row each) and {pacing['unreachable']:,} rows no channel reached, "
        f"in {pacing['batches']} batches of up to {pacing['batch_size']}, "
        f"**{pacing['queries_per_batch']} queries a batch** ({pacing['queries']} in all).",
    ]


def campaign_list_markdown(results: dict) -> list[str]:
    check = results.get("campaign_lists")
    if not check:
        return []
    outcomes = ", ".join(f"{count:,} {outcome.replace('_', ' ')}" for outcome, count in check["outcomes"].items())
    return [
        "",
        f"**Campaign list check** (`bench/campaign_lists.py`, in-process, no server): a {check['rows']:,}-row CSV "
        f"({check['file_bytes'] / 1000:.0f} KB) mixing every outcome ({outcomes}); its shape read in the request "
        f"in {check['shape_seconds']:.2f} s, its rows checked by the scheduler's job in **{check['seconds']:.2f} s** "
        f"({check['database_seconds']:.2f} s of it in the database), {check['batches']} batches of "
        f"{check['batch_size']:,}, **{check['queries_per_batch']} queries a batch** ({check['queries']} in all).",
    ]


def reminders_markdown(results: dict) -> list[str]:
    sweep = results.get("reminders")
    if not sweep:
        return []
    return [
        "",
        f"**Reminder sweep** (`bench/reminders.py`, in-process, no server): {sweep['appointments']:,} appointments "
        f"booked through links over six months, {sweep['due']:,} of them with their 1-day reminder due; one sweep "
        f"dealt with them in **{sweep['seconds']:.2f} s** ({sweep['seconds'] / max(sweep['due'], 1) * 1000:.2f} ms "
        f"each, {sweep['database_seconds']:.2f} s of it in the database): {sweep['queued']:,} reminders queued, "
        f"message and task row each, and {sweep['not_sent']:,} not sent (no mobile or email for the patient), "
        f"in {sweep['batches']} batches of up to {sweep['batch_size']} (the last of each kind short or empty), "
        f"**{sweep['queries_per_batch']} queries a batch** ({sweep['queries']} in all), the due appointments read "
        f"{'through the index on booked slots’ starts' if sweep['plan_uses_index'] else '**without** the index'}.",
    ]


def cpu_busy_share(seconds: float = 3.0) -> float | None:
    """The share of all cores' time spent busy over the next `seconds` (from /proc/stat).

    Measured while nothing of the bench runs (the data set built, the server not yet
    started), so it is other work on the machine; unlike the load average it doesn't remember
    the data-set build of a minute ago.
    """

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return round(1 - (idle_after - idle_before) / total, 3) if total else None


def machine() -> dict:
    from django import get_version
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), current_setting('shared_buffers')")
        postgres, shared_buffers = cursor.fetchone()
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    memory_kib = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    import gunicorn

    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": get_version(),
        "gunicorn": gunicorn.__version__,
        "postgresql": postgres,
        "shared_buffers": shared_buffers,
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def campaign_page_budgets(results: dict) -> list[dict]:
    page = results.get("campaign_funnel")
    if not page:
        return []
    return [
        {
            "budget": f"Campaign page at {page['rows']:,} rows, in-process: p50 ≤ {CAMPAIGN_PAGE_P50_BUDGET_MS:g} ms, "
            "the same queries every request",
            "measured": f"p50 {page['p50']:.1f} ms, p99 {page['p99']:.1f} ms, {_queries(page)} queries",
            "passed": page["p50"] <= CAMPAIGN_PAGE_P50_BUDGET_MS and page["queries_min"] == page["queries_max"],
        }
    ]


def campaign_page_markdown(results: dict) -> list[str]:
    page = results.get("campaign_funnel")
    if not page:
        return []
    return [
        "",
        f"**Campaign page** (`bench/campaign_funnel.py`, in-process through Django's test client, no server): a "
        f"campaign of {page['rows']:,} rows in every state of the funnel, the page asked {page['requests']} times "
        f"by its manager: **p50 {page['p50']:.1f} ms**, p99 {page['p99']:.1f} ms (p50 {_ms(page.get('cpu_p50'))} ms "
        f"of Python CPU, {_ms(page.get('database_p50'))} ms in the database), **{_queries(page)} queries** a "
        f"request, the funnel's one query {page['funnel_query_ms']:.1f} ms of it.",
    ]


def _ms(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "–"


def _queries(scenario: dict) -> str:
    low, high = scenario.get("queries_min"), scenario.get("queries_max")
    if low is None:
        return "–"
    return str(low) if low == high else f"{low}–{high}"


def figures_markdown(results: dict) -> str:
    scenarios = results["scenarios"]
    data = results["dataset"]
    counts = data["counts"]
    host = results["machine"]
    after = results["machine_after"]
    lines = [
        f"Run {host['at']} at scale {results['scale']:g}: gunicorn with {results['workers']} sync workers on "
        f"127.0.0.1, the load generator (`python -m bench.load`, its own process) keeping "
        f"{results['concurrency']} requests in flight (closed loop), after {WARMUP} unrecorded warm-up requests "
        "per scenario. Latency is the client's: from sending the request to the last byte of the response. "
        "*In Django* and *in the database* are the server's own p50 for the same requests (Server-Timing).",
        "",
        "| scenario | requests | p50 ms | p95 ms | p99 ms | max ms | req/s | SQL queries per request "
        "| in Django p50 ms | in the database p50 ms | responses |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for scenario in scenarios.values():
        statuses = ", ".join(f"{count}× {status}" for status, count in scenario["statuses"].items())
        lines.append(
            f"| {scenario['label']} | {scenario['count']} | {_ms(scenario.get('p50'))} | {_ms(scenario.get('p95'))} "
            f"| {_ms(scenario.get('p99'))} | {_ms(scenario.get('max'))} | {scenario['rps']:.0f} | {_queries(scenario)} "
            f"| {_ms(scenario.get('app_p50'))} | {_ms(scenario.get('db_p50'))} | {statuses} |"
        )
    in_process = results.get("in_process")
    if in_process:
        lines += [
            "",
            "**(g) in-process**: the same many-clinicians pages through Django's test client in one process (no "
            "HTTP, no gunicorn, one request at a time): the request through the middleware, the view, its queries "
            "and the template.",
            "",
            "| page | requests | p50 ms | p99 ms | max ms | Python CPU p50 ms | SQL queries | largest page | radios |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for page in in_process.values():
            lines.append(
                f"| {page['label']} | {page['count']} | {_ms(page['p50'])} | {_ms(page['p99'])} | {_ms(page['max'])} "
                f"| {_ms(page.get('cpu_p50'))} | {_queries(page)} | {page['bytes_max'] / 1000:.1f} KB "
                f"| {page['radios_max']} |"
            )
    race = scenarios["d_race"]
    checks = results["checks"]
    lines += [
        "",
        f"**(d) race:** {race['count']} clients posted at once for {race['slots']} slots: "
        f"**{race['bookings']} bookings** ({checks['race_bookings_in_database']} in the database), "
        f"{race['taken']} told *that time has just been taken* (409, with the refreshed times), "
        f"**{race['server_errors']} 5xx**, {race['client_errors']} connection errors; "
        f"the last answer came {race['seconds'] * 1000:.0f} ms after the first request.",
        "",
        f"**(f) send:** {checks['messages_sent_with_links']} messages with links saved (warm-up included); "
        "tasks enqueued in the database during the run, none of them run (no worker): "
        + ", ".join(f"{count} × `{path}`" for path, count in checks["tasks_enqueued"].items())
        + ".",
        *reminders_markdown(results),
        *campaign_list_markdown(results),
        *campaign_pacing_markdown(results),
        *campaign_page_markdown(results),
        "",
        "### Budgets",
        "",
        "| budget | measured | |",
        "|---|---|---|",
    ]
    for budget in results["budgets"]:
        lines.append(f"| {budget['budget']} | {budget['measured']} | {'PASS' if budget['passed'] else '**FAIL**'} |")
    memory = results["memory_kib"]
    lines += [
        "",
        "### Memory",
        "",
        "Peak resident memory (VmHWM) of each gunicorn worker at the end of the run: "
        + ", ".join(f"{peak / 1024:.0f} MiB" for peak in memory.values())
        + ".",
        "",
        "### Data set",
        "",
        f"{counts['organisations']} organisations (one a PCN hub sharing its clinics with the others), "
        f"{counts['locations']} locations, {counts['practitioners']} practitioners, {counts['slots']:,} slots over "
        f"six months, {counts['patients']:,} patients, {counts['links']:,} links (each sent in a message); "
        f"{data['extra'].get('appointments', 0):,} appointments, "
        f"{data['extra'].get('audit_events', 0):,} audit events. "
        f"Built in **{data['build_seconds']:.0f} s** ({data['built_at'][:16].replace('T', ' ')} UTC).",
        "",
        "### Machine",
        "",
        f"{host['cpu']}, {host['cores']} cores, {host['memory_gib']} GiB; {host['os']}; Python {host['python']}, "
        f"Django {host['django']}, gunicorn {host['gunicorn']}, PostgreSQL {host['postgresql']} (embedded, "
        f"shared_buffers {host['shared_buffers']}). Load average (1 minute) when `make bench` started "
        f"{results['load_at_start']}, when the load started {host['load_average'][0]} (after building the data "
        f"set, if it was built), at the end {after['load_average'][0]}. "
        + _other_work_sentence(results.get("cpu_busy_before_load")),
    ]
    return "\n".join(lines)


TEMPLATE = f"""# Benchmarks

`make bench` writes the figures below. The explanation after them is written by hand.

## Figures

{START}
{END}
"""


def _other_work_sentence(busy: float | None) -> str:
    if busy is None:
        return "Other work on the machine was not measured."
    if busy > 0.2:
        return (
            f"Just before the load, other work kept the CPUs {busy:.0%} busy — **the machine was busy**: treat "
            "these figures as an upper bound."
        )
    return f"Just before the load the CPUs were {busy:.0%} busy with other work: the machine was quiet."


def write_docs(results: dict, path: Path = DOCS) -> Path:
    text = path.read_text() if path.exists() else TEMPLATE
    block = f"{START}\n{figures_markdown(results)}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _match: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## Figures\n\n" + block + "\n"
    path.write_text(text)
    return path


def print_summary(results: dict) -> None:
    out = sys.stdout
    out.write(
        "\n{:<48} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7}\n".format("scenario", "count", "p50", "p95", "p99", "rps", "SQL")
    )
    for scenario in results["scenarios"].values():
        label = scenario["label"].replace("&lt;", "<").replace("&gt;", ">")
        out.write(
            f"{label[:48]:<48} {scenario['count']:>6} {_ms(scenario.get('p50')):>8} {_ms(scenario.get('p95')):>8} "
            f"{_ms(scenario.get('p99')):>8} {scenario['rps']:>7.0f} {_queries(scenario):>7}\n"
        )
    memory = ", ".join(f"{peak / 1024:.0f} MiB" for peak in results["memory_kib"].values())
    out.write(f"\nWorker peak memory: {memory}. Data set built in {results['dataset']['build_seconds']:.0f} s.\n\n")
    for budget in results["budgets"]:
        out.write(f"{'PASS' if budget['passed'] else 'FAIL'}  {budget['budget']}: {budget['measured']}\n")
