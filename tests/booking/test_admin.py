"""Django admin: every page renders, list pages stay at a constant number of queries, foreign
keys are autocompletes, audit events are read-only, and the actions admins use to generate
slots, block them, revoke links and cancel appointments do what they say.

The page tests iterate the admin site's registry, so a newly registered model is covered
without touching this file (and fails loudly if the data set below has no row for it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.widgets import AutocompleteMixin
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import connection, models
from django.forms import ModelChoiceField
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_tasks_db.models import DBTaskResult

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
from messaging.models import Message, MessageStatusEvent, MessageTemplate, ReminderTemplate, SenderProfile
from tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    AuditEventFactory,
    BookingLinkFactory,
    LocationFactory,
    MessageFactory,
    MessageTemplateFactory,
    OrganisationFactory,
    PatientFactory,
    PractitionerFactory,
    RotaFactory,
    SharingAgreementFactory,
    SlotFactory,
    StaffMembershipFactory,
    UserFactory,
)
from tests.transactions import transaction_for_the_class

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")

REGISTERED = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
DOMAIN = [(model, model_admin) for model, model_admin in REGISTERED if model._meta.app_label == "booking"]

# Records that are made by the product (sending, booking, the audit trail, the task queue),
# never typed in by an admin.
# Made by the product, never by hand (django-axes' sign-in records included).
ADD_FORBIDDEN = {
    BookingLink,
    Appointment,
    AuditEvent,
    DBTaskResult,
    Message,
    AccessAttempt,
    AccessFailureLog,
    AccessLog,
}


def by_label(pairs):
    return pytest.mark.parametrize(("model", "model_admin"), pairs, ids=[model._meta.label for model, _ in pairs])


# --- URLs, requests and messages -------------------------------------------------------------


def admin_url(model: type[models.Model], view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def changelist_url(model: type[models.Model], **query) -> str:
    url = admin_url(model, "changelist")
    return f"{url}?{urlencode(query)}" if query else url


def post_action(client, model: type[models.Model], action: str, objects, **extra):
    """Tick the objects on the list page, choose the action and press Go."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], "index": "0", **extra}
    return client.post(changelist_url(model), data)


def apply_generate_slots(client, rotas, start_date: str, end_date: str):
    """Press "Generate slots" on the action's intermediate page (which posts no "index")."""
    data = {
        "action": "generate_slots",
        ACTION_CHECKBOX_NAME: [rota.pk for rota in rotas],
        "apply": "Generate slots",
        "start_date": start_date,
        "end_date": end_date,
    }
    return client.post(changelist_url(Rota), data)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def form_errors(response) -> dict[str, list[str]]:
    return response.context["adminform"].form.errors


def admin_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def london(day: date, wall: time) -> datetime:
    return datetime.combine(day, wall, tzinfo=LONDON)


# --- A realistic data set: at least one row of every registered model ----------------------


@pytest.fixture(scope="class")
def data_set(django_db_setup, django_db_blocker) -> Iterator[dict[type[models.Model], models.Model]]:
    """One practice with everything configured, a patient who booked through a link, and a hub.

    Made once for each class of tests that only read it: the rows take a tenth of a second or
    so, and more than a hundred tests look at them.
    """
    with transaction_for_the_class(django_db_blocker):
        yield make_data_set()


