"""Who may see what on the staff pages, and the allowed path through a sharing agreement.

As staff, manager and admin of organisation A, every staff page and action against
organisation B's patients, links, messages and appointments is refused and changes nothing.
Then, end to end: a practice sends a link for a hub's clinic, the patient books the hub's
slot, the hub sees the appointment with the patient's details, the practice sees its patient's
booking, and a third practice sees neither.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from booking.models import Appointment, AuditEvent, BookingLink, StaffMembership
from booking.references import encode_reference
from messaging.models import Message
from tests.factories import (
    AppointmentFactory,
    AuditEventFactory,
    BookingLinkFactory,
    MessageFactory,
    StaffMembershipFactory,
    UserFactory,
)
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db

ROLES = [StaffMembership.Role.STAFF, StaffMembership.Role.MANAGER, StaffMembership.Role.ADMIN]


@pytest.fixture
def their_patient_records():
    """Another practice's patient, with a link, a locked link, a message and a booked appointment."""
    practice = make_practice("Hillview")
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    locked = BookingLinkFactory(
        patient=practice.patient,
        appointment_type=practice.appointment_type,
        location=practice.location,
        status="locked",
        failed_attempts=5,
    )
    message = MessageFactory(patient=practice.patient, booking_link=link)
    slot = practice.practitioner.slots.order_by("start").first()
    slot.status = "booked"
    slot.save()
    appointment = AppointmentFactory(slot=slot, patient=practice.patient)
    AuditEventFactory(patient=practice.patient)
    return {"practice": practice, "link": link, "locked": locked, "message": message, "appointment": appointment}


def client_for(role: str) -> tuple[Client, object]:
    ours = make_practice("Riverside")
    user = UserFactory(is_staff=role == StaffMembership.Role.ADMIN)
    StaffMembershipFactory(user=user, organisation=ours.organisation, role=role)
    client = Client()
    client.force_login(user)
    return client, ours


def patient_ref(patient) -> str:
    return encode_reference(patient.pk, namespace="patient")


@pytest.mark.parametrize("role", ROLES)
class TestOtherOrganisationsRecords:
    def test_every_staff_page_refuses_their_patient_link_and_message(self, their_patient_records, role):
        client, _ = client_for(role)
        patient = their_patient_records["practice"].patient
        link, locked, message = (
            their_patient_records["link"],
            their_patient_records["locked"],
            their_patient_records["message"],
        )
        before = {
            "links": list(BookingLink.objects.values_list("pk", "status", "failed_attempts").order_by("pk")),
            "messages": Message.objects.count(),
        }
        refused = [
            client.get(f"/messages/new/?patient={patient_ref(patient)}"),
            client.post(
                f"/messages/new/?patient={patient_ref(patient)}",
                {
                    "patient": patient_ref(patient),
                    "channel": "sms",
                    "body": "Hi",
                    "link_expiry": "14d",
                    "idempotency_key": str(uuid.uuid4()),
                    "action": "send",
                },
            ),
            client.post("/messages/new/count/", {"patient": patient_ref(patient), "body": "x"}),
            client.get("/messages/new/link/", {"patient": patient_ref(patient)}),
            client.get(f"/messages/{message.reference}/"),
            client.post(f"/messages/links/{link.reference}/revoke/"),
            client.post(f"/messages/links/{locked.reference}/unlock/"),
        ]
        assert [response.status_code for response in refused] == [404] * len(refused)
        after = {
            "links": list(BookingLink.objects.values_list("pk", "status", "failed_attempts").order_by("pk")),
            "messages": Message.objects.count(),
        }
        assert after == before

    def test_lists_show_nothing_of_theirs(self, their_patient_records, role):
        client, _ = client_for(role)
        for page in ("/", "/messages/", "/appointments/", "/messages/new/patients/?q=smith"):
            content = client.get(page).content.decode()
            assert their_patient_records["message"].reference not in content, page
            assert their_patient_records["appointment"].reference not in content, page
            assert patient_ref(their_patient_records["practice"].patient) not in content, page

    def test_the_audit_trail_is_for_managers_and_shows_only_their_organisation(self, their_patient_records, role):
        client, ours = client_for(role)
        AuditEventFactory(patient=ours.patient)
        response = client.get("/audit/")
        if role == StaffMembership.Role.STAFF:
            assert response.status_code == 403
            return
        assert response.status_code == 200
        events = list(response.context["page"].object_list)
        assert events
        assert {event.organisation_id for event in events} == {ours.organisation.pk}


def test_through_an_agreement_the_hub_and_the_practice_each_see_the_booking(
    client, practice, hub, django_capture_on_commit_callbacks
):
    # The practice sends a link for the hub's clinic.
    client.force_login(practice.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/messages/new/?patient={patient_ref(practice.patient)}",
            {
                "patient": patient_ref(practice.patient),
                "channel": "sms",
                "body": "Book: {{Appointment Link}}",
                "appointment_type": hub.appointment_type.pk,
                "location": hub.location.pk,
                "link_expiry": "14d",
                "link_added": "True",
                "idempotency_key": str(uuid.uuid4()),
                "action": "send",
            },
        )
    token = Message.objects.get().body.split("/b/")[1]

    # The patient books the hub's slot through the link.
    patient = Client()
    born = practice.patient.date_of_birth
    assert patient.post(f"/b/{token}", {"day": born.day, "month": born.month, "year": born.year}).status_code == 302
    slot = hub.practitioner.slots.get()
    response = patient.post(f"/b/{token}/confirm", {"slot": encode_reference(slot.pk, namespace="slot")})
    assert response.status_code == 302
    appointment = Appointment.objects.get()
    assert appointment.slot == slot

    # The hub's staff see it with what they need to run the clinic, and seeing it is audited.
    hub_user = UserFactory(username="hub-reception")
    StaffMembershipFactory(user=hub_user, organisation=hub.organisation)
    hub_client = Client()
    hub_client.force_login(hub_user)
    content = hub_client.get("/appointments/").content.decode()
    for detail in (practice.patient.full_name, practice.patient.nhs_number_for_display, appointment.reference):
        assert detail in content
    assert AuditEvent.objects.filter(action=AuditEvent.Action.VIEWED, actor=hub_user, patient=practice.patient).exists()

    # The practice sees its patient's booking; another practice sees nothing.
    assert appointment.reference in client.get("/appointments/").content.decode()
    assert "Booked for" in client.get("/messages/").content.decode()
    outsider = make_practice("Elsewhere")
    outside_client = Client()
    outside_client.force_login(outsider.user)
    assert appointment.reference not in outside_client.get("/appointments/").content.decode()
