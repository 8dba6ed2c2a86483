"""What staff send: message templates, and each message as a row before it is delivered; the
reminders sent before appointments and each organisation's reminder text; the ids of texts
patients sent us (so a STOP or START acts once); campaigns, each with the rows of its list of
patients."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from booking.models import Appointment, AppointmentType, BookingLink, Location, Organisation, Patient, Practitioner
from booking.names import name_check, validate_name
from booking.phones import E164_PATTERN
from booking.references import encode_reference


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class MessageTemplate(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="message_templates")
    name = models.CharField(max_length=100, validators=[validate_name])
    body = models.TextField(
        help_text="Tokens: {{Patient First Name}}, {{Practice Name}}, {{Appointment Link}}.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"],
                name="message_template_unique_name_per_organisation",
                violation_error_message="This organisation already has a template with that name.",
            ),
            name_check(field="name", name="message_template_name_printable"),
        ]

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    """One message to one patient. Saved (queued) before any provider is called."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="messages", db_index=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="messages", db_index=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    to_address = models.CharField(max_length=254, help_text="The mobile (E.164) or email address it went to.")
    subject = models.CharField(max_length=200, blank=True)
    template_body = models.TextField(help_text="The text as staff wrote it, with its tokens.")
    body = models.TextField(help_text="The text as sent.")
    booking_link = models.OneToOneField(
        BookingLink, on_delete=models.PROTECT, null=True, blank=True, related_name="message"
    )
    # The link a later message carries so the patient can change or cancel a booked appointment
    # (confirmations, reminders): put back at send time like the invitation's (messaging/texts.py).
    link_carried = models.ForeignKey(
        BookingLink, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Set on the confirmation sent when an appointment is booked (or booked by a change, the new
    # one): one per appointment.
    confirms = models.OneToOneField(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="confirmation"
    )
    # Set on the message telling the patient an appointment was cancelled: one per appointment,
    # so two workers (or a worker and the requeue sweep) can't both tell them.
    cancellation_of = models.OneToOneField(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="cancellation_notice"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True, help_text="Why it failed, or why the last try didn't go.")
    # Delivery bookkeeping (messaging/delivery.py). A queued message is due at next_attempt_at;
    # a worker claims it (sending) for a lease, so a worker that dies mid-send only delays it.
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_default=Now())
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    # The form's one-time key: a double submit finds the message the first submit made.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["sms", "email"]), name="message_channel_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sending", "sent", "delivered", "failed"]),
                name="message_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(channel="email") | Q(to_address__regex=E164_PATTERN), name="message_sms_to_e164"
            ),
            models.CheckConstraint(condition=~Q(body=""), name="message_body_not_empty"),
            # A message confirms an appointment or says it was cancelled, never both.
            models.CheckConstraint(
                condition=Q(confirms__isnull=True) | Q(cancellation_of__isnull=True),
                name="message_confirms_or_cancellation",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="message_org_created"),
            models.Index(fields=["patient", "-created_at"], name="message_patient_created"),
            # What the requeue sweep looks for: queued and due, or sending with a lapsed lease.
            models.Index(fields=["next_attempt_at"], condition=Q(status="queued"), name="message_queued_due"),
            models.Index(fields=["lease_expires_at"], condition=Q(status="sending"), name="message_sending_lease"),
            # Provider callbacks find a message by the provider's id.
            models.Index(
                fields=["provider_message_id"], condition=~Q(provider_message_id=""), name="message_provider_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.patient} ({self.get_status_display()})"

    @property
    def reference(self) -> str:
        return encode_reference(self.pk, namespace="message") if self.pk else ""


# A campaign's messages (messaging/campaigns/): its invitations, which carry a declinable link,
# and its follow-ups, which carry the invitation's link and confirm, notice and remind of
# nothing. What the requeue sweep queues again behind hand-sent messages (messaging/tasks.py).
CAMPAIGN_MESSAGE = Q(booking_link__declinable=True) | Q(
    link_carried__isnull=False, confirms__isnull=True, cancellation_of__isnull=True, reminder__isnull=True
)


class MessageStatusEvent(models.Model):
    """One step in a message's delivery: what our worker did, or what the provider told us."""

    class Source(models.TextChoices):
        WORKER = "worker", "Our delivery worker"
        PROVIDER = "provider", "The provider's status report"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="status_events")
    status = models.CharField(max_length=10, choices=Message.Status.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The provider's own word for it ("delivered", "undelivered", "bounced"...), or ours.
    provider_status = models.CharField(max_length=40)
    error_code = models.CharField(max_length=20, blank=True)
    detail = models.TextField(blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["occurred_at", "pk"]
        constraints = [
            # Providers repeat callbacks: the same report twice is one event.
            models.UniqueConstraint(
                fields=["message", "provider_status"],
                condition=Q(source="provider"),
                name="message_status_event_provider_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.provider_status}"


class SenderProfile(models.Model):
    """How one organisation's messages go out: its SMS sender and its email reply address."""

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="sender_profile")
    twilio_messaging_service_sid = models.CharField(
        "Twilio Messaging Service SID",
        max_length=34,
        blank=True,
        validators=[
            RegexValidator(r"^MG[0-9a-f]{32}$", "A Messaging Service SID is MG followed by 32 hex characters.")
        ],
        help_text="Texts go from this Messaging Service (its numbers, sender ID and opt-out handling).",
    )
    sms_sender_id = models.CharField(
        "SMS sender ID",
        max_length=11,
        blank=True,
        validators=[
            RegexValidator(
                r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$",
                "A sender ID is up to 11 letters, digits and spaces, with at least one letter.",
            )
        ],
        help_text="Used when there is no Messaging Service: the name patients see, like RIVERSIDE. "
        "Patients can't reply to a sender ID.",
    )
    email_reply_to = models.EmailField(
        "email reply-to", blank=True, help_text="Where a patient's reply to an email goes (a monitored inbox)."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(twilio_messaging_service_sid="")
                | Q(twilio_messaging_service_sid__regex=r"^MG[0-9a-f]{32}$"),
                name="sender_profile_messaging_service_sid_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Sender for {self.organisation}"


class InboundText(models.Model):
    """A text a patient sent to one of our numbers that changed (or could have changed) their opt-out.

    Kept by Twilio's id only, nothing the patient wrote: the unique id makes a second post of
    the same text (Twilio retrying, or someone replaying a signed request after the patient
    texted START) change nothing (messaging/webhooks.py).
    """

    provider_message_id = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.provider_message_id


class Reminder(models.Model):
    """One reminder of one kind (1, 3 or 7 days before) for one appointment: at most once.

    The row is the promise that this reminder was dealt with; its message (when one was sent)
    goes through the same delivery pipeline as any other.
    """

    class Kind(models.TextChoices):
        ONE_DAY = "1d", "1 day before"
        THREE_DAYS = "3d", "3 days before"
        SEVEN_DAYS = "7d", "7 days before"

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="reminders")
    kind = models.CharField(max_length=2, choices=Kind.choices)
    # When it was due to go (London wall-clock days before the start, moved into sending hours).
    due_at = models.DateTimeField()
    message = models.OneToOneField(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="reminder")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["appointment", "kind"], name="reminder_once_per_kind"),
            models.CheckConstraint(condition=Q(kind__in=["1d", "3d", "7d"]), name="reminder_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.appointment}"


# What a reminder says when the organisation hasn't written its own (ReminderTemplate).
REMINDER_DEFAULT_BODY = (
    "Reminder from {{Practice Name}}: {{Patient First Name}}, your appointment is on {{Appointment Date}} "
    "at {{Appointment Time}}. {{Location}} To change or cancel: {{Appointment Link}}"
)


class ReminderTemplate(models.Model):
    """An organisation's own wording for its reminders; without one, REMINDER_DEFAULT_BODY is used.

    Checked in clean() (messaging/reminders.py, reminder_template_check): only the tokens a
    reminder knows, and short enough as a text.
    """

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="reminder_template")
    body = models.TextField(
        default=REMINDER_DEFAULT_BODY,
        help_text="Tokens: {{Patient First Name}}, {{Practice Name}}, {{Appointment Date}}, {{Appointment Time}}, "
        "{{Location}} (where, or that the practice will phone, or how a video appointment works) and "
        "{{Appointment Link}} (the link to change or cancel).",
    )

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="reminder_template_body_not_empty")]

    def __str__(self) -> str:
        return f"Reminder text for {self.organisation}"