def make_data_set() -> dict[type[models.Model], models.Model]:
    practice = OrganisationFactory(name="Riverside Medical Practice", ods_code="B82005", phone="+441134960123")
    hub = OrganisationFactory(name="Leeds Central PCN Hub", ods_code="U12345", kind=Organisation.Kind.HUB)
    receptionist = UserFactory(
        username="ruth.reception", first_name="Ruth", last_name="Reception", email="ruth@riverside.example"
    )
    membership = StaffMembershipFactory(user=receptionist, organisation=practice)
    group = Group.objects.create(name="Receptionists")
    receptionist.groups.add(group)

    surgery = LocationFactory(organisation=practice, name="Riverside Surgery", town="Leeds", postcode="LS1 4AP")
    practitioner = PractitionerFactory(organisation=practice, name="Dr Amina Shah", role="GP")
    practitioner.locations.add(surgery)
    asthma_review = AppointmentTypeFactory(
        organisation=practice, name="Asthma review", duration_minutes=20, guidance="Bring your inhalers."
    )
    # A second of each, at the hub, so that every list filter has choices to show.
    hub_clinic = LocationFactory(organisation=hub, name="Hub Clinic", postcode="LS2 7EW")
    blood_test = AppointmentTypeFactory(organisation=hub, name="Blood test", mode=AppointmentType.Mode.IN_PERSON)
    nurse = PractitionerFactory(organisation=hub, name="Nurse Tom Hughes", role="Practice nurse")
    nurse.locations.add(hub_clinic)
    RotaFactory(practitioner=nurse, location=hub_clinic, appointment_type=blood_test, weekdays=[5])
    SlotFactory(practitioner=nurse, location=hub_clinic, appointment_type=blood_test, status=Slot.Status.BLOCKED)
    AppointmentFactory(
        slot=SlotFactory(
            practitioner=nurse, location=hub_clinic, appointment_type=blood_test, status=Slot.Status.BOOKED
        ),
        patient=PatientFactory(organisation=hub),
        status=Appointment.Status.CANCELLED,
        cancelled_at=timezone.now(),
        cancellation_source="practice",
        cancellation_reason="booked_in_error",
    )

    rota = RotaFactory(practitioner=practitioner, location=surgery, appointment_type=asthma_review, slot_minutes=20)
    slot_details = dict(practitioner=practitioner, location=surgery, appointment_type=asthma_review, rota=rota)
    free_slot = SlotFactory(
        **slot_details, start=london(date(2026, 3, 10), time(9)), end=london(date(2026, 3, 10), time(9, 20))
    )
    booked_slot = SlotFactory(
        **slot_details,
        start=london(date(2026, 3, 10), time(9, 20)),
        end=london(date(2026, 3, 10), time(9, 40)),
        status=Slot.Status.BOOKED,
    )

    patient = PatientFactory(
        organisation=practice,
        first_name="Olivia",
        last_name="Bennett",
        nhs_number="9434765919",
        mobile="+447400123456",
        email="olivia.bennett@example.com",
    )
    agreement = SharingAgreementFactory(host=practice, partner=hub)
    agreement.appointment_types.add(asthma_review)
    agreement.locations.add(surgery)

    link = BookingLinkFactory(
        patient=patient,
        appointment_type=asthma_review,
        location=surgery,
        practitioner=practitioner,
        created_by=receptionist,
        status=BookingLink.Status.BOOKED,
    )
    appointment = AppointmentFactory(slot=booked_slot, patient=patient, booking_link=link)
    sent = AuditEventFactory(
        action=AuditEvent.Action.SENT,
        actor=receptionist,
        patient=patient,
        booking_link=link,
        ip_address="203.0.113.7",
        detail={"channel": "sms"},
    )
    AuditEventFactory(action=AuditEvent.Action.BOOKED, patient=patient, booking_link=link, appointment=appointment)
    task_result = DBTaskResult.objects.create(
        task_path="hero.no_such_module.deliver_message",
        args_kwargs={"args": [], "kwargs": {}},
        backend_name="default",
        run_after=timezone.now(),
        exception_class_path="",
        traceback="",
    )
    template = MessageTemplateFactory(organisation=practice, name="Flu invite")
    message = MessageFactory(patient=patient, booking_link=link, to_address=patient.mobile)
    MessageStatusEvent.objects.create(message=message, status="sent", source="worker", provider_status="queued")
    sender = SenderProfile.objects.create(organisation=practice, sms_sender_id="Riverside")
    reminder_text = ReminderTemplate.objects.create(organisation=practice)
    sign_in = dict(username="ruth.reception", ip_address="203.0.113.7", user_agent="Firefox", http_accept="*/*")
    failed_sign_in = AccessAttempt.objects.create(
        **sign_in, path_info="/accounts/login/", get_data="", post_data="", failures_since_start=2
    )
    failure_log = AccessFailureLog.objects.create(**sign_in, path_info="/accounts/login/", locked_out=False)
    access_log = AccessLog.objects.create(**sign_in, path_info="/accounts/login/")
    return {
        AccessAttempt: failed_sign_in,
        AccessFailureLog: failure_log,
        AccessLog: access_log,
        SenderProfile: sender,
        ReminderTemplate: reminder_text,
        MessageTemplate: template,
        Message: message,
        Organisation: practice,
        StaffMembership: membership,
        Location: surgery,
        Practitioner: practitioner,
        AppointmentType: asthma_review,
        Rota: rota,
        Slot: free_slot,
        Patient: patient,
        SharingAgreement: agreement,
        BookingLink: link,
        Appointment: appointment,
        AuditEvent: sent,
        User: receptionist,
        Group: group,
        DBTaskResult: task_result,
    }


def sample(data_set, model: type[models.Model]) -> models.Model:
    obj = data_set.get(model) or model._default_manager.first()
    assert obj is not None, f"Add a {model._meta.label} to the data_set fixture so its admin pages are tested."
    return obj


def search_values(obj: models.Model, search_fields) -> list[str]:
    """What an admin would type to find `obj`: its value for each search field."""
    values = []
    for search_field in search_fields:
        value = obj
        for part in search_field.lstrip("^=@").split("__"):
            value = getattr(value, part, None)
        if value not in (None, ""):
            values.append(str(value))
    return values


# --- Every page of every model ---------------------------------------------------------------


