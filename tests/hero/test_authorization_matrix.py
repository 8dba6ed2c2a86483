"""The authorization matrix, generated from the URL resolver.

Every URL the project serves is collected from `get_resolver()`. Each is either a staff URL
(below: how to aim it at organisation A's records), a Django admin URL (handled generically:
changelist, its filter sidebar aimed at A's ids, add, change, delete, history, password and
autocomplete for each registered model), or classified in NOT_STAFF with the reason it has
no organisation to scope by. A URL in none of them fails `test_every_url_is_classified`,
so a new page can't ship without a row here.

Each URL is then requested as a member of staff, a manager and an org admin of organisation
B, against organisation A's references and ids: the answer is a refusal (403, 404, or a
redirect away) or a page without any of A's distinctive names and identifiers, and A's
records are unchanged after every POST. Organisation names are public (the sharing form
lists partners by name), so only A's private details are looked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import ForeignKey, ManyToManyField, Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path
from django.utils import timezone

from booking.models import Appointment, AuditEvent, BookingLink, Patient, SharingAgreement, Slot, StaffMembership
from booking.references import decode_reference, encode_reference
from messaging.models import Campaign, CampaignEntry, Message, MessageTemplate, SenderProfile
from tests.factories import (
    AppointmentFactory,
    AuditEventFactory,
    BookingLinkFactory,
    CampaignEntryFactory,
    CampaignFactory,
    MessageFactory,
    MessageTemplateFactory,
    OrganisationFactory,
    SharingAgreementFactory,
    StaffMembershipFactory,
    UserFactory,
)
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db

ROLES = [StaffMembership.Role.STAFF, StaffMembership.Role.MANAGER, StaffMembership.Role.ADMIN]
REFUSED = {302, 400, 403, 404, 405}


# --- The URLs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Url:
    route: str
    name: str | None
    callback: Callable[..., Any]

    @property
    def key(self) -> str:
        return self.name or self.route


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Url]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = namespace + pattern.name if pattern.name else None
            yield Url(prefix + str(pattern.pattern), name, pattern.callback)


URLS = list(_walk(get_resolver().url_patterns))

PATIENT = "a patient's page: the link's unguessable token is the key (tests/booking/test_patient_pages.py)"
SIGNED = "a provider's webhook: its signature or basic auth is the key (tests/messaging/test_webhooks_*.py)"
AUTH = "signing in and out, passwords: about the user's own account"
NOT_STAFF = {
    "booking:link": PATIENT,
    "booking:times": PATIENT,
    "booking:confirm": PATIENT,
    "booking:booked": PATIENT,
    "booking:cancel": PATIENT,
    "booking:cancelled": PATIENT,
    "booking:change": PATIENT,
    "booking:change_confirm": PATIENT,
    "booking:decline": PATIENT,
    "booking:changed": PATIENT,
    "booking:calendar": PATIENT,
    "booking:not_found": PATIENT,
    "webhooks:twilio_status": SIGNED,
    "webhooks:twilio_inbound": SIGNED,
    "webhooks:anymail_tracking": SIGNED,
    "messaging:dev_outbox": "development only: a 404 unless DEBUG (tests/messaging/test_outbox.py)",
    "login": AUTH,
    "logout": AUTH,
    "password_change": AUTH,
    "password_change_done": AUTH,
    "password_reset": AUTH,
    "password_reset_done": AUTH,
    "password_reset_confirm": AUTH,
    "password_reset_complete": AUTH,
    "admin:login": AUTH,
    "admin:logout": AUTH,
    "admin:password_change": AUTH,
    "admin:password_change_done": AUTH,
    "admin:jsi18n": "static: the admin's translations for its scripts",
    "admin/(?P<url>.*)$": "the admin's catch-all: a 404 or the sign-in page",
}


# --- Organisation A's records, with names no one else has ------------------------------------


@dataclass
class World:
    objects: dict[type[Model], Model]
    secrets: list[str]
    refs: dict[str, str] = field(default_factory=dict)
    pks: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        state = {}
        for model, obj in self.objects.items():
            row = model._default_manager.filter(pk=obj.pk).values().first()
            state[model._meta.label] = row
        return state


def build_world() -> World:
    a = make_practice("Quarrington")
    a.patient.first_name, a.patient.last_name = "Zephyrine", "Quillfeather"
    a.patient.email = "zephyrine.quillfeather@example.org"
    a.patient.mobile = "+447700900417"
    a.patient.save()
    a.appointment_type.name = "Quarrington ear syringing"
    a.appointment_type.save()
    a.user.username = "quarrington-receptionist"
    a.user.save()
    partner = OrganisationFactory(name="Elsewhere Practice")
    agreement = SharingAgreementFactory(host=a.organisation, partner=partner)
    agreement.appointment_types.set([a.appointment_type])
    agreement.locations.set([a.location])
    # An offer waiting for A's answer: only A's managers may accept or decline it.
    offer = SharingAgreementFactory(host=partner, partner=a.organisation, accepted_at=None)
    link = BookingLinkFactory(patient=a.patient, appointment_type=a.appointment_type, location=a.location)
    locked = BookingLinkFactory(
        patient=a.patient, appointment_type=a.appointment_type, location=a.location, status="locked", failed_attempts=5
    )
    message = MessageFactory(patient=a.patient, booking_link=link, body="Quarrington private note for Zephyrine")
    template = MessageTemplateFactory(
        organisation=a.organisation, name="Quarrington recall", body="Quarrington template text"
    )
    slot = Slot.objects.filter(appointment_type=a.appointment_type).order_by("start").first()
    Slot.objects.filter(pk=slot.pk).update(status="booked")
    appointment = AppointmentFactory(slot=slot, patient=a.patient, booking_link=None)
    event = AuditEventFactory(patient=a.patient, organisation=a.organisation)
    sender = SenderProfile.objects.create(organisation=a.organisation)
    membership = StaffMembership.objects.get(user=a.user)
    rota = a.practitioner.rotas.first()
    group = Group.objects.create(name="Quarrington receptionists")
    # A campaign under way, with one invited row (on its call list once followed up).
    campaign = CampaignFactory(
        organisation=a.organisation,
        name="Quarrington flu campaign",
        appointment_type=a.appointment_type,
        location=a.location,
        created_by=a.user,
        status="sending",
        started_at=timezone.now(),
    )
    campaign_link = BookingLinkFactory(
        patient=a.patient, appointment_type=a.appointment_type, location=a.location, declinable=True
    )
    entry = CampaignEntryFactory(
        campaign=campaign, patient=a.patient, link=campaign_link, invited_at=timezone.now(), follow_ups_sent=2
    )
    objects: dict[type[Model], Model] = {
        type(a.organisation): a.organisation,
        type(a.location): a.location,
        type(a.practitioner): a.practitioner,
        type(a.appointment_type): a.appointment_type,
        type(rota): rota,
        Slot: slot,
        type(a.patient): a.patient,
        SharingAgreement: agreement,
        BookingLink: link,
        Appointment: appointment,
        AuditEvent: event,
        MessageTemplate: template,
        SenderProfile: sender,
        Message: message,
        type(a.user): a.user,
        StaffMembership: membership,
        Group: group,
        Campaign: campaign,
        CampaignEntry: entry,
    }
    refs = {
        "patient": a.patient.reference,
        "link": link.reference,
        "locked": locked.reference,
        "message": message.reference,
        "appointment": appointment.reference,
        "slot": encode_reference(slot.pk, namespace="slot"),
        "campaign": campaign.reference,
    }
    secrets = [
        "Zephyrine",
        "Quillfeather",
        a.patient.nhs_number,
        a.patient.email,
        a.patient.mobile,
        "07700 900417",
        "07700900417",
        "Quarrington Surgery",
        "Dr Quarrington",
        "Quarrington ear syringing",
        "Quarrington recall",
        "Quarrington template text",
        "Quarrington private note",
        "quarrington-receptionist",
        "Quarrington flu campaign",
        *refs.values(),
    ]
    pks = {"agreement": agreement.pk, "offer": offer.pk, "template": template.pk, "entry": entry.pk}
    return World(objects=objects, secrets=secrets, refs=refs, pks=pks)


def make_clients() -> dict[str, Client]:
    """A client for each role in organisation B (an org admin is `is_staff`, as in production)."""
    b = make_practice("Riverside")
    result = {}
    for role in ROLES:
        user = UserFactory(is_staff=role == StaffMembership.Role.ADMIN)
        StaffMembershipFactory(user=user, organisation=b.organisation, role=role)
        client = Client()
        client.force_login(user)
        result[role] = client
    return result


@pytest.fixture
def matrix() -> tuple[World, dict[str, Client]]:
    """Both organisations, built for each test (a module-wide transaction would stay open
    across other modules' tests under pytest-xdist)."""
    return build_world(), make_clients()


# --- Staff URLs: how to aim each at A's records -------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    # Aimed at one of A's records: only a refusal will do, even a page that names nothing.
    aimed: bool = False


def _compose(w: World) -> list[Request]:
    ref = w.refs["patient"]
    return [
        Request("GET", "/messages/new/", {"patient": ref}, aimed=True),
        Request("POST", "/messages/new/", {"patient": ref, "body": "Hello", "channel": "sms"}, aimed=True),
    ]


STAFF: dict[str, Callable[[World], list[Request]]] = {
    "home": lambda w: [Request("GET", "/")],
    "messaging:list": lambda w: [Request("GET", "/messages/"), Request("GET", "/messages/", {"page": "2"})],
    "messaging:templates": lambda w: [Request("GET", "/templates/")],
    "messaging:template_add": lambda w: [Request("GET", "/templates/new/")],
    "messaging:template_edit": lambda w: [
        Request("GET", f"/templates/{w.pks['template']}/", aimed=True),
        Request("POST", f"/templates/{w.pks['template']}/", {"name": "Taken", "body": "Taken"}, aimed=True),
    ],
    "messaging:compose": _compose,
    "messaging:attendance_report": lambda w: [
        Request("GET", "/reports/attendance/"),
        Request("GET", "/reports/attendance/", {"start": "2020-01-01", "end": "2020-12-31"}),
    ],
    "messaging:attendance_report_csv": lambda w: [Request("GET", "/reports/attendance.csv")],
    "messaging:campaigns": lambda w: [Request("GET", "/campaigns/")],
    "messaging:campaign_new": lambda w: [Request("GET", "/campaigns/new/")],
    "messaging:campaign_check": lambda w: [Request("GET", f"/campaigns/{w.refs['campaign']}/check/", aimed=True)],
    "messaging:campaign_rejected_csv": lambda w: [
        Request("GET", f"/campaigns/{w.refs['campaign']}/rejected.csv", aimed=True)
    ],
    "messaging:campaign_start": lambda w: [
        Request("POST", f"/campaigns/{w.refs['campaign']}/start/", {"per_day": "10", "per_free_time": "2"}, aimed=True)
    ],
    "messaging:campaign": lambda w: [Request("GET", f"/campaigns/{w.refs['campaign']}/", aimed=True)],
    "messaging:campaign_funnel": lambda w: [Request("GET", f"/campaigns/{w.refs['campaign']}/funnel/", aimed=True)],
    "messaging:campaign_pause": lambda w: [Request("POST", f"/campaigns/{w.refs['campaign']}/pause/", aimed=True)],
    "messaging:campaign_resume": lambda w: [Request("POST", f"/campaigns/{w.refs['campaign']}/resume/", aimed=True)],
    "messaging:campaign_stop": lambda w: [
        Request("GET", f"/campaigns/{w.refs['campaign']}/stop/", aimed=True),
        Request("POST", f"/campaigns/{w.refs['campaign']}/stop/", aimed=True),
    ],
    "messaging:campaign_links_revoke": lambda w: [
        Request("GET", f"/campaigns/{w.refs['campaign']}/revoke-links/", aimed=True),
        Request("POST", f"/campaigns/{w.refs['campaign']}/revoke-links/", aimed=True),
    ],
    "messaging:campaign_outcomes_csv": lambda w: [
        Request("GET", f"/campaigns/{w.refs['campaign']}/outcomes.csv", aimed=True)
    ],
    "messaging:campaign_call_list": lambda w: [
        Request("GET", f"/campaigns/{w.refs['campaign']}/call-list/", aimed=True)
    ],
    "messaging:campaign_call_outcome": lambda w: [
        Request(
            "POST",
            f"/campaigns/{w.refs['campaign']}/call-list/{w.pks['entry']}/",
            {"outcome": "no_answer"},
            aimed=True,
        )
    ],
    "messaging:patient_results": lambda w: [
        Request("GET", "/messages/new/patients/", {"q": "Quillfeather"}),
        Request("GET", "/messages/new/patients/", {"q": w.objects[type(w.objects[Message].patient)].nhs_number}),
    ],
    "messaging:count": lambda w: [
        Request("POST", "/messages/new/count/", {"patient": w.refs["patient"], "body": "x"}, aimed=True)
    ],
    "messaging:link_fields": lambda w: [
        Request("GET", "/messages/new/link/", {"patient": w.refs["patient"]}, aimed=True)
    ],
    "messaging:detail": lambda w: [Request("GET", f"/messages/{w.refs['message']}/", aimed=True)],
    "messaging:link_revoke": lambda w: [
        Request("POST", f"/messages/links/{w.refs['link']}/revoke/", aimed=True),
    ],
    "messaging:link_unlock": lambda w: [
        Request("POST", f"/messages/links/{w.refs['locked']}/unlock/", aimed=True),
    ],
    "booking:appointment_outcome": lambda w: [
        Request("POST", f"/appointments/{w.refs['appointment']}/outcome/", {"outcome": "attended"}, aimed=True),
    ],
    "booking:session_attended": lambda w: [
        Request("POST", f"/appointments/{w.refs['appointment']}/session-attended/", aimed=True),
    ],
    "booking:appointments": lambda w: [
        Request("GET", "/appointments/"),
        Request("GET", "/appointments/", {"status": "booked", "from_date": "2000-01-01", "to_date": "2099-12-31"}),
        Request("GET", "/appointments/", {"status": "by_patients", "since": "2000-01-01T00:00:00+00:00"}),
    ],
    "booking:cancel_appointment": lambda w: [
        Request("GET", f"/appointments/{w.refs['appointment']}/cancel/", aimed=True),
        Request("POST", f"/appointments/{w.refs['appointment']}/cancel/", {"reason": "booked_in_error"}, aimed=True),
    ],
    "booking:audit": lambda w: [Request("GET", "/audit/")],
    "booking:sharing": lambda w: [Request("GET", "/sharing/")],
    "booking:sharing_end": lambda w: [Request("POST", f"/sharing/{w.pks['agreement']}/end/", aimed=True)],
    "booking:sharing_accept": lambda w: [Request("POST", f"/sharing/{w.pks['offer']}/accept/", aimed=True)],
    "booking:sharing_decline": lambda w: [Request("POST", f"/sharing/{w.pks['offer']}/decline/", aimed=True)],
}


# --- Admin URLs, for every registered model -----------------------------------------------------

ADMIN_SITE = {"admin:index", "admin:app_list", "admin:autocomplete", "admin:view_on_site"}
ADMIN_MODEL_ACTIONS = ("changelist", "add", "change", "delete", "history", "password_change")


def _model_admin_for(url: Url) -> tuple[Model, admin.ModelAdmin, str] | None:
    """The registered model and its admin that `url` belongs to, and which of its pages it is."""
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        prefix = f"admin/{meta.app_label}/{meta.model_name}/"
        if url.name:
            for action in ADMIN_MODEL_ACTIONS:
                if url.name == f"admin:{meta.app_label}_{meta.model_name}_{action}":
                    return model, model_admin, action
        elif url.route == prefix + "<path:object_id>/":
            return model, model_admin, "change"
    return None


def _relation_filters(model_admin: admin.ModelAdmin, model: type[Model]) -> list[tuple[str, type[Model]]]:
    """The list filters that follow a relation: (field path, related model)."""
    filters = []
    for entry in model_admin.list_filter:
        path = entry[0] if isinstance(entry, tuple) else entry
        if not isinstance(path, str):
            continue
        current: type[Model] = model
        related = None
        for part in path.split("__"):
            model_field = current._meta.get_field(part)
            if not isinstance(model_field, ForeignKey | ManyToManyField):
                related = None
                break
            current = related = model_field.related_model
        if related is not None:
            filters.append((path, related))
    return filters


def _admin_requests(url: Url, w: World) -> list[Request]:
    if url.name == "admin:index":
        return [Request("GET", "/admin/")]
    if url.name == "admin:app_list":
        return [Request("GET", f"/admin/{app}/") for app in sorted({m._meta.app_label for m in admin.site._registry})]
    if url.name == "admin:view_on_site":
        return [
            Request("GET", f"/admin/r/{_content_type_id(type(obj))}/{obj.pk}/", aimed=True)
            for obj in w.objects.values()
        ]
    if url.name == "admin:autocomplete":
        return _autocomplete_requests()
    found = _model_admin_for(url)
    assert found is not None
    model, model_admin, action = found
    meta = model._meta
    base = f"/admin/{meta.app_label}/{meta.model_name}/"
    obj = w.objects.get(model)
    if action == "changelist":
        requests = [Request("GET", base), Request("GET", base, {"q": "Quillfeather"})]
        for path, related in _relation_filters(model_admin, model):
            target = w.objects.get(related)
            assert target is not None, f"Give World an object of {related._meta.label} for the filter {path}"
            requests.append(Request("GET", base, {f"{path}__{related._meta.pk.name}__exact": target.pk}))
        return requests
    if action == "add":
        return [Request("GET", base + "add/")]
    # A model with no organisation's data in it (say, task results) is aimed at a missing id:
    # the answer must still be a refusal.
    pk = obj.pk if obj is not None else 0
    suffix = {"change": "change/", "delete": "delete/", "history": "history/", "password_change": "password/"}[action]
    requests = [Request("GET", f"{base}{pk}/{suffix}", aimed=True)]
    if url.name is None:
        requests = [Request("GET", f"{base}{pk}/", aimed=True)]
    elif action == "delete":
        requests.append(Request("POST", f"{base}{pk}/delete/", {"post": "yes"}, aimed=True))
    elif action == "change":
        requests.append(Request("POST", f"{base}{pk}/change/", {}, aimed=True))
    return requests


def _content_type_id(model: type[Model]) -> int:
    return ContentType.objects.get_for_model(model).pk


def _autocomplete_requests() -> list[Request]:
    requests = []
    for model, model_admin in admin.site._registry.items():
        for field_name in model_admin.autocomplete_fields:
            for term in ("", "Quarrington", "Zephyrine"):
                data = {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field_name,
                    "term": term,
                }
                requests.append(Request("GET", "/admin/autocomplete/", data))
    return requests


def requests_for(url: Url, w: World) -> list[Request]:
    if url.key in STAFF:
        return STAFF[url.key](w)
    return _admin_requests(url, w)


def classification(url: Url) -> str | None:
    if url.key in NOT_STAFF:
        return "not staff"
    if url.key in STAFF:
        return "staff"
    if url.key in ADMIN_SITE or _model_admin_for(url) is not None:
        return "admin"
    return None


# --- The tests ----------------------------------------------------------------------------------


def test_every_url_is_classified():
    unclassified = [url.key for url in URLS if classification(url) is None]
    assert unclassified == [], (
        f"These URLs aren't in the authorization matrix: {unclassified}. Add each to STAFF in "
        f"{__name__} (how to aim it at another organisation's records) or, if it has no "
        "organisation to scope by, to NOT_STAFF with the reason."
    )


def test_the_classification_names_only_urls_that_exist():
    keys = {url.key for url in URLS}
    assert set(NOT_STAFF) - keys == set()
    assert set(STAFF) - keys == set()


CHECKED = [pytest.param(url, id=url.key) for url in URLS if classification(url) in {"staff", "admin"}]


def leaks_for(requests: list[Request], world: World, clients: dict[str, Client]) -> list[str]:
    """What each role of organisation B got of A's through `requests`, as sentences."""
    leaks = []
    for role, client in clients.items():
        for request in requests:
            send = client.get if request.method == "GET" else client.post
            response = send(request.path, request.data)
            body = response.content.decode(errors="replace")
            where = f"{role} {request.method} {request.path} {request.data or ''} -> {response.status_code}"
            # What the request itself carried (a search term) may be echoed back; the rest may not.
            secrets = [secret for secret in world.secrets if not any(secret in str(v) for v in request.data.values())]
            if request.aimed and response.status_code not in REFUSED:
                leaks.append(f"{where}: answered instead of refusing")
            if response.status_code == 302 and any(secret in response["Location"] for secret in secrets):
                leaks.append(f"{where}: redirected to {response['Location']}")
            shown = [secret for secret in secrets if secret in body]
            if shown:
                leaks.append(f"{where}: shows {shown}")
    return leaks


@pytest.mark.parametrize("url", CHECKED)
def test_organisation_b_gets_nothing_of_organisation_as(url, matrix):
    world, clients = matrix
    requests = requests_for(url, world)
    assert requests, f"{url.key}: no request aimed at organisation A"
    before = world.snapshot()
    assert leaks_for(requests, world, clients) == []
    assert world.snapshot() == before, f"{url.key} changed organisation A's records"


# --- Controls: the matrix catches what it is there to catch ------------------------------------


def _unscoped_patient(request: HttpRequest, reference: str) -> HttpResponse:
    """A view that forgot its organisation check: any signed-in user sees any patient."""
    patient = get_object_or_404(Patient, pk=decode_reference(reference, namespace="patient") or 0)
    return HttpResponse(f"{patient.first_name} {patient.last_name}")


urlpatterns = [path("unscoped/<str:reference>/", _unscoped_patient, name="unscoped")]


def test_control_an_unscoped_view_is_caught(matrix, settings):
    world, clients = matrix
    settings.ROOT_URLCONF = __name__
    leaks = leaks_for([Request("GET", f"/unscoped/{world.refs['patient']}/", aimed=True)], world, clients)
    assert len(leaks) == 2 * len(ROLES)  # answered, and showed the name, for every role


def test_control_a_new_url_is_unclassified():
    new = Url("unscoped/<str:reference>/", "unscoped", _unscoped_patient)
    assert classification(new) is None
