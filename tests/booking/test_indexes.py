"""The queries the pages will make can use their indexes.

Planner choices depend on table sizes, so these tests turn sequential scans off and check that
an index *can* serve the query: a renamed column or a changed expression would break that
silently otherwise. Speed itself is measured by the benchmarks.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from booking.changes import patient_changes
from booking.models import AuditEvent, Patient, Slot
from messaging.confirmations import cancellations_unnoticed
from tests.factories import OrganisationFactory, PatientFactory

pytestmark = pytest.mark.django_db


def plan(queryset, *, index: str) -> str:
    """The query's plan with only `index` (and constraint-backed indexes) on its table.

    Planner choices between equally good indexes depend on statistics; dropping the others
    inside the test's transaction (PostgreSQL DDL is transactional, so they come back)
    checks what matters: that this index can serve the query.
    """
    table = queryset.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = %s AND i.relname <> %s
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            """,
            [table, index],
        )
        for (other,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{other}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def test_patient_search_by_part_of_a_name_uses_the_trigram_index():
    PatientFactory()
    last = Patient.objects.filter(last_name__icontains="smi")
    assert "patient_last_name_trgm" in plan(last, index="patient_last_name_trgm")


def test_patient_search_by_the_first_two_letters_of_a_name_uses_the_trigram_index():
    PatientFactory()
    last = Patient.objects.filter(last_name__istartswith="sm")
    assert "patient_last_name_trgm" in plan(last, index="patient_last_name_trgm")


def test_patient_search_by_date_of_birth_uses_an_index():
    patient = PatientFactory()
    query = Patient.objects.filter(organisation=patient.organisation, date_of_birth=patient.date_of_birth).order_by()
    assert "patient_org_dob" in plan(query, index="patient_org_dob")


def test_free_times_of_a_type_at_a_location_use_the_partial_index():
    query = Slot.objects.filter(
        appointment_type_id=1, location_id=1, status=Slot.Status.FREE, start__gte=timezone.now()
    ).order_by("start")
    assert "slot_free_by_type_location" in plan(query, index="slot_free_by_type_location")


def test_free_times_of_one_practitioner_use_their_own_partial_index():
    query = Slot.objects.filter(
        appointment_type_id=1, location_id=1, practitioner_id=1, status=Slot.Status.FREE, start__gte=timezone.now()
    ).order_by("start")
    assert "slot_free_by_practitioner" in plan(query, index="slot_free_by_practitioner")


def test_the_requeue_sweeps_recent_cancellations_use_the_partial_index():
    query = cancellations_unnoticed(now=timezone.now(), within=timedelta(days=1), grace=timedelta(minutes=2))
    assert "appointment_link_cancelled_at" in plan(query, index="appointment_link_cancelled_at")


def test_an_organisations_recent_audit_events_use_an_index():
    organisations = [OrganisationFactory()]
    query = AuditEvent.objects.filter(organisation=organisations[0]).order_by("-created_at")[:50]
    assert "audit_event_org_created" in plan(query, index="audit_event_org_created")


def test_patient_search_by_first_name_uses_its_trigram_index():
    PatientFactory()
    first = Patient.objects.filter(first_name__icontains="oli")
    assert "patient_first_name_trgm" in plan(first, index="patient_first_name_trgm")


def test_home_counts_the_changes_by_patients_since_a_moment_with_the_partial_index():
    query = patient_changes(organisation_ids=[1], since=timezone.now())
    assert "appointment_patient_change_at" in plan(query, index="appointment_patient_change_at")
