"""Choosing a time in Chromium, found by accessible names: few times on one page; many times,
a day first and then a time; by keyboard, and without JavaScript.
"""

from __future__ import annotations

import re
from datetime import time

import pytest
from playwright.sync_api import expect

from booking.models import Appointment, Slot
from booking.slots import london_datetime
from tests.scenarios import clinic_times, make_clinic, make_clinic_link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_cache")]

HOURLY = clinic_times(time(8, 0), time(20, 0), minutes=60)


def date_of_birth_by_keyboard(page) -> None:
    dob = page.get_by_role("group", name="What is your date of birth?")
    dob.get_by_label("Day", exact=True).focus()
    page.keyboard.type("17")
    page.keyboard.press("Tab")
    page.keyboard.type("5")
    page.keyboard.press("Tab")
    page.keyboard.type("1980")
    page.keyboard.press("Enter")


def day_name(day) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def test_few_times_one_page_by_keyboard(page, live_server):
    clinic = make_clinic(clinicians=2, times=HOURLY[:3])  # 15 times
    page.goto(make_clinic_link(clinic).get_absolute_url())
    date_of_birth_by_keyboard(page)
    expect(page.get_by_role("group", name="Next available")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(15)
    expect(page.get_by_role("link", name=re.compile(r"\d+ times"))).to_have_count(0)
    page.get_by_role("radio").nth(4).focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Continue").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check your appointment")).to_be_visible()
    page.get_by_role("button", name="Book appointment").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    assert Appointment.objects.count() == 1


def test_many_times_a_day_then_a_time_by_keyboard_and_back(page, live_server):
    clinic = make_clinic(clinicians=3, times=HOURLY)
    link = make_clinic_link(clinic)
    day = clinic.days[2]
    page.goto(link.get_absolute_url())
    date_of_birth_by_keyboard(page)

    expect(page.get_by_role("group", name="Next available")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(1)
    day_link = page.get_by_role("link", name=f"{day_name(day)}, 12 times")
    day_link.focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(rf"/times\?day={day.isoformat()}$"))
    expect(page.get_by_role("heading", name=day_name(day), exact=True)).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(12)
    afternoon = page.get_by_role("group", name=f"Afternoon on {day_name(day)}")
    afternoon.get_by_role("radio", name="2pm").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")  # to the next group's radios: Tab leaves a radio group
    page.get_by_role("button", name="Continue").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Check your appointment")).to_be_visible()
    expect(page.get_by_text("The first available clinician")).to_be_visible()
    page.go_back()
    expect(page).to_have_url(re.compile(rf"/times\?day={day.isoformat()}$"))
    page.go_forward()
    page.get_by_role("button", name="Book appointment").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    appointment = Appointment.objects.select_related("slot__practitioner").get()
    assert appointment.slot.start == london_datetime(day, time(14, 0))
    expect(page.get_by_text(appointment.slot.practitioner.name)).to_be_visible()


def test_many_times_without_javascript_and_a_lost_race_returns_to_the_day(page_without_javascript, live_server):
    page = page_without_javascript
    clinic = make_clinic(clinicians=2, times=HOURLY)
    link = make_clinic_link(clinic)
    day = clinic.days[1]
    page.goto(link.get_absolute_url())
    date_of_birth_by_keyboard(page)
    page.get_by_role("link", name=f"{day_name(day)}, 12 times").click()
    page.get_by_role("radio", name="9am").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your appointment")).to_be_visible()
    # Both clinicians free at 9am are booked by others meanwhile.
    Slot.objects.filter(start=london_datetime(day, time(9, 0))).update(status=Slot.Status.BOOKED)
    page.get_by_role("button", name="Book appointment").click()

    expect(page.get_by_role("alert")).to_contain_text("Sorry, that time has just been taken")
    expect(page.get_by_role("heading", name=day_name(day), exact=True)).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(11)
    page.get_by_role("radio", name="10am").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    assert Appointment.objects.get().slot.start == london_datetime(day, time(10, 0))
