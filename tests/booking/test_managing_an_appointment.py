"""The pages after booking: the appointment with Change and Cancel, cancelling, changing.

The rules themselves are tested in test_appointment_changes.py and their races in
test_change_races.py; these tests are about what each page shows and does with each answer.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

import booking.views.manage
from booking.exceptions import BookingBusy
from booking.models import Appointment, AppointmentType, AuditEvent, BookingLink, Slot
from booking.references import encode_reference
from tests.factories import BookingLinkFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}


def url(link: BookingLink, name: str = "") -> str:
    return f"/b/{link.token}" + (f"/{name}" if name else "")


def text(response) -> str:
    content = response.content.decode()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content)).strip())


def free_slots(practice) -> list[Slot]:
    return list(Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start"))


def ref(slot: Slot) -> str:
    return encode_reference(slot.pk, namespace="slot")


def booked(link: BookingLink) -> list[Appointment]:
    return list(Appointment.objects.filter(booking_link=link, status="booked"))


@pytest.fixture
def patient(client, link, practice) -> Client:
    """The patient's browser, the date of birth given and the first free time booked."""
    assert client.post(url(link), DOB).status_code == 302
    assert client.post(url(link, "confirm"), {"slot": ref(free_slots(practice)[0])}).status_code == 302
    return client


def current(link: BookingLink) -> Appointment:
    return Appointment.objects.select_related("slot").get(booking_link=link, status="booked")


def cancel_form(appointment: Appointment, **fields: str) -> dict[str, str]:
    return {"appointment": appointment.reference, **fields}


def change_form(appointment: Appointment, slot: Slot) -> dict[str, str]:
    return {"appointment": appointment.reference, "slot": ref(slot)}


