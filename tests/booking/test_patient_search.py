"""Finding patients as staff type (booking/patients.py)."""

from __future__ import annotations

import pytest

from booking.patients import patient_search
from tests.factories import OrganisationFactory, PatientFactory

pytestmark = pytest.mark.django_db


def names(organisation, query: str) -> list[str]:
    return [p.full_name for p in patient_search(organisation_ids=[organisation.pk], query=query)]


def test_two_letters_find_names_that_start_with_them():
    organisation = OrganisationFactory()
    PatientFactory(organisation=organisation, first_name="Ada", last_name="Smith")
    PatientFactory(organisation=organisation, first_name="Smita", last_name="Rao")
    PatientFactory(organisation=organisation, first_name="Bob", last_name="Chisman")
    assert names(organisation, "sm") == ["Smita Rao", "Ada Smith"]
    assert names(organisation, "ism") == ["Bob Chisman"]  # three letters or more: anywhere in the name


def test_results_are_in_name_order_whatever_the_case():
    organisation = OrganisationFactory()
    for first, last in (("Zoe", "abbott"), ("Amy", "Baker"), ("Cal", "Abbott"), ("Ann", "ABBOTT")):
        PatientFactory(organisation=organisation, first_name=first, last_name=last)
    assert names(organisation, "abbott") == ["Ann ABBOTT", "Cal Abbott", "Zoe abbott"]
