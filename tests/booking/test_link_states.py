"""What a patient opening a link gets (`LinkState`), and the date of birth under both limits."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from booking import throttle
from booking.appointments import appointment_book
from booking.exceptions import LinkNotBookable
from booking.links import DobCheck, DobResult, LinkState, booking_link_check_dob, booking_link_patient_state
from booking.models import Appointment, BookingLink, Slot
from booking.references import encode_reference
from tests.factories import BookingLinkFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}  # PatientFactory's date of birth


@pytest.fixture
def shared_link(practice, hub):
    """A link the practice sent for the hub's smear test, under the hub's agreement."""
    return BookingLinkFactory(patient=practice.patient, appointment_type=hub.appointment_type, location=hub.location)


def end(agreement) -> None:
    agreement.ended_at = timezone.now()
    agreement.save()


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


def hub_slot(hub) -> Slot:
    return Slot.objects.filter(appointment_type=hub.appointment_type, status="free").first()


class TestLinkState:
    def test_no_link_is_not_found(self):
        assert booking_link_patient_state(link=None) is LinkState.NOT_FOUND

    def test_a_usable_link_is_active(self, link):
        assert booking_link_patient_state(link=link) is LinkState.ACTIVE

    def test_a_shared_link_is_active_while_its_agreement_is_in_force(self, shared_link):
        assert booking_link_patient_state(link=shared_link) is LinkState.ACTIVE

    def test_a_shared_link_whose_agreement_ended_has_a_state_of_its_own(self, shared_link, hub):
        end(hub.agreement)
        assert booking_link_patient_state(link=shared_link) is LinkState.AGREEMENT_ENDED

    def test_a_booked_shared_link_stays_booked_after_the_agreement_ends(self, shared_link, hub):
        BookingLink.objects.filter(pk=shared_link.pk).update(status=BookingLink.Status.BOOKED)
        shared_link.refresh_from_db()
        end(hub.agreement)
        assert booking_link_patient_state(link=shared_link) is LinkState.BOOKED

    def test_an_own_link_asks_nothing_about_agreements(self, link, django_assert_num_queries):
        with django_assert_num_queries(0):
            booking_link_patient_state(link=link)

    def test_a_state_compares_equal_to_its_old_string(self):
        assert LinkState.REVOKED == "revoked"


class TestBookingSaysWhy:
    def test_a_link_that_vanished_is_not_found(self, practice):
        with pytest.raises(LinkNotBookable) as error:
            appointment_book(link_id=0, slot_id=Slot.objects.first().pk)
        assert error.value.state is LinkState.NOT_FOUND

    def test_an_ended_agreement_is_agreement_ended_not_revoked(self, shared_link, hub):
        end(hub.agreement)
        with pytest.raises(LinkNotBookable) as error:
            appointment_book(link_id=shared_link.pk, slot_id=hub_slot(hub).pk)
        assert error.value.state is LinkState.AGREEMENT_ENDED
        assert not Appointment.objects.exists()


class TestAgreementEndedPage:
    def test_opening_the_link_says_what_to_do_next_with_410_and_the_practice_phone(self, client, shared_link, hub):
        end(hub.agreement)
        response = client.get(f"/b/{shared_link.token}")
        assert response.status_code == 410
        page = text(response)
        assert "You can no longer book this appointment online" in page
        assert shared_link.organisation.phone_for_display in page
        assert shared_link.patient.first_name not in page
        assert "no-store" in response["Cache-Control"]
        assert "<script" not in response.content.decode()

    def test_a_patient_part_way_through_gets_it_when_they_book(self, client, shared_link, hub):
        assert client.post(f"/b/{shared_link.token}", DOB).status_code == 302
        slot = encode_reference(hub_slot(hub).pk, namespace="slot")
        assert client.get(f"/b/{shared_link.token}/confirm", {"slot": slot}).status_code == 200
        end(hub.agreement)
        response = client.post(f"/b/{shared_link.token}/confirm", {"slot": slot})
        assert response.status_code == 410
        assert "You can no longer book this appointment online" in text(response)
        assert not Appointment.objects.exists()

    def test_a_date_of_birth_is_not_asked_for(self, client, shared_link, hub):
        end(hub.agreement)
        response = client.post(f"/b/{shared_link.token}", DOB)
        assert response.status_code == 410
        assert BookingLink.objects.get(pk=shared_link.pk).failed_attempts == 0


class TestCheckDateOfBirth:
    def test_the_right_date_matches_with_every_try_left(self, link):
        assert booking_link_check_dob(link=link, date_of_birth=date(1980, 5, 17), ip_address="203.0.113.9") == (
            DobResult(DobCheck.MATCH, 5)
        )

    def test_a_wrong_date_counts_for_the_link_and_the_address(self, link):
        result = booking_link_check_dob(link=link, date_of_birth=date(1990, 1, 1), ip_address="203.0.113.9")
        assert result == DobResult(DobCheck.MISMATCH, 4)
        assert BookingLink.objects.get(pk=link.pk).failed_attempts == 1
        assert throttle.dob_failure_record(ip_address="203.0.113.9") == 2  # the check took the first ticket

    def test_the_fifth_wrong_date_locks(self, link):
        results = [
            booking_link_check_dob(link=link, date_of_birth=date(1990, 1, 1), ip_address="203.0.113.9")
            for _ in range(5)
        ]
        assert [r.check for r in results] == [DobCheck.MISMATCH] * 4 + [DobCheck.LOCKED]
        assert [r.tries_left for r in results] == [4, 3, 2, 1, 0]

    def test_an_address_out_of_tries_is_refused_before_the_date_is_compared(self, link):
        for _ in range(throttle.FAILED_TRIES_LIMIT):
            throttle.dob_failure_record(ip_address="203.0.113.9")
        result = booking_link_check_dob(link=link, date_of_birth=date(1980, 5, 17), ip_address="203.0.113.9")
        assert result == DobResult(DobCheck.TOO_MANY_TRIES, 0)
        assert BookingLink.objects.get(pk=link.pk).failed_attempts == 0

    def test_the_page_asks_it_once_and_shows_the_tries_left(self, link):
        response = Client().post(f"/b/{link.token}", {"day": "1", "month": "1", "year": "1990"})
        assert "You have 4 tries left" in text(response)


def test_a_link_past_its_expiry_is_expired(link):
    later = timezone.now() + timedelta(days=30)
    assert booking_link_patient_state(link=link, now=later) is LinkState.EXPIRED


def withdraw(appointment_type, **change) -> None:
    for name, value in change.items():
        setattr(appointment_type, name, value)
    appointment_type.save()


WITHDRAWALS = [
    pytest.param({"is_active": False}, id="deactivated"),
    pytest.param({"self_bookable": False}, id="not-self-bookable"),
]


class TestWithdrawnType:
    """A type the practice deactivates, or stops patients booking, cancels the links already sent."""

    @pytest.mark.parametrize("change", WITHDRAWALS)
    def test_the_link_state_says_so(self, link, practice, change):
        withdraw(practice.appointment_type, **change)
        link.refresh_from_db()
        assert booking_link_patient_state(link=link) is LinkState.TYPE_WITHDRAWN

    @pytest.mark.parametrize("change", WITHDRAWALS)
    def test_opening_the_link_says_it_was_cancelled_with_410_and_the_practice_phone(
        self, client, link, practice, change
    ):
        withdraw(practice.appointment_type, **change)
        response = client.get(f"/b/{link.token}")
        assert response.status_code == 410
        page = text(response)
        assert "This link has been cancelled by the practice" in page
        assert practice.organisation.phone_for_display in page
        assert practice.patient.first_name not in page

    @pytest.mark.parametrize("change", WITHDRAWALS)
    def test_a_patient_part_way_through_gets_it_when_they_book(self, client, link, practice, change):
        assert client.post(f"/b/{link.token}", DOB).status_code == 302
        slot = encode_reference(
            Slot.objects.filter(appointment_type=practice.appointment_type).first().pk, namespace="slot"
        )
        assert client.get(f"/b/{link.token}/confirm", {"slot": slot}).status_code == 200
        withdraw(practice.appointment_type, **change)
        response = client.post(f"/b/{link.token}/confirm", {"slot": slot})
        assert response.status_code == 410
        assert "This link has been cancelled by the practice" in text(response)
        assert not Appointment.objects.exists()
        assert not Slot.objects.filter(status="booked").exists()

    def test_booking_refuses_it_even_without_the_pages(self, link, practice):
        withdraw(practice.appointment_type, is_active=False)
        with pytest.raises(LinkNotBookable) as error:
            appointment_book(
                link_id=link.pk, slot_id=Slot.objects.filter(appointment_type=practice.appointment_type).first().pk
            )
        assert error.value.state is LinkState.TYPE_WITHDRAWN

    def test_a_booked_link_still_shows_its_appointment(self, link, practice):
        appointment_book(
            link_id=link.pk, slot_id=Slot.objects.filter(appointment_type=practice.appointment_type).first().pk
        )
        link.refresh_from_db()
        withdraw(practice.appointment_type, is_active=False)
        assert booking_link_patient_state(link=link) is LinkState.BOOKED
