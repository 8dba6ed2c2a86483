"""Creating a campaign (its settings and its list, held for the check) and starting it once checked.

Nothing is sent or made for a patient here: creating stores the campaign (CHECKING) and the
uploaded list, which the scheduler then checks (messaging/campaigns/checks.py); starting moves a
CHECKED campaign to SENDING, and the pacing makes each invitation when its turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.exceptions import LinkNotAllowed
from booking.links import LinkExpiry, booking_link_check
from booking.models import AppointmentType, AuditEvent, Location, Organisation, Practitioner
from booking.users import AnyUser
from messaging.exceptions import MessageNotSent
from messaging.models import Campaign, CampaignUpload, Channel
from messaging.sending import message_length_check, message_text_check

# The invitation's length is checked as if sent to a patient with a name this long: the real
# names are not known until the list is checked, and a text must not grow past the limit for one.
LONG_FIRST_NAME = "Christopher-Alexander"


class CampaignRefused(Exception):
    """A campaign can't be created or started as asked: `message` says why, `field` where."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class CampaignSettings:
    """What the manager chose on "New campaign": Invite to book's link settings and the invitation."""

    name: str
    appointment_type: AppointmentType
    location: Location
    practitioner: Practitioner | None
    link_expiry: LinkExpiry
    body: str
    preferred_channel: Channel


def campaign_create(
    *,
    organisation: Organisation,
    user: User,
    settings: CampaignSettings,
    list_name: str,
    content: bytes,
    list_rows: int,
    now: datetime | None = None,
) -> Campaign:
    """Save the campaign (CHECKING) and its uploaded list in one transaction; return the campaign.

    `content` has passed messaging/campaigns/lists.py `campaign_list_shape`, which counted
    `list_rows`. Raises CampaignRefused (and saves nothing) when the link settings aren't the
    organisation's to offer or the invitation breaks a message rule. Locks nothing: a new row.
    """
    now = now or timezone.now()
    body = campaign_body_check(organisation=organisation, body=settings.body, channel=settings.preferred_channel)
    try:
        booking_link_check(
            organisation=organisation,
            appointment_type=settings.appointment_type,
            location=settings.location,
            practitioner=settings.practitioner,
        )
    except LinkNotAllowed as error:
        raise CampaignRefused(error.message, field=error.field) from error
    with transaction.atomic():
        campaign = Campaign.objects.create(
            organisation=organisation,
            name=settings.name,
            appointment_type=settings.appointment_type,
            location=settings.location,
            practitioner=settings.practitioner,
            link_expiry=settings.link_expiry.value,
            body=body,
            preferred_channel=settings.preferred_channel.value,
            status=Campaign.Status.CHECKING,
            status_changed_at=now,
            list_name=list_name[:255],
            list_rows=list_rows,
            created_by=user,
            created_at=now,
        )
        CampaignUpload.objects.create(campaign=campaign, content=content)
        # Who uploaded a list of patients, and when: the list itself is deleted once checked.
        audit_record(
            action=AuditEvent.Action.CAMPAIGN,
            actor=user,
            organisation=organisation,
            detail={"campaign": campaign.reference, "did": "created", "rows": list_rows},
        )
    return campaign


def campaign_body_check(*, organisation: Organisation, body: str, channel: Channel) -> str:
    """The invitation normalised, or CampaignRefused: Invite to book's token rules (the link exactly
    once, known tokens) and the SMS length with a long first name, whichever channel is preferred
    (a patient without the preferred one gets the other)."""
    try:
        body = message_text_check(body=body, channel=channel, with_link=True)
        message_length_check(body=body, patient_first_name=LONG_FIRST_NAME, practice_name=organisation.name)
    except MessageNotSent as error:
        raise CampaignRefused(error.message, field="body") from error
    return body


@dataclass(frozen=True)
class CampaignPace:
    """The pace form's settings: from when, how many a day, a free time, and the follow-ups' days."""

    starts_at: datetime | None
    per_day: int
    per_free_time: int
    follow_up_1_days: int | None
    follow_up_2_days: int | None


def campaign_pace_check(*, campaign: Campaign, pace: CampaignPace) -> None:
    """Raise CampaignRefused unless the pace is one the campaign can keep (its database checks, in words)."""
    if not 1 <= pace.per_free_time <= 5:
        raise CampaignRefused("Invitations per free time must be from 1 to 5.", field="per_free_time")
    if pace.per_day < 1:
        raise CampaignRefused("Invitations per day must be 1 or more.", field="per_day")
    first, second = pace.follow_up_1_days, pace.follow_up_2_days
    if second is not None and first is None:
        raise CampaignRefused("Set the first follow-up before a second one.", field="follow_up_1_days")
    if first is not None and second is not None and second <= first:
        raise CampaignRefused("The second follow-up must come after the first.", field="follow_up_2_days")
    last = second if second is not None else first
    lifetime = LinkExpiry(campaign.link_expiry).lifetime
    if last is not None and lifetime is not None and lifetime.total_seconds() <= last * 86400:
        raise CampaignRefused(
            f"The links expire after {LinkExpiry(campaign.link_expiry).label}, before the follow-up on day {last} "
            "could use them. Choose fewer days, or leave the follow-ups blank.",
            field="follow_up_2_days" if second is not None else "follow_up_1_days",
        )


def campaign_start(
    *,
    campaign: Campaign,
    user: AnyUser,
    starts_at: datetime | None,
    per_day: int,
    per_free_time: int,
    follow_up_1_days: int | None,
    follow_up_2_days: int | None,
    now: datetime | None = None,
) -> bool:
    """Start a CHECKED campaign (SENDING) with this pace; whether this call started it.

    One conditional UPDATE (`... WHERE status = 'checked'`): two tabs pressing "Start sending"
    at once start it once, and the second gets False; audited once (AuditEvent CAMPAIGN, "started").
    Raises CampaignRefused for a pace the campaign can't keep or a list with no one to invite.
    """
    now = now or timezone.now()
    pace = CampaignPace(starts_at, per_day, per_free_time, follow_up_1_days, follow_up_2_days)
    campaign_pace_check(campaign=campaign, pace=pace)
    if not campaign.entries.filter(problem="").exists():
        raise CampaignRefused("No one on the list can be invited: there is nothing to send.")
    with transaction.atomic():
        started = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.CHECKED).update(
            status=Campaign.Status.SENDING,
            status_changed_at=now,
            starts_at=starts_at or now,
            per_day=per_day,
            per_free_time=per_free_time,
            follow_up_1_days=follow_up_1_days,
            follow_up_2_days=follow_up_2_days,
            started_by=user,
            started_at=now,
        )
        if started:
            audit_record(
                action=AuditEvent.Action.CAMPAIGN,
                actor=user,
                organisation=campaign.organisation,
                detail={"campaign": campaign.reference, "did": "started"},
            )
    return bool(started)
