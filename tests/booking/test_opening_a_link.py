"""Opening a link: a token that isn't one is Link not found; a real one shows the practice and
nothing about the patient, to anyone, and changes nothing but the record that it was opened.

What each of the patient's pages shows after that is in test_patient_pages.py.
"""

from __future__ import annotations

import pytest

from booking.models import AuditEvent, BookingLink
from tests.factories import BookingLinkFactory, UserFactory

pytestmark = pytest.mark.django_db


class TestLinkEntryPoint:
    @pytest.mark.parametrize(
        "token",
        ["nonsense", "a" * 22, "a" * 21, "a" * 200, "%00", "..", "b" * 64 + "c"],
    )
    def test_unknown_malformed_or_oversized_tokens_are_link_not_found(self, client, token):
        response = client.get(f"/b/{token}")
        assert response.status_code == 404
        assert b"Link not found" in response.content

    def test_a_truncated_token_is_link_not_found(self, client):
        link = BookingLinkFactory()
        response = client.get(f"/b/{link.token[:-1]}")
        assert response.status_code == 404

    def test_a_real_link_shows_the_practice_but_nothing_about_the_patient(self, client):
        link = BookingLinkFactory()
        response = client.get(link.get_absolute_url())
        assert response.status_code == 200
        content = response.content.decode()
        assert link.organisation.name in content
        for detail in (link.patient.first_name, link.patient.last_name, link.patient.nhs_number, "1980"):
            assert detail not in content

    def test_opening_a_link_changes_nothing_but_the_opened_record(self, client):
        link = BookingLinkFactory()
        before = BookingLink.objects.filter(pk=link.pk).values().get()
        client.get(link.get_absolute_url())
        client.head(link.get_absolute_url())
        after = BookingLink.objects.filter(pk=link.pk).values().get()
        assert after["first_opened_at"] is not None
        assert after["last_opened_at"] is not None
        assert after["open_count"] == 2
        assert {**after, "first_opened_at": None, "last_opened_at": None, "open_count": 0} == before
        assert set(AuditEvent.objects.values_list("action", flat=True)) == {AuditEvent.Action.OPENED}


def test_a_member_of_staff_opening_a_patients_link_gets_no_script(client):
    client.force_login(UserFactory())
    link = BookingLinkFactory()
    assert b"<script" not in client.get(link.get_absolute_url()).content
