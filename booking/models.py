"""The booking domain. Names follow ../shared/DESIGN.md; invariants live in the database.

Every rule a racing writer could break is a named constraint here: a check, a partial unique
index or an exclusion constraint. Python validation exists to give people friendly messages;
the database is the last guard.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField, RangeBoundary, RangeOperators
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Func, Q
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone

from booking.encryption import token_encrypt
from booking.formats import date_and_time, time_of_day
from booking.names import name_check, validate_name
from booking.nhs_numbers import NhsNumberIsValid, normalise_nhs_number, validate_nhs_number
from booking.phones import E164_PATTERN, format_phone_number_for_display, normalise_phone_number
from booking.references import encode_reference

MAX_DOB_ATTEMPTS = 5


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


# --- Organisations and people -----------------------------------------------------------------


class Organisation(models.Model):
    class Kind(models.TextChoices):
        PRACTICE = "practice", "GP practice"
        HUB = "hub", "PCN hub"

    name = models.CharField(max_length=200, validators=[validate_name])
    ods_code = models.CharField(
        "ODS code",
        max_length=10,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9]{3,10}$", "Enter the ODS code in capitals, like A81001.")],
        help_text="The organisation's code in the NHS Organisation Data Service, like A81001.",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.PRACTICE)
    phone = models.CharField(
        max_length=16,
        blank=True,
        validators=[RegexValidator(E164_PATTERN)],
        help_text="The number patients call; shown on every patient page.",
    )
    email = models.EmailField(blank=True)
    uses_nhs_identity = models.BooleanField(
        "Uses the NHS identity",
        default=False,
        help_text=(
            'Shows the NHS primary care logo, "Providing NHS services", on the pages patients see.'
            " Only a practice that provides NHS services may turn this on: the NHS logo is a registered"
            " trade mark, for information about the NHS services it provides."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ods_code__regex=r"^[A-Z0-9]{3,10}$"), name="organisation_ods_code_format"
            ),
            models.CheckConstraint(
                condition=Q(phone="") | Q(phone__regex=E164_PATTERN), name="organisation_phone_e164"
            ),
            name_check(field="name", name="organisation_name_printable"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.ods_code = (self.ods_code or "").strip().upper()
        if self.phone:
            try:
                self.phone = normalise_phone_number(self.phone)
            except ValidationError as error:
                raise ValidationError({"phone": error}) from None

    @property
    def phone_for_display(self) -> str:
        return format_phone_number_for_display(self.phone)


class StaffMembership(models.Model):
    class Role(models.TextChoices):
        STAFF = "staff", "Staff"
        MANAGER = "manager", "Manager"
        ADMIN = "admin", "Admin"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["organisation__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="staff_membership_unique_user_organisation"),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.organisation} ({self.get_role_display()})"


class Location(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="locations")
    name = models.CharField(max_length=200, validators=[validate_name])
    address_line_1 = models.CharField(max_length=200)
    address_line_2 = models.CharField(max_length=200, blank=True)
    town = models.CharField(max_length=100)
    postcode = models.CharField(
        max_length=8,
        validators=[RegexValidator(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$", "Enter a UK postcode, like LS1 4AP.")],
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="location_unique_name_per_organisation"),
            name_check(field="name", name="location_name_printable"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.postcode = (self.postcode or "").strip().upper()

    @property
    def address_lines(self) -> list[str]:
        return [line for line in (self.address_line_1, self.address_line_2, self.town, self.postcode) if line]

    @property
    def address(self) -> str:
        return ", ".join(self.address_lines)


class Practitioner(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="practitioners")
    name = models.CharField(
        max_length=200, validators=[validate_name], help_text='As patients see it, like "Dr Amina Shah".'
    )
    role = models.CharField(
        max_length=100, blank=True, validators=[validate_name], help_text='For example "GP" or "Practice nurse".'
    )
    locations = models.ManyToManyField(Location, related_name="practitioners", blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="practitioner_unique_name_per_organisation"),
            name_check(field="name", name="practitioner_name_printable"),
            name_check(field="role", name="practitioner_role_printable"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})" if self.role else self.name


class AppointmentType(models.Model):
    class Mode(models.TextChoices):
        IN_PERSON = "in_person", "In person"
        TELEPHONE = "telephone", "Telephone"
        VIDEO = "video", "Video"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="appointment_types")
    name = models.CharField(max_length=200, validators=[validate_name])
    duration_minutes = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(480)]
    )
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.IN_PERSON)
    self_bookable = models.BooleanField(
        default=True, help_text="Staff can send links for this type; patients book it themselves."
    )
    minimum_notice_hours = models.PositiveSmallIntegerField(
        default=2, help_text="Patients can't book a time that starts sooner than this."
    )
    maximum_days_ahead = models.PositiveSmallIntegerField(
        default=28,
        validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text="Patients can't book further ahead than this.",
    )
    online_changes_until_hours = models.PositiveSmallIntegerField(
        "Patients may change or cancel online until",
        null=True,
        blank=True,
        default=24,
        validators=[MaxValueValidator(24 * 28)],
        help_text="Hours before the start. Leave empty if patients must phone to change or cancel.",
    )
    max_changes = models.PositiveSmallIntegerField(
        "Changes allowed per booking",
        default=2,
        validators=[MaxValueValidator(10)],
        help_text="How many times a patient may move one booking to another time online.",
    )
    remind_1_day = models.BooleanField("Remind 1 day before", default=True, db_default=True)
    remind_3_days = models.BooleanField("Remind 3 days before", default=False, db_default=False)
    remind_7_days = models.BooleanField("Remind 7 days before", default=False, db_default=False)
    guidance = models.TextField(
        "Before you book",
        blank=True,
        help_text="Shown to patients before the times, like what to bring or how to prepare.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["organisation__name", "name"]
        constraints = [
            name_check(field="name", name="appointment_type_name_printable"),
            models.UniqueConstraint(
                fields=["organisation", "name"], name="appointment_type_unique_name_per_organisation"
            ),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=1, duration_minutes__lte=480),
                name="appointment_type_duration_range",
            ),
            models.CheckConstraint(
                condition=Q(maximum_days_ahead__gte=1, maximum_days_ahead__lte=366),
                name="appointment_type_maximum_days_ahead_range",
            ),
            models.CheckConstraint(
                condition=Q(minimum_notice_hours__lt=F("maximum_days_ahead") * 24),
                name="appointment_type_notice_within_window",
            ),
            models.CheckConstraint(
                condition=Q(online_changes_until_hours__isnull=True) | Q(online_changes_until_hours__lte=24 * 28),
                name="appointment_type_online_changes_range",
            ),
            models.CheckConstraint(condition=Q(max_changes__lte=10), name="appointment_type_max_changes_range"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def minimum_notice(self) -> timedelta:
        return timedelta(hours=self.minimum_notice_hours)

    @property
    def maximum_ahead(self) -> timedelta:
        return timedelta(days=self.maximum_days_ahead)

    @property
    def is_video(self) -> bool:
        return self.mode == self.Mode.VIDEO

    @property
    def is_telephone(self) -> bool:
        return self.mode == self.Mode.TELEPHONE

    @property
    def online_changes_until(self) -> timedelta | None:
        """How long before the start patients may still change or cancel online (None: not online)."""
        if self.online_changes_until_hours is None:
            return None
        return timedelta(hours=self.online_changes_until_hours)

    def booking_window(self, *, now: datetime) -> tuple[datetime, datetime]:
        """The span a patient opening a link at `now` may book in: [now + notice, now + days ahead).

        A link's expiry doesn't shorten it: a patient who opens the link on its last day may still
        choose any time in the window; only the link must be alive when they book.
        """
        return now + self.minimum_notice, now + self.maximum_ahead


# --- Rotas and slots -------------------------------------------------------------------------


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class Rota(models.Model):
    """A recurring block of a practitioner's time, in London wall-clock time, that makes slots."""

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="rotas")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="rotas")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="rotas")
    weekdays = ArrayField(models.PositiveSmallIntegerField(choices=Weekday.choices), size=7)
    start_time = models.TimeField(help_text="London time.")
    end_time = models.TimeField(help_text="London time. The last slot ends at or before this.")
    slot_minutes = models.PositiveSmallIntegerField(
        "slot length (minutes)", validators=[MinValueValidator(1), MaxValueValidator(480)]
    )
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Leave empty for no end date.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["practitioner__name", "start_time"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")),
                name="rota_end_after_start",
                violation_error_message="The end time must be after the start time.",
            ),
            models.CheckConstraint(
                condition=Q(slot_minutes__gte=1, slot_minutes__lte=480), name="rota_slot_minutes_range"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="rota_valid_until_after_valid_from",
            ),
            models.CheckConstraint(
                condition=Q(weekdays__contained_by=list(Weekday.values)) & Q(weekdays__len__gte=1),
                name="rota_weekdays_valid",
            ),
        ]

    def __str__(self) -> str:
        days = ", ".join(Weekday(day).label[:3] for day in sorted(self.weekdays or []))
        return (
            f"{self.practitioner.name}: {self.appointment_type.name} at {self.location.name}, "
            f"{days} {time_of_day(self.start_time)} to {time_of_day(self.end_time)}"
        )

    def clean(self) -> None:
        errors: dict[str, str] = {}
        organisation_ids = {
            getattr(self, f"{name}_id") and getattr(self, name).organisation_id
            for name in ("practitioner", "location", "appointment_type")
            if getattr(self, f"{name}_id")
        }
        if len(organisation_ids) > 1:
            errors["location"] = "The practitioner, location and appointment type must belong to one organisation."
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            errors["end_time"] = "The end time must be after the start time."
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            errors["valid_until"] = "The end date must be on or after the start date."
        if self.weekdays is not None and not self.weekdays:
            errors["weekdays"] = "Choose at least one day."
        if errors:
            raise ValidationError(errors)


