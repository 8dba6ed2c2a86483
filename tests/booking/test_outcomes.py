"""Staff record attendance: who may, when, one by one and a session at a time."""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from booking.appointments import appointment_cancel
from booking.exceptions import OutcomeRefused
from booking.formats import LONDON
from booking.models import Appointment, AuditEvent, CancellationSource, Outcome
from booking.outcomes import (
    CHANGED,
    NOT_BOOKED,
    NOT_STARTED,
    SESSION_NOT_STARTED,
    appointment_outcome_record,
    session_mark_attended,
)
from tests.factories import LocationFactory, PractitionerFactory
from tests.scenarios import book_at

pytestmark = pytest.mark.django_db


def an_hour_ago() -> datetime:
    return timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)


def outcome_url(appointment: Appointment) -> str:
    return f"/appointments/{appointment.reference}/outcome/"


def session_url(appointment: Appointment) -> str:
    return f"/appointments/{appointment.reference}/session-attended/"


def text(response: HttpResponse) -> str:
    return html.unescape(response.content.decode())


def outcome_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.OUTCOME_RECORDED).order_by("pk"))


def test_staff_mark_a_past_appointment_attended_and_it_is_audited(staff_client, practice):
    appointment = book_at(practice, an_hour_ago())
    response = staff_client.post(outcome_url(appointment), {"outcome": "attended", "next": "/appointments/?page=1"})
    assert response.status_code == 302
    assert response["Location"] == f"/appointments/?page=1#outcome-{appointment.reference}"
    appointment.refresh_from_db()
    assert appointment.outcome == Outcome.ATTENDED
    assert appointment.outcome_recorded_by == practice.user
    assert appointment.outcome_recorded_at is not None
    [event] = outcome_events()
    assert (event.actor, event.appointment, event.patient) == (practice.user, appointment, appointment.patient)
    assert event.organisation == practice.organisation
    assert event.detail == {"outcome": "attended", "previous": ""}
    page = text(staff_client.get(response["Location"]))
    assert f"{appointment.patient.full_name}: attended." in page


