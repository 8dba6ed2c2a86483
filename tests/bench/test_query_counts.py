"""The hot views make the same number of queries however much data there is.

Each test runs a request against a small practice, then grows the data (hundreds of free
times for the link's type, hundreds of patients named Smith, links and messages) and runs it
again: the count must not grow, and both stay under the ceiling the benchmark reports
(docs/benchmarks.md). The querysets behind these views use FETCH_RAISE, so a lazy load is an
error here rather than an extra query per row in production.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import FieldFetchBlocked
from django.test import Client
from django.utils import timezone

from booking.links import booking_link_find
from booking.models import Appointment, BookingLink, Patient, Slot
from booking.references import encode_reference
from booking.slots import slot_list_available
from messaging.models import Message
from tests.factories import BookingLinkFactory, PractitionerFactory, _valid_nhs_number
from tests.scenarios import clinic_times, clinic_weekdays, make_clinic, make_clinic_link

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}  # PatientFactory's date of birth


def grow(practice, *, times: int = 300, patients: int = 300, links: int = 100) -> None:
    """Make the practice a busy one: many free times for its type, many Smiths, many links."""
    practitioners = [PractitionerFactory(organisation=practice.organisation) for _ in range(3)]
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(days=1)
    Slot.objects.bulk_create(
        Slot(
            practitioner=practitioners[i % 3],
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start + timedelta(minutes=10 * (i // 3)),
            end=start + timedelta(minutes=10 * (i // 3 + 1)),
        )
        for i in range(times)
    )
    new_patients = Patient.objects.bulk_create(
        Patient(
            organisation=practice.organisation,
            first_name=f"Grown{i}",
            last_name="Smith",
            date_of_birth=practice.patient.date_of_birth - timedelta(days=i),
            nhs_number=_valid_nhs_number(100_000 + i),
            mobile="+447400123456",
        )
        for i in range(patients)
    )
    for patient in new_patients[:links]:
        link = BookingLinkFactory(
            patient=patient, appointment_type=practice.appointment_type, location=practice.location
        )
        Message.objects.create(
            organisation=practice.organisation,
            patient=patient,
            channel="sms",
            to_address=patient.mobile,
            template_body="{{Appointment Link}}",
            body=f"https://example.org{link.get_absolute_url()}",
            booking_link=link,
        )


def new_link(practice) -> BookingLink:
    """A link sent in a message, as every real one is (booking looks the message up to confirm)."""
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    Message.objects.create(
        organisation=practice.organisation,
        patient=practice.patient,
        channel="sms",
        to_address=practice.patient.mobile,
        template_body="{{Appointment Link}}",
        body=f"https://example.org{link.get_absolute_url()}",
        booking_link=link,
    )
    return link


def verified_client(link: BookingLink) -> Client:
    client = Client()
    assert client.post(f"/b/{link.token}", DOB).status_code == 302
    return client


def slot_ref(link: BookingLink) -> str:
    return encode_reference(slot_list_available(link=link)[0].pk, namespace="slot")


def counted(django_assert_max_num_queries, ceiling: int, request) -> int:
    """Run `request()` under a ceiling; return how many queries it made."""
    with django_assert_max_num_queries(ceiling) as captured:
        request()
    return len(captured.captured_queries)


def assert_constant(practice, django_assert_max_num_queries, *, ceiling: int, make_request) -> None:
    """`make_request()` returns a zero-argument callable doing one request; compare small vs grown."""
    small = counted(django_assert_max_num_queries, ceiling, make_request())
    grow(practice)
    large = counted(django_assert_max_num_queries, ceiling, make_request())
    assert large <= small, f"{small} queries with little data, {large} with more"


# Ceilings: what each view does today, explained query by query in docs/benchmarks.md.


@pytest.fixture
def tasks_only_enqueued(settings):
    """Tasks are queued, not run, as in production: the delivery task isn't part of the request."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def test_opening_a_link_is_constant(practice, django_assert_max_num_queries):
    def make_request():
        link = new_link(practice)
        return lambda: Client().get(f"/b/{link.token}")

    assert_constant(practice, django_assert_max_num_queries, ceiling=5, make_request=make_request)


def test_the_date_of_birth_check_is_constant(practice, django_assert_max_num_queries):
    def make_request():
        link = new_link(practice)
        return lambda: Client().post(f"/b/{link.token}", DOB)

    # 11: a link's first match also stamps its verified_at (one conditional UPDATE).
    assert_constant(practice, django_assert_max_num_queries, ceiling=11, make_request=make_request)


def test_the_times_page_is_constant(practice, django_assert_max_num_queries):
    def make_request():
        link = new_link(practice)
        client = verified_client(link)
        return lambda: client.get(f"/b/{link.token}/times")

    assert_constant(practice, django_assert_max_num_queries, ceiling=3, make_request=make_request)


CLINIC_SIZES = {
    "3 clinicians, 1 week, hourly": {"clinicians": 3, "weeks": 1, "minutes": 60},
    "20 clinicians, 4 weeks, every 10 minutes": {"clinicians": 20, "weeks": 4, "minutes": 10},
}


@pytest.mark.parametrize("size", list(CLINIC_SIZES))
def test_the_days_first_pages_are_constant_whatever_the_clinic(django_assert_num_queries, size):
    spec = CLINIC_SIZES[size]
    clinic = make_clinic(
        clinicians=spec["clinicians"],
        days=clinic_weekdays(weeks=spec["weeks"]),
        times=clinic_times(minutes=spec["minutes"]),
    )
    day = clinic.days[2].isoformat()
    for practitioner in (None, clinic.practitioners[1]):
        link = make_clinic_link(clinic, practitioner=practitioner)
        client = verified_client(link)
        # The link and the session, then one: the first 31 start times with the week's days
        # (first page); the day's start times (a day); the slot with its clinicians (confirm).
        # No more with 20 clinicians over 4 weeks than with 3 over one. (A link to a type a hub
        # shares adds one: the agreement is checked to be still in force.)
        for path, queries in (
            (f"/b/{link.token}/times", 3),
            (f"/b/{link.token}/times?day={day}", 3),
            (f"/b/{link.token}/confirm?day={day}&slot={slot_ref(link)}", 3),
        ):
            with django_assert_num_queries(queries):
                response = client.get(path)
            assert response.status_code == 200, path
            assert len(response.content) < 60_000, path