# --- Campaigns: a manager invites a whole list of patients (messaging/campaigns/) ------------

# What a follow-up says when the manager doesn't write their own.
CAMPAIGN_FOLLOW_UP_DEFAULT_BODY = (
    "{{Patient First Name}}, {{Practice Name}} invited you to book an appointment and you haven't booked yet. "
    "Book a time that suits you: {{Appointment Link}}"
)


class Campaign(models.Model):
    """A manager's invitation of a list of patients: one link and message per patient, paced to the free times.

    Its life: CHECKING (the uploaded list is checked by the scheduler, with progress) → CHECKED
    (the manager reads the check and starts it; nothing has been sent or made yet) → SENDING
    (invitations made and sent as their turn comes) ⇄ WAITING (paused by itself: no free
    times) and ⇄ PAUSED (by staff) → FINISHED (every row invited; follow-ups may still go) or
    STOPPED (by staff: nothing more is sent). The link settings and text are those of Invite to
    book (messaging/sending.py), fixed once it starts.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking the list"
        CHECKED = "checked", "Ready to start"
        SENDING = "sending", "Sending"
        WAITING = "waiting", "Waiting for free times"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        FINISHED = "finished", "Finished"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="campaigns", db_index=False)
    name = models.CharField(max_length=100, validators=[validate_name])
    # The link each invitation carries: Invite to book's settings.
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="campaigns")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="campaigns")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, null=True, blank=True, related_name="campaigns"
    )
    link_expiry = models.CharField(max_length=10, help_text="booking.links.LinkExpiry: how long each link works.")
    body = models.TextField(help_text="The invitation as the manager wrote it, with its tokens.")
    # SMS, else email (or the other way round) for each patient.
    preferred_channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.SMS)
    # Follow-ups: days after the invitation (empty: none), and their text.
    follow_up_1_days = models.PositiveSmallIntegerField(null=True, blank=True, default=5)
    follow_up_2_days = models.PositiveSmallIntegerField(null=True, blank=True, default=10)
    follow_up_body = models.TextField(default=CAMPAIGN_FOLLOW_UP_DEFAULT_BODY)
    # Pace.
    starts_at = models.DateTimeField(null=True, blank=True, help_text="No invitation goes before this.")
    per_day = models.PositiveIntegerField(default=200, help_text="Invitations at most per London day.")
    per_free_time = models.PositiveSmallIntegerField(
        default=2, help_text="Invitations waiting for an answer at most per free time (1 to 5)."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING)
    status_changed_at = models.DateTimeField(default=timezone.now)
    # The list and its check (messaging/campaigns/): rows in the file, and how far the check is.
    list_name = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name.")
    list_rows = models.PositiveIntegerField(default=0)
    list_rows_checked = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # When the manager revoked every link the campaign sent (one action, audited).
    links_revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            name_check(field="name", name="campaign_name_printable"),
            models.CheckConstraint(condition=~Q(name=""), name="campaign_name_not_empty"),
            models.CheckConstraint(condition=~Q(body=""), name="campaign_body_not_empty"),
            models.CheckConstraint(
                condition=Q(status__in=["checking", "checked", "sending", "waiting", "paused", "stopped", "finished"]),
                name="campaign_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(per_free_time__gte=1, per_free_time__lte=5), name="campaign_per_free_time_1_to_5"
            ),
            models.CheckConstraint(condition=Q(per_day__gte=1), name="campaign_per_day_positive"),
            models.CheckConstraint(
                condition=Q(list_rows_checked__lte=F("list_rows")), name="campaign_checked_rows_within_list"
            ),
            # The second follow-up comes after the first, and only with one.
            models.CheckConstraint(
                condition=Q(follow_up_2_days__isnull=True)
                | Q(follow_up_1_days__isnull=False, follow_up_2_days__gt=F("follow_up_1_days")),
                name="campaign_follow_ups_in_order",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["checking", "checked"]) | Q(started_at__isnull=False),
                name="campaign_started_when_sending",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="campaign_org_created"),
            # What the scheduler's jobs look for.
            models.Index(
                fields=["status"], condition=~Q(status__in=["stopped", "finished"]), name="campaign_live_status"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def reference(self) -> str:
        return encode_reference(self.pk, namespace="campaign") if self.pk else ""


class CampaignUpload(models.Model):
    """The uploaded list, held until the scheduler has checked it, then deleted (it holds NHS numbers)."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, primary_key=True, related_name="upload")
    content = models.BinaryField(help_text="The file's bytes as uploaded (at most 5 MB), or the pasted numbers.")

    def __str__(self) -> str:
        return f"List for {self.campaign}"


