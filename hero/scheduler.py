"""The periodic jobs, and the one process that runs them (`manage.py scheduler`, APScheduler).

Here in hero because the jobs belong to both apps: reminders, the delivery sweep and campaigns
(checking their uploaded lists, pacing their invitations, following them up) to messaging,
slot generation to booking, pruning old task results to django-tasks-db. Each job is also a
command that runs it once by hand (send_reminders, requeue_messages, check_campaign_lists,
pace_campaigns, send_campaign_follow_ups, generate_slots, prune_db_task_results), and every
one of them is safe to run twice or late: reminders and confirmations are written once (unique
keys), a list's rows are checked a batch at a time under a lock on the campaign, a campaign's
row is invited once (claimed FOR UPDATE SKIP LOCKED) and followed up once (a conditional
UPDATE), slot generation inserts ON CONFLICT DO NOTHING, a second claim of a message fails.

Two schedulers at once are safe too, for a deployment that runs one on each of two machines:
each run of a job takes a PostgreSQL advisory lock named for the job (`pg_try_advisory_lock`),
and a scheduler that finds it taken skips that run, so a job never runs in two places at once.
The lock belongs to the run's database session, so a scheduler that dies mid-run frees it.

When no scheduler runs, nothing is lost, only late: the next run of each job catches up
(reminders still useful go, messages left behind are queued again, slots are made ahead).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.db.models import Max
from django.tasks import task_backends
from django_tasks_db.backend import DatabaseBackend

from booking.formats import LONDON, today_in_london
from booking.models import AppointmentType, Rota
from booking.slots import slots_generate_from_rotas
from messaging.campaigns.checks import campaign_lists_check
from messaging.campaigns.follow_ups import campaign_follow_ups_send
from messaging.campaigns.pacing import campaigns_pace
from messaging.tasks import messages_requeue, reminders_send

logger = logging.getLogger(__name__)

# The first key of the advisory locks: ours, apart from any other use of advisory locks on the
# same database (the second key is the job's).
ADVISORY_LOCK_NAMESPACE = 1_471_180_014
# Finished task results older than this are deleted (their messages keep their own history).
TASK_RESULTS_KEPT_DAYS = 14
DEFAULT_SLOT_DAYS = 28

type JobOutcome = Literal["ran", "skipped", "failed"]


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], int]  # how many things it did (reminders queued, slots made...), for the log
    trigger: Callable[[], BaseTrigger]
    done: str = "{} done"  # what that number means

    @property
    def lock_key(self) -> int:
        # A stable 31-bit number for the name (the second key of a two-key advisory lock is an int4).
        return zlib.crc32(self.name.encode()) & 0x7FFFFFFF


def slots_generate_ahead() -> int:
    """Slots from every active rota from today to the furthest any active type lets patients book."""
    days = (
        AppointmentType.objects.filter(is_active=True).aggregate(days=Max("maximum_days_ahead"))["days"]
        or DEFAULT_SLOT_DAYS
    )
    today = today_in_london()
    result = slots_generate_from_rotas(
        rotas=Rota.objects.filter(is_active=True).order_by("pk"),
        start_date=today,
        end_date=today + timedelta(days=days),
    )
    return result.created


def task_results_prune() -> int:
    """Delete finished task results older than TASK_RESULTS_KEPT_DAYS (only the database backend keeps any)."""
    if not isinstance(task_backends["default"], DatabaseBackend):
        return 0
    call_command("prune_db_task_results", min_age_days=TASK_RESULTS_KEPT_DAYS, verbosity=0)
    return 1


def _reminders() -> int:
    return reminders_send().queued


def _campaigns() -> int:
    return campaigns_pace().invited


JOBS: list[Job] = [
    Job("send_reminders", _reminders, lambda: IntervalTrigger(minutes=1, timezone=LONDON), "{} reminders queued"),
    Job("pace_campaigns", _campaigns, lambda: IntervalTrigger(minutes=1, timezone=LONDON), "{} invitations made"),
    Job(
        "send_campaign_follow_ups",
        campaign_follow_ups_send,
        lambda: IntervalTrigger(minutes=1, timezone=LONDON),
        "{} follow-ups queued",
    ),
    Job("requeue_messages", messages_requeue, lambda: IntervalTrigger(minutes=1, timezone=LONDON), "{} queued again"),
    # Often: a manager waits on the check page (it refreshes itself) for an uploaded list's check.
    Job(
        "check_campaign_lists",
        campaign_lists_check,
        lambda: IntervalTrigger(seconds=5, timezone=LONDON),
        "{} campaign list rows checked",
    ),
    # Early morning London time, clear of the clock changes' missing and doubled hour (1-2am).
    Job("generate_slots", slots_generate_ahead, lambda: CronTrigger(hour=3, minute=30, timezone=LONDON), "{} slots"),
    Job("prune_task_results", task_results_prune, lambda: CronTrigger(hour=3, minute=45, timezone=LONDON)),
]


def scheduler_job_run(job: Job) -> JobOutcome:
    """Run `job` once unless another scheduler is running it now; whether it ran (or failed).

    Takes the job's session advisory lock with pg_try_advisory_lock (no waiting) and releases
    it after the run, on the same connection. An error in the job is logged and the lock
    released: the next run tries again.
    """
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, job.lock_key])
            (locked,) = cursor.fetchone()
        if not locked:
            logger.info("Scheduler: %s skipped, another scheduler is running it.", job.name)
            return "skipped"
        try:
            outcome = job.run()
        except Exception:
            # Kept from the process: the scheduler goes on with its other jobs and times.
            logger.exception("Scheduler: %s failed; it runs again at its next time.", job.name)
            return "failed"
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, job.lock_key])
        # A run that did nothing (most minutes) is not worth a line in the log.
        logger.log(
            logging.INFO if outcome else logging.DEBUG, "Scheduler: %s ran: %s.", job.name, job.done.format(outcome)
        )
        return "ran"
    finally:
        close_old_connections()


def scheduler_build(*, jobs: list[Job] = JOBS) -> BlockingScheduler:
    """A blocking APScheduler with each job on its trigger, run through scheduler_job_run.

    One instance of a job at a time in this process (max_instances=1), missed runs run once
    (coalesce), and a run that is late by up to an hour still runs: the jobs catch up anyway.
    """
    scheduler = BlockingScheduler(timezone=LONDON)
    for job in jobs:
        scheduler.add_job(
            scheduler_job_run,
            trigger=job.trigger(),
            args=[job],
            id=job.name,
            name=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    return scheduler
