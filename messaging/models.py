"""What staff send: message templates, and each message as a row before it is delivered."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from booking.models import Appointment, BookingLink, Organisation, Patient
from booking.phones import E164_PATTERN
from booking.references import encode_reference


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class MessageTemplate(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="message_templates")
    name = models.CharField(max_length=100)
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
    # Set on the confirmation sent when an appointment is booked: one per appointment.
    confirms = models.OneToOneField(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="confirmation"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
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
        ]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="message_org_created"),
            models.Index(fields=["patient", "-created_at"], name="message_patient_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} to {self.patient} ({self.get_status_display()})"

    @property
    def reference(self) -> str:
        return encode_reference(self.pk, namespace="message") if self.pk else ""
