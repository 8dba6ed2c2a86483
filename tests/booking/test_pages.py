"""The pages that exist so far: home, sign-in, and the link's entry point."""

from __future__ import annotations

import pytest

from booking.models import AuditEvent, BookingLink
from tests.factories import BookingLinkFactory

pytestmark = pytest.mark.django_db


def test_home_page_explains_the_product_and_offers_sign_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_sign_in_page_renders(client):
    assert client.get("/accounts/login/").status_code == 200


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


class TestSecurityHeaders:
    @pytest.mark.parametrize("path", ["/", "/accounts/login/", "/b/nonsense"])
    def test_every_page_sends_the_security_headers(self, client, path):
        response = client.get(path)
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp


def test_a_form_sent_without_its_csrf_token_gets_a_plain_english_page():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert b"Sorry, we could not send that form" in response.content


def test_a_member_of_staff_opening_a_patients_link_gets_no_script(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    link = BookingLinkFactory()
    assert b"<script" not in client.get(link.get_absolute_url()).content