class SlotQuerySet(models.QuerySet):
    def free(self) -> SlotQuerySet:
        return self.filter(status=Slot.Status.FREE)

    def offered(
        self,
        *,
        appointment_type: AppointmentType,
        location_id: int,
        practitioner_id: int | None,
        now: datetime,
        taken_too: bool = False,
    ) -> SlotQuerySet:
        """The times a link with these settings offers when opened at `now`: the one rule.

        Free slots of the type, at the location (with the practitioner, if one is set), starting
        inside the type's booking window. The patient's times page, the builder's "N free times"
        and the booking's conditional UPDATE all read it here. `taken_too` keeps booked and
        blocked ones as well, so a booking that lost its slot can tell "just taken" from "never
        offered".
        """
        earliest, latest = appointment_type.booking_window(now=now)
        slots = self.filter(
            appointment_type_id=appointment_type.pk,
            location_id=location_id,
            start__gte=earliest,
            start__lt=latest,
        )
        if practitioner_id is not None:
            slots = slots.filter(practitioner_id=practitioner_id)
        return slots if taken_too else slots.free()

    def offered_by(self, link: BookingLink, *, now: datetime, taken_too: bool = False) -> SlotQuerySet:
        """The times `link` offers at `now` (see `offered`). Reads `link.appointment_type`.

        A booked link offers times to change to: never the start time it has booked (nor another
        clinician's slot at that start), which its pages show as the current appointment.
        """
        slots = self.offered(
            appointment_type=link.appointment_type,
            location_id=link.location_id,
            practitioner_id=link.practitioner_id,
            now=now,
            taken_too=taken_too,
        )
        if link.status == BookingLink.Status.BOOKED:
            booked_start = Appointment.objects.filter(booking_link_id=link.pk, status=Appointment.Status.BOOKED).values(
                "slot__start"
            )
            slots = slots.exclude(start__in=models.Subquery(booked_start))
        return slots


