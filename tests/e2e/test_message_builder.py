"""The builder script's Add link and Remove link: the same as messaging/tokens.py, and usable by keyboard.

The script runs in Debian's Chromium; each case of tests/messaging/link_token_cases.json is
evaluated with window.MessageBuilder and compared with the table, and generated bodies are
compared with the Python functions directly.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect

from booking.references import encode_reference
from messaging.models import Message
from messaging.tokens import link_token_add, link_token_count, link_token_remove
from tests.e2e.conftest import sign_in
from tests.messaging.message_bodies import LINK_TOKEN_CASES, bodies_and_cursors

pytestmark = pytest.mark.django_db(transaction=True)

# Hand-typed spellings the sender accepts, each tried in the browser with and without the script.
SPELLINGS = ["<<Appointment Link>>", "{{AppointmentLink}}", "{{ appointment\u00a0link }}"]

EVALUATE_CASES = """(cases) => cases.map(([body, cursor]) => [
  window.MessageBuilder.linkTokenAdd(body, cursor),
  window.MessageBuilder.linkTokenRemove(body),
  window.MessageBuilder.linkTokenCount(body),
])"""


def open_builder(page, practice):
    sign_in(page, practice)
    page.goto(f"/messages/new/?patient={encode_reference(practice.patient.pk, namespace='patient')}")
    expect(page.get_by_label("Message")).to_be_visible()


def utf16_cursor(body: str, cursor: int | None) -> int | None:
    """A cursor in characters as the textarea counts it: UTF-16 units (an emoji is two)."""
    if cursor is None or cursor < 0:
        return cursor
    inside = min(cursor, len(body))
    return len(body[:inside].encode("utf-16-le")) // 2 + (cursor - inside)


def run_script(page, cases: list[tuple[str, int | None]]) -> list[tuple[str, str, int]]:
    results = page.evaluate(EVALUATE_CASES, [[body, utf16_cursor(body, cursor)] for body, cursor in cases])
    return [tuple(result) for result in results]


def test_the_script_gives_the_shared_tables_answers(page, practice):
    open_builder(page, practice)
    got = run_script(page, [(case["body"], case["cursor"]) for case in LINK_TOKEN_CASES])
    for case, (added, removed, count) in zip(LINK_TOKEN_CASES, got, strict=True):
        assert (added, removed, count) == (case["added"], case["removed"], case["count"]), case["name"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(bodies_and_cursors(), min_size=1, max_size=40))
def test_the_script_agrees_with_python_on_any_body(page, practice, cases):
    # Only the page is used across examples, and only to evaluate pure functions.
    if page.url == "about:blank":
        open_builder(page, practice)
    expected = [
        (link_token_add(body, at=cursor), link_token_remove(body), link_token_count(body)) for body, cursor in cases
    ]
    assert run_script(page, cases) == expected


def choose_link(page):
    dialog = page.get_by_role("dialog", name="Invite to book")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    dialog.get_by_label("Location").select_option(label="Riverside Surgery")
    expect(dialog.get_by_text("3 free times")).to_be_visible()
    return dialog


def add_link_by_keyboard(page):
    """Invite to book from the message box, then Add link, with the keyboard."""
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Invite to book")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = choose_link(page)
    dialog.get_by_label("Link expiry").focus()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Add link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("Message")).to_be_focused()
    expect(page.get_by_role("heading", name="Appointment link")).to_be_visible()


def test_add_and_remove_link_by_keyboard(page, practice):
    open_builder(page, practice)
    message_box = page.get_by_label("Message")
    message_box.focus()
    page.keyboard.type("Book here:")
    page.keyboard.press("Enter")
    page.keyboard.type("Thanks")
    page.keyboard.press("Control+Home")
    page.keyboard.press("End")

    # At the cursor, with a space before it; the caret after the token, so typing goes on there.
    add_link_by_keyboard(page)
    expect(message_box).to_have_value("Book here: {{Appointment Link}}\nThanks")
    page.keyboard.type(" today")
    expect(message_box).to_have_value("Book here: {{Appointment Link}} today\nThanks")

    # Remove link, from the summary, by keyboard: the token goes and its spaces become one.
    page.get_by_role("button", name="Edit link").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Remove link")).to_be_focused()
    page.keyboard.press("Space")
    expect(message_box).to_have_value("Book here: today\nThanks")
    expect(message_box).to_be_focused()
    expect(page.get_by_role("heading", name="Appointment link")).to_be_hidden()

    page.keyboard.press("Control+End")
    add_link_by_keyboard(page)
    expect(message_box).to_have_value("Book here: today\nThanks {{Appointment Link}}")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent.")).to_be_visible()
    assert Message.objects.get().body.count("/b/") == 1


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_typed_token_in_any_spelling_with_the_script(page, practice, spelling):
    open_builder(page, practice)
    message_box = page.get_by_label("Message")
    message_box.fill(f"Please book: {spelling}")
    page.get_by_role("button", name="Invite to book").click()
    choose_link(page).get_by_role("button", name="Add link").click()
    expect(message_box).to_have_value(f"Please book: {spelling}")  # no second token

    page.get_by_role("button", name="Remove link").click()
    expect(message_box).to_have_value("Please book:")
    page.get_by_role("button", name="Invite to book").click()
    choose_link(page).get_by_role("button", name="Add link").click()
    expect(message_box).to_have_value("Please book: {{Appointment Link}}")
    # The summary comes by htmx and moves the Send button down: wait for it before clicking.
    expect(page.get_by_role("heading", name="Appointment link")).to_be_visible()
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent.")).to_be_visible()
    assert re.fullmatch(r"Please book: http\S+/b/\S{22}", Message.objects.get().body)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_typed_token_in_any_spelling_without_javascript(page_without_javascript, practice, spelling):
    page = page_without_javascript
    open_builder(page, practice)
    message_box = page.get_by_label("Message")
    message_box.fill(f"Please book: {spelling}")
    page.get_by_role("button", name="Invite to book").click()
    choose_link_without_javascript(page)
    page.get_by_role("button", name="Add link").click()
    expect(message_box).to_have_value(f"Please book: {spelling}")  # no second token

    page.get_by_role("button", name="Remove link").click()
    expect(message_box).to_have_value("Please book:")
    page.get_by_role("button", name="Invite to book").click()
    choose_link_without_javascript(page)
    page.get_by_role("button", name="Add link").click()
    expect(message_box).to_have_value("Please book: {{Appointment Link}}")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent.")).to_be_visible()
    assert re.fullmatch(r"Please book: http\S+/b/\S{22}", Message.objects.get().body)


def choose_link_without_javascript(page):
    page.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    page.get_by_label("Location").select_option(label="Riverside Surgery")
