"""Booking's forms: the patient's date of birth (NHS.UK date input), choice of a time, reason for
cancelling and for declining a campaign's invitation; staff's sharing agreements, the Appointments
page's filters and a cancellation on the patient's behalf."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, NoReturn, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from booking.formats import LONDON
from booking.models import (
    PATIENT_CANCELLATION_REASONS,
    PRACTICE_CANCELLATION_REASONS,
    AppointmentType,
    CancellationReason,
    CancellationSource,
    DeclineReason,
    Location,
    Organisation,
    SharingAgreement,
)
from booking.references import decode_reference

# Patients' dates of birth start here (the database's plausibility check says the same).
EARLIEST_YEAR = 1880
PARTS = ("day", "month", "year")
_ONE_OR_TWO_DIGITS = re.compile(r"^[0-9]{1,2}$")
_FOUR_DIGITS = re.compile(r"^[0-9]{4}$")


class DatePartField(forms.CharField):
    """One box of the date input. Free text: the form checks the date as a whole, with one message."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)
        # CharField refuses null characters with a message of its own; the form's "must be a
        # real date" covers them like any other character that isn't a digit.
        self.validators = []


class DateOfBirthForm(forms.Form):
    """Day, Month and Year boxes. Impossible, future or malformed dates are form errors.

    They never reach the date-of-birth check, so they never count as a try: mail scanners and
    people mistyping submit forms too. `invalid_parts` names the boxes to mark as wrong.
    """

    day = DatePartField(label="Day")
    month = DatePartField(label="Month")
    year = DatePartField(label="Year")

    error_messages = {
        "required": "Enter your date of birth",
        "incomplete": "Date of birth must include a %(missing)s",
        "invalid": "Date of birth must be a real date",
        "year_length": "Year must include 4 numbers",
        "future": "Date of birth must be in the past",
        "too_early": f"Date of birth must be in {EARLIEST_YEAR} or later",
    }

    def __init__(self, *args: Any, today: date | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        self.invalid_parts: list[str] = []

    def _fail(self, code: str, parts: list[str], **params: str) -> NoReturn:
        self.invalid_parts = parts
        raise ValidationError(self.error_messages[code], code=code, params=params or None)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        values = {part: (cleaned.get(part) or "").strip() for part in PARTS}
        missing = [part for part in PARTS if not values[part]]
        if len(missing) == len(PARTS):
            self._fail("required", list(PARTS))
        if missing:
            self._fail("incomplete", missing, missing=" and ".join(missing))
        not_numbers = [
            part for part in PARTS if not (_FOUR_DIGITS if part == "year" else _ONE_OR_TWO_DIGITS).match(values[part])
        ]
        if not_numbers == ["year"] and values["year"].isascii() and values["year"].isdigit():
            self._fail("year_length", ["year"])
        if not_numbers:
            self._fail("invalid", not_numbers)
        try:
            value = date(int(values["year"]), int(values["month"]), int(values["day"]))
        except ValueError:
            self._fail("invalid", list(PARTS))
        if value > (self.today or timezone.localdate()):
            self._fail("future", list(PARTS))
        if value.year < EARLIEST_YEAR:
            self._fail("too_early", ["year"])
        cleaned["date_of_birth"] = value
        return cleaned

    @property
    def error_message(self) -> str:
        errors = self.non_field_errors()
        return str(errors[0]) if errors else ""

    @property
    def first_invalid_part(self) -> str:
        return self.invalid_parts[0] if self.invalid_parts else "day"


def slot_id_from_reference(reference: str | None) -> int | None:
    """The slot's id for the reference in a URL or form, or None for anything that isn't one."""
    if not reference or len(reference) > 32:
        return None
    return decode_reference(reference, namespace="slot")


def appointment_id_from_reference(reference: str | None) -> int | None:
    """The appointment's id for the reference in a form, or None for anything that isn't one."""
    if not reference or len(reference) > 32:
        return None
    return decode_reference(reference, namespace="appointment")


# What a patient may write when cancelling: the column's size (Appointment.cancellation_detail).
CANCELLATION_DETAIL_LENGTH = 200


class PatientCancelForm(forms.Form):
    """Why the patient is cancelling: one of four reasons, and their own words for "Other reason".

    The words are required only with "Other reason"; their box shows under it always (patient
    pages have no script to reveal it), and words given with another reason are kept too.
    """

    reason = forms.ChoiceField(
        label="Why are you cancelling?",
        choices=[(reason.value, reason.label) for reason in PATIENT_CANCELLATION_REASONS],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Select why you are cancelling",
            "invalid_choice": "Select why you are cancelling",
        },
    )
    detail = forms.CharField(
        label="Tell us the reason",
        required=False,
        strip=True,
        max_length=CANCELLATION_DETAIL_LENGTH,
        error_messages={"max_length": f"Reason must be {CANCELLATION_DETAIL_LENGTH} characters or fewer"},
    )

    error_messages = {"detail_required": "Enter the reason you are cancelling"}

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("reason") == CancellationReason.OTHER and not cleaned.get("detail"):
            self.add_error("detail", ValidationError(self.error_messages["detail_required"], code="detail_required"))
        return cleaned

    @property
    def first_error(self) -> tuple[str, str] | None:
        """(field, message) of the first problem, for the error summary's link."""
        for name in ("reason", "detail"):
            if self.errors.get(name):
                return name, str(self.errors[name][0])
        return None


# What a patient may write when declining: the column's size (BookingLink.decline_detail).
DECLINE_DETAIL_LENGTH = 200


