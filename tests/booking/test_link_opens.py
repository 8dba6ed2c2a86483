"""Opening a link is counted on the link's row, and audited once per browser session, capped per link."""

from __future__ import annotations

import pytest
from django.test import Client

from booking.links import OPENED_EVENTS_PER_LINK, booking_link_record_opened
from booking.models import AuditEvent, BookingLink

pytestmark = pytest.mark.django_db


def opened_events(link) -> int:
    return AuditEvent.objects.filter(action=AuditEvent.Action.OPENED, booking_link=link).count()


def test_reloading_in_one_browser_counts_every_open_but_audits_one(client, link):
    for _ in range(10):
        assert client.get(link.get_absolute_url()).status_code == 200
    fresh = BookingLink.objects.get(pk=link.pk)
    assert fresh.open_count == 10
    assert fresh.first_opened_at is not None
    assert fresh.last_opened_at >= fresh.first_opened_at
    assert opened_events(link) == 1


def test_each_browser_session_gets_its_own_event(link):
    for _ in range(3):
        Client().get(link.get_absolute_url())
    assert opened_events(link) == 3
    assert BookingLink.objects.get(pk=link.pk).open_count == 3


def test_a_scanner_without_cookies_cannot_grow_the_trail_without_end(link):
    opens = OPENED_EVENTS_PER_LINK + 15
    for _ in range(opens):
        Client().head(link.get_absolute_url())
    assert BookingLink.objects.get(pk=link.pk).open_count == opens
    assert opened_events(link) == OPENED_EVENTS_PER_LINK


def test_the_first_open_is_kept_and_the_last_moves_on(link):
    booking_link_record_opened(link=link, ip_address=None)
    first = BookingLink.objects.get(pk=link.pk)
    booking_link_record_opened(link=link, ip_address=None, audit=False)
    second = BookingLink.objects.get(pk=link.pk)
    assert second.first_opened_at == first.first_opened_at
    assert second.last_opened_at > first.last_opened_at
    assert (second.open_count, opened_events(link)) == (2, 1)


def test_a_stale_instance_still_counts_from_the_database(link):
    other = BookingLink.objects.get(pk=link.pk)
    booking_link_record_opened(link=link, ip_address=None)
    booking_link_record_opened(link=other, ip_address=None)
    assert BookingLink.objects.get(pk=link.pk).open_count == 2
