"""Who may see what in Django admin: an organisation's admin sees only their organisations.

The matrix: as admin, manager and staff of organisation A, every admin list, change, delete and
history page, autocomplete and action against organisation B's records; each is refused (404,
403 or a login redirect), shows nothing of B's, and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin import RelatedFieldListFilter
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from booking.admin_scope import OrganisationScopedAdmin, ScopedRelatedFieldListFilter
from booking.models import (
    Appointment,
    AppointmentType,
    AuditEvent,
    BookingLink,
    Location,
    Organisation,
    Patient,
    Practitioner,
    Rota,
    SharingAgreement,
    Slot,
    StaffMembership,
)
from messaging.models import Message, MessageTemplate, ReminderTemplate, SenderProfile
from tests.factories import (
    AppointmentFactory,
    AuditEventFactory,
    BookingLinkFactory,
    MessageFactory,
    MessageTemplateFactory,
    OrganisationFactory,
    SharingAgreementFactory,
    StaffMembershipFactory,
    UserFactory,
)
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db

SCOPED = [
    model for model, model_admin in admin.site._registry.items() if isinstance(model_admin, OrganisationScopedAdmin)
]
SUPERUSER_ONLY = [User, Group, StaffMembership, DBTaskResult]


def world(name: str) -> dict:
    """One organisation with a record of every kind the admin shows."""
    practice = make_practice(name)
    slot = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").first()
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    Slot.objects.filter(pk=slot.pk).update(status="booked")
    appointment = AppointmentFactory(slot=slot, patient=practice.patient, booking_link=link)
    partner = OrganisationFactory(name=f"{name} partner")
    agreement = SharingAgreementFactory(host=practice.organisation, partner=partner)
    return {
        Organisation: practice.organisation,
        Location: practice.location,
        Practitioner: practice.practitioner,
        AppointmentType: practice.appointment_type,
        Rota: Rota.objects.get(practitioner=practice.practitioner),
        Slot: Slot.objects.filter(appointment_type=practice.appointment_type, status="free").first(),
        Patient: practice.patient,
        BookingLink: link,
        Appointment: appointment,
        AuditEvent: AuditEventFactory(patient=practice.patient),
        SharingAgreement: agreement,
        MessageTemplate: MessageTemplateFactory(organisation=practice.organisation),
        Message: MessageFactory(patient=practice.patient),
        SenderProfile: SenderProfile.objects.create(organisation=practice.organisation, sms_sender_id=name[:11]),
        ReminderTemplate: ReminderTemplate.objects.create(organisation=practice.organisation),
        "practice": practice,
    }


@pytest.fixture
def our_admin_records():
    """Organisation A's record of every kind the admin shows, keyed by model."""
    return world("Riverside")


@pytest.fixture
def their_admin_records():
    """Organisation B's record of every kind the admin shows, keyed by model."""
    return world("Hillview")