class TestEveryAdminPageRenders:
    @by_label(REGISTERED)
    def test_the_list_page_renders_with_its_rows(self, admin_client, data_set, model, model_admin):
        obj = sample(data_set, model)
        response = admin_client.get(changelist_url(model))
        assert response.status_code == 200
        assert obj.pk in {row.pk for row in response.context["cl"].result_list}

    @by_label(REGISTERED)
    def test_searching_for_a_value_of_each_search_field_finds_the_row(self, admin_client, data_set, model, model_admin):
        obj = sample(data_set, model)
        values = search_values(obj, model_admin.search_fields)
        assert values or not model_admin.search_fields, f"{model.__name__} has search fields but no value to try"
        for value in values:
            response = admin_client.get(changelist_url(model, q=value))
            assert response.status_code == 200, value
            assert obj.pk in {row.pk for row in response.context["cl"].result_list}, value

    @by_label(REGISTERED)
    def test_a_search_that_matches_nothing_renders_an_empty_list(self, admin_client, data_set, model, model_admin):
        response = admin_client.get(changelist_url(model, q="zzz no such thing 9434765918"))
        assert response.status_code == 200
        if model_admin.search_fields:
            assert list(response.context["cl"].result_list) == []

    @by_label(REGISTERED)
    def test_every_choice_of_every_list_filter_renders(self, admin_client, data_set, model, model_admin):
        url = changelist_url(model)
        response = admin_client.get(url)
        changelist = response.context["cl"]
        choice_urls = [
            url + choice["query_string"] for spec in changelist.filter_specs for choice in spec.choices(changelist)
        ]
        assert len(changelist.filter_specs) == len(model_admin.list_filter), "a filter has too few choices to show"
        for choice_url in [*choice_urls, changelist_url(model, _facets="True")]:
            assert admin_client.get(choice_url).status_code == 200, choice_url

    @by_label([(model, model_admin) for model, model_admin in REGISTERED if model_admin.date_hierarchy])
    def test_the_date_drill_down_renders_down_to_a_day(self, admin_client, data_set, model, model_admin):
        obj = sample(data_set, model)
        field = model_admin.date_hierarchy
        day = timezone.localtime(getattr(obj, field))
        for query in (
            {f"{field}__year": day.year},
            {f"{field}__year": day.year, f"{field}__month": day.month},
            {f"{field}__year": day.year, f"{field}__month": day.month, f"{field}__day": day.day},
        ):
            response = admin_client.get(changelist_url(model, **query))
            assert response.status_code == 200, query
            assert obj.pk in {row.pk for row in response.context["cl"].result_list}, query

    @by_label(REGISTERED)
    def test_the_change_page_renders(self, admin_client, data_set, model, model_admin):
        obj = sample(data_set, model)
        response = admin_client.get(admin_url(model, "change", obj.pk))
        assert response.status_code == 200
        assert escape(str(obj)) in response.content.decode()

    @by_label(REGISTERED)
    def test_the_add_page_renders_unless_the_product_makes_those_records(
        self, admin_client, data_set, model, model_admin
    ):
        response = admin_client.get(admin_url(model, "add"))
        assert response.status_code == (403 if model in ADD_FORBIDDEN else 200)


# --- Constant queries ------------------------------------------------------------------------


def _practitioner_at_two_locations() -> None:
    practitioner = PractitionerFactory()
    practitioner.locations.add(*LocationFactory.create_batch(2, organisation=practitioner.organisation))


def _sharing_agreement_with_types_and_locations() -> None:
    agreement = SharingAgreementFactory()
    agreement.appointment_types.add(*AppointmentTypeFactory.create_batch(2, organisation=agreement.host))
    agreement.locations.add(*LocationFactory.create_batch(2, organisation=agreement.host))


def _booking_link_with_everything() -> None:
    patient = PatientFactory()
    BookingLinkFactory(
        patient=patient,
        practitioner=PractitionerFactory(organisation=patient.organisation),
        created_by=UserFactory(),
    )


def _audit_event_with_everything() -> None:
    appointment = AppointmentFactory(booked_by=UserFactory())
    AuditEventFactory(
        action=AuditEvent.Action.CANCELLED,
        actor=UserFactory(),
        patient=appointment.patient,
        appointment=appointment,
        booking_link=BookingLinkFactory(patient=appointment.patient),
        ip_address="203.0.113.9",
    )


# One more row of each domain model, with its own related rows, so a list page that fetched a
# related row per row would show it.
ROW_MAKERS: dict[type[models.Model], Callable[[], object]] = {
    Organisation: OrganisationFactory,
    StaffMembership: StaffMembershipFactory,
    Location: LocationFactory,
    Practitioner: _practitioner_at_two_locations,
    AppointmentType: AppointmentTypeFactory,
    Rota: RotaFactory,
    Slot: lambda: SlotFactory(rota=RotaFactory()),
    Patient: PatientFactory,
    SharingAgreement: _sharing_agreement_with_types_and_locations,
    BookingLink: _booking_link_with_everything,
    Appointment: lambda: AppointmentFactory(booked_by=UserFactory()),
    AuditEvent: _audit_event_with_everything,
}