class Slot(models.Model):
    class Status(models.TextChoices):
        FREE = "free", "Free"
        BOOKED = "booked", "Booked"
        BLOCKED = "blocked", "Blocked"

    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="slots")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="slots", db_index=False)
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="slots")
    rota = models.ForeignKey(
        Rota, on_delete=models.SET_NULL, null=True, blank=True, related_name="slots", db_index=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FREE)

    objects = SlotQuerySet.as_manager()

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")),
                name="slot_end_after_start",
                violation_error_message="The end must be after the start.",
            ),
            # A practitioner is in one place at a time: no two of their slots overlap, whatever
            # their status. Half-open ranges, so back-to-back slots are fine.
            ExclusionConstraint(
                name="slot_no_overlap_per_practitioner",
                violation_error_message="This practitioner already has a slot that overlaps this time.",
                expressions=[
                    ("practitioner", RangeOperators.EQUAL),
                    (TsTzRange("start", "end", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
            ),
        ]
        indexes = [
            # The patient's times page: free slots of one type at one location, by start.
            models.Index(
                fields=["appointment_type", "location", "start"],
                condition=Q(status="free"),
                name="slot_free_by_type_location",
            ),
            # The same for a link with a practitioner: at a 20-clinician hub the index above would
            # walk every clinician's free slots to keep one in twenty.
            models.Index(
                fields=["appointment_type", "location", "practitioner", "start"],
                condition=Q(status="free"),
                name="slot_free_by_practitioner",
            ),
            models.Index(fields=["location", "start"], name="slot_location_start"),
            models.Index(fields=["rota", "start"], name="slot_rota_start"),
            # The reminder sweep (messaging/reminders.py): booked slots starting in a window.
            models.Index(fields=["start"], condition=Q(status="booked"), name="slot_booked_start"),
        ]

    def __str__(self) -> str:
        return f"{date_and_time(self.start)}: {self.appointment_type.name} with {self.practitioner.name}"

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "The end must be after the start."})


