"""Names with line breaks or control characters are refused where they are typed, and by the database.

An organisation name with a line break once went into an email's From header: Django refused
the header at send time, and the message could never go (issue 16, finding 3).
"""

from __future__ import annotations

import html

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from booking.models import AppointmentType, Location, Organisation, Patient, Practitioner
from booking.names import NAME_ERROR
from messaging.forms import MessageTemplateForm
from messaging.models import MessageTemplate
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

BAD_NAMES = ["Riverside\nPractice", "Riverside\r\nBcc: someone@example.org", "Tab\there", "Bell\x07", "Next\x85line"]

FIELDS = [
    (Organisation, "name"),
    (Location, "name"),
    (Practitioner, "name"),
    (Practitioner, "role"),
    (AppointmentType, "name"),
    (Patient, "first_name"),
    (Patient, "last_name"),
    (MessageTemplate, "name"),
]


def instance_of(practice, model):
    return {
        Organisation: practice.organisation,
        Location: practice.location,
        Practitioner: practice.practitioner,
        AppointmentType: practice.appointment_type,
        Patient: practice.patient,
        MessageTemplate: MessageTemplate(organisation=practice.organisation, name="Flu", body="Hello"),
    }[model]


@pytest.mark.parametrize(("model", "field"), FIELDS, ids=lambda value: getattr(value, "__name__", value))
@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_the_field_refuses_a_name_with_a_control_character(practice, model, field, bad):
    instance = instance_of(practice, model)
    setattr(instance, field, bad)
    with pytest.raises(ValidationError) as refused:
        instance.full_clean()
    assert refused.value.message_dict[field] == [NAME_ERROR]


@pytest.mark.parametrize(("model", "field"), FIELDS, ids=lambda value: getattr(value, "__name__", value))
def test_the_database_refuses_one_written_any_other_way(practice, model, field):
    instance = instance_of(practice, model)
    if instance.pk is None:
        instance.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=instance.pk).update(**{field: "Riverside\nPractice"})


def test_ordinary_names_pass(practice):
    for name in ["St Mary's Surgery", "Dr Siân O'Neill-Ødegård", "Ward 7 (Annex)", "Zoë"]:
        organisation = practice.organisation
        organisation.name = name
        organisation.full_clean()
        organisation.save()


def test_the_admin_says_why_it_refused_an_organisation_name(admin_client):
    organisation = OrganisationFactory(name="Riverside Medical Practice", ods_code="A99001")
    response = admin_client.post(
        f"/admin/booking/organisation/{organisation.pk}/change/",
        {
            "name": "Riverside\r\nMedical Practice",
            "ods_code": organisation.ods_code,
            "kind": organisation.kind,
            "phone": organisation.phone,
            "email": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert NAME_ERROR in html.unescape(response.content.decode())
    organisation.refresh_from_db()
    assert organisation.name == "Riverside Medical Practice"


def test_the_template_form_says_why_it_refused_a_name(practice):
    form = MessageTemplateForm(
        {"name": "Flu\nclinic", "body": "Hello", "is_active": "on"}, organisation=practice.organisation
    )
    assert not form.is_valid()
    assert form.errors["name"] == [NAME_ERROR]
