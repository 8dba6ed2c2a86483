"""The queries the pages will make can use their indexes.

Planner choices depend on table sizes, so these tests turn sequential scans off and check that
an index *can* serve the query: a renamed column or a changed expression would break that
silently otherwise. Speed itself is measured by the benchmarks.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from booking.models import AuditEvent, Patient, Slot
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def plan(queryset) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def test_patient_search_by_part_of_a_name_uses_the_trigram_index():
    PatientFactory()
    assert "patient_last_name_trgm" in plan(Patient.objects.filter(last_name__icontains="smi"))
    assert "patient_first_name_trgm" in plan(Patient.objects.filter(first_name__icontains="oli"))


def test_patient_search_by_date_of_birth_uses_an_index():
    patient = PatientFactory()
    # With a handful of rows both of the organisation's indexes cost the same; give the planner
    # statistics that look like a practice list, where a date of birth is selective.
    Patient.objects.bulk_create(
        Patient(
            organisation=patient.organisation,
            first_name="Test",
            last_name=f"Patient{i}",
            date_of_birth=date(1930, 1, 1) + timedelta(days=i * 37),
        )
        for i in range(500)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE booking_patient")
    query = Patient.objects.filter(organisation=patient.organisation, date_of_birth=patient.date_of_birth).order_by()
    assert "patient_org_dob" in plan(query)


def test_free_times_of_a_type_at_a_location_use_the_partial_index():
    query = Slot.objects.filter(
        appointment_type_id=1, location_id=1, status=Slot.Status.FREE, start__gte=timezone.now()
    ).order_by("start")
    assert "slot_free_by_type_location" in plan(query)


def test_an_organisations_recent_audit_events_use_an_index():
    query = AuditEvent.objects.filter(organisation_id=1).order_by("-created_at")[:50]
    assert "audit_event_org_created" in plan(query)
