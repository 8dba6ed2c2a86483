"""Which channels can reach a patient, and why not when they can't."""

from __future__ import annotations

from dataclasses import dataclass

from booking.models import Patient
from booking.phones import is_uk_mobile
from messaging.models import Channel


@dataclass(frozen=True)
class ChannelOption:
    channel: Channel
    address: str
    reason_unavailable: str  # empty when the patient can receive it

    @property
    def available(self) -> bool:
        return not self.reason_unavailable


def channel_options(patient: Patient) -> list[ChannelOption]:
    return [_sms_option(patient), _email_option(patient)]


def _sms_option(patient: Patient) -> ChannelOption:
    if not patient.mobile:
        reason = "No mobile number on record"
    elif patient.sms_opted_out:
        reason = "The patient has opted out of texts (replied STOP)"
    elif not is_uk_mobile(patient.mobile):
        # Some UK carriers read texts to landlines aloud as a voice call, link included.
        reason = "The number on record is not a UK mobile"
    else:
        reason = ""
    return ChannelOption(Channel.SMS, patient.mobile, reason)


def _email_option(patient: Patient) -> ChannelOption:
    if not patient.email:
        reason = "No email address on record"
    elif patient.email_undeliverable_reason:
        # Set from the email service's bounce or spam report (messaging/tracking.py); changing
        # the address clears it.
        reason = f"Emails to this address stopped: {patient.email_undeliverable_reason}"
    else:
        reason = ""
    return ChannelOption(Channel.EMAIL, patient.email, reason)


def channel_reaching(patient: Patient, *, preferred: Channel | None) -> ChannelOption | None:
    """The channel a later message about a booking goes by: `preferred` (the one the link came
    by), or the other when that one can no longer reach the patient (opted out of texts since,
    say); the patient's contact preference when there is no `preferred`; None when neither reaches them.
    """
    options = {option.channel: option for option in channel_options(patient)}
    first = preferred if preferred is not None else Channel(patient.contact_preference)
    for channel in [first, *[channel for channel in Channel if channel != first]]:
        if options[channel].available:
            return options[channel]
    return None


def default_channel(patient: Patient) -> Channel | None:
    options = {option.channel: option for option in channel_options(patient)}
    preferred = Channel(patient.contact_preference)
    if options[preferred].available:
        return preferred
    for option in options.values():
        if option.available:
            return option.channel
    return None