class TestListPagesMakeAConstantNumberOfQueries:
    ROWS = 3

    @by_label(DOMAIN)
    def test_three_times_the_rows_take_the_same_number_of_queries(self, admin_client, model, model_admin):
        assert model in ROW_MAKERS, f"Add a row maker for {model.__name__} to ROW_MAKERS."
        make_row = ROW_MAKERS[model]
        url = changelist_url(model)

        for _ in range(self.ROWS):
            make_row()
        admin_client.get(url)  # warm the per-process caches (content types, permissions)
        with CaptureQueriesContext(connection) as few:
            response = admin_client.get(url)
        assert len(response.context["cl"].result_list) == self.ROWS

        for _ in range(2 * self.ROWS):
            make_row()
        with CaptureQueriesContext(connection) as many:
            response = admin_client.get(url)
        assert len(response.context["cl"].result_list) == 3 * self.ROWS

        assert len(many) == len(few), (
            f"{len(few)} queries for {self.ROWS} rows, {len(many)} for {3 * self.ROWS}:\n"
            + "\n".join(query["sql"] for query in many.captured_queries)
        )


# --- Autocomplete ----------------------------------------------------------------------------


def editable_forms(model_admin, request, obj):
    """The forms an admin fills in on a change page that are ours: the model's own, and its inlines'.

    Django's own User form (groups and permissions, as two-box selectors) is not ours to change.
    """
    own = model_admin.model._meta.app_label == "booking"
    if own and model_admin.has_change_permission(request, obj):
        yield type(model_admin).__name__, model_admin.get_form(request, obj, change=True), set()
    for inline in model_admin.get_inline_instances(request, obj):
        if inline.model._meta.app_label == "booking":
            formset = inline.get_formset(request, obj)
            yield type(inline).__name__, formset.form, {formset.fk.name}


WITH_OUR_FORMS = [
    (model, model_admin)
    for model, model_admin in REGISTERED
    if model._meta.app_label == "booking"
    or any(inline.model._meta.app_label == "booking" for inline in model_admin.inlines)
]


class TestForeignKeysAreAutocompletes:
    @by_label(DOMAIN)
    def test_every_relation_is_an_autocomplete_or_read_only(self, admin_user, data_set, model, model_admin):
        request = admin_request(admin_user)
        obj = sample(data_set, model)
        if not model_admin.has_change_permission(request, obj):
            return  # the whole page is read-only
        autocomplete = set(model_admin.get_autocomplete_fields(request))
        read_only = set(model_admin.get_readonly_fields(request, obj))
        relations = [field for field in model._meta.get_fields() if field.concrete and field.is_relation]
        for field in relations:
            if field.editable:
                assert field.name in autocomplete | read_only, f"{model.__name__}.{field.name} is a plain <select>"

    @by_label(WITH_OUR_FORMS)
    def test_every_relation_on_an_editable_form_uses_the_autocomplete_widget(
        self, admin_user, data_set, model, model_admin
    ):
        request = admin_request(admin_user)
        obj = sample(data_set, model)
        for name, form, parent_keys in editable_forms(model_admin, request, obj):
            for field_name, field in form.base_fields.items():
                if isinstance(field, ModelChoiceField) and field_name not in parent_keys:
                    widget = getattr(field.widget, "widget", field.widget)  # inside RelatedFieldWidgetWrapper
                    assert isinstance(widget, AutocompleteMixin), f"{name}.{field_name} is a plain <select>"

    @pytest.mark.parametrize(
        ("model_name", "field_name", "term", "expected"),
        [
            ("slot", "practitioner", "Dr", Practitioner),
            ("practitioner", "locations", "riverside", Location),
            ("staffmembership", "user", "ruth", User),
            ("sharingagreement", "appointment_types", "asthma", AppointmentType),
            ("patient", "organisation", "b82005", Organisation),
        ],
    )
    def test_the_autocomplete_endpoint_finds_the_related_row(
        self, admin_client, data_set, model_name, field_name, term, expected
    ):
        query = {"app_label": "booking", "model_name": model_name, "field_name": field_name, "term": term}
        response = admin_client.get(reverse("admin:autocomplete"), query)
        assert response.status_code == 200
        results = response.json()["results"]
        obj = data_set[expected]
        assert {"id": str(obj.pk), "text": str(obj)} in results

    def test_the_autocomplete_endpoint_returns_nothing_for_a_term_that_matches_nothing(self, admin_client, data_set):
        query = {"app_label": "booking", "model_name": "slot", "field_name": "practitioner", "term": "Nobody"}
        response = admin_client.get(reverse("admin:autocomplete"), query)
        assert response.status_code == 200
        assert response.json()["results"] == []


# --- Audit events are read-only --------------------------------------------------------------