def member(organisation, role: str, *, is_staff: bool) -> User:
    user = UserFactory(is_staff=is_staff)
    StaffMembershipFactory(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture
def org_admin_client(client, our_admin_records):
    client.force_login(member(our_admin_records[Organisation], StaffMembership.Role.ADMIN, is_staff=True))
    return client


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_scoped_model_is_covered():
    assert set(SCOPED) == {
        Organisation,
        Location,
        Practitioner,
        AppointmentType,
        Rota,
        Slot,
        Patient,
        SharingAgreement,
        BookingLink,
        Appointment,
        AuditEvent,
        MessageTemplate,
        Message,
        SenderProfile,
        ReminderTemplate,
    }


@pytest.mark.parametrize("model", SCOPED, ids=lambda model: model._meta.label)
class TestAnOrganisationsAdmin:
    def test_the_list_shows_ours_and_nothing_of_theirs(
        self, org_admin_client, our_admin_records, their_admin_records, model
    ):
        response = org_admin_client.get(url(model, "changelist"))
        assert response.status_code == 200
        shown = {obj.pk for obj in response.context["cl"].result_list}
        assert our_admin_records[model].pk in shown
        assert their_admin_records[model].pk not in shown

    def test_their_change_delete_and_history_pages_are_not_found(self, org_admin_client, their_admin_records, model):
        for view in ("change", "delete", "history"):
            # 403 where nobody may delete that kind of record at all (appointments, audit events, messages).
            assert org_admin_client.get(url(model, view, their_admin_records[model].pk)).status_code in (403, 404), view

    def test_our_change_page_opens(self, org_admin_client, our_admin_records, model):
        assert org_admin_client.get(url(model, "change", our_admin_records[model].pk)).status_code == 200

    def test_posting_a_change_or_delete_to_theirs_changes_nothing(self, org_admin_client, their_admin_records, model):
        obj = their_admin_records[model]
        before = model.objects.filter(pk=obj.pk).values().get()
        assert org_admin_client.post(url(model, "change", obj.pk), {}).status_code in (403, 404)
        assert org_admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code in (403, 404)
        assert model.objects.filter(pk=obj.pk).values().get() == before

    def test_deleting_theirs_through_the_list_action_changes_nothing(
        self, org_admin_client, their_admin_records, model
    ):
        obj = their_admin_records[model]
        org_admin_client.post(
            url(model, "changelist"), {"action": "delete_selected", ACTION_CHECKBOX_NAME: [obj.pk], "post": "yes"}
        )
        assert model.objects.filter(pk=obj.pk).exists()


class TestChoicesAndAutocomplete:
    def test_foreign_key_choices_are_only_ours(self, org_admin_client, our_admin_records, their_admin_records):
        form = org_admin_client.get(url(Location, "add")).context["adminform"].form
        assert list(form.fields["organisation"].queryset) == [our_admin_records[Organisation]]

    def test_adding_a_record_to_their_organisation_is_refused(self, org_admin_client, their_admin_records):
        response = org_admin_client.post(
            url(Location, "add"),
            {
                "organisation": their_admin_records[Organisation].pk,
                "name": "Sneaky Surgery",
                "address_line_1": "1 Road",
                "town": "Leeds",
                "postcode": "LS1 4AP",
                "is_active": "on",
            },
        )
        assert response.status_code == 200
        assert "organisation" in response.context["adminform"].form.errors
        assert not Location.objects.filter(name="Sneaky Surgery").exists()

    @pytest.mark.parametrize(
        ("model", "field", "target"),
        [
            (Location, "organisation", Organisation),
            (Rota, "practitioner", Practitioner),
            (Rota, "location", Location),
            (Slot, "appointment_type", AppointmentType),
            (Patient, "organisation", Organisation),
        ],
    )
    def test_autocomplete_offers_only_ours(
        self, org_admin_client, our_admin_records, their_admin_records, model, field, target
    ):
        response = org_admin_client.get(
            reverse("admin:autocomplete"),
            {"app_label": model._meta.app_label, "model_name": model._meta.model_name, "field_name": field, "term": ""},
        )
        ids = {int(result["id"]) for result in response.json()["results"]}
        assert our_admin_records[target].pk in ids
        assert their_admin_records[target].pk not in ids

    def test_raw_id_popups_list_only_ours(self, org_admin_client, our_admin_records, their_admin_records):
        response = org_admin_client.get(url(Patient, "changelist"), {"_popup": "1", "_to_field": "id"})
        shown = {obj.pk for obj in response.context["cl"].result_list}
        assert (our_admin_records[Patient].pk in shown, their_admin_records[Patient].pk in shown) == (True, False)


class TestActionsOnTheirRecords:
    def post_action(self, client, model, action, objects, **extra):
        return client.post(
            url(model, "changelist"), {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **extra}
        )

    def test_revoking_their_link_changes_nothing(self, org_admin_client, their_admin_records):
        link = BookingLinkFactory(
            patient=their_admin_records[Patient],
            appointment_type=their_admin_records[AppointmentType],
            location=their_admin_records[Location],
        )
        self.post_action(org_admin_client, BookingLink, "revoke_links", [link])
        link.refresh_from_db()
        assert link.status == "active"

    def test_blocking_their_slot_changes_nothing(self, org_admin_client, their_admin_records):
        self.post_action(org_admin_client, Slot, "block_slots", [their_admin_records[Slot]])
        assert Slot.objects.get(pk=their_admin_records[Slot].pk).status == "free"

    def test_cancelling_their_appointment_changes_nothing(self, org_admin_client, their_admin_records):
        self.post_action(
            org_admin_client,
            Appointment,
            "cancel_appointments",
            [their_admin_records[Appointment]],
            apply="Cancel appointments",
            reason="booked_in_error",
        )
        assert Appointment.objects.get(pk=their_admin_records[Appointment].pk).status == "booked"

    def test_generating_slots_from_their_rota_makes_nothing(self, org_admin_client, their_admin_records):
        before = Slot.objects.count()
        today = timezone.localdate()
        self.post_action(
            org_admin_client,
            Rota,
            "generate_slots",
            [their_admin_records[Rota]],
            apply="Generate slots",
            start_date=today.isoformat(),
            end_date=(today + timedelta(days=6)).isoformat(),
        )
        assert Slot.objects.count() == before


class TestOtherRoles:
    @pytest.mark.parametrize("model", SUPERUSER_ONLY, ids=lambda model: model._meta.label)
    def test_users_groups_memberships_and_tasks_are_for_superusers(self, org_admin_client, model):
        assert org_admin_client.get(url(model, "changelist")).status_code == 403

    @pytest.mark.parametrize("role", [StaffMembership.Role.STAFF, StaffMembership.Role.MANAGER])
    def test_staff_and_managers_without_admin_access_are_sent_to_sign_in(self, client, our_admin_records, role):
        client.force_login(member(our_admin_records[Organisation], role, is_staff=False))
        response = client.get(url(Patient, "changelist"))
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]

    def test_an_admin_flag_without_an_admin_membership_sees_nothing(self, client, our_admin_records):
        client.force_login(member(our_admin_records[Organisation], StaffMembership.Role.MANAGER, is_staff=True))
        assert client.get(url(Patient, "changelist")).status_code == 403

    def test_a_superuser_sees_everyone(self, admin_client, our_admin_records, their_admin_records):
        shown = {obj.pk for obj in admin_client.get(url(Patient, "changelist")).context["cl"].result_list}
        assert {our_admin_records[Patient].pk, their_admin_records[Patient].pk} <= shown


