"""A campaign's invitations: a batch of its list's rows made into links and messages, at once.

Each invitation is what Invite to book makes for one patient (messaging/sending.py,
message_send), written in bulk for a batch: the link (booking/links.py,
booking_links_issue_many: one check of the campaign's settings, a token each, declinable), the
message with the campaign's text (normalised for its channel and stored with LINK_PLACEHOLDER
where the link goes, by sending.py's own functions), an audit event "Message sent" each, the
row's link, message and invited_at, and the delivery tasks (messaging/tasks.py,
deliveries_enqueue, at CAMPAIGN_PRIORITY so a message sent by hand is never queued behind a
campaign's). Each goes by the campaign's preferred channel when that reaches the patient now,
else the other (messaging/channels.py, channel_reaching); a patient neither reaches any more
(their number removed, STOP replied since the check) gets the row problem "no_contact" and no
message; one who has booked this type, or been sent a link for it, since the list was checked
gets that row problem instead ("has_appointment", "has_link"). The pacing (pacing.py) decides
which rows and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from booking.links import LinkExpiry, booking_links_issue_many
from booking.models import AuditEvent, Patient
from messaging.channels import ChannelOption, channel_reaching
from messaging.models import Campaign, CampaignEntry, Channel, Message
from messaging.sending import message_body_normalise, message_body_stored, message_subject
from messaging.tasks import CAMPAIGN_PRIORITY, deliveries_enqueue


@dataclass(frozen=True)
class InvitationBatch:
    invited: int = 0  # links and messages made
    unreachable: int = 0  # rows given the problem "no_contact", with no message
    held: int = 0  # rows whose patient booked this type, or was sent a link for it, since the check


def campaign_invitations_make(*, campaign: Campaign, entries: list[CampaignEntry], now: datetime) -> InvitationBatch:
    """Invite the patients of `entries`: links, messages, audit events, the rows, their deliveries.

    Call inside the batch's transaction, with `entries` claimed by the caller (found rows not
    yet invited, locked FOR UPDATE, `patient__organisation` joined) and the campaign row
    locked with its organisation, type, location, practitioner and starter joined: a fixed
    number of queries whatever the batch's size (one INSERT each of links, messages, audit
    events and task rows, one UPDATE of the rows). Locks nothing more. The `entries` instances
    are not updated: read the rows again for their link and message. Raises LinkNotAllowed
    (booking.exceptions) before writing anything when the campaign's link settings no longer
    hold (the type withdrawn from the location since it started, say).
    """
    preferred = Channel(campaign.preferred_channel)
    reaching: list[tuple[CampaignEntry, Patient, ChannelOption]] = []
    unreachable: list[CampaignEntry] = []
    held: list[tuple[CampaignEntry, str]] = []
    for entry in entries:
        # Booked, or sent a link by hand, since the check (pacing.py annotates the claimed rows).
        if getattr(entry, "has_appointment", False):
            held.append((entry, CampaignEntry.Problem.HAS_APPOINTMENT))
            continue
        if getattr(entry, "has_link", False):
            held.append((entry, CampaignEntry.Problem.HAS_LINK))
            continue
        # A found row always has its patient (the constraint campaign_entry_found_has_patient).
        patient = entry.patient
        option = channel_reaching(patient, preferred=preferred) if patient is not None else None
        if patient is None or option is None:
            unreachable.append(entry)
        else:
            reaching.append((entry, patient, option))
    links = booking_links_issue_many(
        patients=[patient for _, patient, _ in reaching],
        organisation=campaign.organisation,
        appointment_type=campaign.appointment_type,
        location=campaign.location,
        practitioner=campaign.practitioner,
        expiry=LinkExpiry(campaign.link_expiry),
        created_by=campaign.started_by,
        declinable=True,
        now=now,
    )
    # The text differs by channel only (SMS normalising), not by patient: normalised once each.
    bodies = {channel: message_body_normalise(campaign.body, channel=channel) for channel in Channel}
    messages = Message.objects.bulk_create(
        [
            Message(
                organisation=campaign.organisation,
                patient=patient,
                channel=option.channel,
                to_address=option.address,
                subject=message_subject(channel=option.channel, practice=campaign.organisation),
                template_body=bodies[option.channel],
                body=message_body_stored(body=bodies[option.channel], patient=patient, has_link=True),
                booking_link=link,
                sent_by=campaign.started_by,
                created_at=now,
            )
            for (_, patient, option), link in zip(reaching, links, strict=True)
        ]
    )
    # As message_send records each message it sends (booking/audit.py audit_record), in one INSERT.
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action=AuditEvent.Action.SENT,
                actor=campaign.started_by,
                organisation=campaign.organisation,
                patient=patient,
                booking_link=link,
                detail={"message": message.reference, "channel": message.channel, "campaign": campaign.reference},
                created_at=now,
            )
            for (_, patient, _), link, message in zip(reaching, links, messages, strict=True)
        ]
    )
    _entries_record(
        invited=[
            (entry.pk, link.pk, message.pk)
            for (entry, _, _), link, message in zip(reaching, links, messages, strict=True)
        ],
        not_invited=[(entry.pk, CampaignEntry.Problem.NO_CONTACT.value) for entry in unreachable]
        + [(entry.pk, str(problem)) for entry, problem in held],
        now=now,
    )
    if messages:
        deliveries_enqueue(messages=messages, priority=CAMPAIGN_PRIORITY)
    return InvitationBatch(invited=len(messages), unreachable=len(unreachable), held=len(held))


def _entries_record(*, invited: list[tuple[int, int, int]], not_invited: list[tuple[int, str]], now: datetime) -> None:
    """One UPDATE for the batch's rows: (row, link, message) invited at `now`, and (row, problem) for the rest.

    Not bulk_update: Django writes a CASE per row for each field, and building that SQL for
    500 rows took half a batch's time (bench/campaign_pacing.py); unnest joins the values in.
    """
    rows = [(entry_id, link_id, message_id, "") for entry_id, link_id, message_id in invited] + [
        (entry_id, None, None, problem) for entry_id, problem in not_invited
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE messaging_campaignentry AS entry
            SET link_id = made.link_id, message_id = made.message_id, problem = made.problem,
                invited_at = CASE WHEN made.link_id IS NULL THEN NULL ELSE %s::timestamptz END
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) AS made (id, link_id, message_id, problem)
            WHERE entry.id = made.id
            """,
            [
                now,
                [row[0] for row in rows],
                [row[1] for row in rows],
                [row[2] for row in rows],
                [row[3] for row in rows],
            ],
        )
