"""Password reset requests: the same answer for every address, limited, audited."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from booking.models import AuditEvent, StaffMembership
from tests.factories import StaffMembershipFactory, UserFactory

RESET = "/accounts/password_reset/"


def ask(client, email, *, address="203.0.113.10"):
    return client.post(RESET, {"email": email}, REMOTE_ADDR=address)


@pytest.mark.django_db
class TestPasswordReset:
    def test_the_page_is_in_our_layout(self, client):
        page = client.get(RESET).content.decode()
        assert "<h1>Reset your password</h1>" in page
        assert 'class="nhsuk-header' in page

    def test_known_and_unknown_addresses_get_the_same_answer(self, client, reception_account):
        known = ask(client, "reception@riverside.example")
        unknown = ask(client, "nobody@riverside.example")

        assert known.status_code == unknown.status_code == 302
        assert known["Location"] == unknown["Location"] == reverse("password_reset_done")
        assert [message.to for message in mail.outbox] == [["reception@riverside.example"]]
        done = client.get(reverse("password_reset_done")).content.decode()
        assert "If a staff account uses that email address" in done

    def test_requests_for_one_email_address_are_limited_without_saying_so(self, client, reception_account):
        responses = [ask(client, "reception@riverside.example", address=f"198.51.100.{n}") for n in range(1, 9)]

        assert {response.status_code for response in responses} == {302}
        assert len(mail.outbox) == 5

    def test_requests_from_one_client_address_are_limited(self, client, reception_account):
        responses = [ask(client, f"someone-{n}@example.com") for n in range(20)]
        assert {response.status_code for response in responses} == {302}

        refused = ask(client, "reception@riverside.example")

        assert refused.status_code == 429
        assert "Too many password reset requests" in refused.content.decode()
        assert mail.outbox == []
        assert ask(client, "reception@riverside.example", address="198.51.100.1").status_code == 302
        assert len(mail.outbox) == 1

    def test_a_request_for_an_account_is_on_its_managers_audit_trail(self, client, reception_account):
        organisation = reception_account.memberships.get().organisation
        manager = UserFactory(username="manager")
        StaffMembershipFactory(user=manager, organisation=organisation, role=StaffMembership.Role.MANAGER)

        ask(client, "reception@riverside.example", address="198.51.100.9")
        ask(client, "nobody@riverside.example")

        event = AuditEvent.objects.get(action=AuditEvent.Action.PASSWORD_RESET_REQUESTED)
        assert event.organisation == organisation
        assert event.detail == {"account": "reception"}
        assert event.ip_address == "198.51.100.9"
        client.force_login(manager)
        page = client.get(reverse("booking:audit")).content.decode()
        assert "Password reset requested" in page
        assert "Not signed in (account reception)" in page

    def test_the_emailed_link_lets_the_password_be_changed(self, client, reception_account):
        ask(client, "reception@riverside.example")
        (message,) = mail.outbox
        link = next(word for word in message.body.split() if "/accounts/reset/" in word)

        form = client.get(link, follow=True)
        assert "<h1>Choose a new password</h1>" in form.content.decode()
        done = client.post(
            form.redirect_chain[-1][0],
            {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
            follow=True,
        )
        assert "<h1>Password changed</h1>" in done.content.decode()
        reception_account.refresh_from_db()
        assert reception_account.check_password("a-new-long-passphrase")
