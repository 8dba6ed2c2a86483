"""The campaign's call list: staff record what came of phoning a patient who didn't answer the texts.

Who is on the list is one rule, `campaign_call_list` (messaging/campaigns/follow_ups.py, beside
the follow-ups it comes after). Here: recording the outcome of a call, once.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.models import AuditEvent
from booking.users import AnyUser
from messaging.models import CampaignEntry


def campaign_entry_call_outcome_record(
    *, entry: CampaignEntry, outcome: CampaignEntry.CallOutcome, actor: AnyUser, now: datetime | None = None
) -> bool:
    """Record what came of calling the patient of `entry`; returns whether this call recorded it.

    One conditional UPDATE of the row (`... WHERE call_outcome = ''`): two members of staff
    recording at once keep the first, and the second is told (False, nothing written). Only an
    invited row (it has its link) has a call. Audited as a change to the campaign (did
    "call_outcome", with the outcome's code). Reads `entry.campaign` and `entry.patient`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        recorded = CampaignEntry.objects.filter(pk=entry.pk, link__isnull=False, call_outcome="").update(
            call_outcome=outcome,
            call_outcome_at=now,
            call_outcome_by=actor if actor.is_authenticated else None,
        )
        if recorded:
            audit_record(
                action=AuditEvent.Action.CAMPAIGN,
                actor=actor,
                organisation=entry.campaign.organisation,
                patient=entry.patient,
                detail={
                    "did": "call_outcome",
                    "campaign": entry.campaign.reference,
                    "row": entry.row_number,
                    "outcome": str(outcome),
                },
            )
    entry.refresh_from_db(fields=["call_outcome", "call_outcome_at", "call_outcome_by"])
    return bool(recorded)
