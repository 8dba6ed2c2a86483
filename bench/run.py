"""One benchmark run: static files, this run's fixtures, gunicorn, the load generator, the report."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from django.core.management import call_command
from django.db import connections

from bench.campaign_funnel import campaign_funnel_bench
from bench.campaign_lists import campaign_list_check_bench
from bench.campaign_pacing import campaign_pacing_bench
from bench.dataset import Manifest
from bench.environment import BENCH_DIR, ROOT, bench_environment
from bench.in_process import clinic_pages_in_process
from bench.plan import make_plan, plan_path
from bench.reminders import reminder_sweep_bench
from bench.report import budgets, cpu_busy_share, machine, print_summary, write_docs
from bench.server import Server

LOAD_TIMEOUT = 30 * 60  # the load generator stops itself long before this; a backstop


def run(*, args: argparse.Namespace, manifest: Manifest, started: float, load_at_start: float) -> int:
    print("Collecting static files (hashed and compressed, as in production).")
    call_command("collectstatic", interactive=False, verbosity=0)
    print("Making this run's links and slots.")
    plan = make_plan(requests=args.requests)
    race_type = plan["race"]["appointment_type_id"]
    # The plan's bookings and the clinic's 30% leave pages of booking_slot not marked all-visible,
    # which autovacuum would see to in its own time; settle it now, so index-only scans are what
    # a running system has (docs/benchmarks.md).
    with connections["default"].cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) booking_slot")
    print("Measuring the many-clinicians times pages in-process (Django's test client).")
    in_process = clinic_pages_in_process(plan)
    print("Timing the reminder sweep (its bookings are rolled back after).")
    reminders = reminder_sweep_bench(scale=manifest.scale)
    print("Timing a campaign's invitations (rolled back after).")
    campaign_pacing = campaign_pacing_bench(scale=manifest.scale)
    print("Timing the check of a campaign's 10,000-row list (rolled back after).")
    campaign_lists = campaign_list_check_bench()
    print("Timing the campaign page at 10,000 rows in-process (its rows are rolled back after).")
    campaign = campaign_funnel_bench(scale=manifest.scale)
    run_started = time.time()
    before = machine()
    connections.close_all()
    cpu_busy = cpu_busy_share()

    results_path = BENCH_DIR / "load.json"
    print(f"Serving with gunicorn ({args.workers} workers); load: {args.concurrency} clients at once.")
    with Server(workers=args.workers, log=BENCH_DIR / "gunicorn.log") as server:
        load = subprocess.run(  # noqa: S603 -- our own module, our own arguments
            [sys.executable, "-m", "bench.load", str(plan_path()), str(results_path),
             "--base-url", server.base_url, "--concurrency", str(args.concurrency)],
            cwd=ROOT,
            env={key: value for key, value in bench_environment().items() if key != "DJANGO_SETTINGS_MODULE"},
            timeout=LOAD_TIMEOUT,
            check=False,
        )  # fmt: skip
        memory = server.worker_peak_memory()
    if load.returncode != 0:
        print(f"The load generator failed (exit {load.returncode}); server log: {BENCH_DIR / 'gunicorn.log'}")
        return 2
    load_results = json.loads(results_path.read_text())
    results = {
        "scale": manifest.scale,
        "dataset": {
            "counts": manifest.counts,
            "extra": manifest.extra,
            "built_at": manifest.built_at,
            "build_seconds": manifest.build_seconds,
        },
        "workers": args.workers,
        "concurrency": args.concurrency,
        "requests": args.requests,
        "load_seconds": load_results["seconds"],
        "scenarios": load_results["scenarios"],
        "in_process": in_process,
        "reminders": reminders,
        "campaign_pacing": campaign_pacing,
        "campaign_lists": campaign_lists,
        "campaign_funnel": campaign,
        "memory_kib": {str(pid): peak for pid, peak in sorted(memory.items())},
        "checks": _database_checks(race_type=race_type, since=run_started, sends=len(plan["send"])),
        "machine": before,
        "load_at_start": round(load_at_start, 2),
        "cpu_busy_before_load": cpu_busy,
        "machine_after": machine(),
        "total_seconds": round(time.monotonic() - started, 1),
    }
    results["budgets"] = budgets(results)
    (BENCH_DIR / "results.json").write_text(json.dumps(results, indent=2))
    print_summary(results)
    if not args.no_docs:
        path = write_docs(results)
        print(f"Wrote {path.relative_to(ROOT)}.")
    return 0 if all(budget["passed"] for budget in results["budgets"]) else 1


def _database_checks(*, race_type: int, since: float, sends: int) -> dict[str, Any]:
    """What the database says happened: bookings in the race, messages and tasks the sends queued."""
    from datetime import UTC, datetime

    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    from booking.models import Appointment
    from messaging.models import Message

    started = datetime.fromtimestamp(since, tz=UTC)
    return {
        "race_bookings_in_database": Appointment.objects.filter(
            slot__appointment_type_id=race_type, status=Appointment.Status.BOOKED
        ).count(),
        "messages_sent_with_links": Message.objects.filter(
            created_at__gte=started, booking_link__isnull=False, confirms__isnull=True
        ).count(),
        "confirmations_queued": Message.objects.filter(created_at__gte=started, confirms__isnull=False).count(),
        "tasks_enqueued": dict(
            DBTaskResult.objects.filter(enqueued_at__gte=started)
            .values_list("task_path")
            .annotate(count=Count("pk"))
            .order_by("task_path")
        ),
        "sends_planned_including_warmup": sends,
    }
