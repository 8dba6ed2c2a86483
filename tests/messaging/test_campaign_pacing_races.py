"""Pacing on the real database with real threads: each invitation once, and a stop that holds.

Each race has its control: the same two workers with the locks patched away double-send, and
the same stop with the status no longer read again under the lock lets the next batches go, so
a guarded test can't pass because the race never happened.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from datetime import datetime

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet

from booking.formats import LONDON
from messaging.campaigns import pacing
from messaging.campaigns.pacing import campaign_pace, campaigns_pace
from messaging.models import Campaign, CampaignEntry, Message
from tests.concurrency import RowLockHolder, lock_waiters, race, wait_until
from tests.scenarios import make_paced_campaign, make_practice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("database_task_rows")]

NOW = datetime(2027, 1, 13, 10, 0, tzinfo=LONDON)
PATIENTS = 6


def two_workers_pace(monkeypatch, *, guarded: bool) -> tuple[Campaign, list[object]]:
    """Two workers pace one campaign at the same moment and meet, if their locks let them, with rows in hand."""
    campaign = make_paced_campaign(make_practice(), now=NOW, patients=PATIENTS, free_times=20)
    barrier = threading.Barrier(2)
    make = pacing.campaign_invitations_make

    def meet_then_make(**kwargs: object):
        # Guarded, the second worker waits for the campaign row's lock, so the first meets no
        # one here and goes on when the wait times out; unguarded, both arrive with the same rows.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=3)
        return make(**kwargs)

    monkeypatch.setattr(pacing, "campaign_invitations_make", meet_then_make)
    if not guarded:
        monkeypatch.setattr(QuerySet, "select_for_update", lambda self, **options: self)
    results = race(lambda i: campaign_pace(campaign_id=campaign.pk, now=NOW), threads=2)
    return campaign, results


def waiters_seen_from_a_transaction() -> int:
    """lock_waiters, from inside a transaction: PostgreSQL keeps one snapshot of its statistics a transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
    return lock_waiters()


def messages_per_patient(campaign: Campaign) -> Counter[int]:
    return Counter(
        Message.objects.filter(patient__in=campaign.entries.values("patient")).values_list("patient_id", flat=True)
    )


def test_two_workers_at_once_make_each_invitation_once(monkeypatch):
    campaign, results = two_workers_pace(monkeypatch, guarded=True)
    assert not [result for result in results if isinstance(result, Exception)], results
    assert sorted(result.invited for result in results) == [0, PATIENTS]
    assert set(messages_per_patient(campaign).values()) == {1}
    assert len(messages_per_patient(campaign)) == PATIENTS
    assert CampaignEntry.objects.filter(campaign=campaign, link__isnull=True).count() == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_control_without_the_locks_two_workers_send_twice(monkeypatch):
    campaign, results = two_workers_pace(monkeypatch, guarded=False)
    assert not [result for result in results if isinstance(result, Exception)], results
    assert [result.invited for result in results] == [PATIENTS, PATIENTS]
    assert set(messages_per_patient(campaign).values()) == {2}


def test_a_row_another_transaction_holds_is_skipped_not_waited_for_and_invited_later():
    campaign = make_paced_campaign(make_practice(), now=NOW, patients=3, free_times=20)
    held = campaign.entries.get(row_number=3)
    holder = RowLockHolder(CampaignEntry, held.pk)
    holder.thread.start()
    try:
        assert holder.holding.wait(timeout=10)
        first = campaign_pace(campaign_id=campaign.pk, now=NOW)
        assert first.invited == 2
        assert not Message.objects.filter(patient=held.patient).exists()
    finally:
        holder.release.set()
        holder.thread.join(timeout=10)
    assert campaign_pace(campaign_id=campaign.pk, now=NOW).invited == 1
    assert Message.objects.filter(patient=held.patient).count() == 1


def stop_pressed_during_the_first_batch(monkeypatch) -> tuple[Campaign, pacing.CampaignPacing]:
    """Pace a campaign 2 rows a batch; a manager presses Stop while the first batch is being made."""
    campaign = make_paced_campaign(make_practice(), now=NOW, patients=PATIENTS, free_times=20)
    make = pacing.campaign_invitations_make
    stopper = threading.Thread(
        target=lambda: Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.STOPPED)
    )

    def make_then_stop(**kwargs: object):
        made = make(**kwargs)
        if stopper.ident is None:
            # Their update waits for this batch's lock on the campaign row.
            stopper.start()
            assert wait_until(lambda: waiters_seen_from_a_transaction() >= 1)
        return made

    monkeypatch.setattr(pacing, "campaign_invitations_make", make_then_stop)
    run = campaign_pace(campaign_id=campaign.pk, now=NOW, batch_size=2)
    stopper.join(timeout=10)
    return campaign, run


def test_stopped_while_a_batch_is_being_made_nothing_more_is_sent(monkeypatch):
    campaign, run = stop_pressed_during_the_first_batch(monkeypatch)
    # The batch under way when Stop was pressed went; nothing after it.
    assert (run.invited, run.status) == (2, Campaign.Status.STOPPED)
    assert Message.objects.count() == 2
    assert campaigns_pace(now=NOW).invited == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.STOPPED


def test_control_without_the_status_read_again_under_the_lock_the_next_batches_go(monkeypatch):
    may_send = pacing._may_send

    def status_read_once(*, campaign: Campaign, now: datetime) -> bool:
        return may_send(campaign=campaign, now=now) or campaign.status == Campaign.Status.STOPPED

    monkeypatch.setattr(pacing, "_may_send", status_read_once)
    _, run = stop_pressed_during_the_first_batch(monkeypatch)
    assert run.invited == PATIENTS
    assert Message.objects.count() == PATIENTS


def test_stopped_between_the_list_and_the_batch_nothing_is_sent(monkeypatch):
    campaign = make_paced_campaign(make_practice(), now=NOW, patients=PATIENTS, free_times=20)
    pace = pacing.campaign_pace

    def stop_then_pace(**kwargs: object):
        # Stopped after campaigns_pace listed it as sending, before its first batch locks it.
        with transaction.atomic():
            Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.STOPPED)
        return pace(**kwargs)

    monkeypatch.setattr(pacing, "campaign_pace", stop_then_pace)
    assert campaigns_pace(now=NOW).invited == 0
    assert not Message.objects.exists()
