"""Staff sessions end after an idle period, after a maximum age and at browser close."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import PASSWORD

PAGE = "/messages/"  # any page for signed-in staff only


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
class TestStaffSessions:
    def test_twenty_idle_minutes_sign_out_and_the_page_says_why(self, client, reception_account):
        with time_machine.travel(timezone.now(), tick=False) as clock:
            client.force_login(reception_account)
            assert client.get(PAGE).status_code == 200
            clock.shift(timedelta(minutes=20, seconds=1))

            response = client.get(PAGE, follow=True)

        assert response.redirect_chain[0][0].startswith("/accounts/login/?next=/messages/")
        assert not signed_in(client)
        assert "You were signed out after 20 minutes without activity." in response.content.decode()

    def test_activity_keeps_the_session_going(self, client, reception_account):
        with time_machine.travel(timezone.now(), tick=False) as clock:
            client.force_login(reception_account)
            for _ in range(12):  # two hours, a page every ten minutes
                clock.shift(timedelta(minutes=10))
                assert client.get(PAGE).status_code == 200
        assert signed_in(client)

    def test_a_busy_session_still_ends_at_its_maximum_age(self, client, reception_account):
        with time_machine.travel(timezone.now(), tick=False) as clock:
            client.force_login(reception_account)
            for _ in range(59):  # nine hours fifty minutes, a page every ten minutes
                clock.shift(timedelta(minutes=10))
                assert client.get(PAGE).status_code == 200
            clock.shift(timedelta(minutes=10, seconds=1))

            response = client.get(PAGE, follow=True)

        assert not signed_in(client)
        assert "You were signed out: sessions last at most 10 hours." in response.content.decode()

    def test_the_limits_come_from_settings(self, client, reception_account, settings):
        settings.STAFF_SESSION_IDLE_MINUTES = 5
        with time_machine.travel(timezone.now(), tick=False) as clock:
            client.force_login(reception_account)
            clock.shift(timedelta(minutes=5, seconds=1))
            assert client.get(PAGE).status_code == 302
        assert not signed_in(client)

    def test_the_session_cookie_ends_with_the_browser(self, client, reception_account):
        response = client.post("/accounts/login/", {"username": "reception", "password": PASSWORD})

        assert response.status_code == 302
        cookie = response.cookies["sessionid"]
        assert cookie.value
        assert not cookie["expires"]
        assert not cookie["max-age"]

    def test_refreshing_the_idle_clock_writes_the_session_at_most_once_a_minute(self, client, reception_account):
        with time_machine.travel(timezone.now(), tick=False) as clock:
            client.force_login(reception_account)
            client.get(PAGE)
            clock.shift(timedelta(seconds=30))
            before = client.session["staff_last_seen_at"]
            client.get(PAGE)
            assert client.session["staff_last_seen_at"] == before
            clock.shift(timedelta(seconds=31))
            client.get(PAGE)
            assert client.session["staff_last_seen_at"] > before
