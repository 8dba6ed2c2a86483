"""The campaign forms: "New campaign" (its settings and its list) and the pace it starts at."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from booking.links import LinkExpiry
from booking.models import AppointmentType, Location, Organisation
from booking.names import validate_name
from messaging.campaigns.creation import CampaignPace, CampaignSettings
from messaging.campaigns.lists import (
    MAX_BYTES,
    CampaignListUnreadable,
    ListLayout,
    campaign_list_from_pasted,
    campaign_list_shape,
)
from messaging.forms import link_choices_scope, link_expiry_field, practitioner_field
from messaging.models import Channel

DEFAULT_INVITATION = (
    "{{Patient First Name}}, {{Practice Name}} invites you to book an appointment. "
    "Choose a time that suits you: {{Appointment Link}}"
)
PASTED_LIST_NAME = "Pasted NHS numbers"


class CampaignForm(forms.Form):
    """A new campaign: its name, Invite to book's link settings, the invitation, and the list (file or pasted)."""

    name = forms.CharField(
        label="Campaign name",
        max_length=100,
        validators=[validate_name],
        error_messages={"required": "Enter a name for the campaign.", "max_length": "Use at most 100 characters."},
    )
    appointment_type = forms.ModelChoiceField(
        label="Select an appointment type",
        queryset=AppointmentType.objects.none(),
        error_messages={
            "required": "Choose an appointment type.",
            "invalid_choice": "Choose one of the appointment types in the list.",
        },
    )
    location = forms.ModelChoiceField(
        label="Location",
        queryset=Location.objects.none(),
        error_messages={
            "required": "Choose a location.",
            "invalid_choice": "Choose one of the locations in the list for this appointment type.",
        },
    )
    practitioner = practitioner_field()
    link_expiry = link_expiry_field()
    body = forms.CharField(
        label="Message",
        max_length=5000,
        initial=DEFAULT_INVITATION,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={
            "required": "Enter the invitation.",
            "max_length": "The message can be at most %(limit_value)d characters.",
        },
    )
    preferred_channel = forms.ChoiceField(
        label="Send by",
        choices=[(Channel.SMS.value, "SMS, or email if no mobile"), (Channel.EMAIL.value, "Email, or SMS if no email")],
        initial=Channel.SMS.value,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose how to send.", "invalid_choice": "Choose how to send."},
    )
    list_file = forms.FileField(
        label="Patients (CSV file)",
        required=False,
        allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    pasted = forms.CharField(
        label="Or paste NHS numbers, one a line",
        required=False,
        # 50,000 numbers with their line ends, and room for spaces within them.
        max_length=1_000_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"max_length": "That is too many NHS numbers to paste: upload a CSV file instead."},
    )

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organisation = organisation
        self.offered_types, self.chosen_type = link_choices_scope(form=self, organisation=organisation)
        # Read by the view once valid: the stored bytes, their name and rows.
        self.list_content = b""
        self.list_name = ""
        self.list_rows = 0
        self.list_layout: ListLayout | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload: UploadedFile | None = cleaned.get("list_file")
        pasted = (cleaned.get("pasted") or "").strip()
        if "list_file" in self.errors or "pasted" in self.errors:
            return cleaned
        if upload is not None and pasted:
            self.add_error(
                "list_file", forms.ValidationError("Upload a file or paste NHS numbers, not both.", code="both")
            )
            return cleaned
        if upload is None and not pasted:
            self.add_error(
                "list_file",
                forms.ValidationError("Choose a CSV file of patients, or paste their NHS numbers.", code="required"),
            )
            return cleaned
        if upload is not None:
            # Measured before reading: a file over the limit is never read into memory.
            if (upload.size or 0) > MAX_BYTES:
                self.add_error(
                    "list_file",
                    forms.ValidationError(
                        f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. Export only the NHS number "
                        "column, or split the list into two campaigns.",
                        code="too_large",
                    ),
                )
                return cleaned
            content, name = upload.read(), upload.name or "patients.csv"
        else:
            content, name = campaign_list_from_pasted(pasted), PASTED_LIST_NAME
        try:
            self.list_layout, self.list_rows = campaign_list_shape(content=content)
        except CampaignListUnreadable as error:
            field = "list_file" if upload is not None else "pasted"
            self.add_error(field, forms.ValidationError(error.message, code="unreadable_list"))
            return cleaned
        self.list_content, self.list_name = content, name
        return cleaned

    def settings(self) -> CampaignSettings:
        cleaned = self.cleaned_data
        return CampaignSettings(
            name=cleaned["name"].strip(),
            appointment_type=cleaned["appointment_type"],
            location=cleaned["location"],
            practitioner=cleaned.get("practitioner"),
            link_expiry=LinkExpiry(cleaned["link_expiry"]),
            body=cleaned["body"],
            preferred_channel=Channel(cleaned["preferred_channel"]),
        )


class PaceForm(forms.Form):
    """How a checked campaign sends: from when, how many a day and a free time, and the follow-ups."""

    starts_at = forms.DateTimeField(
        label="Start time",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter the start as a date and time, like 2026-12-07 09:00."},
    )
    per_day = forms.IntegerField(
        label="Invitations per day",
        min_value=1,
        max_value=10_000,
        initial=200,
        error_messages={
            "required": "Enter how many invitations to send a day.",
            "invalid": "Enter a whole number of invitations a day.",
            "min_value": "Invitations per day must be 1 or more.",
            "max_value": "Invitations per day can be at most %(limit_value)s.",
        },
    )
    per_free_time = forms.IntegerField(
        label="Invitations per free time",
        min_value=1,
        max_value=5,
        initial=2,
        error_messages={
            "required": "Enter how many invitations to send for each free time.",
            "invalid": "Enter a whole number from 1 to 5.",
            "min_value": "Invitations per free time must be from 1 to 5.",
            "max_value": "Invitations per free time must be from 1 to 5.",
        },
    )
    follow_up_1_days = forms.IntegerField(
        label="First follow-up (days after the invitation)",
        required=False,
        min_value=1,
        max_value=60,
        initial=5,
        error_messages={
            "invalid": "Enter a whole number of days, or leave it blank for no follow-up.",
            "min_value": "The first follow-up must be 1 day or more after the invitation.",
            "max_value": "The first follow-up can be at most %(limit_value)s days after the invitation.",
        },
    )
    follow_up_2_days = forms.IntegerField(
        label="Second follow-up (days after the invitation)",
        required=False,
        min_value=1,
        max_value=90,
        initial=10,
        error_messages={
            "invalid": "Enter a whole number of days, or leave it blank for no second follow-up.",
            "min_value": "The second follow-up must be 1 day or more after the invitation.",
            "max_value": "The second follow-up can be at most %(limit_value)s days after the invitation.",
        },
    )

    def pace(self) -> CampaignPace:
        cleaned = self.cleaned_data
        return CampaignPace(
            starts_at=cleaned.get("starts_at"),
            per_day=cleaned["per_day"],
            per_free_time=cleaned["per_free_time"],
            follow_up_1_days=cleaned.get("follow_up_1_days"),
            follow_up_2_days=cleaned.get("follow_up_2_days"),
        )
