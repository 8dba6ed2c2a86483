"""A member of staff who mistypes their password too often sees a page that says what to do."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import axe_violations
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_five_wrong_passwords_lock_sign_in_and_the_page_says_what_to_do(axe_page, practice):
    page = axe_page
    page.goto("/accounts/login/")
    for attempt in range(5):
        page.get_by_label("Username").fill(practice.user.username)
        page.get_by_label("Password").fill(f"not-my-password-{attempt}")
        page.get_by_role("button", name="Sign in").click()
        if attempt < 4:
            expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()

    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed sign-ins")
    expect(page.get_by_text("Try again in 15 minutes, or ask an administrator to unlock your account.")).to_be_visible()
    expect(page.get_by_role("link", name="reset your password")).to_be_visible()
    if os.environ.get("SCREENSHOT_DIR"):  # to look at by hand: SCREENSHOT_DIR=/tmp pytest ...
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "sign-in-locked.png"), full_page=True)
    assert axe_violations(page) == []

    # The right password is refused too, without a word about whether it was right.
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(practice.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed sign-ins")