class DeclineForm(forms.Form):
    """Why the patient doesn't want a campaign's appointment: optional, a reason and their own words.

    Nothing is required (declining must never be harder than ignoring the text); the words box
    shows under "Other reason" always (patient pages have no script to reveal it), and words
    given with another reason, or none, are kept too.
    """

    reason = forms.ChoiceField(
        label="Why don't you want this appointment? (optional)",
        choices=DeclineReason.choices,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Select a reason from the list, or none"},
    )
    detail = forms.CharField(
        label="Tell us the reason (optional)",
        required=False,
        strip=True,
        max_length=DECLINE_DETAIL_LENGTH,
        error_messages={"max_length": f"Reason must be {DECLINE_DETAIL_LENGTH} characters or fewer"},
    )


class SharingAgreementForm(forms.Form):
    """A host's manager offers a partner some of its appointment types at some of its locations."""

    partner = forms.ModelChoiceField(
        label="Partner organisation",
        queryset=Organisation.objects.none(),
        empty_label="Choose an organisation",
        error_messages={
            "required": "Choose the organisation to share with.",
            "invalid_choice": "Choose one of the organisations in the list.",
        },
    )
    appointment_types = forms.ModelMultipleChoiceField(
        label="Appointment types they may offer",
        queryset=AppointmentType.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one appointment type.", "invalid_choice": "Choose from the list."},
    )
    locations = forms.ModelMultipleChoiceField(
        label="At these locations",
        queryset=Location.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one location.", "invalid_choice": "Choose from the list."},
    )

    def __init__(self, *args: Any, host: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host = host
        # Declared on the class with empty querysets: the choices depend on the host.
        partner = cast("forms.ModelChoiceField[Organisation]", self.fields["partner"])
        partner.queryset = Organisation.objects.exclude(pk=host.pk).order_by("name")
        appointment_types = cast("forms.ModelMultipleChoiceField[AppointmentType]", self.fields["appointment_types"])
        appointment_types.queryset = AppointmentType.objects.filter(
            organisation=host, self_bookable=True, is_active=True
        ).order_by("name")
        locations = cast("forms.ModelMultipleChoiceField[Location]", self.fields["locations"])
        locations.queryset = Location.objects.filter(organisation=host, is_active=True).order_by("name")

    def clean_partner(self) -> Organisation:
        partner = self.cleaned_data["partner"]
        # Offered or accepted: one open agreement per pair (the database's constraint too).
        if SharingAgreement.objects.open().filter(host=self.host, partner=partner).exists():
            raise forms.ValidationError(
                "You already share with that organisation, or have offered to: end that agreement first.",
                code="already_sharing",
            )
        return partner


def _iso_date_field(label: str) -> forms.DateField:
    """An optional date from a browser's date picker, which sends ISO dates whatever the site's language."""
    return forms.DateField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": f"Enter a real date for {label}."},
    )


class ListedStatus(models.TextChoices):
    """What the Appointments page's "Status" filter offers: the four ways an appointment stands,
    and patients' changes (cancelled by the patient, or changed) together for home's link."""

    BOOKED = "booked", "Booked"
    CANCELLED_BY_PATIENT = "cancelled_by_patient", CancellationSource.PATIENT.label
    CANCELLED_BY_PRACTICE = "cancelled_by_practice", CancellationSource.PRACTICE.label
    CHANGED = "changed", CancellationSource.CHANGED.label
    BY_PATIENTS = "by_patients", "Changes by patients (cancelled or changed)"


class AppointmentFilterForm(forms.Form):
    """The Appointments page's filters, from the query string; every field may be left out.

    `since` (an ISO moment) comes from home's "Changes by patients" link: the changes made
    after the user's previous look, which the list keeps showing after it records this look.
    """

    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *ListedStatus.choices],
        error_messages={"invalid_choice": "Choose a status from the list."},
    )
    from_date = _iso_date_field("From")
    to_date = _iso_date_field("To")
    since = forms.DateTimeField(
        required=False, widget=forms.HiddenInput, error_messages={"invalid": "The changes link is not valid."}
    )

    MAX_DAYS = 366

    def clean(self) -> dict[str, Any]:
        super().clean()
        start, end = self.cleaned_data.get("from_date"), self.cleaned_data.get("to_date")
        if start and end:
            if end < start:
                self.add_error("to_date", ValidationError("To must be the same day as From or later.", code="order"))
            elif (end - start).days >= self.MAX_DAYS:
                self.add_error("to_date", ValidationError("Choose at most a year at a time.", code="too_long"))
        return self.cleaned_data

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        """[From's midnight, the midnight after To) in London time (None where not given): a
        range of whole days, right on both sides of the clocks changing."""
        start, end = self.cleaned_data.get("from_date"), self.cleaned_data.get("to_date")
        return (
            datetime.combine(start, time.min, tzinfo=LONDON) if start else None,
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=LONDON) if end else None,
        )


class PracticeCancellationForm(forms.Form):
    """Why the practice cancels a patient's appointment: a reason (a code) and, for "Other
    reason", a few words. Used by the staff page and the admin action alike."""

    reason = forms.TypedChoiceField(
        label="Why is the appointment being cancelled?",
        choices=[(reason.value, reason.label) for reason in PRACTICE_CANCELLATION_REASONS],
        coerce=CancellationReason,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Select why the appointment is being cancelled.",
            "invalid_choice": "Select why the appointment is being cancelled.",
        },
    )
    detail = forms.CharField(
        label="Details (needed for Other reason)",
        required=False,
        max_length=200,
        error_messages={"max_length": "Details must be 200 characters or fewer."},
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        if self.cleaned_data.get("reason") == CancellationReason.OTHER and not self.cleaned_data.get("detail"):
            self.add_error(
                "detail", ValidationError("Enter the reason, as you chose Other reason.", code="detail_required")
            )
        return self.cleaned_data