def test_an_outcome_can_be_changed_and_the_change_names_what_it_replaced(staff_client, practice):
    appointment = book_at(practice, an_hour_ago())
    staff_client.post(outcome_url(appointment), {"outcome": "attended"})
    assert staff_client.post(outcome_url(appointment), {"outcome": "did_not_attend"}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.outcome == Outcome.DID_NOT_ATTEND
    assert [event.detail for event in outcome_events()] == [
        {"outcome": "attended", "previous": ""},
        {"outcome": "did_not_attend", "previous": "attended"},
    ]


def test_an_appointment_that_has_just_started_can_be_marked(practice):
    start = an_hour_ago()
    appointment = book_at(practice, start)
    appointment_outcome_record(appointment=appointment, outcome=Outcome.ATTENDED, actor=practice.user, now=start)
    appointment.refresh_from_db()
    assert appointment.outcome == Outcome.ATTENDED


def test_an_appointment_still_to_come_cannot_be_marked_409(staff_client, practice):
    appointment = book_at(practice, timezone.now() + timedelta(minutes=5))
    response = staff_client.post(outcome_url(appointment), {"outcome": "did_not_attend"})
    assert response.status_code == 409
    assert NOT_STARTED in text(response)
    appointment.refresh_from_db()
    assert appointment.outcome == ""
    assert outcome_events() == []


def test_a_cancelled_appointment_cannot_be_marked_409(staff_client, practice):
    appointment = book_at(practice, an_hour_ago() - timedelta(hours=2))
    appointment_cancel(appointment=appointment, actor=practice.user)
    response = staff_client.post(outcome_url(appointment), {"outcome": "attended"})
    assert response.status_code == 409
    assert NOT_BOOKED in text(response)
    assert Appointment.objects.get(pk=appointment.pk).outcome == ""


def test_a_changed_appointment_says_to_mark_the_new_one(practice):
    appointment = book_at(practice, an_hour_ago())
    Appointment.objects.filter(pk=appointment.pk).update(
        status="cancelled", cancelled_at=timezone.now(), cancellation_source="changed", cancellation_reason="changed"
    )
    appointment.refresh_from_db()
    with pytest.raises(OutcomeRefused) as refused:
        appointment_outcome_record(appointment=appointment, outcome=Outcome.ATTENDED, actor=practice.user)
    assert refused.value.message == CHANGED


def test_a_cancellation_that_lands_after_the_check_is_seen_under_the_lock(practice):
    appointment = book_at(practice, an_hour_ago())  # read as booked, then cancelled elsewhere
    Appointment.objects.filter(pk=appointment.pk).update(
        status="cancelled", cancelled_at=timezone.now(), cancellation_source="patient", cancellation_reason="other"
    )
    with pytest.raises(OutcomeRefused) as refused:
        appointment_outcome_record(appointment=appointment, outcome=Outcome.ATTENDED, actor=practice.user)
    assert refused.value.message == NOT_BOOKED
    assert outcome_events() == []


@pytest.mark.parametrize("data", [{}, {"outcome": "maybe"}, {"outcome": ""}])
def test_a_bad_outcome_is_a_400_with_a_clear_message(staff_client, practice, data):
    appointment = book_at(practice, an_hour_ago())
    response = staff_client.post(outcome_url(appointment), data)
    assert response.status_code == 400
    assert "Choose Attended or Did not attend." in text(response)
    assert Appointment.objects.get(pk=appointment.pk).outcome == ""


def test_another_organisations_appointment_is_a_404(client, practice, other_practice):
    appointment = book_at(practice, an_hour_ago())
    client.force_login(other_practice.user)
    assert client.post(outcome_url(appointment), {"outcome": "attended"}).status_code == 404
    assert client.post(session_url(appointment)).status_code == 404
    assert Appointment.objects.get(pk=appointment.pk).outcome == ""


def test_the_patients_practice_sees_the_outcome_but_the_hub_that_ran_the_clinic_records_it(client, practice, hub):
    # The practice's patient booked at the hub's site: the hub's staff know whether they came.
    hub_practice = type(practice)(
        hub.organisation, practice.user, practice.patient, hub.appointment_type, hub.location, hub.practitioner
    )
    appointment = book_at(hub_practice, an_hour_ago(), patient=practice.patient)
    client.force_login(practice.user)
    assert client.post(outcome_url(appointment), {"outcome": "attended"}).status_code == 404
    page = text(client.get("/appointments/"))
    assert "Not recorded" in page
    assert "Attended<span" not in page


def test_unknown_references_and_gets_are_refused(staff_client, practice):
    appointment = book_at(practice, an_hour_ago())
    assert staff_client.post("/appointments/NOPE/outcome/", {"outcome": "attended"}).status_code == 404
    assert staff_client.get(outcome_url(appointment)).status_code == 405
    assert staff_client.get(session_url(appointment)).status_code == 405


def test_signed_out_users_are_sent_to_sign_in(client, practice):
    appointment = book_at(practice, an_hour_ago())
    response = client.post(outcome_url(appointment), {"outcome": "attended"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_next_may_only_lead_back_to_the_appointments_page(staff_client, practice):
    appointment = book_at(practice, an_hour_ago())
    for bad in ("https://evil.example/appointments/", "//evil.example/appointments/", "/messages/"):
        response = staff_client.post(outcome_url(appointment), {"outcome": "attended", "next": bad})
        assert response["Location"] == f"/appointments/#outcome-{appointment.reference}"


def test_a_recorded_outcome_stops_a_cancellation(practice):
    appointment = book_at(practice, an_hour_ago())
    appointment_outcome_record(appointment=appointment, outcome=Outcome.DID_NOT_ATTEND, actor=practice.user)
    assert appointment_cancel(appointment=appointment, actor=practice.user) is False
    appointment.refresh_from_db()
    assert (appointment.status, appointment.outcome) == ("booked", "did_not_attend")


def test_the_database_refuses_an_outcome_on_a_cancelled_appointment(practice):
    appointment = book_at(practice, an_hour_ago())
    appointment_cancel(appointment=appointment, actor=practice.user, source=CancellationSource.PATIENT)
    with pytest.raises(IntegrityError, match="appointment_outcome_only_when_booked"), transaction.atomic():
        Appointment.objects.filter(pk=appointment.pk).update(outcome="attended", outcome_recorded_at=timezone.now())


def test_the_database_refuses_an_outcome_without_when_it_was_recorded(practice):
    appointment = book_at(practice, an_hour_ago())
    with pytest.raises(IntegrityError, match="appointment_outcome_only_when_booked"), transaction.atomic():
        Appointment.objects.filter(pk=appointment.pk).update(outcome="attended")


# --- Sessions ------------------------------------------------------------------------------------


def test_a_session_is_marked_attended_in_one_go_leaving_everything_else_alone(client, practice):
    now = datetime(2026, 12, 2, 15, 0, tzinfo=LONDON)
    start = datetime(2026, 12, 2, 9, 0, tzinfo=LONDON)
    first = book_at(practice, start)
    second = book_at(practice, start + timedelta(minutes=10))
    missed = book_at(practice, start + timedelta(minutes=20))
    cancelled = book_at(practice, start + timedelta(minutes=30))
    to_come = book_at(practice, now + timedelta(minutes=5))
    other_practitioner = book_at(
        practice, start, practitioner=PractitionerFactory(organisation=practice.organisation, name="Dr Other")
    )
    other_location = book_at(
        practice, start + timedelta(minutes=40), location=LocationFactory(organisation=practice.organisation)
    )
    yesterday = book_at(practice, start - timedelta(days=1))
    with time_machine.travel(now, tick=False):
        appointment_outcome_record(appointment=missed, outcome=Outcome.DID_NOT_ATTEND, actor=practice.user)
        appointment_cancel(appointment=cancelled, actor=practice.user)
        client.force_login(practice.user)

        response = client.post(session_url(second), {"next": "/appointments/"})

        assert response.status_code == 302
        assert response["Location"] == "/appointments/"
        assert "Marked 2 appointments as attended." in text(client.get("/appointments/"))
    outcomes = dict(Appointment.objects.values_list("pk", "outcome"))
    assert outcomes[first.pk] == outcomes[second.pk] == "attended"
    assert outcomes[missed.pk] == "did_not_attend"
    assert outcomes[cancelled.pk] == outcomes[to_come.pk] == ""
    assert outcomes[other_practitioner.pk] == outcomes[other_location.pk] == outcomes[yesterday.pk] == ""
    session_events = [event for event in outcome_events() if event.detail.get("session")]
    assert sorted(event.appointment_id for event in session_events) == [first.pk, second.pk]
    assert {event.actor_id for event in session_events} == {practice.user.pk}
    assert {event.organisation_id for event in session_events} == {practice.organisation.pk}


def test_a_session_with_everyone_marked_says_so(staff_client, practice):
    appointment = book_at(practice, an_hour_ago())
    appointment_outcome_record(appointment=appointment, outcome=Outcome.ATTENDED, actor=practice.user)
    response = staff_client.post(session_url(appointment), follow=True)
    assert "already has attendance recorded" in text(response)


def test_a_session_that_has_not_begun_is_refused_409(staff_client, practice):
    appointment = book_at(practice, timezone.now() + timedelta(hours=2))
    response = staff_client.post(session_url(appointment))
    assert response.status_code == 409
    assert SESSION_NOT_STARTED in text(response)
    assert Appointment.objects.get(pk=appointment.pk).outcome == ""


@pytest.mark.parametrize(
    ("day", "before_midnight_utc", "after_midnight_utc"),
    [
        # The Sunday the clocks go back: London's day starts at 23:00 UTC on the Saturday.
        ("2026-10-25", "2026-10-24T22:30:00+00:00", "2026-10-24T23:30:00+00:00"),
        # The Sunday they go forward: it starts at midnight UTC and is 23 hours long.
        ("2027-03-28", "2027-03-27T23:30:00+00:00", "2027-03-28T00:30:00+00:00"),
    ],
)
def test_a_session_is_a_london_day_across_the_clock_changes(practice, day, before_midnight_utc, after_midnight_utc):
    before = book_at(practice, datetime.fromisoformat(before_midnight_utc))
    after = book_at(practice, datetime.fromisoformat(after_midnight_utc))
    late = book_at(practice, datetime.fromisoformat(f"{day}T22:50:00+00:00"))  # 23:50 or 22:50 London
    now = datetime.fromisoformat(f"{day}T23:59:00+01:00")
    marked = session_mark_attended(appointment=after, actor=practice.user, now=now)
    outcomes = dict(Appointment.objects.values_list("pk", "outcome"))
    assert (outcomes[before.pk], outcomes[after.pk], outcomes[late.pk]) == ("", "attended", "attended")
    assert marked == 2


def test_the_attendance_controls_add_no_queries_to_the_appointments_page(
    client, practice, django_assert_max_num_queries
):
    now = datetime(2026, 12, 2, 15, 0, tzinfo=LONDON)
    other = PractitionerFactory(organisation=practice.organisation, name="Dr Other")

    def count() -> int:
        with time_machine.travel(now, tick=False):
            client.force_login(practice.user)
            with django_assert_max_num_queries(10) as captured:
                page = text(client.get("/appointments/"))
        assert "Mark all as attended" in page
        return len(captured.captured_queries)

    book_at(practice, datetime(2026, 12, 2, 9, 0, tzinfo=LONDON))
    small = count()
    for i in range(1, 12):
        for practitioner in (practice.practitioner, other):
            made = book_at(
                practice,
                datetime(2026, 12, 2, 9, 0, tzinfo=LONDON) + timedelta(minutes=10 * i),
                practitioner=practitioner,
            )
            if i % 3 == 0:
                appointment_outcome_record(appointment=made, outcome=Outcome.ATTENDED, actor=practice.user, now=now)
    assert count() == small
