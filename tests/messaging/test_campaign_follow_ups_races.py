"""Two follow-up runs at once (two schedulers, or one and a run by hand), in real threads.

Each run selects the due rows, then claims them with a conditional UPDATE (`follow_ups_sent = n
WHERE follow_ups_sent = n - 1`). The race is made certain: both runs are held at the claim until
both have selected the same rows. Guarded, the second claim waits for the first run's commit,
finds the rows claimed and writes nothing; the control claims without the condition and every
patient gets the follow-up twice.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest
from django.db import connection

import messaging.campaigns.follow_ups as follow_ups
from booking.formats import LONDON
from messaging.campaigns.follow_ups import campaign_follow_ups_send
from messaging.models import CampaignEntry, Message
from tests.concurrency import race
from tests.factories import PatientFactory
from tests.scenarios import CAMPAIGN_INVITED, make_campaign, make_invitation

pytestmark = pytest.mark.django_db(transaction=True)

INVITED = CAMPAIGN_INVITED
DAY_5 = datetime(2026, 12, 6, 10, 0, tzinfo=LONDON)
PATIENTS = 4


@pytest.fixture
def invited(practice) -> list[CampaignEntry]:
    campaign = make_campaign(practice)
    return [
        make_invitation(campaign, PatientFactory(organisation=practice.organisation), invited_at=INVITED)
        for _ in range(PATIENTS)
    ]


def both_at_the_claim(monkeypatch: pytest.MonkeyPatch, claim: Any) -> None:
    """Hold each run at its claim until the other has selected the same rows too."""
    barrier = threading.Barrier(2)

    def held(*args: Any, **kwargs: Any) -> set[int]:
        barrier.wait(timeout=30)
        return claim(*args, **kwargs)

    monkeypatch.setattr(follow_ups, "_claim", held)


def claim_without_the_condition(entry_ids: list[int], *, number: int, now: datetime) -> set[int]:
    """The claim with its guard taken away: `follow_ups_sent = n` whatever it was."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE messaging_campaignentry SET follow_ups_sent = %s, last_follow_up_at = %s "
            "WHERE id = ANY(%s::bigint[]) RETURNING id",
            [number, now, entry_ids],
        )
        return {row[0] for row in cursor.fetchall()}


def sent_per_patient(entries: list[CampaignEntry]) -> list[int]:
    return [Message.objects.filter(link_carried_id=entry.link_id).count() for entry in entries]


def test_two_runs_at_once_send_each_follow_up_once(invited, monkeypatch):
    both_at_the_claim(monkeypatch, follow_ups._claim)
    results = race(lambda i: campaign_follow_ups_send(now=DAY_5), threads=2)
    assert sorted(results) == [0, PATIENTS], results
    assert sent_per_patient(invited) == [1] * PATIENTS
    assert set(
        CampaignEntry.objects.filter(pk__in=[e.pk for e in invited]).values_list("follow_ups_sent", flat=True)
    ) == {1}


def test_control_without_the_conditional_claim_every_patient_gets_it_twice(invited, monkeypatch):
    both_at_the_claim(monkeypatch, claim_without_the_condition)
    results = race(lambda i: campaign_follow_ups_send(now=DAY_5), threads=2)
    assert results == [PATIENTS, PATIENTS], results
    assert sent_per_patient(invited) == [2] * PATIENTS
