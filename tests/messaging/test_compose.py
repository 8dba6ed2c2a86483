"""The message builder: choosing the patient, writing, Invite to book, and Send message."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from booking.models import AuditEvent, BookingLink, Patient, hash_token
from booking.references import encode_reference
from messaging.forms import COMPOSE_STEPS, ComposeForm, ComposeState
from messaging.models import Message
from tests.factories import (
    AppointmentTypeFactory,
    LocationFactory,
    MessageTemplateFactory,
    PatientFactory,
    PractitionerFactory,
)
from tests.messaging.message_bodies import LINK_SPELLINGS

pytestmark = pytest.mark.django_db

COMPOSE = "/messages/new/"


def ref(patient: Patient) -> str:
    return encode_reference(patient.pk, namespace="patient")


def compose_url(patient: Patient) -> str:
    return f"{COMPOSE}?patient={ref(patient)}"


def form_data(practice, **overrides) -> dict:
    data = {
        "patient": ref(practice.patient),
        "channel": "sms",
        "body": "Hello {{Patient First Name}}, book your flu jab here: {{Appointment Link}}",
        "appointment_type": practice.appointment_type.pk,
        "location": practice.location.pk,
        "practitioner": "",
        "link_expiry": "14d",
        "link_added": "True",
        "idempotency_key": str(uuid.uuid4()),
        "action": "send",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def text(response) -> str:
    """The page as a person reads it (entities like &#x27; turned back into characters)."""
    return html.unescape(response.content.decode())


def message_box(response) -> str:
    """What the page's Message box holds, as a person would see it."""
    return html.unescape(
        re.search(r'<textarea[^>]* name="body"[^>]*>(.*?)</textarea>', response.content.decode(), re.S)[1]
    )


def send(client, practice, *, capture, **overrides):
    with capture(execute=True):
        return client.post(compose_url(practice.patient), form_data(practice, **overrides))


def nothing_saved():
    return not Message.objects.exists() and not BookingLink.objects.exists()


class TestSignedOut:
    @pytest.mark.parametrize("path", ["/messages/", COMPOSE, "/messages/new/patients/?q=smith"])
    def test_staff_pages_ask_you_to_sign_in(self, client, path):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


class TestHome:
    def test_home_has_send_message_and_the_organisations_recent_messages(self, staff_client, practice, other_practice):
        from tests.factories import MessageFactory

        ours = MessageFactory(patient=practice.patient, body="Ours")
        theirs = MessageFactory(patient=other_practice.patient, body="Theirs")
        response = staff_client.get("/")
        content = response.content.decode()
        assert response.status_code == 200
        assert ">Send message</button>" in content
        assert f"/messages/{ours.reference}/" in content
        assert f"/messages/{theirs.reference}/" not in content


class TestChoosingThePatient:
    @pytest.mark.parametrize(
        "query_for",
        [
            lambda p: "smith",
            lambda p: "Oliv Smi",
            lambda p: f"{p.nhs_number[:3]} {p.nhs_number[3:6]} {p.nhs_number[6:]}",
            lambda p: p.date_of_birth.strftime("%d/%m/%Y"),
            lambda p: p.date_of_birth.isoformat(),
        ],
        ids=["surname", "parts-of-names", "nhs-number", "date-of-birth", "iso-date"],
    )
    def test_patients_are_found_by_name_nhs_number_or_date_of_birth(self, staff_client, practice, query_for):
        response = staff_client.get("/messages/new/patients/", {"q": query_for(practice.patient)})
        content = response.content.decode()
        assert practice.patient.full_name in content
        assert ref(practice.patient) in content
        assert practice.patient.nhs_number_for_display in content
        assert practice.patient.mobile_for_display in content

    def test_another_organisations_patients_are_never_found(self, staff_client, practice, other_practice):
        response = staff_client.get("/messages/new/patients/", {"q": "smith"})
        assert ref(other_practice.patient) not in response.content.decode()

    def test_htmx_gets_just_the_results(self, staff_client, practice):
        response = staff_client.get("/messages/new/patients/", {"q": "smith"}, headers={"HX-Request": "true"})
        assert b"<html" not in response.content
        assert practice.patient.full_name.encode() in response.content

    def test_no_match_says_what_to_try(self, staff_client, practice):
        response = staff_client.get("/messages/new/patients/", {"q": "zzzz"})
        assert "No patients found" in response.content.decode()

    def test_search_makes_the_same_queries_for_one_match_or_twenty(
        self, staff_client, practice, django_assert_max_num_queries
    ):
        with django_assert_max_num_queries(6):
            staff_client.get("/messages/new/patients/", {"q": "smith"})
        for _ in range(25):
            PatientFactory(organisation=practice.organisation, last_name="Smith")
        with django_assert_max_num_queries(6):
            response = staff_client.get("/messages/new/patients/", {"q": "smith"})
        assert response.content.decode().count("app-patient-result__link") == 20

    def test_another_organisations_patient_is_not_found_and_the_attempt_is_audited(
        self, staff_client, practice, other_practice
    ):
        response = staff_client.get(compose_url(other_practice.patient))
        assert response.status_code == 404
        event = AuditEvent.objects.get(action=AuditEvent.Action.DENIED)
        assert event.patient == other_practice.patient
        assert event.actor == practice.user

    @pytest.mark.parametrize("reference", ["nonsense", "AAAAAA", "", "x" * 500])
    def test_a_made_up_patient_reference_is_not_found(self, staff_client, practice, reference):
        response = staff_client.get(f"{COMPOSE}?patient={reference}")
        assert response.status_code in (200, 404)
        if reference:
            assert response.status_code == 404


class TestTheBuilderPage:
    def test_it_shows_the_patient_and_the_fields_by_their_names(self, staff_client, practice):
        content = staff_client.get(compose_url(practice.patient)).content.decode()
        for text in (
            practice.patient.full_name,
            practice.patient.nhs_number_for_display,
            '<label class="nhsuk-label nhsuk-label--s" for="id_body">Message</label>',
            'for="patient-search">Patient</label>',
            'id="invite-tooltip">Invite to book</span>',
            "Select an appointment type",
            "Practitioner (optional)",
            "Link expiry",
            ">Add link</button>",
            ">Send message</button>",
        ):
            assert text in content, text

    def test_link_expiry_offers_the_six_options_with_14_days_chosen(self, staff_client, practice):
        content = staff_client.get(compose_url(practice.patient)).content.decode()
        for label in ("24 hours", "48 hours", "7 days", "14 days", "30 days", "Never"):
            assert f">{label}</option>" in content
        assert '<option value="14d" selected>14 days</option>' in content

    def test_only_self_bookable_types_of_the_organisation_and_shared_ones_are_offered(
        self, staff_client, practice, other_practice, hub
    ):
        AppointmentTypeFactory(organisation=practice.organisation, name="Staff only", self_bookable=False)
        content = staff_client.get(compose_url(practice.patient)).content.decode()
        assert ">Flu vaccination</option>" in content
        assert f">Smear test ({hub.organisation.name})</option>" in content
        assert "Staff only" not in content
        type_select = re.search(r'name="appointment_type".*?</select>', content, re.S).group(0)
        assert f'value="{other_practice.appointment_type.pk}"' not in type_select
        assert f'value="{practice.appointment_type.pk}"' in type_select

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"mobile": ""}, "No mobile number on record"),
            ({"sms_opted_out": True}, "opted out of texts"),
            ({"mobile": "+441134960123"}, "not a UK mobile"),
        ],
    )
    def test_sms_is_disabled_with_the_reason_when_the_patient_cant_receive_it(
        self, staff_client, practice, change, reason
    ):
        Patient.objects.filter(pk=practice.patient.pk).update(**change)
        content = staff_client.get(compose_url(practice.patient)).content.decode()
        assert reason in content
        assert re.search(r'value="sms"[^>]* disabled', content)
        assert not re.search(r'value="email"[^>]* disabled', content)

    def test_email_is_disabled_without_an_email_address(self, staff_client, practice):
        Patient.objects.filter(pk=practice.patient.pk).update(email="")
        content = staff_client.get(compose_url(practice.patient)).content.decode()
        assert "No email address on record" in content

    def test_the_page_makes_the_same_number_of_queries_whatever_the_organisation_has(
        self, staff_client, practice, django_assert_max_num_queries
    ):
        url = compose_url(practice.patient)
        MessageTemplateFactory(organisation=practice.organisation)
        staff_client.get(url)
        with django_assert_max_num_queries(14) as small:
            staff_client.get(url)
        for i in range(10):
            AppointmentTypeFactory(organisation=practice.organisation, name=f"Type {i}")
            MessageTemplateFactory(organisation=practice.organisation)
            LocationFactory(organisation=practice.organisation)
        with django_assert_max_num_queries(len(small.captured_queries)):
            staff_client.get(url)


