"""The header in Chromium: the product's name on its own pages, and the NHS primary care logo on a
patient page only where the practice uses the NHS identity, read out as one image and fitting a
phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, axe_violations, sign_in
from tests.scenarios import make_link

pytestmark = pytest.mark.django_db(transaction=True)

NHS = re.compile("NHS")


def test_the_staff_home_page_names_the_product_without_the_nhs_logo(page, practice):
    sign_in(page, practice)
    banner = page.get_by_role("banner")
    expect(banner.get_by_role("link", name="Self-booking links homepage")).to_be_visible()
    expect(banner.get_by_role("img", name=NHS)).to_have_count(0)


def test_a_practice_that_uses_the_nhs_identity_shows_the_logo_on_a_phone(axe_page, practice):
    practice.organisation.uses_nhs_identity = True
    practice.organisation.save()
    page = axe_page
    page.set_viewport_size(PHONE)
    page.goto(make_link(practice).get_absolute_url())
    banner = page.get_by_role("banner")
    expect(banner.get_by_text(practice.organisation.name)).to_be_visible()
    expect(banner.get_by_role("img", name="NHS: Providing NHS services")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []


def test_a_practice_that_does_not_shows_its_name_alone(page, practice):
    page.goto(make_link(practice).get_absolute_url())
    banner = page.get_by_role("banner")
    expect(banner.get_by_text(practice.organisation.name)).to_be_visible()
    expect(banner.get_by_role("img")).to_have_count(0)
