"""Which times a link offers: one rule, `Slot.objects.offered`, read by every page that needs it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from booking.appointments import appointment_book
from booking.exceptions import SlotNotAllowed, SlotTaken
from booking.models import AppointmentType, Slot
from booking.slots import slot_count_available, slot_find_available, slot_list_available, slot_times_available
from tests.factories import (
    AppointmentTypeFactory,
    LocationFactory,
    PractitionerFactory,
    SlotFactory,
)

pytestmark = pytest.mark.django_db


def slot(practice, *, starts_in: timedelta, **fields) -> Slot:
    start = timezone.now().replace(second=0, microsecond=0) + starts_in
    return SlotFactory(
        **{
            "practitioner": practice.practitioner,
            "location": practice.location,
            "appointment_type": practice.appointment_type,
            "start": start,
            "end": start + timedelta(minutes=10),
            **fields,
        }
    )


def offered_ids(link, **kwargs) -> set[int]:
    return set(Slot.objects.offered_by(link, now=timezone.now(), **kwargs).values_list("pk", flat=True))


class TestTheRule:
    def test_free_slots_of_the_links_type_and_location_inside_the_window_are_offered(self, practice, link):
        inside = slot(practice, starts_in=timedelta(days=5))
        assert inside.pk in offered_ids(link)

    @pytest.mark.parametrize(
        "outside",
        [
            {"status": Slot.Status.BOOKED},
            {"status": Slot.Status.BLOCKED},
            {"starts_in": timedelta(minutes=30)},  # inside the type's one hour of notice
            {"starts_in": timedelta(days=40)},  # beyond its 28 days ahead
        ],
    )
    def test_taken_blocked_too_soon_and_too_far_ahead_slots_are_not(self, practice, link, outside):
        starts_in = outside.pop("starts_in", timedelta(days=5))
        assert slot(practice, starts_in=starts_in, **outside).pk not in offered_ids(link)

    def test_another_type_or_location_is_not_offered(self, practice, link):
        other_type = AppointmentTypeFactory(organisation=practice.organisation, minimum_notice_hours=1)
        other_location = LocationFactory(organisation=practice.organisation)
        assert slot(practice, starts_in=timedelta(days=5), appointment_type=other_type).pk not in offered_ids(link)
        assert slot(practice, starts_in=timedelta(days=6), location=other_location).pk not in offered_ids(link)

    def test_a_practitioner_on_the_link_narrows_it_to_theirs(self, practice, link):
        other = PractitionerFactory(organisation=practice.organisation)
        theirs = slot(practice, starts_in=timedelta(days=5))
        someone_elses = slot(practice, starts_in=timedelta(days=5), practitioner=other)
        assert {theirs.pk, someone_elses.pk} <= offered_ids(link)
        link.practitioner = practice.practitioner
        assert theirs.pk in offered_ids(link)
        assert someone_elses.pk not in offered_ids(link)

    def test_taken_too_keeps_booked_and_blocked_ones_but_nothing_outside(self, practice, link):
        booked = slot(practice, starts_in=timedelta(days=5), status=Slot.Status.BOOKED)
        too_far = slot(practice, starts_in=timedelta(days=40))
        assert booked.pk in offered_ids(link, taken_too=True)
        assert too_far.pk not in offered_ids(link, taken_too=True)

    def test_the_settings_form_asks_the_same_as_the_link(self, practice, link):
        by_settings = Slot.objects.offered(
            appointment_type=practice.appointment_type,
            location_id=practice.location.pk,
            practitioner_id=None,
            now=timezone.now(),
        )
        assert set(by_settings.values_list("pk", flat=True)) == offered_ids(link)


class TestEveryReaderAgrees:
    """The times page, the builder's free count, the confirm page and booking all read the one rule."""

    def test_the_count_the_list_and_the_times_page_are_the_same_times(self, practice, link):
        slot(practice, starts_in=timedelta(days=5))
        slot(practice, starts_in=timedelta(days=6), status=Slot.Status.BLOCKED)
        slot(practice, starts_in=timedelta(days=40))
        listed = [s.pk for s in slot_list_available(link=link)]
        shown = [t.pk for t in slot_times_available(link=link)]
        count = slot_count_available(appointment_type=practice.appointment_type, location=practice.location)
        assert listed == shown
        assert count == len(listed) == len(offered_ids(link)) == 4  # make_practice's three and the new one

    def test_the_count_for_a_practitioner_counts_only_theirs(self, practice):
        other = PractitionerFactory(organisation=practice.organisation)
        slot(practice, starts_in=timedelta(days=5), practitioner=other)
        everyone = slot_count_available(appointment_type=practice.appointment_type, location=practice.location)
        theirs = slot_count_available(
            appointment_type=practice.appointment_type, location=practice.location, practitioner=other
        )
        assert (everyone, theirs) == (4, 1)

    def test_the_confirm_page_finds_only_offered_times(self, practice, link):
        offered = slot(practice, starts_in=timedelta(days=5))
        too_soon = slot(practice, starts_in=timedelta(minutes=30))
        assert slot_find_available(link=link, slot_id=offered.pk) == offered
        assert slot_find_available(link=link, slot_id=too_soon.pk) is None

    def test_booking_claims_only_an_offered_time(self, practice, link):
        too_far = slot(practice, starts_in=timedelta(days=40))
        with pytest.raises(SlotNotAllowed):
            appointment_book(link_id=link.pk, slot_id=too_far.pk)
        taken = slot(practice, starts_in=timedelta(days=5), status=Slot.Status.BOOKED)
        with pytest.raises(SlotTaken):
            appointment_book(link_id=link.pk, slot_id=taken.pk)
        offered = slot(practice, starts_in=timedelta(days=6))
        assert appointment_book(link_id=link.pk, slot_id=offered.pk).slot == offered


class TestTheBookingWindow:
    def test_it_runs_from_the_minimum_notice_to_the_days_ahead(self):
        appointment_type = AppointmentType(minimum_notice_hours=2, maximum_days_ahead=28)
        now = timezone.now()
        assert appointment_type.booking_window(now=now) == (now + timedelta(hours=2), now + timedelta(days=28))