class TestAuditEventsAreReadOnly:
    @pytest.fixture
    def event(self):
        return AuditEventFactory(action=AuditEvent.Action.OPENED, ip_address="203.0.113.7", detail={"via": "sms"})

    def test_the_change_page_shows_the_event_without_a_save_button(self, admin_client, event):
        response = admin_client.get(admin_url(AuditEvent, "change", event.pk))
        assert response.status_code == 200
        content = response.content.decode()
        assert "Link opened" in content
        assert "203.0.113.7" in content
        assert 'name="_save"' not in content
        assert 'name="_continue"' not in content

    def test_posting_a_change_is_forbidden(self, admin_client, event):
        response = admin_client.post(admin_url(AuditEvent, "change", event.pk), {"action": "revoked"})
        assert response.status_code == 403
        event.refresh_from_db()
        assert event.action == AuditEvent.Action.OPENED

    def test_deleting_is_forbidden(self, admin_client, event):
        url = admin_url(AuditEvent, "delete", event.pk)
        assert admin_client.get(url).status_code == 403
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        assert AuditEvent.objects.filter(pk=event.pk).exists()

    def test_the_list_page_offers_no_delete_action(self, admin_client, event):
        response = admin_client.get(changelist_url(AuditEvent))
        assert response.status_code == 200
        assert "delete_selected" not in response.content.decode()

    def test_posting_the_delete_action_anyway_deletes_nothing(self, admin_client, event):
        response = post_action(admin_client, AuditEvent, "delete_selected", [event], post="yes")
        assert response.status_code == 200  # the list page again: there is no such action
        assert AuditEvent.objects.filter(pk=event.pk).exists()


# --- Actions ---------------------------------------------------------------------------------


class TestGenerateSlotsAction:
    # Monday 9 to Sunday 15 March 2026: no bank holidays, no clock change.
    WEEK = ("2026-03-09", "2026-03-15")

    @pytest.fixture
    def rota(self):
        # Weekdays, 09:00-10:00, ten-minute slots: six a day.
        return RotaFactory(weekdays=[0, 1, 2, 3, 4], start_time=time(9), end_time=time(10), slot_minutes=10)

    def test_choosing_the_action_asks_for_the_dates_first(self, admin_client, rota):
        response = post_action(admin_client, Rota, "generate_slots", [rota])
        assert response.status_code == 200
        content = response.content.decode()
        assert "Generate slots" in content
        assert 'name="start_date"' in content
        assert 'name="end_date"' in content
        assert "From" in content
        assert "To (inclusive)" in content
        assert f'name="{ACTION_CHECKBOX_NAME}" value="{rota.pk}"' in content
        assert str(rota) in content
        assert not Slot.objects.exists()

    def test_the_dates_start_filled_in_as_the_browsers_date_picker_reads_them(self, admin_client, rota):
        # <input type="date"> shows nothing unless its value is an ISO date.
        today = timezone.localdate()
        content = post_action(admin_client, Rota, "generate_slots", [rota]).content.decode()
        assert f'value="{today.isoformat()}"' in content
        assert f'value="{(today + timedelta(days=27)).isoformat()}"' in content

    def test_applying_creates_the_slots_and_says_how_many(self, admin_client, rota):
        response = apply_generate_slots(admin_client, [rota], *self.WEEK)
        assert response.status_code == 302
        assert response.url == changelist_url(Rota)
        assert any(message.startswith("Created 30 slots; 0 were already there") for message in messages_of(response))
        slots = Slot.objects.filter(rota=rota)
        assert slots.count() == 30
        assert {slot.status for slot in slots} == {Slot.Status.FREE}
        first = slots.order_by("start").first()
        assert first.start.astimezone(LONDON) == london(date(2026, 3, 9), time(9))

    def test_running_it_again_creates_nothing(self, admin_client, rota):
        apply_generate_slots(admin_client, [rota], *self.WEEK)
        response = apply_generate_slots(admin_client, [rota], *self.WEEK)
        assert response.status_code == 302
        assert any(message.startswith("Created 0 slots; 30 were already there") for message in messages_of(response))
        assert Slot.objects.count() == 30

    def test_a_bank_holiday_is_skipped_and_reported(self, admin_client, rota):
        response = apply_generate_slots(admin_client, [rota], "2026-04-06", "2026-04-07")  # Easter Monday, Tuesday
        assert response.status_code == 302
        assert any("Created 6 slots" in m and "skipped 1 bank holiday day." in m for m in messages_of(response))
        assert {slot.start.astimezone(LONDON).date() for slot in Slot.objects.all()} == {date(2026, 4, 7)}

    def test_an_end_date_before_the_start_date_shows_the_form_again_with_an_error(self, admin_client, rota):
        response = apply_generate_slots(admin_client, [rota], "2026-03-15", "2026-03-09")
        assert response.status_code == 200
        assert "Generate slots" in response.content.decode()
        assert response.context["form"].non_field_errors() == ["The end date must be on or after the start date."]
        assert not Slot.objects.exists()

    def test_more_than_a_year_at_a_time_is_refused(self, admin_client, rota):
        response = apply_generate_slots(admin_client, [rota], "2026-01-01", "2027-01-31")
        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == ["Generate at most a year of slots at a time."]
        assert not Slot.objects.exists()

    def test_a_missing_date_shows_the_form_again_with_an_error(self, admin_client, rota):
        response = apply_generate_slots(admin_client, [rota], "2026-03-09", "")
        assert response.status_code == 200
        assert "end_date" in response.context["form"].errors
        assert not Slot.objects.exists()