def test_the_confirm_page_is_constant(practice, django_assert_max_num_queries):
    def make_request():
        link = new_link(practice)
        client = verified_client(link)
        return lambda: client.get(f"/b/{link.token}/confirm", {"slot": slot_ref(link)})

    assert_constant(practice, django_assert_max_num_queries, ceiling=4, make_request=make_request)


def test_booking_is_constant(
    practice, django_assert_max_num_queries, django_capture_on_commit_callbacks, tasks_only_enqueued
):
    def make_request():
        link = new_link(practice)
        client = verified_client(link)
        reference = slot_ref(link)

        def book():
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(f"/b/{link.token}/confirm", {"slot": reference})
            assert response.status_code == 302, response.content.decode()[:300]

        return book

    assert_constant(practice, django_assert_max_num_queries, ceiling=11, make_request=make_request)
    assert Appointment.objects.count() == 2


def test_staff_patient_search_is_constant(practice, django_assert_max_num_queries):
    client = Client()
    client.force_login(practice.user)

    def make_request():
        return lambda: client.get("/messages/new/patients/", {"q": "smith"}, headers={"HX-Request": "true"})

    assert_constant(practice, django_assert_max_num_queries, ceiling=4, make_request=make_request)


def test_sending_a_message_with_a_link_is_constant(
    practice, django_assert_max_num_queries, django_capture_on_commit_callbacks, tasks_only_enqueued
):
    client = Client()
    client.force_login(practice.user)
    patient_ref = encode_reference(practice.patient.pk, namespace="patient")

    def make_request():
        def send():
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    "/messages/new/",
                    {
                        "patient": patient_ref,
                        "channel": "sms",
                        "body": "Hello {{Patient First Name}}, book your flu jab here: {{Appointment Link}}",
                        "appointment_type": practice.appointment_type.pk,
                        "location": practice.location.pk,
                        "practitioner": "",
                        "link_expiry": "14d",
                        "link_added": "True",
                        "idempotency_key": str(uuid.uuid4()),
                        "action": "send",
                    },
                )
            assert response.status_code == 302, response.content.decode()[:300]

        return send

    assert_constant(practice, django_assert_max_num_queries, ceiling=20, make_request=make_request)


def test_a_lazy_load_on_a_patient_page_query_raises(practice):
    link = new_link(practice)
    found = booking_link_find(link.token)
    assert found.patient.date_of_birth  # joined: fine
    with pytest.raises(FieldFetchBlocked):
        _ = found.patient.organisation  # not joined through the patient: the pages use link.organisation


# --- After booking: the appointment, cancelling and changing it ------------------------------


def booked_client(link: BookingLink) -> Client:
    """The patient's browser, verified, with the link's last free time booked (well before its cut-off)."""
    client = verified_client(link)
    last = encode_reference(slot_list_available(link=link)[-1].pk, namespace="slot")
    assert client.post(f"/b/{link.token}/confirm", {"slot": last}).status_code == 302
    return client


def appointment_ref(link: BookingLink) -> str:
    return Appointment.objects.get(booking_link=link, status="booked").reference


@pytest.mark.parametrize("page", ["booked", "cancel", "change"])
def test_the_appointment_and_its_cancel_and_change_pages_are_constant(
    practice, django_assert_max_num_queries, tasks_only_enqueued, page
):
    def make_request():
        link = new_link(practice)
        client = booked_client(link)

        def get():
            response = client.get(f"/b/{link.token}/{page}")
            assert response.status_code == 200, response.content.decode()[:300]

        return get

    assert_constant(practice, django_assert_max_num_queries, ceiling=4, make_request=make_request)


def test_the_change_confirm_page_is_constant(practice, django_assert_max_num_queries, tasks_only_enqueued):
    def make_request():
        link = new_link(practice)
        client = booked_client(link)
        reference = slot_ref(link)

        def get():
            response = client.get(f"/b/{link.token}/change/confirm", {"slot": reference})
            assert response.status_code == 200, response.content.decode()[:300]

        return get

    assert_constant(practice, django_assert_max_num_queries, ceiling=5, make_request=make_request)


def test_cancelling_is_constant(
    practice, django_assert_max_num_queries, django_capture_on_commit_callbacks, tasks_only_enqueued
):
    def make_request():
        link = new_link(practice)
        client = booked_client(link)
        form = {"appointment": appointment_ref(link), "reason": "no_longer_needed"}

        def cancel():
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(f"/b/{link.token}/cancel", form)
            assert response.status_code == 302, response.content.decode()[:300]

        return cancel

    assert_constant(practice, django_assert_max_num_queries, ceiling=15, make_request=make_request)


def test_changing_is_constant(
    practice, django_assert_max_num_queries, django_capture_on_commit_callbacks, tasks_only_enqueued
):
    def make_request():
        link = new_link(practice)
        client = booked_client(link)
        form = {"appointment": appointment_ref(link), "slot": slot_ref(link)}

        def change():
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(f"/b/{link.token}/change/confirm", form)
            assert response.status_code == 302, response.content.decode()[:300]

        return change

    assert_constant(practice, django_assert_max_num_queries, ceiling=14, make_request=make_request)