class CampaignEntry(models.Model):
    """One row of a campaign's list: what the check found, then the invitation and what came of it.

    `problem` is empty for a row that will be invited (a patient of the campaign's organisation,
    reachable, not already booked or holding a link); otherwise it says why not, and the row is
    in the rejected rows' download. An invited row holds its link and invitation message (made
    when its turn came, in one transaction), the follow-ups sent, and, once on the call list,
    the outcome staff recorded.
    """

    class Problem(models.TextChoices):
        NONE = "", "Found"
        NOT_FOUND = "not_found", "Not found"
        INVALID = "invalid", "Invalid NHS number"
        DUPLICATE = "duplicate", "Duplicate in the list"
        NOT_OURS = "not_ours", "Not one of our patients"
        NO_CONTACT = "no_contact", "No way to contact"
        OPTED_OUT = "opted_out", "Opted out of texts"
        HAS_APPOINTMENT = "has_appointment", "Already has a future appointment of this type"
        HAS_LINK = "has_link", "Already holds an active link for this type"

    class CallOutcome(models.TextChoices):
        BOOKED_BY_PHONE = "booked_by_phone", "Booked by phone"
        DECLINED = "declined", "Declined"
        NO_ANSWER = "no_answer", "No answer"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="entries", db_index=False)
    row_number = models.PositiveIntegerField(help_text="The row's line in the file (the header is line 1).")
    # As read from the file, spaces and dashes taken out; what the rejected rows' download shows.
    nhs_number = models.CharField(max_length=40, blank=True)
    problem = models.CharField(max_length=20, choices=Problem.choices, blank=True, default="")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The invitation, made when the row's turn comes (messaging/campaigns/).
    link = models.OneToOneField(
        BookingLink, on_delete=models.PROTECT, null=True, blank=True, related_name="campaign_entry"
    )
    message = models.OneToOneField(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    invited_at = models.DateTimeField(null=True, blank=True)
    follow_ups_sent = models.PositiveSmallIntegerField(default=0, db_default=0)
    last_follow_up_at = models.DateTimeField(null=True, blank=True)
    call_outcome = models.CharField(max_length=20, choices=CallOutcome.choices, blank=True, default="")
    call_outcome_at = models.DateTimeField(null=True, blank=True)
    call_outcome_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["campaign", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "row_number"], name="campaign_entry_row_once"),
            # One invitation per patient per campaign, whatever the list says.
            models.UniqueConstraint(
                fields=["campaign", "patient"], condition=Q(problem=""), name="campaign_entry_patient_once"
            ),
            models.CheckConstraint(
                condition=Q(
                    problem__in=[
                        "",
                        "not_found",
                        "invalid",
                        "duplicate",
                        "not_ours",
                        "no_contact",
                        "opted_out",
                        "has_appointment",
                        "has_link",
                    ]
                ),
                name="campaign_entry_problem_valid",
            ),
            # Only a found row is invited; it has its patient.
            models.CheckConstraint(
                condition=~Q(problem="") | Q(patient__isnull=False), name="campaign_entry_found_has_patient"
            ),
            models.CheckConstraint(
                condition=Q(link__isnull=True) | Q(problem="", invited_at__isnull=False),
                name="campaign_entry_invited_when_found",
            ),
            models.CheckConstraint(
                condition=Q(call_outcome="") | Q(call_outcome__in=["booked_by_phone", "declined", "no_answer"]),
                name="campaign_entry_call_outcome_valid",
            ),
            models.CheckConstraint(condition=Q(follow_ups_sent__lte=2), name="campaign_entry_at_most_two_follow_ups"),
        ]
        indexes = [
            # The next rows to invite, in the list's order.
            models.Index(
                fields=["campaign", "row_number"],
                condition=Q(problem="", link__isnull=True),
                name="campaign_entry_to_invite",
            ),
            # The invited rows (follow-ups, the funnel, the call list).
            models.Index(
                fields=["campaign", "invited_at"], condition=Q(link__isnull=False), name="campaign_entry_invited"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}, row {self.row_number}"
