"""Where a link's token may be: encrypted while it can book or manage a booking, redacted from logs
and error reports."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.test import RequestFactory, override_settings
from django.utils import timezone
from django.views.debug import get_exception_reporter_class

from booking.appointments import appointment_cancel
from booking.encryption import token_decrypt, token_encrypt
from booking.links import booking_link_revoke, booking_links_wipe_unusable
from booking.logs import LinkTokenExceptionReporter, LinkTokenFilter, LinkTokenReporterFilter
from booking.models import Appointment, BookingLink
from tests.factories import AppointmentFactory, BookingLinkFactory

pytestmark = pytest.mark.django_db

TOKEN = "AbCdEfGhIjKlMnOpQrStUv"


def test_a_new_link_holds_its_token_only_encrypted():
    link = BookingLinkFactory()
    stored = BookingLink.objects.get(pk=link.pk)
    assert link.token not in stored.token_encrypted
    assert token_decrypt(stored.token_encrypted) == link.token


def test_rotation_the_first_key_encrypts_and_every_key_decrypts():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(LINK_ENCRYPTION_KEYS=[old]):
        encrypted_with_old = token_encrypt(TOKEN)
    with override_settings(LINK_ENCRYPTION_KEYS=[new, old]):
        assert token_decrypt(encrypted_with_old) == TOKEN
        encrypted_with_new = token_encrypt(TOKEN)
    with override_settings(LINK_ENCRYPTION_KEYS=[new]):
        assert token_decrypt(encrypted_with_new) == TOKEN
        assert token_decrypt(encrypted_with_old) is None  # the old key dropped: that copy is gone


def test_revoking_wipes_the_encrypted_token(practice):
    link = BookingLinkFactory(patient=practice.patient)
    booking_link_revoke(link=link, actor=practice.user)
    assert BookingLink.objects.get(pk=link.pk).token_encrypted == ""


def test_the_sweep_wipes_expired_links_and_keeps_the_ones_that_can_still_book():
    now = timezone.now()
    expired = BookingLinkFactory(created_at=now - timedelta(days=15), expires_at=now - timedelta(days=1))
    active = BookingLinkFactory()
    locked = BookingLinkFactory(status=BookingLink.Status.LOCKED, failed_attempts=5)
    never = BookingLinkFactory(expires_at=None)
    assert booking_links_wipe_unusable(now=now) == 1
    assert BookingLink.objects.get(pk=expired.pk).token_encrypted == ""
    for link in (active, locked, never):
        assert BookingLink.objects.get(pk=link.pk).token_encrypted  # staff can still unlock or resend


def test_the_log_filter_redacts_tokens_in_the_message_and_its_arguments():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "%s: %s", ("Conflict", f"/b/{TOKEN}/confirm"), None
    )
    assert LinkTokenFilter().filter(record)
    assert record.getMessage() == "Conflict: /b/<redacted>/confirm"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, f"GET /b/{TOKEN}", None, None)
    LinkTokenFilter().filter(record)
    assert TOKEN not in record.getMessage()


def test_the_error_report_leaves_the_token_out():
    request = RequestFactory().get(f"/b/{TOKEN}/times")
    try:
        # Frame variables as in the patient's views and Django's handler that calls them.
        token = TOKEN
        kwargs = {"token": TOKEN}
        raise ValueError(f"broken ({len(token)}, {len(kwargs)})")
    except ValueError:
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
    assert isinstance(reporter, LinkTokenExceptionReporter)
    assert isinstance(reporter.filter, LinkTokenReporterFilter)
    for report in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert TOKEN not in report
    assert "/b/<redacted>" in reporter.get_traceback_text()
    assert "/b/&lt;redacted&gt;" in reporter.get_traceback_html()


def test_a_booked_link_keeps_its_token_until_the_appointment_has_passed_or_is_cancelled(practice):
    now = timezone.now()
    to_come = AppointmentFactory(slot__start=now + timedelta(days=3))
    passed = AppointmentFactory(slot__start=now - timedelta(hours=1))
    cancelled = AppointmentFactory(slot__start=now + timedelta(days=3))
    links = {}
    for name, appointment in {"to_come": to_come, "passed": passed, "cancelled": cancelled}.items():
        # A link that expired before the appointment: its expiry ended booking, not managing.
        link = BookingLinkFactory(
            patient=appointment.patient,
            status=BookingLink.Status.BOOKED,
            created_at=now - timedelta(days=2),
            expires_at=now - timedelta(days=1),
        )
        Appointment.objects.filter(pk=appointment.pk).update(booking_link=link)
        appointment.refresh_from_db()
        links[name] = link
    appointment_cancel(appointment=cancelled, actor=practice.user)
    assert BookingLink.objects.get(pk=links["cancelled"].pk).token_encrypted == ""
    assert booking_links_wipe_unusable(now=now) == 1
    assert BookingLink.objects.get(pk=links["passed"].pk).token_encrypted == ""
    assert BookingLink.objects.get(pk=links["to_come"].pk).token_encrypted
