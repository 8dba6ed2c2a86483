"""Staff sign-in: failed tries lock per account and address, per account, per address; audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from booking.models import AuditEvent, StaffMembership
from tests.concurrency import race
from tests.factories import PASSWORD, OrganisationFactory, StaffMembershipFactory, UserFactory

LOGIN = "/accounts/login/"


def sign_in(client, username, password, *, address="203.0.113.10", path=LOGIN, **headers):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address, **headers)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
class TestLockout:
    def test_thirty_wrong_passwords_then_the_right_one_is_refused(self, client, reception_account):
        responses = [sign_in(client, "reception", f"guess-{n}") for n in range(30)]
        # The first four are the form's own error; from the fifth the lockout page.
        assert [r.status_code for r in responses[:4]] == [200] * 4
        assert {r.status_code for r in responses[4:]} == {429}

        response = sign_in(client, "reception", PASSWORD)

        assert response.status_code == 429
        assert not signed_in(client)

    def test_the_locked_out_page_says_what_to_do_in_our_layout(self, client, reception_account):
        for n in range(5):
            response = sign_in(client, "reception", f"guess-{n}")

        assert response.status_code == 429
        page = response.content.decode()
        assert "<h1>Too many failed sign-ins</h1>" in page
        assert "Try again in 15 minutes, or ask an administrator to unlock your account." in page
        assert 'class="nhsuk-header' in page
        assert "Content-Security-Policy" in response.headers

    def test_the_right_password_before_the_limit_signs_in_and_clears_that_count(self, client, reception_account):
        for n in range(4):
            sign_in(client, "reception", f"guess-{n}")
        assert sign_in(client, "reception", PASSWORD).status_code == 302
        client.logout()

        for n in range(4):
            assert sign_in(client, "reception", f"typo-{n}").status_code == 200
        assert sign_in(client, "reception", PASSWORD).status_code == 302

    def test_another_address_still_signs_in_below_the_accounts_own_limit(self, client, reception_account):
        for n in range(5):
            sign_in(client, "reception", f"guess-{n}", address="198.51.100.7")

        response = sign_in(client, "reception", PASSWORD, address="203.0.113.10")

        assert response.status_code == 302
        assert signed_in(client)

    def test_guesses_spread_over_many_addresses_lock_the_account(self, client, reception_account):
        for n in range(10):
            sign_in(client, "reception", f"guess-{n}", address=f"198.51.100.{n + 1}")

        response = sign_in(client, "reception", PASSWORD, address="203.0.113.10")

        assert response.status_code == 429
        assert not signed_in(client)

    def test_one_address_trying_many_accounts_is_locked_but_no_other_address(self, client, reception_account):
        # One password tried on many accounts: a few tries each, never an account's own limit.
        for n in range(30):
            sign_in(client, f"user-{n % 10}", "Winter2026!", address="198.51.100.66")

        assert sign_in(client, "reception", PASSWORD, address="198.51.100.66").status_code == 429
        assert sign_in(client, "reception", PASSWORD, address="203.0.113.10").status_code == 302

    def test_a_lockout_ends_after_the_cool_off(self, client, reception_account):
        start = timezone.now()
        with time_machine.travel(start, tick=False) as clock:
            for n in range(5):
                sign_in(client, "reception", f"guess-{n}")
            clock.shift(timedelta(minutes=14))
            assert sign_in(client, "reception", PASSWORD).status_code == 429
            clock.shift(timedelta(minutes=2))
            assert sign_in(client, "reception", PASSWORD).status_code == 302

    def test_tries_refused_during_a_lockout_neither_extend_it_nor_write_anything(self, client, reception_account):
        start = timezone.now()
        with time_machine.travel(start, tick=False) as clock:
            for n in range(5):
                sign_in(client, "reception", f"guess-{n}")
            events = AuditEvent.objects.count()
            failures = list(AccessAttempt.objects.values_list("failures_since_start", flat=True))

            for n in range(20):
                clock.shift(timedelta(seconds=30))
                assert sign_in(client, "reception", f"more-{n}").status_code == 429

            assert AuditEvent.objects.count() == events
            assert list(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == failures
            clock.shift(timedelta(minutes=6))  # 16 minutes after the lockout began
            assert sign_in(client, "reception", PASSWORD).status_code == 302

    def test_admin_sign_in_is_throttled_too(self, client, db):
        UserFactory(username="boss", is_staff=True, is_superuser=True)
        for n in range(5):
            sign_in(client, "boss", f"guess-{n}", path="/admin/login/")

        response = sign_in(client, "boss", PASSWORD, path="/admin/login/")

        assert response.status_code == 429
        assert "Too many failed sign-ins" in response.content.decode()
        assert not signed_in(client)

    def test_behind_a_proxy_each_client_address_counts_not_the_proxy(self, client, reception_account, settings):
        settings.TRUSTED_PROXY_COUNT = 1
        proxy = "10.0.0.2"
        for n in range(30):
            sign_in(client, f"user-{n % 10}", "Winter2026!", address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.66")

        locked = sign_in(client, "reception", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="198.51.100.66")
        other_client = sign_in(client, "reception", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR="203.0.113.10")

        assert locked.status_code == 429
        assert other_client.status_code == 302
        assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.66"}


@pytest.mark.django_db
class TestAudit:
    def test_failures_and_the_lockout_are_on_the_managers_audit_trail(self, client, reception_account):
        organisation = reception_account.memberships.get().organisation
        manager = UserFactory(username="manager")
        StaffMembershipFactory(user=manager, organisation=organisation, role=StaffMembership.Role.MANAGER)
        for n in range(5):
            sign_in(client, "reception", f"guess-{n}", address="198.51.100.7")

        events = AuditEvent.objects.filter(organisation=organisation)
        assert events.filter(action=AuditEvent.Action.SIGN_IN_FAILED).count() == 5
        locked = events.get(action=AuditEvent.Action.LOCKED_OUT)
        assert locked.detail["account"] == "reception"
        assert locked.ip_address == "198.51.100.7"

        client.force_login(manager)
        page = client.get(reverse("booking:audit")).content.decode()
        assert "Sign-in locked after failed tries" in page
        assert "Sign-in failed" in page
        assert "Not signed in (account reception)" in page
        assert "198.51.100.7" in page

    def test_another_organisations_managers_dont_see_it(self, client, reception_account):
        other = OrganisationFactory(name="Hillview Surgery")
        manager = UserFactory(username="elsewhere")
        StaffMembershipFactory(user=manager, organisation=other, role=StaffMembership.Role.MANAGER)
        for n in range(5):
            sign_in(client, "reception", f"guess-{n}")

        client.force_login(manager)
        page = client.get(reverse("booking:audit")).content.decode()
        assert "reception" not in page
        assert "Sign-in" not in page

    def test_an_account_in_two_organisations_is_audited_for_both(self, client, reception_account):
        second = OrganisationFactory(name="Northgate PCN Hub")
        StaffMembershipFactory(user=reception_account, organisation=second)

        sign_in(client, "reception", "wrong")

        failed = AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED)
        assert set(failed.values_list("organisation", flat=True)) == {
            reception_account.memberships.order_by("pk").first().organisation_id,
            second.pk,
        }

    def test_unknown_usernames_write_no_audit_event(self, client, db):
        for n in range(5):
            sign_in(client, f"nobody-{n}", "wrong")

        assert not AuditEvent.objects.exists()
        assert AccessAttempt.objects.count() == 5  # axes' own record keeps them


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_wrong_passwords_are_all_counted_and_lock_the_account():
    """Hostile test 4, sign-in half: a burst of parallel guesses, each in its own connection.

    Axes checks the count before the password and counts after it, so guesses that arrive
    together are all checked (a burst is as wide as the server's workers; docs/security.md);
    none is lost from the count, and the account is locked for the whole cool-off after it.
    """
    StaffMembershipFactory(user=UserFactory(username="reception"))

    def guess(n: int) -> int:
        return sign_in(Client(), "reception", f"guess-{n}", address="198.51.100.66").status_code

    statuses = race(guess, threads=20)

    assert all(isinstance(status, int) for status in statuses), statuses
    # No failure lost to the race: each one that reached the password check is on the row.
    checked = AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED).count()
    assert AccessAttempt.objects.get().failures_since_start == checked >= 5
    assert sign_in(Client(), "reception", PASSWORD, address="198.51.100.66").status_code == 429