class TestTheAppointment:
    def test_the_booked_page_offers_change_and_cancel(self, patient, link):
        response = patient.get(url(link, "booked"))
        page = response.content.decode()
        assert response.status_code == 200
        assert f'href="{url(link, "change")}">Change appointment</a>' in page
        assert f'href="{url(link, "cancel")}">Cancel appointment</a>' in page

    def test_reopening_the_link_lands_on_it_after_the_date_of_birth(self, patient, link):
        fresh = Client()
        response = fresh.post(url(link), DOB, follow=True)
        assert response.redirect_chain == [(url(link, "booked"), 302)]
        assert "Change appointment" in text(response)

    def test_inside_the_cut_off_it_says_why_and_gives_the_phone(self, patient, link, practice):
        with time_machine.travel(current(link).slot.start - timedelta(hours=23), tick=False):
            patient.post(url(link), DOB)  # the date of birth lapses after 30 minutes idle
            response = patient.get(url(link, "booked"))
        page = text(response)
        assert "Change appointment" not in page
        assert "Cancel appointment" not in page
        assert "less than 24 hours before your appointment" in page
        assert practice.organisation.phone_for_display in page

    def test_a_type_changed_by_phone_only_says_so(self, patient, link, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(online_changes_until_hours=None)
        page = text(patient.get(url(link, "booked")))
        assert "can't be changed or cancelled online" in page
        assert "Cancel appointment" not in page

    def test_once_the_changes_are_used_only_cancel_is_offered(self, patient, link, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(max_changes=0)
        page = text(patient.get(url(link, "booked")))
        assert "Change appointment" not in page
        assert "Cancel appointment" in page
        assert "the most that can be done online" in page
        assert patient.get(url(link, "change")).status_code == 403

    def test_a_withdrawn_type_can_be_cancelled_but_not_changed(self, patient, link, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(self_bookable=False)
        page = text(patient.get(url(link, "booked")))
        assert "Change appointment" not in page
        assert "Cancel appointment" in page
        assert "can no longer be moved to another time online" in page

    def test_the_pages_need_the_date_of_birth(self, patient, link):
        for name in ("cancel", "cancelled", "change", "change/confirm", "changed"):
            assert Client().get(url(link, name))["Location"] == url(link), name

    def test_before_booking_they_go_to_the_times(self, client, link):
        assert client.post(url(link), DOB).status_code == 302
        for name in ("cancel", "change", "changed"):
            assert client.get(url(link, name))["Location"] == url(link, "times"), name


class TestCancelling:
    def test_the_page_shows_the_appointment_and_asks_why(self, patient, link):
        response = patient.get(url(link, "cancel"))
        assert response.status_code == 200
        page = text(response)
        assert "Why are you cancelling?" in page
        for reason in ("I no longer need it", "I can't make this time", "I've booked another way", "Other reason"):
            assert reason in page
        assert current(link).reference in page
        assert '<button class="nhsuk-button nhsuk-button--warning" type="submit">Cancel appointment</button>' in (
            response.content.decode()
        )

    def test_cancelling_frees_the_time_and_says_so_with_the_phone(self, patient, link, practice):
        appointment = current(link)
        response = patient.post(url(link, "cancel"), cancel_form(appointment, reason="cannot_make_time"), follow=True)
        assert response.redirect_chain == [(url(link, "cancelled"), 302)]
        page = text(response)
        assert "Appointment cancelled" in page
        assert practice.organisation.phone_for_display in page
        appointment.refresh_from_db()
        assert (appointment.status, appointment.cancellation_reason) == ("cancelled", "cannot_make_time")
        assert Slot.objects.get(pk=appointment.slot_id).status == "free"

    def test_other_reason_needs_words_and_keeps_them(self, patient, link):
        appointment = current(link)
        response = patient.post(url(link, "cancel"), cancel_form(appointment, reason="other", detail=""))
        assert response.status_code == 400
        assert "Enter the reason you are cancelling" in text(response)
        assert booked(link) == [appointment]
        response = patient.post(url(link, "cancel"), cancel_form(appointment, reason="other", detail="Moving away"))
        assert response.status_code == 302
        appointment.refresh_from_db()
        assert appointment.cancellation_detail == "Moving away"

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({}, "Select why you are cancelling"),
            ({"reason": "booked_in_error"}, "Select why you are cancelling"),
            ({"reason": "nonsense"}, "Select why you are cancelling"),
            ({"reason": "other", "detail": "x" * 201}, "200 characters or fewer"),
            ({"reason": "other", "detail": "a\x00b"}, "Null characters"),
        ],
    )
    def test_bad_answers_are_form_errors_that_cancel_nothing(self, patient, link, fields, message):
        appointment = current(link)
        response = patient.post(url(link, "cancel"), cancel_form(appointment, **fields))
        assert response.status_code == 400
        assert message in text(response)
        assert booked(link) == [appointment]

    def test_a_double_submit_cancels_once_and_shows_it_cancelled(self, patient, link):
        form = cancel_form(current(link), reason="no_longer_needed")
        assert patient.post(url(link, "cancel"), form)["Location"] == url(link, "cancelled")
        assert patient.post(url(link, "cancel"), form)["Location"] == url(link, "cancelled")
        assert AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).count() == 1

    def test_reopening_the_link_after_cancelling_says_cancelled_with_410(self, patient, link, practice):
        patient.post(url(link, "cancel"), cancel_form(current(link), reason="no_longer_needed"))
        fresh = Client()
        response = fresh.post(url(link), DOB, follow=True)
        assert response.status_code == 410
        page = text(response)
        assert "Appointment cancelled" in page
        assert practice.organisation.phone_for_display in page
        assert fresh.get(url(link, "cancel")).status_code == 410
        assert fresh.get(url(link, "change")).status_code == 410

    def test_a_post_after_the_cut_off_is_refused_with_403(self, patient, link, practice):
        appointment = current(link)
        form = cancel_form(appointment, reason="no_longer_needed")
        with time_machine.travel(appointment.slot.start - timedelta(hours=2), tick=False):
            patient.post(url(link), DOB)
            response = patient.post(url(link, "cancel"), form)
            assert patient.get(url(link, "cancel")).status_code == 403
        assert response.status_code == 403
        assert "less than 24 hours before" in text(response)
        assert practice.organisation.phone_for_display in text(response)
        assert booked(link) == [appointment]

    def test_a_post_after_staff_revoked_the_link_shows_the_revoked_page(self, patient, link):
        appointment = current(link)
        BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.REVOKED)
        response = patient.post(url(link, "cancel"), cancel_form(appointment, reason="no_longer_needed"))
        assert response.status_code == 410
        assert "This link has been cancelled" in text(response)
        assert booked(link) == [appointment]

    def test_a_post_after_the_link_expired_still_cancels(self, patient, link):
        now = timezone.now()
        BookingLink.objects.filter(pk=link.pk).update(created_at=now - timedelta(days=2), expires_at=now)
        response = patient.post(url(link, "cancel"), cancel_form(current(link), reason="no_longer_needed"))
        assert response["Location"] == url(link, "cancelled")
        assert booked(link) == []

    @pytest.mark.parametrize("reference", ["", "nonsense", "A" * 40])
    def test_a_forged_appointment_reference_is_400_and_cancels_nothing(self, patient, link, reference):
        response = patient.post(url(link, "cancel"), {"appointment": reference, "reason": "no_longer_needed"})
        assert response.status_code == 400
        assert "Appointment not found" in text(response)
        assert len(booked(link)) == 1

    def test_another_links_appointment_is_400(self, patient, link, practice):
        other = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        client = Client()
        client.post(url(other), DOB)
        client.post(url(other, "confirm"), {"slot": ref(free_slots(practice)[0])})
        response = patient.post(url(link, "cancel"), cancel_form(current(other), reason="no_longer_needed"))
        assert response.status_code == 400
        assert len(booked(other)) == 1

    def test_a_busy_database_asks_to_try_again_with_503(self, patient, link, monkeypatch):
        def busy(**kwargs):
            raise BookingBusy()

        monkeypatch.setattr(booking.views.manage, "appointment_cancel_by_patient", busy)
        response = patient.post(url(link, "cancel"), cancel_form(current(link), reason="no_longer_needed"))
        assert response.status_code == 503
        assert response["Retry-After"] == "5"

    def test_a_practice_cancellation_reads_as_the_link_used(self, patient, link, practice):
        from booking.appointments import appointment_cancel

        appointment_cancel(appointment=current(link), actor=practice.user)
        assert patient.get(url(link, "cancelled")).status_code == 410
        assert "This link has already been used" in text(patient.get(url(link, "cancel")))


