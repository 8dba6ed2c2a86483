"""What staff send: message templates, and each message as a row before it is delivered; the
reminders sent before appointments and each organisation's reminder text; the ids of texts
patients sent us (so a STOP or START acts once)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from booking.models import Appointment, BookingLink, Organisation, Patient
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
