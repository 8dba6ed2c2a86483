"""A host's managers share appointment types and locations with a partner, and end agreements."""

from __future__ import annotations

import pytest
from django.test import Client

from booking.models import SharingAgreement, StaffMembership
from booking.references import encode_reference
from tests.factories import LocationFactory
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db


def manager_of(organisation) -> Client:
    practice_user = StaffMembership.objects.filter(organisation=organisation).first().user
    StaffMembership.objects.filter(user=practice_user, organisation=organisation).update(role="manager")
    client = Client()
    client.force_login(practice_user)
    return client


@pytest.fixture
def host():
    return make_practice("Northgate")


def offered_in_builder(client: Client, practice) -> str:
    return client.get(
        f"/messages/new/?patient={encode_reference(practice.patient.pk, namespace='patient')}"
    ).content.decode()


def test_a_host_manager_shares_and_the_partner_can_offer_it_then_ends_it(host, practice, staff_client):
    host_client = manager_of(host.organisation)
    response = host_client.post(
        "/sharing/",
        {
            "partner": practice.organisation.pk,
            "appointment_types": [host.appointment_type.pk],
            "locations": [host.location.pk],
        },
    )
    assert response.status_code == 302
    agreement = SharingAgreement.objects.get()
    assert (agreement.host, agreement.partner) == (host.organisation, practice.organisation)
    assert f"Flu vaccination ({host.organisation.name})" in offered_in_builder(staff_client, practice)

    host_client.post(f"/sharing/{agreement.pk}/end/")
    agreement.refresh_from_db()
    assert agreement.ended_at is not None
    assert f"Flu vaccination ({host.organisation.name})" not in offered_in_builder(staff_client, practice)


def test_staff_who_are_not_managers_cannot_share(host, practice):
    client = Client()
    client.force_login(host.user)
    assert client.get("/sharing/").status_code == 403
    assert client.post("/sharing/", {"partner": practice.organisation.pk}).status_code == 403
    assert not SharingAgreement.objects.exists()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"partner": ""}, "Choose the organisation to share with."),
        ({"appointment_types": []}, "Choose at least one appointment type."),
        ({"locations": []}, "Choose at least one location."),
        ({"locations": ["other"]}, "Choose from the list."),
    ],
)
def test_bad_agreements_are_form_errors(host, practice, change, error):
    other_location = LocationFactory(organisation=practice.organisation)
    data = {
        "partner": practice.organisation.pk,
        "appointment_types": [host.appointment_type.pk],
        "locations": [host.location.pk],
        **change,
    }
    if data["locations"] == ["other"]:
        data["locations"] = [other_location.pk]  # the partner's own location isn't the host's to share
    response = manager_of(host.organisation).post("/sharing/", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not SharingAgreement.objects.exists()


def test_sharing_twice_with_the_same_partner_says_to_end_the_first(host, practice):
    client = manager_of(host.organisation)
    data = {
        "partner": practice.organisation.pk,
        "appointment_types": [host.appointment_type.pk],
        "locations": [host.location.pk],
    }
    client.post("/sharing/", data)
    response = client.post("/sharing/", data)
    assert response.status_code == 400
    assert "end that agreement first" in response.content.decode()
    assert SharingAgreement.objects.count() == 1


def test_the_partner_cannot_end_the_hosts_agreement(host, practice):
    host_client = manager_of(host.organisation)
    host_client.post(
        "/sharing/",
        {
            "partner": practice.organisation.pk,
            "appointment_types": [host.appointment_type.pk],
            "locations": [host.location.pk],
        },
    )
    agreement = SharingAgreement.objects.get()
    partner_client = manager_of(practice.organisation)
    assert partner_client.post(f"/sharing/{agreement.pk}/end/").status_code == 404
    agreement.refresh_from_db()
    assert agreement.ended_at is None
    assert host.organisation.name in partner_client.get("/sharing/").content.decode()