class TestSlotActions:
    def test_blocking_blocks_free_slots_and_leaves_booked_ones_booked(self, admin_client):
        free = SlotFactory()
        booked = AppointmentFactory().slot
        response = post_action(admin_client, Slot, "block_slots", [free, booked])
        assert response.status_code == 302
        free.refresh_from_db()
        booked.refresh_from_db()
        assert free.status == Slot.Status.BLOCKED
        assert booked.status == Slot.Status.BOOKED
        assert messages_of(response) == ["Blocked 1 slot.", "1 selected slot was not free and left as is."]

    def test_unblocking_frees_blocked_slots_only(self, admin_client):
        blocked = SlotFactory(status=Slot.Status.BLOCKED)
        booked = AppointmentFactory().slot
        free = SlotFactory()
        response = post_action(admin_client, Slot, "unblock_slots", [blocked, booked, free])
        assert response.status_code == 302
        assert {slot.pk: slot.status for slot in Slot.objects.filter(pk__in=[blocked.pk, booked.pk, free.pk])} == {
            blocked.pk: Slot.Status.FREE,
            booked.pk: Slot.Status.BOOKED,
            free.pk: Slot.Status.FREE,
        }
        assert messages_of(response) == ["Unblocked 1 slot."]


def locked_link() -> BookingLink:
    link = BookingLinkFactory()
    BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.LOCKED, failed_attempts=5)
    link.refresh_from_db()
    return link


class TestBookingLinkActions:
    def test_revoking_revokes_an_active_link_and_records_who_did_it(self, admin_client, admin_user):
        active = BookingLinkFactory()
        already = BookingLinkFactory(status=BookingLink.Status.REVOKED)
        response = post_action(admin_client, BookingLink, "revoke_links", [active, already])
        assert response.status_code == 302
        active.refresh_from_db()
        already.refresh_from_db()
        assert (active.status, already.status) == (BookingLink.Status.REVOKED, BookingLink.Status.REVOKED)
        assert active.revoked_at is not None
        assert already.revoked_at is None
        event = AuditEvent.objects.get(action=AuditEvent.Action.REVOKED)
        assert (event.booking_link, event.actor, event.patient) == (active, admin_user, active.patient)
        assert messages_of(response) == ["Revoked 1 link."]

    def test_revoking_a_booked_link_stops_online_changes_and_keeps_the_appointment(self, admin_client, admin_user):
        booked = BookingLinkFactory(status=BookingLink.Status.BOOKED)
        appointment = AppointmentFactory(patient=booked.patient, booking_link=booked)
        response = post_action(admin_client, BookingLink, "revoke_links", [booked])
        assert response.status_code == 302
        booked.refresh_from_db()
        appointment.refresh_from_db()
        assert booked.status == BookingLink.Status.REVOKED
        assert booked.token_encrypted == ""
        assert appointment.status == Appointment.Status.BOOKED
        assert AuditEvent.objects.get(action=AuditEvent.Action.REVOKED).booking_link == booked
        assert messages_of(response) == ["Revoked 1 link."]

    def test_revoking_revokes_a_locked_link_and_records_who_did_it(self, admin_client, admin_user):
        locked = locked_link()
        response = post_action(admin_client, BookingLink, "revoke_links", [locked])
        assert response.status_code == 302
        locked.refresh_from_db()
        assert locked.status == BookingLink.Status.REVOKED
        event = AuditEvent.objects.get(action=AuditEvent.Action.REVOKED)
        assert (event.booking_link, event.actor) == (locked, admin_user)
        assert messages_of(response) == ["Revoked 1 link."]

    def test_unlocking_makes_a_locked_link_active_with_its_count_reset(self, admin_client, admin_user):
        locked = locked_link()
        active = BookingLinkFactory()
        response = post_action(admin_client, BookingLink, "unlock_links", [locked, active])
        assert response.status_code == 302
        locked.refresh_from_db()
        assert locked.status == BookingLink.Status.ACTIVE
        assert locked.failed_attempts == 0
        event = AuditEvent.objects.get(action=AuditEvent.Action.UNLOCKED)
        assert (event.booking_link, event.actor, event.patient) == (locked, admin_user, locked.patient)
        assert messages_of(response) == ["Unlocked 1 link."]


