"""The seed's steps 1 to 9, as a member of staff does them, found by accessible names."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from booking.models import BookingLink
from messaging.models import Message
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_send_a_self_booking_link_by_sms(page, practice):
    sign_in(page, practice)
    page.get_by_role("button", name="Send message").click()

    page.get_by_label("Patient").fill("Oliver Smi")
    page.get_by_role("link", name=re.compile("Oliver Smith")).click()
    page.get_by_label("Message").fill("Hello {{Patient First Name}}, please book your flu jab: ")

    # 1. The calendar icon at the top of the message box says "Invite to book" on hover and on focus.
    invite = page.get_by_role("button", name="Invite to book")
    tooltip = page.get_by_role("tooltip", name="Invite to book")
    expect(tooltip).to_be_hidden()
    invite.hover()
    expect(tooltip).to_be_visible()
    page.mouse.move(0, 0)
    expect(tooltip).to_be_hidden()
    page.get_by_label("Message").focus()
    page.keyboard.press("End")
    page.keyboard.press("Shift+Tab")  # from the message box back to the icon button, by keyboard
    expect(invite).to_be_focused()
    expect(tooltip).to_be_visible()

    # 2-4. It opens a box; choose the appointment type from the list.
    invite.click()
    dialog = page.get_by_role("dialog", name="Invite to book")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    # 5. The location, then 6. optionally a practitioner and the expiry (14 days by default).
    dialog.get_by_label("Location").select_option(label=practice.location.name)
    expect(dialog.get_by_label("Practitioner (optional)")).to_contain_text(practice.practitioner.name)
    expect(dialog.get_by_label("Link expiry")).to_have_value("14d")
    dialog.get_by_label("Practitioner (optional)").select_option(label=str(practice.practitioner))
    expect(dialog.get_by_text("3 free times")).to_be_visible()

    # 7. Add the link: {{Appointment Link}} appears in the message body.
    dialog.get_by_role("button", name="Add link").click()
    expect(dialog).to_be_hidden()
    message_box = page.get_by_label("Message")
    expect(message_box).to_have_value(re.compile(r"flu jab: \{\{Appointment Link\}\}$"))
    expect(page.get_by_role("heading", name="Appointment link")).to_be_visible()

    # 8. Extra context for the patient.
    message_box.press("End")
    message_box.type(" Thank you.")
    expect(page.locator("#message-count")).to_contain_text("SMS message")

    # 9. Send.
    page.get_by_role("radio", name="SMS").check()
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent.")).to_be_visible()

    message = Message.objects.get()
    link = BookingLink.objects.get()
    assert message.booking_link == link
    assert link.practitioner == practice.practitioner
    assert message.body.startswith("Hello Oliver, please book your flu jab: http")
    assert message.body.endswith(" Thank you.")
    expect(page.get_by_text(message.body.split("/b/")[1][:22])).to_be_visible()


def test_the_same_steps_work_without_javascript(page_without_javascript, practice):
    page = page_without_javascript
    sign_in(page, practice)
    page.get_by_role("button", name="Send message").click()
    page.get_by_label("Patient").fill("Smith")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=re.compile("Oliver Smith")).click()
    page.get_by_label("Message").fill("Please book:")
    page.get_by_role("button", name="Invite to book").click()
    page.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    page.get_by_label("Location").select_option(label=practice.location.name)
    page.get_by_role("button", name="Add link").click()
    expect(page.get_by_label("Message")).to_have_value("Please book: {{Appointment Link}}")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent.")).to_be_visible()
    assert Message.objects.get().booking_link is not None


def test_a_second_member_of_staff_never_sees_the_first_practices_patients(page, practice):
    other = UserFactory(username="elsewhere")
    other.set_password(PASSWORD)
    other.save()
    StaffMembershipFactory(user=other)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("elsewhere")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/messages/new/")
    page.get_by_label("Patient").fill("Oliver")
    expect(page.get_by_text("No patients found")).to_be_visible()
