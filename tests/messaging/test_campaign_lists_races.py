"""Two schedulers check one campaign's list at once: each row is checked once, and it starts once."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import IntegrityError
from django.db.models import QuerySet

from booking.models import AuditEvent
from messaging.campaigns import checks
from messaging.campaigns.checks import campaign_list_check
from messaging.campaigns.creation import campaign_start
from messaging.models import Campaign, CampaignEntry, CampaignUpload
from tests.concurrency import race
from tests.factories import CampaignFactory, PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 30


def checking_campaign(practice) -> Campaign:
    patients = [PatientFactory(organisation=practice.organisation) for _ in range(ROWS)]
    content = ("NHS number\r\n" + "".join(f"{p.nhs_number}\r\n" for p in patients)).encode()
    campaign = CampaignFactory(
        organisation=practice.organisation,
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status="checking",
        list_rows=ROWS,
    )
    CampaignUpload.objects.create(campaign=campaign, content=content)
    return campaign


@pytest.fixture
def batches_meet(monkeypatch):
    """Each run waits (up to a second) for the other inside its first batch's transaction, so
    both read the same progress unless one of them is kept out."""
    barrier = threading.Barrier(2, timeout=1)
    original = checks._entries

    def meeting(**kwargs):
        # A broken barrier: the other run was kept out (or is done), so this one goes on alone.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return original(**kwargs)

    monkeypatch.setattr(checks, "_entries", meeting)


def test_two_runs_at_once_check_each_row_once(practice, batches_meet):
    campaign = checking_campaign(practice)
    results = race(lambda i: campaign_list_check(campaign_id=campaign.pk, batch_rows=10), threads=2)
    assert not [result for result in results if isinstance(result, Exception)]
    campaign_list_check(campaign_id=campaign.pk)  # whatever the skipped run left, as the next run would
    campaign.refresh_from_db()
    assert (campaign.status, campaign.list_rows_checked) == ("checked", ROWS)
    rows = list(CampaignEntry.objects.filter(campaign=campaign).values_list("row_number", flat=True))
    assert sorted(rows) == list(range(2, ROWS + 2))
    assert set(CampaignEntry.objects.filter(campaign=campaign).values_list("problem", flat=True)) == {""}


def test_control_without_the_lock_both_runs_write_the_same_rows(practice, batches_meet, monkeypatch):
    # Shows the race the lock prevents: both read the same progress and insert the same rows;
    # the unique (campaign, row number) constraint is all that stops the second.
    monkeypatch.setattr(QuerySet, "select_for_update", lambda self, *args, **kwargs: self)
    campaign = checking_campaign(practice)
    results = race(lambda i: campaign_list_check(campaign_id=campaign.pk, batch_rows=10), threads=2)
    assert [type(result) for result in results].count(IntegrityError) == 1


def test_two_tabs_starting_at_once_start_it_once(practice):
    campaign = checking_campaign(practice)
    campaign_list_check(campaign_id=campaign.pk)
    campaign.refresh_from_db()

    def start(i: int) -> bool:
        return campaign_start(
            campaign=campaign,
            user=practice.user,
            starts_at=None,
            per_day=10 + i,
            per_free_time=2,
            follow_up_1_days=5,
            follow_up_2_days=10,
        )

    results = race(start, threads=4)
    assert sorted(results) == [False, False, False, True]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN).count() == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
