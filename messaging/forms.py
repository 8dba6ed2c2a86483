"""The message builder's form. Choices are scoped to what the patient's practice may offer."""

from __future__ import annotations

import uuid

from django import forms

from booking.links import DEFAULT_EXPIRY, LinkExpiry
from booking.models import AppointmentType, Location, Patient, Practitioner
from booking.offers import (
    appointment_types_offered_to,
    locations_offered_to,
    locations_offering,
    practitioners_offering,
)
from messaging.channels import channel_options, default_channel
from messaging.models import MessageTemplate
from messaging.sending import LinkSettings


class ChannelSelect(forms.RadioSelect):
    """Radios where a channel the patient can't receive is disabled, with the reason as its hint."""

    option_template_name = "messaging/widgets/channel_option.html"

    def __init__(self, *args, reasons: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.reasons = reasons or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        reason = self.reasons.get(str(value), "")
        option["reason"] = reason
        if reason:
            option["attrs"]["disabled"] = True
            option["attrs"]["aria-describedby"] = f"{option['attrs'].get('id', name)}-reason"
        return option


class ComposeForm(forms.Form):
    """What staff fill in. `action` says which button was pressed; only "send" sends."""

    ACTIONS = ("send", "invite", "add_link", "remove_link", "use_template", "refresh")

    channel = forms.ChoiceField(label="Send by", error_messages={"required": "Choose SMS or Email."})
    body = forms.CharField(
        label="Message",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"max_length": "The message can be at most %(limit_value)d characters."},
    )
    template = forms.ModelChoiceField(
        label="Template", queryset=MessageTemplate.objects.none(), required=False, empty_label="Choose a template"
    )
    appointment_type = forms.ModelChoiceField(
        label="Select an appointment type",
        queryset=AppointmentType.objects.none(),
        required=False,
        empty_label="Choose an appointment type",
        error_messages={"invalid_choice": "Choose one of the appointment types in the list."},
    )
    location = forms.ModelChoiceField(
        label="Location",
        queryset=Location.objects.none(),
        required=False,
        empty_label="Choose a location",
        error_messages={"invalid_choice": "Choose one of the locations in the list for this appointment type."},
    )
    practitioner = forms.ModelChoiceField(
        label="Practitioner (optional)",
        queryset=Practitioner.objects.none(),
        required=False,
        empty_label="Any practitioner",
        error_messages={"invalid_choice": "That practitioner doesn't offer this appointment type at that location."},
    )
    link_expiry = forms.ChoiceField(
        label="Link expiry",
        choices=LinkExpiry.choices,
        initial=DEFAULT_EXPIRY,
        error_messages={"invalid_choice": "Choose one of the link expiry options."},
    )
    link_added = forms.BooleanField(required=False, widget=forms.HiddenInput)
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    action = forms.ChoiceField(
        choices=[(action, action) for action in ACTIONS], required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args, patient: Patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        organisation = patient.organisation
        options = channel_options(patient)
        # The widget first: assigning a field's choices passes them on to its current widget.
        self.fields["channel"].widget = ChannelSelect(
            reasons={option.channel.value: option.reason_unavailable for option in options}
        )
        self.fields["channel"].choices = [(option.channel.value, option.channel.label) for option in options]
        self.fields["channel"].initial = default_channel(patient)
        self.fields["template"].queryset = MessageTemplate.objects.filter(
            organisation=organisation, is_active=True
        ).order_by("name")
        # Read once: the picker, its "is there any" test and the bodies for the script all use it.
        self.templates = list(self.fields["template"].queryset)
        self.fields["template"].choices = [("", "Choose a template")] + [(t.pk, t.name) for t in self.templates]
        self.offered_types = appointment_types_offered_to(organisation=organisation)
        self.fields["appointment_type"].queryset = AppointmentType.objects.filter(
            pk__in=[offered.appointment_type.pk for offered in self.offered_types]
        )
        self.fields["appointment_type"].choices = [("", "Choose an appointment type")] + [
            (offered.appointment_type.pk, offered.label) for offered in self.offered_types
        ]
        chosen_type = self._chosen(AppointmentType, "appointment_type")
        if chosen_type is not None and chosen_type.pk in {o.appointment_type.pk for o in self.offered_types}:
            self.fields["location"].queryset = locations_offering(
                organisation=organisation, appointment_type=chosen_type
            )
            chosen_location = self._chosen(Location, "location")
            if chosen_location is not None:
                self.fields["practitioner"].queryset = practitioners_offering(
                    appointment_type=chosen_type, location=chosen_location
                )
        else:
            # No type yet (or no JavaScript to narrow the list as one is chosen): every location
            # the practice can offer anything at; sending checks the pair.
            self.fields["location"].queryset = locations_offered_to(organisation=organisation)
        # What the dialog's hints read (a video appointment still has a location).
        self.chosen_type: AppointmentType | None = chosen_type

    def _chosen(self, model, field: str):
        raw = (self.data.get(self.add_prefix(field)) if self.is_bound else self.initial.get(field)) or ""
        if isinstance(raw, model):
            return raw
        try:
            return model.objects.filter(pk=int(raw)).first()
        except (TypeError, ValueError):
            return None

    @property
    def chosen_action(self) -> str:
        return (self.cleaned_data.get("action") if hasattr(self, "cleaned_data") else "") or "send"

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action") or "send"
        wants_link = cleaned.get("link_added") or action == "add_link"
        if wants_link and action != "remove_link":
            if not cleaned.get("appointment_type") and "appointment_type" not in self.errors:
                self.add_error("appointment_type", "Choose an appointment type.")
            if not cleaned.get("location") and "location" not in self.errors:
                self.add_error("location", "Choose a location.")
        return cleaned

    def link_settings(self) -> LinkSettings | None:
        if not self.cleaned_data.get("link_added"):
            return None
        return LinkSettings(
            appointment_type=self.cleaned_data["appointment_type"],
            location=self.cleaned_data["location"],
            practitioner=self.cleaned_data.get("practitioner"),
            expiry=LinkExpiry(self.cleaned_data.get("link_expiry") or DEFAULT_EXPIRY),
        )


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["name", "body", "is_active"]
        labels = {"name": "Template name", "body": "Message", "is_active": "Offer this template in the message builder"}
        error_messages = {
            "name": {"required": "Enter a name for the template."},
            "body": {"required": "Enter the message."},
        }

    def __init__(self, *args, organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.organisation = organisation

    def clean_name(self) -> str:
        # organisation isn't a form field, so ModelForm would skip the unique constraint.
        name = self.cleaned_data["name"].strip()
        others = MessageTemplate.objects.filter(organisation=self.instance.organisation, name__iexact=name)
        if others.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("There is already a template with that name.", code="duplicate_name")
        return name

    def clean_body(self) -> str:
        from messaging.tokens import tokens_normalise, tokens_unknown

        body = tokens_normalise(self.cleaned_data["body"]).strip()
        unknown = tokens_unknown(body)
        if unknown:
            raise forms.ValidationError(
                f"{', '.join(unknown)} {'is not a token' if len(unknown) == 1 else 'are not tokens'} we know.",
                code="unknown_token",
            )
        return body
