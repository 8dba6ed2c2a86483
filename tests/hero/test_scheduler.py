"""The scheduler: its jobs and times, and a job that never runs in two schedulers at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from hero.scheduler import ADVISORY_LOCK_NAMESPACE, JOBS, Job, scheduler_build, scheduler_job_run
from tests.concurrency import race
from tests.workers import DEADLINE_SECONDS, ROOT, worker_environment

LONDON = ZoneInfo("Europe/London")


class Overlap:
    """A job that records how many runs of it were going at once, and waits for the test's word."""

    def __init__(self) -> None:
        self.active = self.most = 0
        self.lock = threading.Lock()
        self.started, self.finish = threading.Event(), threading.Event()

    def run(self) -> int:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        self.started.set()
        self.finish.wait(timeout=30)
        with self.lock:
            self.active -= 1
        return 1


def test_the_jobs_and_when_they_run():
    scheduler = scheduler_build()
    jobs = {job.id: job.trigger for job in scheduler.get_jobs()}
    assert set(jobs) == {
        "send_reminders",
        "requeue_messages",
        "check_campaign_lists",
        "pace_campaigns",
        "send_campaign_follow_ups",
        "generate_slots",
        "prune_task_results",
    }
    assert jobs["send_campaign_follow_ups"].interval.total_seconds() == 60
    assert jobs["send_reminders"].interval.total_seconds() == 60
    assert jobs["check_campaign_lists"].interval.total_seconds() == 5
    assert jobs["pace_campaigns"].interval.total_seconds() == 60
    assert jobs["requeue_messages"].interval.total_seconds() == 60
    # Daily at 3:30am London time, GMT or BST.
    after_change = jobs["generate_slots"].get_next_fire_time(None, datetime(2027, 3, 28, 0, 0, tzinfo=LONDON))
    assert after_change == datetime(2027, 3, 28, 3, 30, tzinfo=LONDON)
    assert after_change.utcoffset().total_seconds() == 3600


@pytest.mark.django_db(transaction=True)
def test_a_job_runs_in_one_scheduler_at_a_time():
    overlap = Overlap()
    job = Job("test_overlap", overlap.run, lambda: None)

    def scheduler(i: int) -> str:
        if i == 1:
            assert overlap.started.wait(timeout=30)  # the other scheduler is running the job
            try:
                return scheduler_job_run(job)
            finally:
                overlap.finish.set()
        return scheduler_job_run(job)

    assert sorted(race(scheduler, threads=2)) == ["ran", "skipped"]
    assert overlap.most == 1
    # And once the first is done, the next run goes.
    overlap.finish.set()
    assert scheduler_job_run(job) == "ran"


@pytest.mark.django_db(transaction=True)
def test_control_without_the_lock_both_schedulers_run_the_job_at_once():
    overlap = Overlap()

    def scheduler(i: int) -> object:
        if i == 1:
            assert overlap.started.wait(timeout=30)
            try:
                return overlap.run()  # the job itself, not through scheduler_job_run
            finally:
                overlap.finish.set()
        return overlap.run()

    overlap_results = race(scheduler, threads=2)
    assert overlap_results == [1, 1]
    assert overlap.most == 2


@pytest.mark.django_db(transaction=True)
def test_a_second_scheduler_process_skips_the_job_another_is_running(fake_twilio):
    reminders = next(job for job in JOBS if job.name == "send_reminders")
    command = [sys.executable, "manage.py", "scheduler", "--once"]
    environment = worker_environment(fake_twilio)
    with connection.cursor() as cursor:
        # This test's session plays the scheduler that is in the middle of sending reminders.
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, reminders.lock_key])
        try:
            held = subprocess.run(
                command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=DEADLINE_SECONDS
            )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, reminders.lock_key])
    free = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=DEADLINE_SECONDS)
    assert held.returncode == free.returncode == 0, held.stderr + free.stderr
    assert "send_reminders: skipped" in held.stdout
    assert "requeue_messages: ran" in held.stdout
    assert "send_reminders: ran" in free.stdout