class TestChanging:
    def test_the_times_show_the_current_one_as_current_not_offered(self, patient, link):
        appointment = current(link)
        response = patient.get(url(link, "change"))
        assert response.status_code == 200
        page = response.content.decode()
        assert "Choose a new time" in page
        assert "Your current appointment" in page
        assert ref(appointment.slot) not in page
        assert page.count('type="radio"') == 2
        assert f'action="{url(link, "change/confirm")}"' in page

    def test_the_confirm_page_shows_old_and_new_side_by_side(self, patient, link, practice):
        target = free_slots(practice)[-1]
        response = patient.get(url(link, "change/confirm"), {"slot": ref(target)})
        assert response.status_code == 200
        page = text(response)
        assert page.index("Current appointment") < page.index("New appointment")
        assert '<button class="nhsuk-button" type="submit">Change appointment</button>' in response.content.decode()

    def test_continuing_without_a_time_or_with_one_gone_shows_the_times(self, patient, link, practice):
        assert "Choose a time" in text(patient.get(url(link, "change/confirm")))
        gone = free_slots(practice)[0]
        Slot.objects.filter(pk=gone.pk).update(status="blocked")
        assert patient.get(url(link, "change/confirm"), {"slot": ref(gone)}).status_code == 409
        assert patient.get(url(link, "change/confirm"), {"slot": ref(current(link).slot)}).status_code == 409

    def test_changing_moves_the_appointment_and_says_changed(self, patient, link, practice):
        old = current(link)
        target = free_slots(practice)[-1]
        response = patient.post(url(link, "change/confirm"), change_form(old, target), follow=True)
        assert response.redirect_chain == [(url(link, "changed"), 302)]
        assert "Appointment changed" in text(response)
        new = current(link)
        assert (new.slot_id, new.replaces_id) == (target.pk, old.pk)
        assert new.reference in text(response)
        assert patient.get(url(link, "booked")).status_code == 200

    def test_a_time_just_taken_shows_the_times_again_with_409_and_changes_nothing(self, patient, link, practice):
        old = current(link)
        target = free_slots(practice)[0]
        Slot.objects.filter(pk=target.pk).update(status="booked")
        response = patient.post(url(link, "change/confirm"), change_form(old, target))
        assert response.status_code == 409
        page = text(response)
        assert "Sorry, that time has just been taken" in page
        assert "Choose a new time" in page
        assert booked(link) == [old]

    def test_a_double_submit_changes_once_and_shows_the_change(self, patient, link, practice):
        form = change_form(current(link), free_slots(practice)[-1])
        assert patient.post(url(link, "change/confirm"), form)["Location"] == url(link, "changed")
        assert patient.post(url(link, "change/confirm"), form)["Location"] == url(link, "changed")
        assert AuditEvent.objects.filter(action=AuditEvent.Action.APPOINTMENT_CHANGED).count() == 1
        assert len(booked(link)) == 1

    def test_a_second_tab_on_the_old_appointment_gets_already_changed_409(self, patient, link, practice):
        old = current(link)
        first, second = free_slots(practice)
        patient.post(url(link, "change/confirm"), change_form(old, first))
        for response in (
            patient.post(url(link, "change/confirm"), change_form(old, second)),
            patient.post(url(link, "cancel"), cancel_form(old, reason="no_longer_needed")),
        ):
            assert response.status_code == 409
            assert "This appointment has already been changed" in text(response)
        assert [appointment.slot_id for appointment in booked(link)] == [first.pk]

    def test_a_change_after_a_cancel_in_another_tab_gets_already_cancelled_409(self, patient, link, practice):
        old = current(link)
        patient.post(url(link, "cancel"), cancel_form(old, reason="no_longer_needed"))
        response = patient.post(url(link, "change/confirm"), change_form(old, free_slots(practice)[-1]))
        assert response.status_code == 409
        assert "This appointment has already been cancelled" in text(response)
        assert booked(link) == []

    @pytest.mark.parametrize("slot", ["", "nonsense", "A" * 40])
    def test_a_forged_slot_reference_is_400(self, patient, link, slot):
        old = current(link)
        response = patient.post(url(link, "change/confirm"), {"appointment": old.reference, "slot": slot})
        assert response.status_code == 400
        assert "That time cannot be booked" in text(response)
        assert booked(link) == [old]

    def test_a_slot_the_link_never_offered_is_400(self, patient, link, other_practice):
        old = current(link)
        elsewhere = Slot.objects.filter(appointment_type=other_practice.appointment_type).first()
        response = patient.post(url(link, "change/confirm"), change_form(old, elsewhere))
        assert response.status_code == 400
        assert booked(link) == [old]

    def test_a_forged_appointment_reference_is_400(self, patient, link, practice):
        response = patient.post(
            url(link, "change/confirm"), {"appointment": "nonsense", "slot": ref(free_slots(practice)[0])}
        )
        assert response.status_code == 400
        assert "Appointment not found" in text(response)

    def test_a_post_after_the_cut_off_is_refused_with_403(self, patient, link, practice):
        old = current(link)
        form = change_form(old, free_slots(practice)[-1])
        with time_machine.travel(old.slot.start - timedelta(hours=23, minutes=59), tick=False):
            patient.post(url(link), DOB)
            response = patient.post(url(link, "change/confirm"), form)
        assert response.status_code == 403
        assert "less than 24 hours before" in text(response)
        assert booked(link) == [old]

    def test_a_post_after_the_link_expired_still_changes(self, patient, link, practice):
        now = timezone.now()
        BookingLink.objects.filter(pk=link.pk).update(created_at=now - timedelta(days=2), expires_at=now)
        response = patient.post(url(link, "change/confirm"), change_form(current(link), free_slots(practice)[-1]))
        assert response["Location"] == url(link, "changed")

    def test_a_post_after_staff_revoked_the_link_is_410(self, patient, link, practice):
        old = current(link)
        BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.REVOKED)
        response = patient.post(url(link, "change/confirm"), change_form(old, free_slots(practice)[-1]))
        assert response.status_code == 410
        assert booked(link) == [old]

    def test_a_busy_database_asks_to_try_again_with_503(self, patient, link, practice, monkeypatch):
        def busy(**kwargs):
            raise BookingBusy()

        monkeypatch.setattr(booking.views.manage, "appointment_change", busy)
        response = patient.post(url(link, "change/confirm"), change_form(current(link), free_slots(practice)[-1]))
        assert response.status_code == 503
        assert "Nothing has changed yet" in text(response)

    def test_the_changed_page_before_any_change_goes_to_the_booked_page(self, patient, link):
        assert patient.get(url(link, "changed"))["Location"] == url(link, "booked")