def test_a_partner_can_read_but_not_change_the_hosts_agreement(client, our_admin_records, their_admin_records):
    agreement = their_admin_records[SharingAgreement]
    partner_admin = member(agreement.partner, StaffMembership.Role.ADMIN, is_staff=True)
    client.force_login(partner_admin)
    response = client.get(url(SharingAgreement, "change", agreement.pk))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    client.post(
        url(SharingAgreement, "change", agreement.pk), {"host": agreement.host_id, "partner": agreement.partner_id}
    )
    assert client.post(url(SharingAgreement, "delete", agreement.pk), {"post": "yes"}).status_code == 403
    agreement.refresh_from_db()
    assert agreement.ended_at is None
    assert SharingAgreement.objects.filter(pk=agreement.pk).exists()


def test_seeing_and_changing_a_patient_in_admin_is_audited(org_admin_client, our_admin_records):
    patient = our_admin_records[Patient]
    org_admin_client.get(url(Patient, "change", patient.pk))
    assert AuditEvent.objects.filter(action=AuditEvent.Action.VIEWED, patient=patient, detail__where="admin").exists()
    form = org_admin_client.get(url(Patient, "change", patient.pk)).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update({"first_name": "Olly", "organisation": patient.organisation_id, "date_of_birth": "1980-05-17"})
    response = org_admin_client.post(url(Patient, "change", patient.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANGED, patient=patient)
    assert "first_name" in event.detail["fields"]


# --- Filter sidebars and creating organisations (issue 16, finding 4) ----------------------


@pytest.mark.parametrize("model", SCOPED, ids=lambda model: model._meta.label)
def test_no_filter_sidebar_names_another_organisations_records(
    org_admin_client, our_admin_records, their_admin_records, model
):
    response = org_admin_client.get(url(model, "changelist"))
    assert response.status_code == 200
    related = [spec for spec in response.context["cl"].filter_specs if isinstance(spec, RelatedFieldListFilter)]
    assert all(isinstance(spec, ScopedRelatedFieldListFilter) for spec in related)
    assert "Hillview" not in response.content.decode()


def test_the_organisation_filter_lists_the_admins_own_organisations(client, our_admin_records, their_admin_records):
    admin_user = member(our_admin_records[Organisation], StaffMembership.Role.ADMIN, is_staff=True)
    second = world("Eastfield")
    StaffMembership.objects.create(user=admin_user, organisation=second[Organisation], role="admin")
    client.force_login(admin_user)
    response = client.get(url(Location, "changelist"))
    (organisations,) = [spec for spec in response.context["cl"].filter_specs if spec.field_path == "organisation"]
    assert sorted(name for _, name in organisations.lookup_choices) == ["Eastfield Practice", "Riverside Practice"]


def test_a_superuser_still_sees_every_organisation_in_the_filters(admin_client, our_admin_records, their_admin_records):
    response = admin_client.get(url(Location, "changelist"))
    assert "Hillview Practice" in response.content.decode()


class TestCreatingOrganisations:
    def test_an_organisations_admin_cannot_add_one(self, org_admin_client):
        assert org_admin_client.get(url(Organisation, "add")).status_code == 403
        response = org_admin_client.post(
            url(Organisation, "add"),
            {"name": "Made Up Practice", "ods_code": "A12345", "kind": "practice", "phone": "01632 960000"},
        )
        assert response.status_code == 403
        assert not Organisation.objects.filter(name="Made Up Practice").exists()

    def test_the_changelist_offers_no_add_button(self, org_admin_client):
        response = org_admin_client.get(url(Organisation, "changelist"))
        assert url(Organisation, "add") not in response.content.decode()

    def test_a_superuser_can(self, admin_client):
        assert admin_client.get(url(Organisation, "add")).status_code == 200


def test_view_on_site_for_a_stored_link_is_a_404_not_a_500(admin_client):
    # A link read back from the database has no token (only its digest is kept), so it has no
    # URL to show; Django's "view on site" shortcut must say so rather than fail.
    from django.contrib.contenttypes.models import ContentType

    from booking.models import BookingLink
    from tests.factories import BookingLinkFactory

    link = BookingLink.objects.get(pk=BookingLinkFactory().pk)
    content_type = ContentType.objects.get_for_model(BookingLink)
    response = admin_client.get(f"/admin/r/{content_type.pk}/{link.pk}/")
    assert response.status_code == 404