# --- Patients and sharing -----------------------------------------------------------------


class Patient(models.Model):
    class ContactPreference(models.TextChoices):
        SMS = "sms", "SMS"
        EMAIL = "email", "Email"

    # db_index=False where a composite index below leads with the column: one index, not two.
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="patients", db_index=False)
    first_name = models.CharField(max_length=100, validators=[validate_name])
    last_name = models.CharField(max_length=100, validators=[validate_name])
    date_of_birth = models.DateField()
    nhs_number = models.CharField(
        "NHS number",
        max_length=10,
        null=True,
        blank=True,
        validators=[validate_nhs_number],
        help_text="10 digits; the last is a check digit.",
    )
    mobile = models.CharField(
        max_length=16, blank=True, help_text="Stored in international format, like +447700900982."
    )
    email = models.EmailField(blank=True)
    contact_preference = models.CharField(
        max_length=10, choices=ContactPreference.choices, default=ContactPreference.SMS
    )
    sms_opted_out = models.BooleanField(
        "opted out of SMS", default=False, help_text="Set when the patient texts STOP; no texts are sent."
    )
    # Set when emails to the address bounce or the patient marks one as spam; cleared when the
    # address changes. db_default: rows written by plain SQL (the benchmark's loader) get it too.
    email_undeliverable_reason = models.CharField(
        "email problem",
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text="Why emails to this address stopped (it bounced, or the patient reported spam). "
        "Cleared when the address is changed.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            name_check(field="first_name", name="patient_first_name_printable"),
            name_check(field="last_name", name="patient_last_name_printable"),
            models.UniqueConstraint(
                fields=["organisation", "nhs_number"],
                condition=Q(nhs_number__isnull=False),
                name="patient_unique_nhs_number_per_organisation",
                violation_error_message="A patient with this NHS number is already registered here.",
            ),
            models.CheckConstraint(
                condition=Q(nhs_number__isnull=True) | Q(NhsNumberIsValid("nhs_number")),
                name="patient_nhs_number_modulus_11",
            ),
            models.CheckConstraint(condition=Q(mobile="") | Q(mobile__regex=E164_PATTERN), name="patient_mobile_e164"),
            models.CheckConstraint(
                condition=Q(date_of_birth__gte="1880-01-01"), name="patient_date_of_birth_plausible"
            ),
        ]
        indexes = [
            # Staff find patients as they type, by part of a name (trigram) or by date of birth.
            GinIndex(OpClass(Upper("last_name"), name="gin_trgm_ops"), name="patient_last_name_trgm"),
            # An inbound STOP names only the phone number.
            models.Index(fields=["mobile"], condition=~Q(mobile=""), name="patient_mobile"),
            GinIndex(OpClass(Upper("first_name"), name="gin_trgm_ops"), name="patient_first_name_trgm"),
            models.Index(fields=["organisation", "date_of_birth"], name="patient_org_dob"),
            models.Index(fields=["organisation", "last_name", "first_name"], name="patient_org_name"),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def reference(self) -> str:
        """The patient's id in staff URLs (booking/access.py `get_patient_for_staff` reads it)."""
        return encode_reference(self.pk, namespace="patient") if self.pk else ""

    @property
    def nhs_number_for_display(self) -> str:
        number = self.nhs_number or ""
        return f"{number[:3]} {number[3:6]} {number[6:]}" if len(number) == 10 else number

    @property
    def mobile_for_display(self) -> str:
        return format_phone_number_for_display(self.mobile)

    def clean(self) -> None:
        errors: dict[str, ValidationError | str] = {}
        if self.nhs_number:
            self.nhs_number = normalise_nhs_number(self.nhs_number)
        else:
            self.nhs_number = None
        if self.mobile:
            try:
                self.mobile = normalise_phone_number(self.mobile)
            except ValidationError as error:
                errors["mobile"] = error
        if self.date_of_birth and self.date_of_birth > timezone.localdate():
            errors["date_of_birth"] = "The date of birth can't be in the future."
        if errors:
            raise ValidationError(errors)

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        # Normalise before the field validators (and their length limits) run, so numbers
        # typed the way people write them ("943 476 5919", "07400 123456") are accepted.
        if self.nhs_number:
            self.nhs_number = normalise_nhs_number(self.nhs_number)
        if self.mobile:
            with contextlib.suppress(ValidationError):  # clean() reports an invalid number
                self.mobile = normalise_phone_number(self.mobile)
        super().clean_fields(exclude=exclude)


class SharingAgreementQuerySet(models.QuerySet):
    def in_force(self) -> SharingAgreementQuerySet:
        """Accepted by the partner and not ended: the only agreements that share anything."""
        return self.filter(accepted_at__isnull=False, ended_at__isnull=True)

    def pending(self) -> SharingAgreementQuerySet:
        """Offered by the host, not yet accepted or declined: shares nothing."""
        return self.filter(accepted_at__isnull=True, ended_at__isnull=True)

    def open(self) -> SharingAgreementQuerySet:
        """Pending or in force: what the one-per-pair constraint counts."""
        return self.filter(ended_at__isnull=True)


class SharingAgreement(models.Model):
    """A host organisation lets a partner offer some of its appointment types at some locations.

    The host's manager offers it; it shares nothing until the partner's manager accepts it
    (`accepted_at`), because once the partner's patients book, the host sees their details.
    Either side ends it (`ended_at`); an offer declined is ended without being accepted.
    """

    host = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="agreements_as_host")
    partner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="agreements_as_partner")
    appointment_types = models.ManyToManyField(AppointmentType, related_name="sharing_agreements")
    locations = models.ManyToManyField(Location, related_name="sharing_agreements")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Set to end the agreement.")
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )

    objects = SharingAgreementQuerySet.as_manager()

    class Meta:
        ordering = ["host__name", "partner__name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(host=F("partner")),
                name="sharing_agreement_host_is_not_partner",
                violation_error_message="An organisation can't share with itself.",
            ),
            # One open agreement per pair: pending and accepted both count, so a host can't
            # stack a second offer beside one the partner already accepted.
            models.UniqueConstraint(
                fields=["host", "partner"],
                condition=Q(ended_at__isnull=True),
                name="sharing_agreement_one_in_force_per_pair",
                violation_error_message="These organisations already have an agreement in force; end it first.",
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True, accepted_by__isnull=True) | Q(accepted_at__isnull=False),
                name="sharing_agreement_accepted_by_only_when_accepted",
                violation_error_message="An agreement accepted by someone has an acceptance time.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host} shares with {self.partner}"

    @property
    def is_pending(self) -> bool:
        """Offered, not yet accepted or declined: the Python side of `objects.pending()`."""
        return self.accepted_at is None and self.ended_at is None

    def clean(self) -> None:
        if self.host_id and self.partner_id and self.host_id == self.partner_id:
            raise ValidationError({"partner": "An organisation can't share with itself."})


