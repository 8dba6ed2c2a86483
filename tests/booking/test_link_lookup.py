"""The link lookup every patient page starts with: a prepared statement that gives what the ORM gives."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import FieldFetchBlocked
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.link_lookup import booking_link_by_digest, booking_links_joined
from booking.models import BookingLink
from booking.offers import booking_link_still_shared
from tests.factories import BookingLinkFactory
from tests.scenarios import make_link, make_practice

pytestmark = pytest.mark.django_db

COLUMNS = ("organisation", "patient", "appointment_type", "location", "practitioner")


def _as_orm_gives(link_pk: int):
    return booking_links_joined().get(pk=link_pk)


def _same(found, expected) -> None:
    assert found is not None
    assert [field.attname for field in found._meta.concrete_fields] == [
        field.attname for field in expected._meta.concrete_fields
    ]
    for field in found._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.attname
    for name in COLUMNS:
        related, related_expected = getattr(found, name), getattr(expected, name)
        if related_expected is None:
            assert related is None
            continue
        for field in related._meta.concrete_fields:
            assert getattr(related, field.attname) == getattr(related_expected, field.attname), (name, field.attname)


def test_the_prepared_lookup_gives_the_link_and_its_joined_rows_as_the_orm_does():
    practice = make_practice()
    with_practitioner = BookingLinkFactory(
        patient=practice.patient,
        appointment_type=practice.appointment_type,
        location=practice.location,
        practitioner=practice.practitioner,
    )
    without = make_link(practice)
    for link in (with_practitioner, without):
        found = booking_link_by_digest(link.token_digest)
        _same(found, _as_orm_gives(link.pk))
        # Aware datetimes, as the ORM's own converters leave them.
        assert found.created_at.tzinfo is not None
    assert booking_link_by_digest("f" * 64) is None


def test_each_lookup_is_one_statement_and_anything_not_joined_raises_instead_of_a_query():
    link = make_link(make_practice())
    booking_link_by_digest(link.token_digest)  # this connection has it prepared from here on
    with CaptureQueriesContext(connection) as queries:
        found = booking_link_by_digest(link.token_digest)
        assert found.organisation.name
        assert found.patient.date_of_birth
        assert found.location.name
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("EXECUTE booking_link_find_")
    with pytest.raises(FieldFetchBlocked):
        _ = found.patient.organisation


def test_a_new_connection_prepares_it_with_its_first_lookup_in_the_same_statement():
    link = make_link(make_practice())
    booking_link_by_digest(link.token_digest)
    found: list[object] = []
    sent: list[str] = []

    def other_thread() -> None:
        # Another thread has its own connection, on which nothing is prepared yet.
        try:
            with CaptureQueriesContext(connections["default"]) as queries:
                found.append(booking_link_by_digest(link.token_digest))
            sent.extend(query["sql"] for query in queries)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    # The test's transaction isn't the other connection's: it can't see the link, but it asked once.
    assert found == [None]
    assert len(sent) == 1
    assert sent[0].startswith("PREPARE booking_link_find_")


def test_turned_off_it_is_the_plain_queryset():
    link = make_link(make_practice())
    with override_settings(DATABASE_PREPARED_LINK_LOOKUP=False), CaptureQueriesContext(connection) as queries:
        found = booking_link_by_digest(link.token_digest)
    _same(found, _as_orm_gives(link.pk))
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("SELECT")


def test_a_hub_links_sharing_comes_with_the_lookup_and_ending_the_agreement_shows(practice, hub):
    link = BookingLinkFactory(
        patient=practice.patient,
        organisation=practice.organisation,
        appointment_type=hub.appointment_type,
        location=hub.location,
    )
    found = booking_link_by_digest(link.token_digest)
    assert found.still_shared is True
    with CaptureQueriesContext(connection) as queries:
        assert booking_link_still_shared(link=found)
    assert len(queries) == 0
    hub.agreement.ended_at = timezone.now()
    hub.agreement.save()
    assert booking_link_by_digest(link.token_digest).still_shared is False
    # A link from elsewhere (not the lookup) still asks.
    assert not booking_link_still_shared(link=BookingLink.objects.select_related("appointment_type").get(pk=link.pk))
