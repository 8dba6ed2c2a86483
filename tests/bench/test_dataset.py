"""The bench's data-set builder and run fixtures, at a tiny scale: they build, the counts match,
every constraint is back in force after the bulk load, and the links open with their tokens."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test import Client, override_settings

from bench import dataset
from bench.campaign_pacing import campaign_pacing_bench
from bench.plan import CLINIC_CLINICIANS, RACE_CLIENTS, RACE_SLOTS, make_plan
from bench.reminders import reminder_sweep_bench
from bench.report import CAMPAIGN_QUERIES_PER_BATCH, REMINDER_QUERIES_PER_BATCH, reminder_budgets
from booking.models import (
    Appointment,
    BookingLink,
    Location,
    Organisation,
    Patient,
    Practitioner,
    Slot,
    hash_token,
)
from booking.nhs_numbers import is_valid_nhs_number
from booking.phones import is_uk_mobile
from booking.references import decode_reference
from messaging.models import Campaign, Message

SCALE = dataset.Scale(0.001)  # 2 organisations, 4 practitioners, 1,000 slots, 200 patients, 100 links


def schema() -> set[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND (tablename LIKE 'booking_%' OR tablename LIKE 'messaging_%')"
        )
        indexes = set(cursor.fetchall())
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
            "WHERE connamespace = current_schema()::regnamespace "
            "AND (conrelid::regclass::text LIKE 'booking_%' OR conrelid::regclass::text LIKE 'messaging_%')"
        )
        return indexes | set(cursor.fetchall())


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker, tmp_path_factory):
    directory = tmp_path_factory.mktemp("bench")
    with django_db_blocker.unblock():
        before = schema()
        manifest = dataset.build(scale=SCALE, directory=directory, progress=False)
        after = schema()
        yield directory, manifest, before, after
        # Leave the test database as other tests expect it: empty.
        from django.core.management import call_command

        call_command("flush", interactive=False, verbosity=0)


# The data set is built once for the module, committed (VACUUM can't run in a transaction);
# each test reads it inside its own transaction, rolled back after it.
@pytest.mark.django_db
class TestTheDataSet:
    def test_the_counts_are_what_the_scale_says(self, built):
        _, manifest, *_ = built
        assert manifest.counts == SCALE.counts()
        assert Organisation.objects.count() == SCALE.organisations == 2
        assert Organisation.objects.filter(kind=Organisation.Kind.HUB).count() == 1
        assert Location.objects.count() == SCALE.locations
        assert Practitioner.objects.count() == SCALE.practitioners
        assert Slot.objects.count() == SCALE.slots == 1000
        assert Patient.objects.count() == SCALE.patients == 200
        assert BookingLink.objects.count() == SCALE.links == 100
        assert Message.objects.filter(booking_link__isnull=False).count() == SCALE.links
        assert Appointment.objects.count() == manifest.extra["appointments"] > 0

    def test_every_index_and_constraint_is_back_after_the_bulk_load(self, built):
        _, _, before, after = built
        assert after == before

    def test_rows_keep_the_rules(self, built):
        assert all(is_valid_nhs_number(n) for n in Patient.objects.values_list("nhs_number", flat=True))
        mobiles = [m for m in Patient.objects.values_list("mobile", flat=True) if m]
        assert mobiles
        assert all(is_uk_mobile(m) for m in mobiles[:50])
        booked = Slot.objects.filter(status=Slot.Status.BOOKED).count()
        assert booked == Appointment.objects.filter(status=Appointment.Status.BOOKED).count()
        for link in BookingLink.objects.filter(status=BookingLink.Status.BOOKED):
            appointment = Appointment.objects.get(booking_link=link)
            assert (appointment.slot.appointment_type_id, appointment.slot.location_id) == (
                link.appointment_type_id,
                link.location_id,
            )

    def test_the_tokens_file_opens_the_links(self, built):
        directory, *_ = built
        tokens = dataset.read_tokens(dataset.tokens_path(directory))
        assert len(tokens) == SCALE.links
        links = {link.pk: link for link in BookingLink.objects.select_related("patient")}
        for link_id, (token, born) in tokens.items():
            assert hash_token(token) == links[link_id].token_digest
            assert date.fromisoformat(born) == links[link_id].patient.date_of_birth
        link_id = next(pk for pk, link in links.items() if link.status == BookingLink.Status.ACTIVE)
        token, born = tokens[link_id]
        client = Client()
        assert client.get(f"/b/{token}").status_code in (200, 410)  # 410 if it was sent with a short expiry

    def test_a_matching_data_set_is_reused_and_another_scale_is_rebuilt(self, built):
        directory, *_ = built
        assert dataset.why_rebuild(scale=SCALE, directory=directory) is None
        assert "scale" in dataset.why_rebuild(scale=dataset.Scale(0.002), directory=directory)

    def test_a_run_makes_its_own_links_and_the_race(self, built):
        directory, *_ = built
        plan = make_plan(requests=0.01, directory=directory, seed=1, clinic_weeks=1)
        race = plan["race"]
        assert len(race["slots"]) == RACE_SLOTS
        assert len(race["clients"]) == RACE_CLIENTS
        assert len({client["token"] for client in race["clients"]}) == RACE_CLIENTS
        assert len({item["slot"] for item in plan["book"]}) == len(plan["book"])
        assert plan["open"]
        assert plan["search"]
        assert plan["send"]
        assert Slot.objects.filter(appointment_type_id=race["appointment_type_id"]).count() == RACE_SLOTS
        # (h) Each change has its own booked link and its own free time, apart from the bookings'.
        changes = plan["change"]
        assert changes
        targets = {item["slot"] for item in changes}
        assert len(targets) == len(changes)
        assert not targets & {item["slot"] for item in plan["book"]}
        for item in changes:
            appointment = Appointment.objects.select_related("booking_link").get(
                pk=decode_reference(item["appointment"], namespace="appointment")
            )
            assert (appointment.status, appointment.booking_link.status) == ("booked", "booked")
            assert appointment.booking_link.token_digest == hash_token(item["token"])
            assert Slot.objects.get(pk=decode_reference(item["slot"], namespace="slot")).status == "free"
        # The many-clinicians clinic: 20 clinicians' 10-minute slots, 30% booked, links for any and for one.
        clinic = plan["clinic"]
        slots = Slot.objects.filter(appointment_type_id=clinic["appointment_type_id"])
        assert slots.values("practitioner").distinct().count() == CLINIC_CLINICIANS
        assert 0.25 < slots.filter(status=Slot.Status.BOOKED).count() / slots.count() < 0.35
        assert clinic["any"]["patients"]
        assert clinic["one"]["patients"]

    @override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
    def test_the_reminder_sweep_queues_what_is_due_by_index_in_constant_queries_and_leaves_the_data_set(self, built):
        appointments_before = Appointment.objects.count()
        # 1,000 booked, 10 due; a week on, where this tiny data set still has slots.
        sweep = reminder_sweep_bench(scale=SCALE.factor * 10, days_ahead=7)
        assert sweep["appointments"] == 1000
        assert sweep["queued"] + sweep["not_sent"] == sweep["due"] == 10
        assert sweep["queries_per_batch"] == REMINDER_QUERIES_PER_BATCH
        assert sweep["plan_uses_index"]
        assert reminder_budgets({"reminders": sweep})[0]["passed"]
        # Rolled back: the data set is as it was built.
        assert Appointment.objects.count() == appointments_before
        assert not Message.objects.filter(reminder__isnull=False).exists()

    @override_settings(TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}})
    def test_a_campaigns_invitations_are_made_in_constant_queries_and_leave_the_data_set(self, built):
        links_before = BookingLink.objects.count()
        # The tiny data set's one practice: 100 rows, as many invited as its free times allow.
        pacing = campaign_pacing_bench(scale=SCALE.factor)
        assert pacing["rows"] == 100
        assert pacing["invited"] + pacing["unreachable"] == min(pacing["rows"], 5 * pacing["free_times"])
        assert pacing["messages"] == pacing["invited"] > 0
        assert pacing["queries_per_batch"] == CAMPAIGN_QUERIES_PER_BATCH
        # Rolled back: the data set is as it was built.
        assert BookingLink.objects.count() == links_before
        assert not Campaign.objects.exists()
