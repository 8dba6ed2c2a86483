"""Two members of staff record the outcome of the same call at once, in real threads.

The record is a conditional UPDATE (`... WHERE call_outcome = ''`). The race is made certain: a
second connection holds the row's lock while both records start, so both queue on it with the
row still unrecorded; released, the first writes and the second, reading the row again, finds it
recorded and writes nothing. The control takes the condition away: the second overwrites the
first, and the trail says two different outcomes for one call.
"""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

from booking.models import AuditEvent
from messaging.campaigns.call_list import campaign_entry_call_outcome_record
from messaging.models import CampaignEntry
from tests.concurrency import RowLockHolder, in_thread, lock_waiters, wait_until
from tests.factories import StaffMembershipFactory, UserFactory
from tests.scenarios import CAMPAIGN_INVITED, make_campaign, make_invitation

pytestmark = pytest.mark.django_db(transaction=True)

INVITED = CAMPAIGN_INVITED


@pytest.fixture
def entry_and_callers(practice) -> tuple[CampaignEntry, list[object]]:
    entry = make_invitation(make_campaign(practice), practice.patient, invited_at=INVITED)
    colleague = UserFactory(username="riverside-two")
    StaffMembershipFactory(user=colleague, organisation=practice.organisation)
    return entry, [practice.user, colleague]


def record_both_at_once(entry: CampaignEntry, callers: list[object]) -> list[object]:
    outcomes = [CampaignEntry.CallOutcome.BOOKED_BY_PHONE, CampaignEntry.CallOutcome.NO_ANSWER]

    def record(i: int) -> object:
        row = CampaignEntry.objects.select_related("campaign__organisation", "patient").get(pk=entry.pk)
        return campaign_entry_call_outcome_record(entry=row, outcome=outcomes[i], actor=callers[i])

    with RowLockHolder(CampaignEntry, entry.pk):
        first, first_result = in_thread(lambda: record(0))
        assert wait_until(lambda: lock_waiters() >= 1)
        second, second_result = in_thread(lambda: record(1))
        assert wait_until(lambda: lock_waiters() >= 2)
    first.join(timeout=30)
    second.join(timeout=30)
    return [first_result[0], second_result[0]]


def test_two_staff_recording_at_once_keep_the_first(entry_and_callers):
    entry, callers = entry_and_callers
    results = record_both_at_once(entry, callers)
    assert sorted(results, key=str) == [False, True], results
    entry.refresh_from_db()
    winner = results.index(True)
    assert entry.call_outcome == ["booked_by_phone", "no_answer"][winner]
    assert entry.call_outcome_by == callers[winner]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN).count() == 1


def test_control_without_the_condition_the_second_overwrites_the_first(entry_and_callers, monkeypatch):
    entry, callers = entry_and_callers
    real_filter = QuerySet.filter

    def filter_without_the_condition(self: QuerySet, *args: object, **kwargs: object) -> QuerySet:
        if self.model is CampaignEntry:
            kwargs.pop("call_outcome", None)
        return real_filter(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "filter", filter_without_the_condition)
    results = record_both_at_once(entry, callers)
    assert results == [True, True], results
    outcomes = set(
        AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN).values_list("detail__outcome", flat=True)
    )
    assert outcomes == {"booked_by_phone", "no_answer"}
