"""A patient declines a campaign's invitation: "I don't want this appointment", with an optional reason.

The race of a decline against a booking of the same link is in test_declining_races.py.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.links import booking_link_decline, booking_link_state
from booking.models import Appointment, AuditEvent, BookingLink, Slot
from booking.references import encode_reference
from messaging.models import Message
from tests.factories import SlotFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}
BUTTON = "I don't want this appointment"


def url(link: BookingLink, name: str = "") -> str:
    return f"/b/{link.token}" + (f"/{name}" if name else "")


def text(response) -> str:
    content = response.content.decode()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content)).strip())


def verified(client: Client, link: BookingLink) -> Client:
    assert client.post(url(link), DOB).status_code == 302
    return client


def first_free(practice) -> Slot:
    return Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()


# --- The choice beside the times ---------------------------------------------------------------


class TestTheTimesPageOffersIt:
    def test_an_invitation_offers_it_as_a_button_beside_the_few_times(self, client, declinable_link):
        page = verified(client, declinable_link).get(url(declinable_link, "times"))
        assert page.status_code == 200
        assert "Next available" in text(page)
        button = r'<button class="nhsuk-button nhsuk-button--secondary" type="submit">I don.t want this appointment'
        assert re.search(button, page.content.decode())
        assert f'action="/b/{declinable_link.token}/decline"' in page.content.decode()

    def test_the_days_first_layout_and_a_days_page_offer_it_too(self, client, declinable_link, practice):
        start = timezone.now().replace(microsecond=0, second=0) + timedelta(days=3)
        for i in range(40):
            SlotFactory(
                practitioner=practice.practitioner,
                location=practice.location,
                appointment_type=practice.appointment_type,
                start=start + timedelta(minutes=10 * i),
                end=start + timedelta(minutes=10 * (i + 1)),
            )
        verified(client, declinable_link)
        days = client.get(url(declinable_link, "times"))
        assert "Or choose a day" in text(days)
        assert BUTTON in text(days)
        day = timezone.localdate(start).isoformat()
        assert BUTTON in text(client.get(url(declinable_link, "times") + f"?day={day}"))

    def test_with_no_free_times_it_is_still_offered(self, client, declinable_link, practice):
        Slot.objects.filter(appointment_type=practice.appointment_type).update(status="blocked")
        page = verified(client, declinable_link).get(url(declinable_link, "times"))
        assert "There are no times available to book online" in text(page)
        assert BUTTON in text(page)

    def test_a_link_sent_by_hand_never_offers_it(self, client, link):
        page = verified(client, link).get(url(link, "times"))
        assert BUTTON not in text(page)
        # Nor is the page there for it: it goes back to the times.
        response = client.get(url(link, "decline"))
        assert response.status_code == 302
        assert response.url == url(link, "times")
        assert client.post(url(link, "decline"), {"reason": "do_not_want"}).status_code == 302
        link.refresh_from_db()
        assert link.status == BookingLink.Status.ACTIVE


# --- Declining ---------------------------------------------------------------------------------


class TestDeclining:
    def test_the_page_asks_why_optionally_and_changes_nothing(self, client, declinable_link):
        page = verified(client, declinable_link).get(url(declinable_link, "decline"))
        assert page.status_code == 200
        body = text(page)
        assert "Why don't you want this appointment? (optional)" in body
        for label in ["I've already had it or booked it elsewhere", "I don't want it", "Not now: maybe later"]:
            assert label in body
        assert "Other reason" in body
        assert BUTTON in body
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.ACTIVE
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.DECLINED).exists()

    def test_before_the_date_of_birth_it_asks_for_the_date_of_birth(self, client, declinable_link):
        response = client.post(url(declinable_link, "decline"), {"reason": "do_not_want"})
        assert response.status_code == 302
        assert response.url == url(declinable_link)
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.ACTIVE

    def test_declining_with_a_reason_ends_the_link_and_says_so(self, client, declinable_link, practice):
        verified(client, declinable_link)
        response = client.post(url(declinable_link, "decline"), {"reason": "had_elsewhere"})
        assert response.status_code == 200
        body = text(response)
        assert "You have declined this appointment" in body
        assert f"Call {practice.organisation.name} on" in body
        assert "if you change your mind" in body
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.DECLINED
        assert declinable_link.decline_reason == "had_elsewhere"
        assert declinable_link.declined_at is not None
        # Nothing will carry it again.
        assert declinable_link.token_encrypted == ""
        (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.DECLINED)
        assert event.booking_link_id == declinable_link.pk
        assert event.patient_id == practice.patient.pk
        assert event.detail == {"reason": "had_elsewhere"}

    def test_no_reason_is_needed(self, client, declinable_link):
        verified(client, declinable_link)
        assert client.post(url(declinable_link, "decline"), {}).status_code == 200
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.DECLINED
        assert declinable_link.decline_reason == ""

    def test_other_reason_keeps_the_patients_words_out_of_the_audit_trail(self, client, declinable_link):
        verified(client, declinable_link)
        words = "I am moving away next month"
        response = client.post(url(declinable_link, "decline"), {"reason": "other", "detail": f"  {words} "})
        assert response.status_code == 200
        declinable_link.refresh_from_db()
        assert (declinable_link.decline_reason, declinable_link.decline_detail) == ("other", words)
        (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.DECLINED)
        assert words not in str(event.detail)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"reason": "other", "detail": "x" * 201}, "Reason must be 200 characters or fewer"),
            ({"reason": "because"}, "Select a reason from the list, or none"),
        ],
    )
    def test_bad_input_says_why_with_400_and_changes_nothing(self, client, declinable_link, data, message):
        verified(client, declinable_link)
        response = client.post(url(declinable_link, "decline"), data)
        assert response.status_code == 400
        assert message in text(response)
        assert "There is a problem" in text(response)
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.ACTIVE
        assert declinable_link.token_encrypted != ""
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.DECLINED).exists()

    def test_it_needs_the_forms_csrf_token(self, declinable_link):
        client = Client(enforce_csrf_checks=True)
        page = client.get(url(declinable_link))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
        assert client.post(url(declinable_link), {**DOB, "csrfmiddlewaretoken": token}).status_code == 302
        assert client.post(url(declinable_link, "decline"), {"reason": "not_now"}).status_code == 403
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.ACTIVE

    def test_an_expired_invitation_cant_be_declined(self, client, declinable_link):
        verified(client, declinable_link)
        with time_machine.travel(declinable_link.expires_at + timedelta(minutes=1)):
            response = client.post(url(declinable_link, "decline"), {"reason": "not_now"})
        assert response.status_code == 410
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.ACTIVE

    def test_a_booked_invitation_shows_its_appointment_instead(self, client, declinable_link, practice):
        verified(client, declinable_link)
        slot = encode_reference(first_free(practice).pk, namespace="slot")
        assert client.post(url(declinable_link, "confirm"), {"slot": slot}).status_code == 302
        response = client.post(url(declinable_link, "decline"), {"reason": "not_now"})
        assert response.status_code == 302
        assert response.url == url(declinable_link, "booked")
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.BOOKED

    def test_declining_costs_a_constant_few_queries(self, client, declinable_link, django_assert_max_num_queries):
        verified(client, declinable_link)
        with django_assert_max_num_queries(9):
            assert client.post(url(declinable_link, "decline"), {"reason": "not_now"}).status_code == 200


# --- After declining ---------------------------------------------------------------------------


class TestADeclinedLink:
    @pytest.fixture
    def declined(self, client, declinable_link) -> BookingLink:
        verified(client, declinable_link)
        assert client.post(url(declinable_link, "decline"), {"reason": "not_now"}).status_code == 200
        declinable_link.refresh_from_db()
        return declinable_link

    def test_reopening_it_shows_the_declined_page_gone(self, declined):
        response = Client().get(url(declined))
        assert response.status_code == 410
        assert "You have declined this appointment" in text(response)
        # Before the date of birth: nothing about the patient or the appointment.
        assert "Oliver" not in text(response)
        assert "Flu vaccination" not in text(response)

    def test_the_same_browser_gets_the_same_page_everywhere(self, client, declined):
        for name in ["", "times", "decline"]:
            response = client.get(url(declined, name))
            assert response.status_code == 410, name
            assert "You have declined this appointment" in text(response)

    def test_a_booking_posted_after_it_is_refused_with_that_page(self, client, declined, practice):
        slot = first_free(practice)
        response = client.post(url(declined, "confirm"), {"slot": encode_reference(slot.pk, namespace="slot")})
        assert response.status_code == 410
        assert "You have declined this appointment" in text(response)
        assert not Appointment.objects.filter(booking_link=declined).exists()
        slot.refresh_from_db()
        assert slot.status == Slot.Status.FREE

    def test_declining_twice_shows_the_page_and_records_once(self, client, declined):
        response = client.post(url(declined, "decline"), {"reason": "do_not_want"})
        assert response.status_code == 410
        declined.refresh_from_db()
        assert declined.decline_reason == "not_now"
        assert AuditEvent.objects.filter(action=AuditEvent.Action.DECLINED).count() == 1

    def test_a_date_of_birth_posted_to_it_gets_the_declined_page(self, declined):
        response = Client().post(url(declined), DOB)
        assert response.status_code == 410
        assert "You have declined this appointment" in text(response)

    def test_staff_see_declined_by_the_patient_and_why(self, declined, practice, staff_client):
        assert booking_link_state(link=declined, appointment=None) == "Declined by the patient"
        message = Message.objects.create(
            organisation=practice.organisation,
            patient=practice.patient,
            channel="sms",
            to_address=practice.patient.mobile,
            template_body="{{Appointment Link}}",
            body="[link to book: hidden]",
            booking_link=declined,
        )
        page = text(staff_client.get(f"/messages/{message.reference}/"))
        assert "Declined by the patient" in page
        assert "Why declined Not now: maybe later" in page


# --- The rule itself ---------------------------------------------------------------------------


class TestBookingLinkDecline:
    def test_a_link_that_isnt_an_invitation_is_not_declined(self, link):
        assert booking_link_decline(link=link, reason="", detail="", ip_address=None) is False
        link.refresh_from_db()
        assert link.status == BookingLink.Status.ACTIVE

    def test_a_revoked_or_locked_invitation_is_not_declined(self, declinable_link):
        for status in [BookingLink.Status.REVOKED, BookingLink.Status.LOCKED]:
            BookingLink.objects.filter(pk=declinable_link.pk).update(status=status)
            assert booking_link_decline(link=declinable_link, reason="", detail="", ip_address=None) is False
            assert declinable_link.status == status

    def test_an_unknown_reason_is_refused_before_anything_is_written(self, declinable_link):
        with pytest.raises(ValueError, match="not a reason"):
            booking_link_decline(link=declinable_link, reason="bored", detail="", ip_address=None)
        declinable_link.refresh_from_db()
        assert declinable_link.status == BookingLink.Status.ACTIVE


# --- Date of birth confirmed -------------------------------------------------------------------


class TestVerifiedAt:
    def test_the_first_match_is_recorded_and_later_ones_cost_no_write(self, declinable_link):
        assert declinable_link.verified_at is None
        verified(Client(), declinable_link)
        declinable_link.refresh_from_db()
        first = declinable_link.verified_at
        assert first is not None
        with CaptureQueriesContext(connection) as queries:
            verified(Client(), declinable_link)
        assert not [q for q in queries.captured_queries if "verified_at" in q["sql"] and "UPDATE" in q["sql"]]
        declinable_link.refresh_from_db()
        assert declinable_link.verified_at == first

    def test_a_wrong_date_is_not_a_confirmation(self, declinable_link):
        Client().post(url(declinable_link), {"day": "1", "month": "1", "year": "1990"})
        declinable_link.refresh_from_db()
        assert declinable_link.verified_at is None
