"""Links made in bulk for a campaign's batch (booking/links.py, booking_links_issue_many)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from booking.encryption import token_decrypt
from booking.exceptions import LinkNotAllowed
from booking.formats import LONDON
from booking.links import LinkExpiry, booking_link_find, booking_links_issue_many
from booking.models import BookingLink, hash_token
from tests.factories import PatientFactory, PractitionerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 13, 10, 0, tzinfo=LONDON)


def issue(practice, patients, **overrides):
    settings = {
        "organisation": practice.organisation,
        "appointment_type": practice.appointment_type,
        "location": practice.location,
        "practitioner": None,
        "expiry": LinkExpiry.DAYS_7,
        "created_by": practice.user,
        "declinable": True,
        "now": NOW,
    }
    return booking_links_issue_many(patients=patients, **{**settings, **overrides})


def test_each_link_has_its_own_token_kept_only_digested_and_encrypted(practice):
    patients = PatientFactory.create_batch(3, organisation=practice.organisation)
    links = issue(practice, patients)
    assert [link.patient for link in links] == patients
    assert len({link.token for link in links}) == 3
    for link in links:
        stored = BookingLink.objects.get(pk=link.pk)
        assert stored.token_digest == hash_token(link.token)
        assert token_decrypt(stored.token_encrypted) == link.token
        assert booking_link_find(link.token) == stored
        assert stored.declinable
        assert (stored.created_at, stored.expires_at) == (NOW, NOW + timedelta(days=7))
        assert (stored.organisation, stored.created_by) == (practice.organisation, practice.user)


def test_the_settings_are_checked_once_whatever_the_number_of_links(practice, django_assert_num_queries):
    few = PatientFactory.create_batch(2, organisation=practice.organisation)
    many = PatientFactory.create_batch(20, organisation=practice.organisation)
    # The types offered to the practice (2), the location (1), one INSERT.
    with django_assert_num_queries(4):
        issue(practice, few)
    with django_assert_num_queries(4):
        issue(practice, many)


def test_settings_that_dont_hold_are_refused_and_nothing_is_made(practice):
    elsewhere = PractitionerFactory(organisation=practice.organisation)
    with pytest.raises(LinkNotAllowed) as refused:
        issue(practice, [practice.patient], practitioner=elsewhere)
    assert refused.value.field == "practitioner"
    assert not BookingLink.objects.exists()


def test_another_organisations_patient_is_refused_and_nothing_is_made(practice, other_practice):
    with pytest.raises(LinkNotAllowed) as refused:
        issue(practice, [practice.patient, other_practice.patient])
    assert refused.value.field == "patient"
    assert not BookingLink.objects.exists()
