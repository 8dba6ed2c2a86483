"""The message builder's form and its steps.

The form's choices are scoped to what the patient's practice may offer (`link_choices_scope`,
which a new campaign's form shares: Invite to book's type, location and practitioner).
`ComposeState` is the builder between two pages: each button but Send is one of its steps, and
the page after a step is a new form with that state as its `initial`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, cast

from django import forms
from django.db.models import Model

from booking.links import DEFAULT_EXPIRY, LinkExpiry
from booking.models import AppointmentType, Location, Organisation, Patient, Practitioner
from booking.offers import (
    OfferedType,
    appointment_types_offered_to,
    locations_offered_to,
    locations_offering,
    practitioners_offering,
)
from messaging.channels import channel_options, default_channel
from messaging.models import MessageTemplate, ReminderTemplate
from messaging.reminders import reminder_template_check
from messaging.sending import LinkSettings
from messaging.tokens import REMINDER_TOKENS, link_token_add, link_token_remove, tokens_normalise, tokens_unknown


class ChannelSelect(forms.RadioSelect):
    """Radios where a channel the patient can't receive is disabled, with the reason as its hint."""

    option_template_name = "messaging/widgets/channel_option.html"

    def __init__(self, *args: Any, reasons: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reasons = reasons or {}

    def create_option(
        self,
        name: str,
        value: Any,
        label: int | str,
        selected: bool,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        reason = self.reasons.get(str(value), "")
        option["reason"] = reason
        if reason:
            option["attrs"]["disabled"] = True
            option["attrs"]["aria-describedby"] = f"{option['attrs'].get('id', name)}-reason"
        return option


@dataclass(frozen=True)
class ComposeState:
    """The message builder as one page leaves it: the fields, and whether Invite to book is open.

    Without JavaScript each builder button submits the form; the step it names returns the next
    state and the page shows it. The builder script takes the same steps in place, with the
    same token functions (messaging/tokens.py).
    """

    channel: str
    body: str
    template: MessageTemplate | None = None
    appointment_type: AppointmentType | None = None
    location: Location | None = None
    practitioner: Practitioner | None = None
    link_expiry: str = DEFAULT_EXPIRY
    link_added: bool = False
    idempotency_key: uuid.UUID | None = None
    invite_open: bool = False

    def initial(self) -> dict[str, Any]:
        """The fields as a form's `initial`, to show this state on a new page."""
        return {field.name: getattr(self, field.name) for field in fields(self) if field.name != "invite_open"}

    def invite(self) -> ComposeState:
        """Invite to book (and "Update the lists" inside it): open the section, change nothing."""
        return replace(self, invite_open=True)

    def refresh(self) -> ComposeState:
        """Cancel in Invite to book: close the section, change nothing."""
        return replace(self, invite_open=False)

    def use_template(self) -> ComposeState:
        """The chosen template's text in place of the message; without a choice, the message as it is."""
        body = self.body if self.template is None else self.template.body
        return replace(self, body=body, invite_open=False)

    def add_link(self) -> ComposeState:
        """The link token at the end of the message (unless it has one, in any spelling), and the link kept."""
        return replace(self, body=link_token_add(self.body), link_added=True, invite_open=False)

    def remove_link(self) -> ComposeState:
        """Every link token out of the message, in any spelling, and the link's choices back to blank."""
        return replace(
            self,
            body=link_token_remove(self.body),
            appointment_type=None,
            location=None,
            practitioner=None,
            link_expiry=DEFAULT_EXPIRY,
            link_added=False,
            invite_open=False,
        )


# Each builder button but Send, by the `action` it submits, and the step it takes.
COMPOSE_STEPS: dict[str, Callable[[ComposeState], ComposeState]] = {
    "invite": ComposeState.invite,
    "refresh": ComposeState.refresh,
    "use_template": ComposeState.use_template,
    "add_link": ComposeState.add_link,
    "remove_link": ComposeState.remove_link,
}


def link_choices_scope(
    *, form: forms.Form, organisation: Organisation
) -> tuple[list[OfferedType], AppointmentType | None]:
    """Narrow `form`'s appointment_type / location / practitioner fields to what `organisation` may offer.

    Invite to book's rule, for the message builder and a new campaign alike: the types offered
    to the organisation (its own, then shared ones); the locations offering the chosen type (or,
    with no type chosen yet, every location it offers anything at: sending checks the pair);
    the practitioners offering the chosen type there. Returns the offered types and the chosen
    type (what the dialog's hints read: a video appointment still has a location).
    """
    appointment_type = cast("forms.ModelChoiceField[AppointmentType]", form.fields["appointment_type"])
    location = cast("forms.ModelChoiceField[Location]", form.fields["location"])
    practitioner = cast("forms.ModelChoiceField[Practitioner]", form.fields["practitioner"])
    offered_types = appointment_types_offered_to(organisation=organisation)
    appointment_type.queryset = AppointmentType.objects.filter(
        pk__in=[offered.appointment_type.pk for offered in offered_types]
    )
    appointment_type.choices = [("", "Choose an appointment type")] + [
        (offered.appointment_type.pk, offered.label) for offered in offered_types
    ]
    chosen_type = _chosen(form, AppointmentType, "appointment_type")
    if chosen_type is not None and chosen_type.pk in {o.appointment_type.pk for o in offered_types}:
        location.queryset = locations_offering(organisation=organisation, appointment_type=chosen_type)
        chosen_location = _chosen(form, Location, "location")
        if chosen_location is not None:
            practitioner.queryset = practitioners_offering(appointment_type=chosen_type, location=chosen_location)
    else:
        # No type yet (or no JavaScript to narrow the list as one is chosen): every location
        # the practice can offer anything at; sending checks the pair.
        location.queryset = locations_offered_to(organisation=organisation)
    return offered_types, chosen_type


def _chosen[M: Model](form: forms.Form, model: type[M], field: str) -> M | None:
    raw = (form.data.get(form.add_prefix(field)) if form.is_bound else form.initial.get(field)) or ""
    if isinstance(raw, model):
        return raw
    try:
        return model._default_manager.filter(pk=int(raw)).first()
    except (TypeError, ValueError):
        return None


def practitioner_field() -> forms.ModelChoiceField:
    """Invite to book's "Practitioner (optional)", for the message builder and a new campaign alike."""
    return forms.ModelChoiceField(
        label="Practitioner (optional)",
        queryset=Practitioner.objects.none(),
        required=False,
        empty_label="Any practitioner",
        error_messages={"invalid_choice": "That practitioner doesn't offer this appointment type at that location."},
    )


def link_expiry_field() -> forms.ChoiceField:
    """Invite to book's "Link expiry": the six options, 14 days first chosen."""
    return forms.ChoiceField(
        label="Link expiry",
        choices=LinkExpiry.choices,
        initial=DEFAULT_EXPIRY,
        error_messages={"invalid_choice": "Choose one of the link expiry options."},
    )


class ComposeForm(forms.Form):
    """What staff fill in. `action` says which button was pressed; only "send" sends."""

    ACTIONS = ("send", *COMPOSE_STEPS)

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
    practitioner = practitioner_field()
    link_expiry = link_expiry_field()
    link_added = forms.BooleanField(required=False, widget=forms.HiddenInput)
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    action = forms.ChoiceField(
        choices=[(action, action) for action in ACTIONS], required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.patient = patient
        organisation = patient.organisation
        options = channel_options(patient)
        channel = cast(forms.ChoiceField, self.fields["channel"])
        template = cast("forms.ModelChoiceField[MessageTemplate]", self.fields["template"])
        # The widget first: assigning a field's choices passes them on to its current widget.
        channel.widget = ChannelSelect(reasons={option.channel.value: option.reason_unavailable for option in options})
        channel.choices = [(option.channel.value, option.channel.label) for option in options]
        channel.initial = default_channel(patient)
        template.queryset = MessageTemplate.objects.filter(organisation=organisation, is_active=True).order_by("name")
        # Read once: the picker, its "is there any" test and the bodies for the script all use it.
        self.templates = list(template.queryset)
        template.choices = [("", "Choose a template")] + [(t.pk, t.name) for t in self.templates]
        self.offered_types, self.chosen_type = link_choices_scope(form=self, organisation=organisation)

    @property
    def chosen_action(self) -> str:
        return (self.cleaned_data.get("action") if hasattr(self, "cleaned_data") else "") or "send"

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        action = cleaned.get("action") or "send"
        wants_link = cleaned.get("link_added") or action == "add_link"
        if wants_link and action != "remove_link":
            if not cleaned.get("appointment_type") and "appointment_type" not in self.errors:
                self.add_error("appointment_type", "Choose an appointment type.")
            if not cleaned.get("location") and "location" not in self.errors:
                self.add_error("location", "Choose a location.")
        return cleaned

    def state(self) -> ComposeState:
        """The builder as this form holds it: cleaned once `is_valid()` has run, else as initial.

        A field that didn't clean is empty, except the message and the channel, kept as typed so
        a page with errors still counts them.
        """
        if not self.is_bound:
            values = {name: self[name].initial for name in self.fields}
        else:
            values = getattr(self, "cleaned_data", {})
        body = values.get("body")
        channel = values.get("channel")
        return ComposeState(
            channel=str(channel if channel is not None else self["channel"].value() or ""),
            body=str(body if body is not None else self["body"].value() or ""),
            template=values.get("template"),
            appointment_type=values.get("appointment_type"),
            location=values.get("location"),
            practitioner=values.get("practitioner"),
            link_expiry=values.get("link_expiry") or DEFAULT_EXPIRY,
            link_added=bool(values.get("link_added")),
            idempotency_key=values.get("idempotency_key"),
        )

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

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
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
        body = tokens_normalise(self.cleaned_data["body"]).strip()
        unknown = tokens_unknown(body)
        if unknown:
            raise forms.ValidationError(
                f"{', '.join(unknown)} {'is not a token' if len(unknown) == 1 else 'are not tokens'} we know.",
                code="unknown_token",
            )
        return body


class ReminderTemplateForm(forms.ModelForm):
    """Django admin's form for an organisation's reminder text: reminder tokens only, and not too long."""

    class Meta:
        model = ReminderTemplate
        fields = ["organisation", "body"]
        labels = {"body": "Reminder text"}
        error_messages = {"body": {"required": "Enter the reminder text."}}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        body = cleaned.get("body")
        if body:
            body = tokens_normalise(body, known=REMINDER_TOKENS).strip()
            problems = reminder_template_check(body=body, organisation=cleaned.get("organisation"))
            if problems:
                self.add_error("body", [forms.ValidationError(problem, code="reminder_text") for problem in problems])
            else:
                cleaned["body"] = body
        return cleaned
