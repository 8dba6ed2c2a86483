"""`manage.py seed_demo`: the demo a new user sees after `make run`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.utils import timezone

from booking import models
from booking.nhs_numbers import is_valid_nhs_number
from booking.phones import is_uk_mobile
from hero.demo import DEMO_PASSWORD
from messaging.models import Campaign, MessageTemplate
from tests.transactions import transaction_for_the_class

pytestmark = pytest.mark.django_db

COUNTED = [
    models.Organisation,
    models.StaffMembership,
    models.Location,
    models.Practitioner,
    models.AppointmentType,
    models.Rota,
    models.Slot,
    models.Patient,
    models.SharingAgreement,
    MessageTemplate,
    Campaign,
]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", "--allow-without-debug", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


@pytest.fixture(scope="class")
def seeded(django_db_setup, django_db_blocker) -> Iterator[str]:
    """The demo, seeded once for a class of tests that only read it (it takes a second or more).

    What the command printed.
    """
    with transaction_for_the_class(django_db_blocker):
        yield seed()


class TestTheDemo:
    def test_running_it_twice_changes_nothing(self, seeded):
        first = counts()
        slots_before = set(models.Slot.objects.values_list("pk", "start", "status"))
        output = seed()
        assert counts() == first
        assert set(models.Slot.objects.values_list("pk", "start", "status")) == slots_before
        assert "0 new slots" in output

    def test_it_makes_two_practices_and_a_pcn_hub_that_shares_with_them(self, seeded):
        kinds = sorted(models.Organisation.objects.values_list("kind", flat=True))
        assert kinds == ["hub", "practice", "practice"]
        hub = models.Organisation.objects.get(kind="hub")
        agreements = models.SharingAgreement.objects.in_force().filter(host=hub)
        assert agreements.count() == 2
        assert all(agreement.appointment_types.exists() and agreement.locations.exists() for agreement in agreements)

    def test_it_makes_the_seeds_kinds_of_appointment_type(self, seeded):
        names = set(models.AppointmentType.objects.values_list("name", flat=True))
        assert {"GP appointment", "Smear test", "Blood test", "Flu vaccination", "Video consultation"} <= names
        video = models.AppointmentType.objects.filter(name="Video consultation").first()
        assert video.mode == models.AppointmentType.Mode.VIDEO
        assert all(t.guidance for t in models.AppointmentType.objects.all())

    def test_it_makes_slots_for_the_next_four_weeks_from_rotas(self, seeded):
        today = timezone.localdate()
        starts = [timezone.localtime(start).date() for start in models.Slot.objects.values_list("start", flat=True)]
        assert min(starts) >= today
        assert max(starts) <= today + timedelta(days=27)
        assert max(starts) >= today + timedelta(days=20)
        assert not models.Slot.objects.filter(rota__isnull=True).exists()
        for appointment_type in models.AppointmentType.objects.all():
            assert appointment_type.slots.exists(), appointment_type

    def test_it_makes_fifty_patients_with_valid_nhs_numbers_uk_mobiles_and_emails(self, seeded):
        patients = list(models.Patient.objects.all())
        assert len(patients) == 50
        assert all(is_valid_nhs_number(patient.nhs_number) for patient in patients)
        with_mobile = [patient for patient in patients if patient.mobile]
        assert len(with_mobile) >= 40
        assert all(is_uk_mobile(patient.mobile) for patient in with_mobile)
        assert sum(1 for patient in patients if patient.email) >= 40
        assert {patient.organisation.kind for patient in patients} == {"practice"}

    def test_each_organisation_has_a_staff_login_that_works(self, seeded):
        output = seeded
        for organisation in models.Organisation.objects.all():
            membership = organisation.memberships.get()
            assert membership.role == models.StaffMembership.Role.MANAGER
            assert membership.user.username in output
            assert authenticate(username=membership.user.username, password=DEMO_PASSWORD) == membership.user
            # Staff logins can't reach Django admin until admin is scoped per organisation.
            assert not membership.user.is_staff

    def test_each_practice_has_message_templates_with_the_link_token(self, seeded):
        for organisation in models.Organisation.objects.filter(kind="practice"):
            bodies = list(MessageTemplate.objects.filter(organisation=organisation).values_list("body", flat=True))
            assert len(bodies) == 2
            assert all("{{Appointment Link}}" in body for body in bodies)


def test_it_refuses_to_run_without_debug_unless_told_to():
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=StringIO())
    assert not models.Organisation.objects.exists()


def test_a_flu_campaign_waits_checked_for_start_sending():
    seed()
    (campaign,) = Campaign.objects.all()
    assert campaign.status == Campaign.Status.CHECKED
    assert campaign.organisation.name == "Riverside Medical Practice"
    assert campaign.entries.count() == campaign.list_rows == campaign.list_rows_checked
    assert campaign.entries.filter(problem="").count() >= 20
    # Besides the demo's patients without a way to reach them: an invalid number and a duplicate.
    assert {"invalid", "duplicate"} <= set(campaign.entries.values_list("problem", flat=True))
    # Nothing is invited until a manager starts it.
    assert not campaign.entries.filter(link__isnull=False).exists()
