"""The Appointments page: each appointment's status with reason and time, its filters, its scope,
its query count; and staff cancelling an appointment on the patient's behalf, with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from booking.formats import date_and_time
from booking.models import Appointment, AuditEvent, Slot, StaffMembership
from booking.references import encode_reference
from booking.signals import appointment_cancelled
from tests.concurrency import RowLockHolder, in_thread, lock_waiters, wait_until
from tests.factories import (
    AppointmentFactory,
    AuditEventFactory,
    SlotFactory,
    StaffMembershipFactory,
    UserFactory,
)
from tests.scenarios import make_every_status

pytestmark = pytest.mark.django_db


def listed(response) -> list[Appointment]:
    return list(response.context["page"].object_list)


def cancel_url(appointment: Appointment) -> str:
    return f"/appointments/{appointment.reference}/cancel/"


# --- What each row says -------------------------------------------------------------------------


class TestStatuses:
    def test_every_status_shows_with_its_reason_and_time(self, staff_client, every_status, practice):
        response = staff_client.get("/appointments/")
        assert response.status_code == 200
        assert set(listed(response)) == {
            every_status.booked,
            every_status.by_patient,
            every_status.by_practice,
            every_status.changed,
            every_status.replacement,
        }
        content = response.content.decode()
        when = date_and_time(every_status.by_patient.cancelled_at)
        assert "Cancelled by patient" in content
        assert "I can&#x27;t make this time: “Away that week”." in content
        assert "Cancelled by practice" in content
        assert "The clinician is not available." in content
        assert f"By {practice.user.get_username()}, {when}." in content
        assert f"On {when}." in content
        assert ">Changed<" in content
        replacement = every_status.replacement
        assert f"To {date_and_time(replacement.slot.start)} (reference {replacement.reference})." in content
        assert f"Changed by the patient from {date_and_time(every_status.changed.slot.start)}" in content

    def test_only_booked_appointments_still_to_come_offer_cancelling(self, staff_client, every_status):
        content = staff_client.get("/appointments/").content.decode()
        assert cancel_url(every_status.booked) in content
        assert cancel_url(every_status.replacement) in content
        for ended in (every_status.by_patient, every_status.by_practice, every_status.changed):
            assert cancel_url(ended) not in content

    def test_showing_them_is_on_the_audit_trail(self, staff_client, every_status, practice):
        staff_client.get("/appointments/")
        viewed = AuditEvent.objects.filter(action=AuditEvent.Action.VIEWED, actor=practice.user)
        assert viewed.count() == 4  # one per patient shown: the changed and its replacement are one patient

    def test_with_nothing_to_show_it_says_so(self, staff_client):
        response = staff_client.get("/appointments/")
        assert response.status_code == 200
        assert "No appointments match these filters." in response.content.decode()


# --- Filters --------------------------------------------------------------------------------------


class TestFilters:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("", ["booked", "by_patient", "by_practice", "changed", "replacement"]),
            ("booked", ["booked", "replacement"]),
            ("cancelled_by_patient", ["by_patient"]),
            ("cancelled_by_practice", ["by_practice"]),
            ("changed", ["changed"]),
            ("by_patients", ["by_patient", "changed"]),
        ],
    )
    def test_by_status(self, staff_client, every_status, status, expected):
        response = staff_client.get("/appointments/", {"status": status})
        assert response.status_code == 200
        assert set(listed(response)) == {getattr(every_status, name) for name in expected}

    def test_changes_by_patients_come_newest_first(self, staff_client, practice, every_status):
        later = make_every_status(
            practice, start=timezone.now() + timedelta(days=6), cancelled_at=timezone.now() - timedelta(minutes=5)
        )
        response = staff_client.get("/appointments/", {"status": "by_patients"})
        assert listed(response)[:2] in ([later.by_patient, later.changed], [later.changed, later.by_patient])

    def test_by_patients_since_a_moment_shows_only_the_changes_after_it(self, staff_client, practice, every_status):
        since = timezone.now() - timedelta(minutes=30)
        newer = make_every_status(practice, start=timezone.now() + timedelta(days=6), cancelled_at=timezone.now())
        response = staff_client.get("/appointments/", {"status": "by_patients", "since": since.isoformat()})
        assert set(listed(response)) == {newer.by_patient, newer.changed}
        assert "Changes by patients since" in response.content.decode()

    def test_by_a_range_of_days_in_london_time(self, staff_client, practice):
        # 23:30 UTC on 1 July is half past midnight on 2 July in London (BST).
        late = AppointmentFactory(
            slot=SlotFactory(
                practitioner=practice.practitioner,
                location=practice.location,
                appointment_type=practice.appointment_type,
                start=datetime(2031, 7, 1, 23, 30, tzinfo=UTC),
                status=Slot.Status.BOOKED,
            ),
            patient=practice.patient,
        )
        assert listed(staff_client.get("/appointments/", {"from_date": "2031-07-02", "to_date": "2031-07-02"})) == [
            late
        ]
        assert listed(staff_client.get("/appointments/", {"from_date": "2031-07-01", "to_date": "2031-07-01"})) == []
        assert listed(staff_client.get("/appointments/", {"from_date": "2031-06-01"})) == [late]
        assert listed(staff_client.get("/appointments/", {"to_date": "2031-07-01"})) == []

    def test_without_dates_earlier_appointments_are_left_out_and_a_date_brings_them_back(self, staff_client, practice):
        past = AppointmentFactory(
            slot=SlotFactory(
                practitioner=practice.practitioner,
                location=practice.location,
                appointment_type=practice.appointment_type,
                start=timezone.now() - timedelta(days=3),
                status=Slot.Status.BOOKED,
            ),
            patient=practice.patient,
        )
        assert listed(staff_client.get("/appointments/")) == []
        day = timezone.localdate(past.slot.start).isoformat()
        response = staff_client.get("/appointments/", {"from_date": day, "to_date": day})
        assert listed(response) == [past]
        assert cancel_url(past) not in response.content.decode()  # its time has passed

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ({"from_date": "2026-13-01"}, "Enter a real date for From."),
            ({"to_date": "yesterday"}, "Enter a real date for To."),
            ({"from_date": "2026-12-02", "to_date": "2026-12-01"}, "To must be the same day as From or later."),
            ({"from_date": "2026-01-01", "to_date": "2027-06-01"}, "Choose at most a year at a time."),
            ({"status": "everything"}, "Choose a status from the list."),
            ({"status": "by_patients", "since": "last Tuesday"}, "The changes link is not valid."),
            ({"from_date": "\x00"}, "Enter a real date for From."),
        ],
    )
    def test_bad_values_get_a_clear_message_and_400(self, staff_client, every_status, query, message):
        response = staff_client.get("/appointments/", query)
        assert response.status_code == 400
        content = response.content.decode()
        assert "There is a problem" in content
        assert message in content
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.VIEWED).exists()

    def test_pages_keep_the_filters(self, staff_client, practice):
        for i in range(26):  # 26 changed appointments: two pages of 25
            make_every_status(practice, start=timezone.now() + timedelta(days=3 + i))
        response = staff_client.get("/appointments/", {"status": "changed", "from_date": "2000-01-01"})
        assert response.context["page"].paginator.count == 26
        assert 'href="?status=changed&amp;from_date=2000-01-01&amp;page=2"' in response.content.decode()
        second = staff_client.get("/appointments/", {"status": "changed", "from_date": "2000-01-01", "page": "2"})
        assert [a.cancellation_source for a in listed(second)] == ["changed"]
        assert 'href="?status=changed&amp;from_date=2000-01-01&amp;page=1"' in second.content.decode()


# --- Scope ------------------------------------------------------------------------------------------


class TestScope:
    def test_another_practices_appointments_never_show_whatever_the_filter(self, client, every_status, other_practice):
        client.force_login(other_practice.user)
        for status in ("", "booked", "cancelled_by_patient", "cancelled_by_practice", "changed", "by_patients"):
            assert listed(client.get("/appointments/", {"status": status, "from_date": "2000-01-01"})) == []

    def test_the_hub_sees_its_clinics_appointments_and_the_practice_its_patients(self, client, practice, hub):
        slot = SlotFactory(
            practitioner=hub.practitioner,
            location=hub.location,
            appointment_type=hub.appointment_type,
            status=Slot.Status.FREE,
        )
        appointment = AppointmentFactory(
            slot=slot,
            patient=practice.patient,
            status=Appointment.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancellation_source="patient",
            cancellation_reason="no_longer_needed",
        )
        hub_user = UserFactory()
        StaffMembershipFactory(user=hub_user, organisation=hub.organisation)
        client.force_login(hub_user)
        assert listed(client.get("/appointments/", {"status": "by_patients"})) == [appointment]
        client.force_login(practice.user)
        assert listed(client.get("/appointments/", {"status": "by_patients"})) == [appointment]


# --- Query counts -------------------------------------------------------------------------------------


def count_queries(django_assert_max_num_queries, ceiling: int, request) -> int:
    with django_assert_max_num_queries(ceiling) as captured:
        response = request()
    assert response.status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("query", [{}, {"status": "by_patients"}, {"status": "changed", "from_date": "2000-01-01"}])
def test_the_appointments_page_makes_the_same_queries_however_many_appointments(
    staff_client, practice, django_assert_max_num_queries, query
):
    # session, user, memberships, count, page, audit INSERT (+ the look's upsert for by_patients)
    make_every_status(practice)
    small = count_queries(django_assert_max_num_queries, 7, lambda: staff_client.get("/appointments/", query))
    for i in range(12):
        make_every_status(practice, start=timezone.now() + timedelta(days=5 + i))
    large = count_queries(django_assert_max_num_queries, 7, lambda: staff_client.get("/appointments/", query))
    assert large == small


# --- Cancelling for the patient -------------------------------------------------------------------------


@pytest.fixture
def sent_signals():
    """The appointments `appointment_cancelled` announced, in order."""
    sent: list[Appointment] = []

    def listen(sender, appointment, **kwargs):
        sent.append(appointment)

    appointment_cancelled.connect(listen)
    yield sent
    appointment_cancelled.disconnect(listen)


class TestCancelling:
    def test_the_page_shows_the_appointment_and_the_practices_reasons(self, staff_client, every_status):
        appointment = every_status.booked
        response = staff_client.get(cancel_url(appointment))
        assert response.status_code == 200
        content = response.content.decode()
        assert "<h1>Cancel appointment</h1>" in content
        assert appointment.patient.full_name in content
        assert date_and_time(appointment.slot.start) in content
        assert "Why is the appointment being cancelled?" in content
        for label in (
            "The patient asked (by phone or in person)",
            "The clinician is not available",
            "Booked in error",
            "Other reason",
        ):
            assert label in content
        assert "I no longer need it" not in content  # the patient's own reasons are theirs
        assert Appointment.objects.get(pk=appointment.pk).status == Appointment.Status.BOOKED

    def test_cancelling_frees_the_time_records_why_and_tells_the_patient(
        self, staff_client, practice, every_status, sent_signals, django_capture_on_commit_callbacks
    ):
        appointment = every_status.booked
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                cancel_url(appointment), {"reason": "clinician_unavailable", "detail": "Dr on leave"}
            )
        assert response.status_code == 302
        assert response["Location"] == "/appointments/"
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.CANCELLED
        assert (appointment.cancellation_source, appointment.cancellation_reason, appointment.cancellation_detail) == (
            "practice",
            "clinician_unavailable",
            "Dr on leave",
        )
        assert appointment.cancelled_by == practice.user
        assert Slot.objects.get(pk=appointment.slot_id).status == Slot.Status.FREE
        event = AuditEvent.objects.get(action=AuditEvent.Action.CANCELLED)
        assert (event.actor, event.patient, event.appointment) == (practice.user, appointment.patient, appointment)
        assert event.detail == {
            "source": "practice",
            "reason": "clinician_unavailable",
            "reason_label": "The clinician is not available",
            "detail": "Dr on leave",
        }
        assert [a.pk for a in sent_signals] == [appointment.pk]
        page = staff_client.get(response["Location"]).content.decode()
        assert f"Cancelled {appointment.patient.full_name}&#x27;s appointment on" in page

    def test_other_reason_needs_a_few_words(self, staff_client, every_status):
        response = staff_client.post(cancel_url(every_status.booked), {"reason": "other", "detail": "  "})
        assert response.status_code == 400
        assert "Enter the reason, as you chose Other reason." in response.content.decode()
        assert Appointment.objects.get(pk=every_status.booked.pk).status == Appointment.Status.BOOKED

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({}, "Select why the appointment is being cancelled."),
            ({"reason": ""}, "Select why the appointment is being cancelled."),
            ({"reason": "no_longer_needed"}, "Select why the appointment is being cancelled."),
            ({"reason": "changed"}, "Select why the appointment is being cancelled."),
            ({"reason": "booked_in_error", "detail": "x" * 201}, "Details must be 200 characters or fewer."),
        ],
    )
    def test_bad_input_gets_the_form_again_with_400_and_writes_nothing(
        self, staff_client, every_status, sent_signals, data, message
    ):
        response = staff_client.post(cancel_url(every_status.booked), data)
        assert response.status_code == 400
        content = response.content.decode()
        assert "There is a problem" in content
        assert message in content
        assert Appointment.objects.get(pk=every_status.booked.pk).status == Appointment.Status.BOOKED
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).exists()
        assert sent_signals == []

    @pytest.mark.parametrize("name", ["by_patient", "by_practice", "changed"])
    def test_an_appointment_no_longer_booked_says_so(self, staff_client, every_status, sent_signals, name):
        appointment = getattr(every_status, name)
        page = staff_client.get(cancel_url(appointment))
        assert page.status_code == 200
        assert "This appointment can't be cancelled" in page.content.decode()
        response = staff_client.post(cancel_url(appointment), {"reason": "booked_in_error"})
        assert response.status_code == 409
        content = response.content.decode()
        assert f"It is no longer booked: {appointment.get_cancellation_source_display().lower()} on" in content
        assert "Nothing has been changed." in content
        after = Appointment.objects.get(pk=appointment.pk)
        assert (after.cancellation_source, after.cancellation_reason) == (
            appointment.cancellation_source,
            appointment.cancellation_reason,
        )
        assert sent_signals == []

    def test_a_replayed_form_changes_nothing_the_second_time(
        self, staff_client, every_status, sent_signals, django_capture_on_commit_callbacks
    ):
        data = {"reason": "patient_asked"}
        with django_capture_on_commit_callbacks(execute=True):
            assert staff_client.post(cancel_url(every_status.booked), data).status_code == 302
            again = staff_client.post(cancel_url(every_status.booked), data)
        assert again.status_code == 409
        assert "It is no longer booked: cancelled by practice on" in again.content.decode()
        assert AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).count() == 1
        assert len(sent_signals) == 1

    def test_an_appointment_whose_time_has_passed_cant_be_cancelled(self, staff_client, practice):
        past = AppointmentFactory(
            slot=SlotFactory(
                practitioner=practice.practitioner,
                location=practice.location,
                appointment_type=practice.appointment_type,
                start=timezone.now() - timedelta(minutes=5),
                status=Slot.Status.BOOKED,
            ),
            patient=practice.patient,
        )
        response = staff_client.post(cancel_url(past), {"reason": "booked_in_error"})
        assert response.status_code == 409
        assert "Its time has passed" in response.content.decode()
        assert Appointment.objects.get(pk=past.pk).status == Appointment.Status.BOOKED

    @pytest.mark.parametrize("reference", ["not-a-reference", "0", encode_reference(10**9, namespace="appointment")])
    def test_a_forged_reference_is_not_found(self, staff_client, every_status, reference):
        assert staff_client.get(f"/appointments/{reference}/cancel/").status_code == 404
        assert staff_client.post(f"/appointments/{reference}/cancel/", {"reason": "booked_in_error"}).status_code == 404

    def test_a_reference_of_another_kind_is_not_found(self, staff_client, every_status, practice):
        patient_reference = practice.patient.reference
        assert staff_client.get(f"/appointments/{patient_reference}/cancel/").status_code == 404

    def test_another_organisations_appointment_is_not_found_and_the_try_recorded(
        self, client, every_status, other_practice, sent_signals
    ):
        client.force_login(other_practice.user)
        for send in (client.get, lambda url: client.post(url, {"reason": "booked_in_error"})):
            response = send(cancel_url(every_status.booked))
            assert response.status_code == 404
            assert every_status.booked.patient.full_name not in response.content.decode()
        assert Appointment.objects.get(pk=every_status.booked.pk).status == Appointment.Status.BOOKED
        denied = AuditEvent.objects.filter(action=AuditEvent.Action.DENIED, actor=other_practice.user)
        assert denied.count() == 2
        assert {event.organisation_id for event in denied} == {every_status.booked.patient.organisation_id}
        assert sent_signals == []

    @pytest.mark.parametrize("role", [StaffMembership.Role.STAFF, StaffMembership.Role.MANAGER])
    def test_any_member_of_the_practice_may_cancel(self, client, every_status, practice, role):
        user = UserFactory()
        StaffMembershipFactory(user=user, organisation=practice.organisation, role=role)
        client.force_login(user)
        assert client.post(cancel_url(every_status.booked), {"reason": "patient_asked"}).status_code == 302

    def test_the_hub_may_cancel_at_its_clinic_and_the_practice_its_patients_booking_there(self, client, practice, hub):
        def booked_at_the_hub() -> Appointment:
            slot = SlotFactory(
                practitioner=hub.practitioner,
                location=hub.location,
                appointment_type=hub.appointment_type,
                status=Slot.Status.BOOKED,
            )
            return AppointmentFactory(slot=slot, patient=practice.patient)

        hub_user = UserFactory()
        StaffMembershipFactory(user=hub_user, organisation=hub.organisation)
        client.force_login(hub_user)
        assert client.post(cancel_url(booked_at_the_hub()), {"reason": "clinician_unavailable"}).status_code == 302
        client.force_login(practice.user)
        assert client.post(cancel_url(booked_at_the_hub()), {"reason": "patient_asked"}).status_code == 302

    @pytest.mark.parametrize("method", ["put", "patch", "delete"])
    def test_other_methods_are_refused_with_405(self, staff_client, every_status, method):
        response = getattr(staff_client, method)(cancel_url(every_status.booked))
        assert response.status_code == 405
        assert Appointment.objects.get(pk=every_status.booked.pk).status == Appointment.Status.BOOKED

    def test_signed_out_visitors_are_sent_to_sign_in(self, client, every_status):
        response = client.post(cancel_url(every_status.booked), {"reason": "patient_asked"})
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert Appointment.objects.get(pk=every_status.booked.pk).status == Appointment.Status.BOOKED

    def test_the_audit_trail_reads_who_cancelled_and_why(self, client, practice, every_status):
        StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
        client.force_login(practice.user)
        client.post(cancel_url(every_status.booked), {"reason": "other", "detail": "Surgery flooded"})
        content = client.get("/audit/").content.decode()
        assert "Appointment cancelled: Other reason (“Surgery flooded”)" in content


def test_the_audit_trail_says_when_the_patient_cancelled_or_changed(client, practice, every_status):
    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    AuditEventFactory(
        action=AuditEvent.Action.CANCELLED,
        patient=every_status.by_patient.patient,
        appointment=every_status.by_patient,
        detail={"source": "patient", "reason": "cannot_make_time", "reason_label": "I can't make this time"},
    )
    AuditEventFactory(
        action=AuditEvent.Action.APPOINTMENT_CHANGED,
        patient=every_status.replacement.patient,
        appointment=every_status.replacement,
    )
    client.force_login(practice.user)
    content = client.get("/audit/").content.decode()
    assert "Appointment cancelled: I can&#x27;t make this time" in content
    assert "Appointment changed" in content
    assert content.count("Patient, through their link") == 2


@pytest.mark.django_db(transaction=True)
def test_losing_a_race_to_another_cancel_gets_the_no_longer_booked_page(practice):
    """The staff member's POST waits on the slot's lock while the patient cancels: it then finds
    the appointment already cancelled, changes nothing and says so."""
    appointment = make_every_status(practice).booked
    client = Client()
    client.force_login(practice.user)
    with RowLockHolder(Slot, appointment.slot_id):
        thread, result = in_thread(lambda: client.post(cancel_url(appointment), {"reason": "booked_in_error"}))
        assert wait_until(lambda: lock_waiters() >= 1)
        # Meanwhile the patient cancels: the appointment's row isn't locked, only the slot's.
        Appointment.objects.filter(pk=appointment.pk).update(
            status=Appointment.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancellation_source="patient",
            cancellation_reason="no_longer_needed",
        )
    thread.join(timeout=60)
    response = result[0]
    assert response.status_code == 409
    assert "It is no longer booked: cancelled by patient on" in response.content.decode()
    after = Appointment.objects.get(pk=appointment.pk)
    assert (after.cancellation_source, after.cancelled_by) == ("patient", None)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).exists()
