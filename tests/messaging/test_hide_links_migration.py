"""The data migration that takes working links out of messages already stored (messaging 0006)."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.test import override_settings
from django.utils import timezone

from booking.encryption import token_decrypt
from booking.models import BookingLink
from messaging.models import Message
from messaging.tokens import LINK_PLACEHOLDER
from tests.factories import BookingLinkFactory, MessageFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("messaging.migrations.0006_tokens_hide_links")


def message_as_before(*, status: str, link_status: str = "active", expired: bool = False) -> tuple[Message, str]:
    """A message stored the old way: its body holds the working link, the link no encrypted copy."""
    link = BookingLinkFactory(status=link_status)
    token = link.token
    BookingLink.objects.filter(pk=link.pk).update(token_encrypted="")
    if expired:
        now = timezone.now()
        BookingLink.objects.filter(pk=link.pk).update(
            created_at=now - timedelta(days=15), expires_at=now - timedelta(days=1)
        )
    message = MessageFactory(
        patient=link.patient,
        booking_link=link,
        status=status,
        body=f"Hi, book here: https://old.example.org/b/{token} Thanks. Not ours: https://x.example/b/{'A' * 22}",
    )
    return message, token


def run_migration() -> None:
    migration.hide_links(apps, None)


def test_every_stored_link_becomes_the_placeholder_and_only_its_own_url_is_touched():
    message, token = message_as_before(status="delivered")
    run_migration()
    message.refresh_from_db()
    assert message.body == (f"Hi, book here: {LINK_PLACEHOLDER} Thanks. Not ours: https://x.example/b/{'A' * 22}")
    assert token not in message.body
    # Delivered: the patient has their link, nothing keeps a copy.
    assert BookingLink.objects.get(pk=message.booking_link_id).token_encrypted == ""


def test_a_message_still_to_deliver_keeps_its_link_encrypted_when_a_key_is_set():
    message, token = message_as_before(status="queued")
    run_migration()
    link = BookingLink.objects.get(pk=message.booking_link_id)
    assert token_decrypt(link.token_encrypted) == token


@pytest.mark.parametrize(("link_status", "expired"), [("booked", False), ("revoked", False), ("active", True)])
def test_a_link_that_cant_book_is_not_kept_even_for_an_undelivered_message(link_status, expired):
    message, _ = message_as_before(status="queued", link_status=link_status, expired=expired)
    run_migration()
    assert BookingLink.objects.get(pk=message.booking_link_id).token_encrypted == ""


def test_without_a_key_the_link_of_an_undelivered_message_is_dropped_not_kept_in_clear():
    message, token = message_as_before(status="sending")
    with override_settings(LINK_ENCRYPTION_KEYS=[]):
        run_migration()
    message.refresh_from_db()
    assert token not in message.body
    assert BookingLink.objects.get(pk=message.booking_link_id).token_encrypted == ""