# --- Links, appointments, audit -----------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LinkTokenUnknown(ValueError, AttributeError):
    """A link read back from the database can't say its URL: only the token's digest is kept.

    A ValueError for callers; an AttributeError too, because that is how Django's "view on
    site" machinery learns that an object has no URL.
    """


class DeclineReason(models.TextChoices):
    """Why a patient declined a campaign's invitation (optional), as they choose it."""

    HAD_IT_ELSEWHERE = "had_elsewhere", "I've already had it or booked it elsewhere"
    DO_NOT_WANT = "do_not_want", "I don't want it"
    NOT_NOW = "not_now", "Not now: maybe later"
    OTHER = "other", "Other reason"


DECLINE_REASON_CODES = [reason.value for reason in DeclineReason]


class BookingLink(models.Model):
    """One patient, one appointment type, one location: the self-booking link.

    The token is generated on first save and kept only on that instance (`.token`); the
    database stores its SHA-256 digest, so a copy of the database can't open any link. A later
    message (a delivery retry) puts the link in its text again from `token_encrypted`, the token
    encrypted with a key from the environment (booking/encryption.py), wiped once the link can't
    book any more (booked, revoked, expired: booking/links.py).
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BOOKED = "booked", "Booked"
        REVOKED = "revoked", "Revoked"
        LOCKED = "locked", "Locked"
        # The patient said they don't want this appointment (a campaign's invitation): it can't book.
        DECLINED = "declined", "Declined"

    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    # Empty once the link can't book: nothing then needs the token again.
    token_encrypted = models.TextField(blank=True, default="", db_default="", editable=False)
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="booking_links",
        db_index=False,
        help_text="The organisation that sent the link (the patient's practice).",
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="booking_links", db_index=False)
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="booking_links")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="booking_links")
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, null=True, blank=True, related_name="booking_links"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty means the link never expires.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    failed_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    first_opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Every open counts here, in place: previews and reloads don't add a row each.
    last_opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    open_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The first time a date of birth matched (a campaign's funnel counts "Date of birth confirmed").
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A campaign's invitation offers "I don't want this appointment" beside the times.
    declinable = models.BooleanField(default=False, db_default=False, editable=False)
    declined_at = models.DateTimeField(null=True, blank=True, editable=False)
    decline_reason = models.CharField(
        max_length=20, blank=True, default="", db_default="", choices=DeclineReason.choices
    )
    decline_detail = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Only an invitation that offers declining can be declined, and a declined one says when.
            models.CheckConstraint(
                condition=~Q(status="declined") | Q(declinable=True, declined_at__isnull=False),
                name="booking_link_declined_when_declinable",
            ),
            models.CheckConstraint(
                condition=Q(decline_reason="") | Q(decline_reason__in=DECLINE_REASON_CODES),
                name="booking_link_decline_reason_valid",
            ),
            models.CheckConstraint(
                condition=Q(failed_attempts__gte=0, failed_attempts__lte=MAX_DOB_ATTEMPTS),
                name="booking_link_failed_attempts_range",
            ),
            # Five wrong dates lock a link; revoking a locked link keeps the count as a record.
            models.CheckConstraint(
                condition=Q(status__in=["locked", "revoked"]) | Q(failed_attempts__lt=MAX_DOB_ATTEMPTS),
                name="booking_link_locked_after_max_attempts",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=F("created_at")),
                name="booking_link_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(token_digest__regex=r"^[0-9a-f]{64}$"),  # noqa: S106 -- a digest, not a password
                name="booking_link_token_digest_format",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="booking_link_org_created"),
            models.Index(fields=["patient", "-created_at"], name="booking_link_patient_created"),
        ]

    token: str | None = None

    def __str__(self) -> str:
        return f"{self.appointment_type} link for {self.patient}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.token_digest:
            self.token_new()
        if not self.organisation_id and self.patient_id:
            self.organisation_id = self.patient.organisation_id
        super().save(*args, **kwargs)

    @property
    def get_absolute_url(self) -> Callable[[], str]:
        """`link.get_absolute_url()` is `/b/<token>`, on the instance that created the link.

        Only that instance knows the token: the database keeps just its digest. On any other,
        the attribute is missing (AttributeError), which is how Django says an object has no
        URL: admin hides "View on site" and its /admin/r/ shortcut answers 404, not 500.
        """
        token = self.token
        if not token:
            raise LinkTokenUnknown(
                "Only the instance that created a link knows its token: the database keeps just its digest."
            )
        return lambda: reverse("booking:link", kwargs={"token": token})

    @property
    def reference(self) -> str:
        return encode_reference(self.pk, namespace="link") if self.pk else ""

    def token_new(self) -> None:
        """Give this unsaved link its token: kept on the instance, digested and encrypted for the row.

        `save` calls it for a new link; booking/links.py `booking_links_issue_many` for each link
        it inserts in bulk (bulk_create doesn't call save).
        """
        self.token = secrets.token_urlsafe(16)
        self.token_digest = hash_token(self.token)
        self.token_encrypted = token_encrypt(self.token)


class CancellationSource(models.TextChoices):
    """Who ended a booked appointment: the patient online, the practice, or a change to another time."""

    PATIENT = "patient", "Cancelled by patient"
    PRACTICE = "practice", "Cancelled by practice"
    CHANGED = "changed", "Changed"


class CancellationReason(models.TextChoices):
    """Why an appointment was cancelled. Patients choose from the first four; staff from all but CHANGED."""

    NO_LONGER_NEEDED = "no_longer_needed", "I no longer need it"
    CANNOT_MAKE_TIME = "cannot_make_time", "I can't make this time"
    BOOKED_ANOTHER_WAY = "booked_another_way", "I've booked another way"
    OTHER = "other", "Other reason"
    PATIENT_ASKED = "patient_asked", "The patient asked (by phone or in person)"
    CLINICIAN_UNAVAILABLE = "clinician_unavailable", "The clinician is not available"
    BOOKED_IN_ERROR = "booked_in_error", "Booked in error"
    CHANGED = "changed", "Changed to another time"


PATIENT_CANCELLATION_REASONS = (
    CancellationReason.NO_LONGER_NEEDED,
    CancellationReason.CANNOT_MAKE_TIME,
    CancellationReason.BOOKED_ANOTHER_WAY,
    CancellationReason.OTHER,
)
PRACTICE_CANCELLATION_REASONS = (
    CancellationReason.PATIENT_ASKED,
    CancellationReason.CLINICIAN_UNAVAILABLE,
    CancellationReason.BOOKED_IN_ERROR,
    CancellationReason.OTHER,
)

# Each reason as a code of HL7 FHIR's appointment-cancellation-reason code system
# (http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason), for records and APIs.
FHIR_CANCELLATION_REASON = {
    CancellationReason.NO_LONGER_NEEDED: "pat-fb",  # Patient: Feeling Better
    CancellationReason.CANNOT_MAKE_TIME: "pat",  # Patient
    CancellationReason.BOOKED_ANOTHER_WAY: "oth-swie",  # Other: Scheduled with another entity
    CancellationReason.OTHER: "other",
    CancellationReason.PATIENT_ASKED: "pat",
    CancellationReason.CLINICIAN_UNAVAILABLE: "prov",  # Provider
    CancellationReason.BOOKED_IN_ERROR: "oth-err",  # Other: Error
    CancellationReason.CHANGED: "pat-cpp",  # Patient: Canceled via Patient Portal
}


class Outcome(models.TextChoices):
    """What happened at a booked appointment once its time came, as staff recorded it."""

    ATTENDED = "attended", "Attended"
    DID_NOT_ATTEND = "did_not_attend", "Did not attend"


class AppointmentQuerySet(models.QuerySet):
    def seen_by(self, organisation_ids: list[int]) -> AppointmentQuerySet:
        """Appointments at these organisations' locations, and their patients' bookings anywhere.

        A host (say a PCN hub) runs the clinic at its sites; a practice follows its own patients.
        """
        return self.filter(
            Q(slot__location__organisation_id__in=organisation_ids) | Q(patient__organisation_id__in=organisation_ids)
        )


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"

    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments", db_index=False)
    booking_link = models.ForeignKey(
        BookingLink, on_delete=models.PROTECT, null=True, blank=True, related_name="appointments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the patient booked through a link.",
    )
    booked_at = models.DateTimeField(default=timezone.now, editable=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # How it ended (set with status "cancelled"): who, why (a code, see FHIR_CANCELLATION_REASON,
    # plus the patient's or staff member's own words), and the staff member when it was the practice.
    cancellation_source = models.CharField(
        max_length=10, choices=CancellationSource.choices, blank=True, default="", db_default=""
    )
    cancellation_reason = models.CharField(
        max_length=30, choices=CancellationReason.choices, blank=True, default="", db_default=""
    )
    cancellation_detail = models.CharField(max_length=200, blank=True, default="", db_default="")
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The staff member who cancelled it; empty when the patient did.",
    )
    # A change books a new appointment that records the one it replaced; the database allows
    # one replacement per appointment, so two tabs changing the same booking can't both win.
    replaces = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by", editable=False
    )
    # The first appointment of a chain of changes (empty for that first one): the calendar
    # event's UID, so a patient's calendar moves one event instead of adding another.
    original = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # How many changes led here (0 for a first booking): the type's max_changes caps it.
    change_count = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    # Whether the patient came, recorded by the staff of the site where it was, once its time
    # came (booking/outcomes.py); empty until then. Only a booked appointment has one.
    outcome = models.CharField(
        max_length=20, choices=Outcome.choices, blank=True, default="", db_default="", editable=False
    )
    outcome_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    outcome_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        help_text="The staff member who last recorded the outcome.",
    )

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        ordering = ["-booked_at"]
        constraints = [
            # One slot, one booking: the database refuses a second booked appointment.
            models.UniqueConstraint(
                fields=["slot"], condition=Q(status="booked"), name="appointment_one_booked_per_slot"
            ),
            # A link books at most once.
            models.UniqueConstraint(
                fields=["booking_link"],
                condition=Q(status="booked", booking_link__isnull=False),
                name="appointment_one_booked_per_link",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False)
                | Q(status="booked", cancelled_at__isnull=True),
                name="appointment_cancelled_at_matches_status",
            ),
            # A cancelled appointment says who ended it and why; a booked one says neither.
            models.CheckConstraint(
                condition=Q(status="cancelled") & ~Q(cancellation_source="") & ~Q(cancellation_reason="")
                | Q(status="booked", cancellation_source="", cancellation_reason=""),
                name="appointment_cancellation_matches_status",
            ),
            # A replacement is a change: it counts one more than the appointment it replaced.
            models.CheckConstraint(
                condition=Q(replaces__isnull=True, change_count=0, original__isnull=True)
                | Q(replaces__isnull=False, change_count__gte=1, original__isnull=False),
                name="appointment_change_chain_consistent",
            ),
            # An outcome belongs to an appointment that stayed booked, and says when it was recorded:
            # a cancelled or changed appointment never counts as attended or missed.
            models.CheckConstraint(
                condition=Q(outcome="", outcome_recorded_at__isnull=True)
                | Q(status="booked", outcome__in=["attended", "did_not_attend"], outcome_recorded_at__isnull=False),
                name="appointment_outcome_only_when_booked",
                violation_error_message="Only a booked appointment can be marked attended or not attended.",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "-booked_at"], name="appointment_patient_booked"),
            # The requeue sweep looks for recent bookings through a link without a confirmation.
            models.Index(
                fields=["booked_at"],
                condition=Q(status="booked", booking_link__isnull=False),
                name="appointment_link_booked_at",
            ),
            # Staff home's "Changes by patients": patients' cancellations and changes since a moment.
            # Two equalities, not IN: PostgreSQL gives an IN back as "= ANY (ARRAY[...])" in another
            # spelling than it was made with, and the bench's bulk load rebuilds indexes from that.
            models.Index(
                fields=["cancelled_at"],
                condition=Q(cancellation_source="patient") | Q(cancellation_source="changed"),
                name="appointment_patient_change_at",
            ),
            # The requeue sweep looks for recent cancellations of link bookings without their notice.
            models.Index(
                fields=["cancelled_at"],
                condition=Q(status="cancelled", booking_link__isnull=False),
                name="appointment_link_cancelled_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} — {self.slot}"

    @property
    def reference(self) -> str:
        """The booking reference a patient quotes on the phone."""
        return encode_reference(self.pk, namespace="appointment") if self.pk else ""


class AuditEvent(models.Model):
    """Append-only: a trigger in the database refuses UPDATE and DELETE on this table."""

    class Action(models.TextChoices):
        SENT = "sent", "Message sent"
        OPENED = "opened", "Link opened"
        DOB_FAILED = "dob_failed", "Date of birth failed"
        LOCKED = "locked", "Link locked"
        UNLOCKED = "unlocked", "Link unlocked"
        BOOKED = "booked", "Appointment booked"
        DECLINED = "declined", "Invitation declined"
        CAMPAIGN = "campaign", "Campaign changed"
        CANCELLED = "cancelled", "Appointment cancelled"
        APPOINTMENT_CHANGED = "appt_changed", "Appointment changed"
        OUTCOME_RECORDED = "outcome", "Attendance recorded"
        REVOKED = "revoked", "Link revoked"
        VIEWED = "viewed", "Record viewed"
        CHANGED = "changed", "Record changed"
        DENIED = "denied", "Access denied"
        OPTED_OUT = "opted_out", "Opted out of texts"
        OPTED_IN = "opted_in", "Opted back in to texts"
        EMAIL_UNDELIVERABLE = "email_bounced", "Email address stopped working"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        LOCKED_OUT = "locked_out", "Sign-in locked after failed tries"
        PASSWORD_RESET_REQUESTED = "password_reset", "Password reset requested"

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the patient (through a link) or the system acted.",
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events", db_index=False
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events", db_index=False
    )
    booking_link = models.ForeignKey(
        BookingLink, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="audit_event_org_created"),
            models.Index(fields=["patient", "-created_at"], name="audit_event_patient_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()}, {date_and_time(self.created_at)}"


class AttemptCount(models.Model):
    """Attempts counted for one key in one fixed window (booking/throttle.py): a rate limit's memory.

    Written only by `attempts_record`'s upsert. The key is stored as its SHA-256 digest, so the
    table holds no client address in clear.
    """

    key_digest = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    expires_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # The upsert's conflict target: one row per key per window, so counts add up.
            models.UniqueConstraint(fields=["key_digest", "window_start"], name="attempt_count_unique_key_window"),
        ]
        indexes = [
            # attempts_record's cleanup: rows whose windows have ended.
            models.Index(fields=["expires_at"], name="attempt_count_expires"),
        ]

    def __str__(self) -> str:
        return f"{self.count} from {self.window_start:%Y-%m-%d %H:%M}"


class PatientChangesSeen(models.Model):
    """When a member of staff last opened the list of changes by patients.

    Home counts the patients' cancellations and changes since then; opening the list (not
    merely seeing the count) moves it on. One row per user, written by `patient_changes_seen`.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="patient_changes_seen"
    )
    seen_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "patient changes seen"

    def __str__(self) -> str:
        return date_and_time(self.seen_at)