class TestSending:
    def test_sending_without_a_link_sends_the_text_with_names_filled_in(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        response = send(
            staff_client,
            practice,
            capture=django_capture_on_commit_callbacks,
            body="Hi {{Patient First Name}}, from {{Practice Name}}",
            appointment_type="",
            location="",
            link_added="",
        )
        message = Message.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/messages/{message.reference}/"
        assert message.body == f"Hi Oliver, from {practice.organisation.name}"
        assert message.status == Message.Status.SENT
        assert message.to_address == practice.patient.mobile
        assert message.booking_link is None
        assert AuditEvent.objects.filter(action=AuditEvent.Action.SENT, patient=practice.patient).count() == 1

    def test_sending_with_a_link_makes_the_link_and_puts_its_short_url_in_the_text(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        send(staff_client, practice, capture=django_capture_on_commit_callbacks)
        message = Message.objects.get()
        link = message.booking_link
        prefix = f"{settings.PUBLIC_BASE_URL}/b/"
        assert prefix in message.body
        token = message.body.split(prefix)[1].split()[0]
        assert len(token) == 22
        assert hash_token(token) == link.token_digest
        assert (link.patient, link.appointment_type, link.location, link.practitioner) == (
            practice.patient,
            practice.appointment_type,
            practice.location,
            None,
        )
        assert link.created_by == practice.user
        assert abs(link.expires_at - (timezone.now() + timedelta(days=14))) < timedelta(minutes=1)
        assert "{{" not in message.body

    @pytest.mark.parametrize(
        ("expiry", "lifetime"),
        [
            ("24h", timedelta(hours=24)),
            ("48h", timedelta(hours=48)),
            ("7d", timedelta(days=7)),
            ("30d", timedelta(days=30)),
        ],
    )
    def test_each_expiry_sets_the_links_life(
        self, staff_client, practice, django_capture_on_commit_callbacks, expiry, lifetime
    ):
        send(staff_client, practice, capture=django_capture_on_commit_callbacks, link_expiry=expiry)
        assert abs(BookingLink.objects.get().expires_at - (timezone.now() + lifetime)) < timedelta(minutes=1)

    def test_never_means_no_expiry(self, staff_client, practice, django_capture_on_commit_callbacks):
        send(staff_client, practice, capture=django_capture_on_commit_callbacks, link_expiry="never")
        assert BookingLink.objects.get().expires_at is None

    def test_a_hand_typed_angle_bracket_token_is_the_same_token(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        send(staff_client, practice, capture=django_capture_on_commit_callbacks, body="Book: <<Appointment Link>>")
        assert f"{settings.PUBLIC_BASE_URL}/b/" in Message.objects.get().body

    def test_a_practitioner_who_works_there_can_be_chosen(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        send(staff_client, practice, capture=django_capture_on_commit_callbacks, practitioner=practice.practitioner.pk)
        assert BookingLink.objects.get().practitioner == practice.practitioner

    def test_a_shared_type_at_the_hosts_location_can_be_sent(
        self, staff_client, practice, hub, django_capture_on_commit_callbacks
    ):
        send(
            staff_client,
            practice,
            capture=django_capture_on_commit_callbacks,
            appointment_type=hub.appointment_type.pk,
            location=hub.location.pk,
        )
        link = BookingLink.objects.get()
        assert (link.organisation, link.appointment_type, link.location) == (
            practice.organisation,
            hub.appointment_type,
            hub.location,
        )

    def test_email_goes_to_the_patients_email_with_a_subject(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        send(staff_client, practice, capture=django_capture_on_commit_callbacks, channel="email")
        message = Message.objects.get()
        assert message.to_address == practice.patient.email
        assert practice.organisation.name in message.subject

    def test_a_double_submit_sends_once(self, staff_client, practice, django_capture_on_commit_callbacks):
        key = str(uuid.uuid4())
        first = send(staff_client, practice, capture=django_capture_on_commit_callbacks, idempotency_key=key)
        second = send(staff_client, practice, capture=django_capture_on_commit_callbacks, idempotency_key=key)
        assert Message.objects.count() == 1
        assert BookingLink.objects.count() == 1
        assert first["Location"] == second["Location"]

    def test_the_page_after_sending_shows_the_message_and_the_links_status(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        response = send(staff_client, practice, capture=django_capture_on_commit_callbacks)
        page = staff_client.get(response["Location"]).content.decode()
        assert "Message sent." in page
        assert "Active, expires in 14 days" in page
        assert Message.objects.get().body.split("/b/")[1][:22] in page


class TestBadInput:
    """Each gets a clear error on the form, a 400, and nothing saved."""

    @pytest.mark.parametrize(
        ("overrides", "error"),
        [
            ({"body": "   "}, "Enter a message."),
            (
                {"body": "Book: {{Appointment Link}}", "appointment_type": "", "location": "", "link_added": ""},
                "no link is set up",
            ),
            ({"body": "No token here"}, "doesn't include it"),
            ({"body": "{{Appointment Link}} and <<Appointment Link>>"}, "one link"),
            ({"body": "Hi {{Patient Surname}} {{Appointment Link}}"}, "{{Patient Surname}} is not a token"),
            (
                {"body": "Book: {{Appointment Link}\u200b}", "appointment_type": "", "location": "", "link_added": ""},
                "no link is set up",
            ),
            ({"body": "x" * 1500 + " {{Appointment Link}}"}, "the most is 10"),
            ({"link_expiry": "90d"}, "Choose one of the link expiry options."),
            ({"link_expiry": ""}, "This field is required"),
            ({"location": ""}, "Choose a location."),
            ({"appointment_type": ""}, "Choose an appointment type."),
            ({"appointment_type": "999999"}, "Choose one of the appointment types in the list."),
            ({"appointment_type": "abc"}, "Choose one of the appointment types in the list."),
            ({"idempotency_key": "not-a-uuid"}, "Enter a valid UUID."),
            ({"channel": "fax"}, "Select a valid choice"),
            ({"channel": ""}, "Choose SMS or Email."),
        ],
    )
    def test_bad_input_is_a_form_error_and_saves_nothing(
        self, staff_client, practice, django_capture_on_commit_callbacks, overrides, error
    ):
        response = send(staff_client, practice, capture=django_capture_on_commit_callbacks, **overrides)
        assert response.status_code == 400
        assert error in text(response)
        assert "There is a problem" in text(response)
        assert nothing_saved()

    def test_an_appointment_type_not_shared_with_the_organisation_is_refused(
        self, staff_client, practice, other_practice, django_capture_on_commit_callbacks
    ):
        response = send(
            staff_client,
            practice,
            capture=django_capture_on_commit_callbacks,
            appointment_type=other_practice.appointment_type.pk,
            location=other_practice.location.pk,
        )
        assert response.status_code == 400
        assert nothing_saved()

    def test_a_shared_type_at_a_location_not_in_the_agreement_is_refused(
        self, staff_client, practice, hub, django_capture_on_commit_callbacks
    ):
        response = send(
            staff_client,
            practice,
            capture=django_capture_on_commit_callbacks,
            appointment_type=hub.appointment_type.pk,
            location=hub.other_location.pk,
        )
        assert response.status_code == 400
        assert "Choose one of the locations in the list" in response.content.decode()
        assert nothing_saved()

    def test_an_ended_agreement_stops_new_links(self, staff_client, practice, hub, django_capture_on_commit_callbacks):
        hub.agreement.ended_at = timezone.now()
        hub.agreement.save()
        response = send(
            staff_client,
            practice,
            capture=django_capture_on_commit_callbacks,
            appointment_type=hub.appointment_type.pk,
            location=hub.location.pk,
        )
        assert response.status_code == 400
        assert nothing_saved()

    def test_a_practitioner_who_doesnt_work_at_that_location_is_refused(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        elsewhere = PractitionerFactory(organisation=practice.organisation, name="Dr Elsewhere")
        response = send(staff_client, practice, capture=django_capture_on_commit_callbacks, practitioner=elsewhere.pk)
        assert response.status_code == 400
        assert "That practitioner doesn't offer this appointment type at that location." in text(response)
        assert nothing_saved()

    def test_sms_to_a_patient_who_opted_out_is_refused_with_the_reason(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
        response = send(staff_client, practice, capture=django_capture_on_commit_callbacks)
        assert response.status_code == 400
        assert "opted out" in response.content.decode()
        assert nothing_saved()

    def test_posting_another_organisations_patient_is_not_found(
        self, staff_client, practice, other_practice, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                compose_url(other_practice.patient), form_data(practice, patient=ref(other_practice.patient))
            )
        assert response.status_code == 404
        assert nothing_saved()
        assert AuditEvent.objects.filter(action=AuditEvent.Action.DENIED).exists()


class TestWithoutJavaScript:
    """The buttons submit the form with an action; the server takes the step and re-renders."""

    def post(self, client, practice, **overrides):
        return client.post(compose_url(practice.patient), form_data(practice, **overrides))

    def test_invite_to_book_shows_the_dialog_as_a_section_of_the_form(self, staff_client, practice):
        content = self.post(staff_client, practice, action="invite", link_added="", body="Hi").content.decode()
        assert '<dialog class="app-invite" id="invite-dialog" aria-labelledby="invite-title" open>' in content
        assert not Message.objects.exists()

    def test_add_link_puts_the_token_in_the_message_and_shows_a_summary(self, staff_client, practice):
        content = self.post(
            staff_client, practice, action="add_link", link_added="", body="Please book"
        ).content.decode()
        assert "Please book {{Appointment Link}}</textarea>" in content
        assert 'name="link_added" value="True"' in content
        assert "Appointment link" in content
        assert "3 free times" in content
        assert not Message.objects.exists()

    def test_add_link_without_a_location_says_so(self, staff_client, practice):
        content = self.post(staff_client, practice, action="add_link", link_added="", location="").content.decode()
        assert "Choose a location." in content
        assert " open>" in content

    def test_remove_link_takes_the_token_and_the_settings_away(self, staff_client, practice):
        content = self.post(staff_client, practice, action="remove_link").content.decode()
        assert "{{Appointment Link}}</textarea>" not in content
        assert 'name="link_added" value=""' in content

    def test_use_template_puts_the_templates_text_in_the_message(self, staff_client, practice):
        template = MessageTemplateFactory(
            organisation=practice.organisation, body="Template text for {{Patient First Name}}"
        )
        content = self.post(
            staff_client, practice, action="use_template", template=template.pk, body=""
        ).content.decode()
        assert "Template text for {{Patient First Name}}</textarea>" in content

    def test_no_free_times_is_a_plain_warning(self, staff_client, practice):
        empty = AppointmentTypeFactory(organisation=practice.organisation, name="Blood test")
        content = self.post(staff_client, practice, action="add_link", appointment_type=empty.pk).content.decode()
        assert "No free times" in content

    @pytest.mark.parametrize("spelling", LINK_SPELLINGS)
    def test_remove_link_takes_out_every_spelling_the_sender_accepts(self, staff_client, practice, spelling):
        response = self.post(staff_client, practice, action="remove_link", body=f"Please book: {spelling} Thank you.")
        assert response.status_code == 200
        assert message_box(response) == "Please book: Thank you."
        assert 'name="link_added" value=""' in text(response)

    @pytest.mark.parametrize("spelling", LINK_SPELLINGS)
    def test_add_link_adds_no_second_token_to_any_spelling(self, staff_client, practice, spelling):
        response = self.post(staff_client, practice, action="add_link", link_added="", body=f"Please book: {spelling}")
        assert response.status_code == 200
        assert message_box(response) == f"Please book: {spelling}"
        assert 'name="link_added" value="True"' in text(response)

    @pytest.mark.parametrize("spelling", LINK_SPELLINGS)
    def test_remove_then_add_leaves_one_link_and_the_message_sends(
        self, staff_client, practice, django_capture_on_commit_callbacks, spelling
    ):
        body = f"Hi {{{{Patient First Name}}}}, book here: {spelling} Thank you."
        removed = message_box(self.post(staff_client, practice, action="remove_link", body=body))
        assert removed == "Hi {{Patient First Name}}, book here: Thank you."
        added = message_box(self.post(staff_client, practice, action="add_link", link_added="", body=removed))
        assert added == "Hi {{Patient First Name}}, book here: Thank you. {{Appointment Link}}"
        response = send(staff_client, practice, capture=django_capture_on_commit_callbacks, body=added)
        assert response.status_code == 302
        message = Message.objects.get()
        assert message.body.count(f"{settings.PUBLIC_BASE_URL}/b/") == 1
        assert message.body.startswith("Hi Oliver, book here: Thank you. http")

    def test_a_typed_token_the_form_sends_only_after_add_link(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        body = "Please book: <<appointment link>>"
        refused = send(
            staff_client,
            practice,
            capture=django_capture_on_commit_callbacks,
            body=body,
            appointment_type="",
            location="",
            link_added="",
        )
        assert refused.status_code == 400
        added = message_box(self.post(staff_client, practice, action="add_link", link_added="", body=body))
        assert added == body
        assert send(staff_client, practice, capture=django_capture_on_commit_callbacks, body=added).status_code == 302

    def test_a_step_keeps_the_choices_and_the_idempotency_key(self, staff_client, practice):
        key = str(uuid.uuid4())
        content = text(
            self.post(
                staff_client,
                practice,
                action="add_link",
                body="Hi",
                channel="email",
                practitioner=practice.practitioner.pk,
                link_expiry="7d",
                idempotency_key=key,
            )
        )
        assert f'value="{key}"' in content
        assert re.search(r'value="email"[^>]*checked', content)
        assert f'<option value="{practice.practitioner.pk}" selected>' in content
        assert '<option value="7d" selected>7 days</option>' in content

    def test_remove_link_puts_the_link_choices_back_to_blank(self, staff_client, practice):
        content = text(self.post(staff_client, practice, action="remove_link", link_expiry="7d"))
        assert '<option value="" selected>Choose an appointment type</option>' in content
        assert '<option value="14d" selected>14 days</option>' in content


class TestLiveHelpers:
    def test_the_count_counts_sms_segments_with_the_link_at_its_real_length(self, staff_client, practice):
        response = staff_client.post(
            "/messages/new/count/",
            {"patient": ref(practice.patient), "channel": "sms", "body": "a" * 100 + " {{Appointment Link}}"},
        )
        content = response.content.decode()
        length = 101 + len(settings.PUBLIC_BASE_URL) + len("/b/") + 22
        assert f"{length} characters" in content
        assert ("1 SMS message" if length <= 160 else "2 SMS messages") in content

    def test_the_link_fields_follow_the_chosen_type_and_location(self, staff_client, practice, hub):
        response = staff_client.get(
            "/messages/new/link/",
            {
                "patient": ref(practice.patient),
                "appointment_type": hub.appointment_type.pk,
                "location": hub.location.pk,
            },
        )
        content = response.content.decode()
        assert hub.location.name in content
        assert hub.other_location.name not in content
        assert hub.practitioner.name in content
        assert "1 free time" in content

    def test_the_helpers_refuse_another_organisations_patient(self, staff_client, practice, other_practice):
        assert staff_client.get("/messages/new/link/", {"patient": ref(other_practice.patient)}).status_code == 404
        response = staff_client.post("/messages/new/count/", {"patient": ref(other_practice.patient), "body": "x"})
        assert response.status_code == 404


def test_a_single_letter_finds_no_one_but_says_what_to_type(staff_client, practice):
    content = staff_client.get("/messages/new/patients/", {"q": "s"}).content.decode()
    assert ref(practice.patient) not in content
    assert "at least two letters" in content


class TestTheBuildersSteps:
    def test_every_button_but_send_is_a_step(self):
        assert set(COMPOSE_STEPS) == set(ComposeForm.ACTIONS) - {"send"}

    def test_a_state_shown_on_a_new_form_reads_back_the_same(self, practice):
        state = ComposeState(
            channel="email",
            body="Hi {{Appointment Link}}",
            appointment_type=practice.appointment_type,
            location=practice.location,
            practitioner=practice.practitioner,
            link_expiry="7d",
            link_added=True,
            idempotency_key=uuid.uuid4(),
        )
        assert ComposeForm(patient=practice.patient, initial=state.initial()).state() == state

    def test_the_steps(self, practice):
        template = MessageTemplateFactory(organisation=practice.organisation, body="From the template")
        state = ComposeState(
            channel="sms",
            body="Book <<appointment link>> now",
            template=template,
            appointment_type=practice.appointment_type,
            location=practice.location,
            link_expiry="7d",
            link_added=True,
        )
        assert state.invite() == replace(state, invite_open=True)
        assert state.invite().refresh() == state
        assert state.use_template() == replace(state, body="From the template")
        assert replace(state, template=None).use_template() == replace(state, template=None)
        assert state.add_link() == state
        without = replace(state, body="Book", link_added=False)
        assert without.add_link() == replace(state, body="Book {{Appointment Link}}")
        assert state.remove_link() == replace(
            state, body="Book now", appointment_type=None, location=None, link_expiry="14d", link_added=False
        )