def apply_cancel_appointments(client, appointments, **reason):
    """Press "Cancel appointments" on the action's intermediate page (which posts no "index")."""
    data = {
        "action": "cancel_appointments",
        ACTION_CHECKBOX_NAME: [appointment.pk for appointment in appointments],
        "apply": "Cancel appointments",
        **reason,
    }
    return client.post(changelist_url(Appointment), data)


class TestAppointmentActions:
    def test_cancelling_asks_why_first_and_changes_nothing_yet(self, admin_client):
        appointment = AppointmentFactory()
        response = post_action(admin_client, Appointment, "cancel_appointments", [appointment])
        assert response.status_code == 200
        content = response.content.decode()
        assert "Why is the appointment being cancelled?" in content
        assert "The clinician is not available" in content
        assert appointment.patient.full_name in content
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.BOOKED

    def test_cancelling_cancels_the_appointment_frees_its_slot_and_records_it(self, admin_client, admin_user):
        appointment = AppointmentFactory()
        response = apply_cancel_appointments(admin_client, [appointment], reason="clinician_unavailable")
        assert response.status_code == 302
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.CANCELLED
        assert appointment.cancelled_at is not None
        assert (appointment.cancellation_source, appointment.cancellation_reason) == (
            "practice",
            "clinician_unavailable",
        )
        assert appointment.cancelled_by == admin_user
        assert appointment.slot.status == Slot.Status.FREE
        event = AuditEvent.objects.get(action=AuditEvent.Action.CANCELLED)
        assert (event.appointment, event.actor, event.patient) == (appointment, admin_user, appointment.patient)
        assert event.detail["reason"] == "clinician_unavailable"
        assert messages_of(response) == ["Cancelled 1 appointment."]

    def test_cancelling_without_a_reason_shows_the_page_again_with_the_error(self, admin_client):
        appointment = AppointmentFactory()
        response = apply_cancel_appointments(admin_client, [appointment])
        assert response.status_code == 200
        assert "Select why the appointment is being cancelled." in response.content.decode()
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.BOOKED
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).exists()

    def test_other_reason_needs_its_words(self, admin_client):
        appointment = AppointmentFactory()
        response = apply_cancel_appointments(admin_client, [appointment], reason="other", detail="")
        assert "Enter the reason, as you chose Other reason." in response.content.decode()
        appointment.refresh_from_db()
        assert appointment.status == Appointment.Status.BOOKED
        apply_cancel_appointments(admin_client, [appointment], reason="other", detail="Surgery flooded")
        appointment.refresh_from_db()
        assert (appointment.cancellation_reason, appointment.cancellation_detail) == ("other", "Surgery flooded")

    def test_cancelling_a_cancelled_appointment_changes_nothing(self, admin_client):
        appointment = AppointmentFactory()
        apply_cancel_appointments(admin_client, [appointment], reason="booked_in_error")
        response = apply_cancel_appointments(admin_client, [appointment], reason="booked_in_error")
        assert messages_of(response)[-1] == "Cancelled 0 appointments."
        assert AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).count() == 1


# --- Add forms refuse bad input with a form error, never a 500 --------------------------------


class TestSlotAddForm:
    @pytest.fixture
    def existing(self):
        return SlotFactory(start=london(date(2026, 3, 10), time(9)), end=london(date(2026, 3, 10), time(9, 10)))

    def post(self, client, existing: Slot, start: str, end: str):
        return client.post(
            admin_url(Slot, "add"),
            {
                "practitioner": existing.practitioner_id,
                "location": existing.location_id,
                "appointment_type": existing.appointment_type_id,
                "rota": "",
                "start_0": "10/03/2026",
                "start_1": start,
                "end_0": "10/03/2026",
                "end_1": end,
                "status": Slot.Status.FREE,
            },
        )

    def test_a_slot_after_the_practitioners_last_one_is_saved(self, admin_client, existing):
        response = self.post(admin_client, existing, "09:10", "09:20")
        assert response.status_code == 302
        added = Slot.objects.exclude(pk=existing.pk).get()
        assert (added.start, added.end) == (
            london(date(2026, 3, 10), time(9, 10)),
            london(date(2026, 3, 10), time(9, 20)),
        )

    def test_a_slot_that_overlaps_the_practitioners_other_slot_is_a_form_error(self, admin_client, existing):
        response = self.post(admin_client, existing, "09:05", "09:15")
        assert response.status_code == 200
        assert form_errors(response).get(NON_FIELD_ERRORS)
        assert Slot.objects.count() == 1

    def test_the_overlap_error_says_so_in_plain_english(self, admin_client, existing):
        response = self.post(admin_client, existing, "09:05", "09:15")
        message = " ".join(form_errors(response)[NON_FIELD_ERRORS])
        assert "slot_no_overlap_per_practitioner" not in message
        assert "overlap" in message.lower()

    def test_a_slot_that_ends_before_it_starts_is_a_form_error(self, admin_client, existing):
        response = self.post(admin_client, existing, "11:00", "10:50")
        assert response.status_code == 200
        assert form_errors(response)["end"] == ["The end must be after the start."]
        assert Slot.objects.count() == 1


