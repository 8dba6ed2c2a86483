"""The pages anyone can reach: home and sign-in, the security headers every page sends, and the
page a form sent without its CSRF token gets."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_home_page_explains_the_product_and_offers_sign_in(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_sign_in_page_renders(client):
    assert client.get("/accounts/login/").status_code == 200


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
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert b"Sorry, we could not send that form" in response.content