class TestPatientAddForm:
    @pytest.fixture
    def organisation(self):
        return OrganisationFactory()

    def post(self, client, organisation: Organisation, **overrides):
        data = {
            "organisation": organisation.pk,
            "first_name": "Olivia",
            "last_name": "Bennett",
            "date_of_birth": "17/05/1980",
            "nhs_number": "943 476 5919",
            "mobile": "+447400123456",
            "email": "olivia@example.com",
            "contact_preference": Patient.ContactPreference.SMS,
        }
        return client.post(admin_url(Patient, "add"), {**data, **overrides})

    def test_a_patient_is_saved_with_the_nhs_number_and_mobile_normalised(self, admin_client, organisation):
        response = self.post(admin_client, organisation, mobile="07400 123456")
        assert response.status_code == 302
        patient = Patient.objects.get()
        assert patient.nhs_number == "9434765919"
        assert patient.mobile == "+447400123456"

    def test_an_nhs_number_with_a_wrong_check_digit_is_a_form_error(self, admin_client, organisation):
        response = self.post(admin_client, organisation, nhs_number="943 476 5918")
        assert response.status_code == 200
        assert "Enter a valid NHS number" in form_errors(response)["nhs_number"][0]
        assert "Enter a valid NHS number" in response.content.decode()
        assert not Patient.objects.exists()

    def test_a_mobile_written_with_the_national_prefix_in_brackets_is_saved(self, admin_client, organisation):
        response = self.post(admin_client, organisation, mobile="+44 (0)7400 123456")
        assert response.status_code == 302
        assert Patient.objects.get().mobile == "+447400123456"

    def test_a_mobile_that_is_not_a_phone_number_is_a_form_error(self, admin_client, organisation):
        response = self.post(admin_client, organisation, mobile="0740")
        assert response.status_code == 200
        assert "Enter a valid phone number" in form_errors(response)["mobile"][0]
        assert not Patient.objects.exists()


class TestRotaAddForm:
    @pytest.fixture
    def practitioner(self):
        practitioner = PractitionerFactory()
        practitioner.locations.add(LocationFactory(organisation=practitioner.organisation))
        return practitioner

    def post(self, client, practitioner: Practitioner, **overrides):
        data = {
            "practitioner": practitioner.pk,
            "location": practitioner.locations.get().pk,
            "appointment_type": AppointmentTypeFactory(organisation=practitioner.organisation).pk,
            "weekdays": ["0", "2"],
            "start_time": "09:00",
            "end_time": "12:00",
            "slot_minutes": "10",
            "valid_from": "01/03/2026",
            "valid_until": "",
            "is_active": "on",
        }
        return client.post(admin_url(Rota, "add"), {**data, **overrides})

    def test_a_rota_is_saved_with_its_days(self, admin_client, practitioner):
        response = self.post(admin_client, practitioner)
        assert response.status_code == 302
        assert Rota.objects.get().weekdays == [0, 2]

    def test_a_rota_with_no_days_is_a_form_error(self, admin_client, practitioner):
        response = self.post(admin_client, practitioner, weekdays=[])
        assert response.status_code == 200
        assert "weekdays" in form_errors(response)
        assert not Rota.objects.exists()

    def test_a_rota_at_another_organisations_location_is_a_form_error(self, admin_client, practitioner):
        response = self.post(admin_client, practitioner, location=LocationFactory().pk)
        assert response.status_code == 200
        assert form_errors(response)["location"] == [
            "The practitioner, location and appointment type must belong to one organisation."
        ]
        assert not Rota.objects.exists()

    def test_a_rota_that_ends_before_it_starts_is_a_form_error(self, admin_client, practitioner):
        response = self.post(admin_client, practitioner, start_time="12:00", end_time="09:00")
        assert response.status_code == 200
        assert form_errors(response)["end_time"] == ["The end time must be after the start time."]
        assert not Rota.objects.exists()


# --- The booking link page keeps the link's secret -------------------------------------------


class TestBookingLinkChangePage:
    def test_the_change_page_does_not_show_the_token_digest(self, admin_client):
        link = BookingLinkFactory()
        response = admin_client.get(admin_url(BookingLink, "change", link.pk))
        assert response.status_code == 200
        content = response.content.decode()
        assert link.reference in content
        assert link.token_digest not in content
        assert link.token not in content

    def test_the_change_page_has_no_view_on_site_link(self, admin_client):
        link = BookingLinkFactory()
        response = admin_client.get(admin_url(BookingLink, "change", link.pk))
        assert response.status_code == 200
        assert "View on site" not in response.content.decode()
