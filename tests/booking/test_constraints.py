"""Every invariant the database holds, tried by going around Python validation."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, ProgrammingError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from booking.models import Appointment, AuditEvent, BookingLink, Patient, Rota, SharingAgreement, Slot
from tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    AuditEventFactory,
    BookingLinkFactory,
    OrganisationFactory,
    PatientFactory,
    RotaFactory,
    SharingAgreementFactory,
    SlotFactory,
)

pytestmark = pytest.mark.django_db


def refused_by_database(exception=IntegrityError):
    """Expect the database to refuse, inside a savepoint so the test can carry on."""

    class _Refused:
        def __enter__(self):
            self._raises = pytest.raises(exception)
            self._raises.__enter__()
            self._atomic = transaction.atomic()
            self._atomic.__enter__()

        def __exit__(self, *exc):
            self._atomic.__exit__(*exc)
            return self._raises.__exit__(*exc)

    return _Refused()


class TestSlot:
    def test_a_slot_must_end_after_it_starts(self):
        slot = SlotFactory()
        with refused_by_database():
            Slot.objects.filter(pk=slot.pk).update(end=slot.start)

    def test_a_practitioners_slots_never_overlap(self):
        slot = SlotFactory()
        with refused_by_database():
            SlotFactory(
                practitioner=slot.practitioner,
                location=slot.location,
                appointment_type=slot.appointment_type,
                start=slot.start + timedelta(minutes=5),
                end=slot.end + timedelta(minutes=5),
            )

    def test_back_to_back_slots_are_allowed(self):
        slot = SlotFactory()
        SlotFactory(
            practitioner=slot.practitioner,
            location=slot.location,
            appointment_type=slot.appointment_type,
            start=slot.end,
            end=slot.end + timedelta(minutes=10),
        )
        assert Slot.objects.filter(practitioner=slot.practitioner).count() == 2

    def test_two_practitioners_can_have_slots_at_the_same_time(self):
        slot = SlotFactory()
        SlotFactory(start=slot.start, end=slot.end)
        assert Slot.objects.filter(start=slot.start).count() == 2

    def test_status_must_be_one_of_the_three(self):
        slot = SlotFactory()
        slot.status = "nonsense"
        with pytest.raises(ValidationError):
            slot.full_clean()

    def test_a_slot_with_an_appointment_cannot_be_deleted(self):
        appointment = AppointmentFactory()
        with pytest.raises(ProtectedError):
            appointment.slot.delete()
        assert Slot.objects.filter(pk=appointment.slot_id).exists()

    def test_overlap_is_a_form_error_not_a_crash(self):
        slot = SlotFactory()
        overlapping = Slot(
            practitioner=slot.practitioner,
            location=slot.location,
            appointment_type=slot.appointment_type,
            start=slot.start,
            end=slot.end,
        )
        with pytest.raises(ValidationError):
            overlapping.full_clean()


class TestAppointment:
    def test_at_most_one_booked_appointment_per_slot(self):
        appointment = AppointmentFactory()
        with refused_by_database():
            AppointmentFactory(
                slot=appointment.slot, patient=PatientFactory(organisation=appointment.patient.organisation)
            )

    def test_a_cancelled_appointment_frees_the_slot_for_another(self):
        appointment = AppointmentFactory(
            status=Appointment.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancellation_source="practice",
            cancellation_reason="booked_in_error",
        )
        AppointmentFactory(slot=appointment.slot, patient=appointment.patient)
        assert appointment.slot.appointments.count() == 2

    def test_a_link_books_at_most_once(self):
        link = BookingLinkFactory()
        AppointmentFactory(booking_link=link, patient=link.patient)
        with refused_by_database():
            AppointmentFactory(booking_link=link, patient=link.patient)

    def test_cancelled_at_goes_with_the_cancelled_status(self):
        appointment = AppointmentFactory()
        with refused_by_database():
            Appointment.objects.filter(pk=appointment.pk).update(status=Appointment.Status.CANCELLED)

    def test_booking_reference_is_short_and_unambiguous(self):
        appointment = AppointmentFactory()
        reference = appointment.reference
        assert 6 <= len(reference) <= 10
        assert not set(reference) & set("01OIL")
        assert reference == reference.upper()


class TestPatient:
    def test_an_nhs_number_failing_modulus_11_is_refused_by_the_database(self):
        patient = PatientFactory()
        # 943 476 5919 is valid; changing the last digit breaks the check.
        with refused_by_database():
            Patient.objects.filter(pk=patient.pk).update(nhs_number="9434765918")

    @pytest.mark.parametrize("bad", ["94347659", "943476591X", "943 476 59", "abcdefghij", ""])
    def test_malformed_nhs_numbers_are_refused_by_the_database(self, bad):
        patient = PatientFactory()
        with refused_by_database():
            Patient.objects.filter(pk=patient.pk).update(nhs_number=bad)

    def test_an_nhs_number_longer_than_ten_characters_is_refused_by_the_database(self):
        patient = PatientFactory()
        with refused_by_database(DataError):
            Patient.objects.filter(pk=patient.pk).update(nhs_number="94347659190")

    def test_a_valid_nhs_number_is_stored(self):
        patient = PatientFactory(nhs_number="9434765919")
        patient.refresh_from_db()
        assert patient.nhs_number == "9434765919"
        assert patient.nhs_number_for_display == "943 476 5919"

    def test_a_patient_may_have_no_nhs_number(self):
        assert PatientFactory(nhs_number=None).nhs_number is None

    def test_nhs_numbers_are_unique_within_an_organisation(self):
        patient = PatientFactory(nhs_number="9434765919")
        PatientFactory(nhs_number="9434765919")  # another organisation: fine
        with refused_by_database():
            PatientFactory(nhs_number="9434765919", organisation=patient.organisation)

    def test_full_clean_gives_a_friendly_message_for_a_bad_nhs_number(self):
        patient = PatientFactory.build(organisation=OrganisationFactory(), nhs_number="943 476 5918")
        with pytest.raises(ValidationError) as error:
            patient.full_clean()
        assert "valid NHS number" in str(error.value.message_dict["nhs_number"])

    def test_full_clean_accepts_spaces_in_an_nhs_number(self):
        patient = PatientFactory.build(organisation=OrganisationFactory(), nhs_number="943 476 5919")
        patient.full_clean()
        assert patient.nhs_number == "9434765919"

    def test_a_mobile_is_stored_in_e164(self):
        patient = PatientFactory.build(organisation=OrganisationFactory(), mobile="07400 123456")
        patient.full_clean()
        assert patient.mobile == "+447400123456"

    def test_a_mobile_not_in_e164_is_refused_by_the_database(self):
        patient = PatientFactory()
        with refused_by_database():
            Patient.objects.filter(pk=patient.pk).update(mobile="07400 123456")

    def test_an_invalid_mobile_is_a_form_error(self):
        patient = PatientFactory.build(organisation=OrganisationFactory(), mobile="12345")
        with pytest.raises(ValidationError) as error:
            patient.full_clean()
        assert "mobile" in error.value.message_dict

    def test_a_date_of_birth_in_the_future_is_a_form_error(self):
        patient = PatientFactory.build(
            organisation=OrganisationFactory(), date_of_birth=timezone.localdate() + timedelta(days=1)
        )
        with pytest.raises(ValidationError) as error:
            patient.full_clean()
        assert "date_of_birth" in error.value.message_dict


class TestBookingLink:
    def test_saving_a_link_makes_a_128_bit_token_and_stores_only_its_digest(self):
        link = BookingLinkFactory()
        assert len(link.token) == 22  # token_urlsafe(16): 16 random bytes, base64url
        assert link.token_digest == hashlib.sha256(link.token.encode()).hexdigest()
        stored_row = BookingLink.objects.filter(pk=link.pk).values().get()
        assert link.token not in str(stored_row)

    def test_get_absolute_url_is_the_short_link(self):
        link = BookingLinkFactory()
        assert link.get_absolute_url() == f"/b/{link.token}"

    def test_the_contract_practitioner_and_expiry_are_optional(self):
        patient = PatientFactory()
        link = BookingLink.objects.create(
            patient=patient,
            appointment_type=AppointmentTypeFactory(organisation=patient.organisation),
            location=_location_for(patient),
        )
        assert link.status == "active"
        assert link.failed_attempts == 0
        assert link.expires_at is None
        assert link.organisation == patient.organisation
        assert link.get_absolute_url().startswith("/b/")

    def test_tokens_are_unique(self):
        tokens = {BookingLinkFactory().token for _ in range(20)}
        assert len(tokens) == 20

    def test_a_link_loaded_from_the_database_cannot_recover_its_token(self):
        link = BookingLink.objects.get(pk=BookingLinkFactory().pk)
        with pytest.raises(ValueError, match="digest"):
            link.get_absolute_url()

    def test_failed_attempts_never_exceed_five(self):
        link = BookingLinkFactory()
        with refused_by_database():
            BookingLink.objects.filter(pk=link.pk).update(failed_attempts=6, status="locked")

    def test_five_failed_attempts_mean_locked(self):
        link = BookingLinkFactory()
        with refused_by_database():
            BookingLink.objects.filter(pk=link.pk).update(failed_attempts=5)
        BookingLink.objects.filter(pk=link.pk).update(failed_attempts=5, status="locked")

    def test_expiry_is_after_creation(self):
        link = BookingLinkFactory()
        with refused_by_database():
            BookingLink.objects.filter(pk=link.pk).update(expires_at=link.created_at - timedelta(seconds=1))


class TestRota:
    def test_a_rota_must_end_after_it_starts(self):
        rota = RotaFactory()
        with refused_by_database():
            Rota.objects.filter(pk=rota.pk).update(end_time=rota.start_time)

    @pytest.mark.parametrize("weekdays", [[], [7], [-1, 2]])
    def test_weekdays_are_monday_0_to_sunday_6_and_at_least_one(self, weekdays):
        rota = RotaFactory()
        with refused_by_database():
            Rota.objects.filter(pk=rota.pk).update(weekdays=weekdays)

    def test_valid_until_is_not_before_valid_from(self):
        rota = RotaFactory()
        with refused_by_database():
            Rota.objects.filter(pk=rota.pk).update(valid_until=rota.valid_from - timedelta(days=1))

    def test_a_rota_mixing_organisations_is_a_form_error(self):
        rota = RotaFactory.build(
            practitioner=RotaFactory().practitioner, location=_location_for(PatientFactory()), appointment_type=None
        )
        rota.appointment_type = AppointmentTypeFactory(organisation=rota.practitioner.organisation)
        with pytest.raises(ValidationError) as error:
            rota.full_clean()
        assert "location" in error.value.message_dict


class TestSharingAgreement:
    def test_an_organisation_cannot_share_with_itself(self):
        agreement = SharingAgreementFactory()
        with refused_by_database():
            SharingAgreement.objects.filter(pk=agreement.pk).update(partner=agreement.host)

    def test_one_agreement_in_force_per_pair(self):
        agreement = SharingAgreementFactory()
        with refused_by_database():
            SharingAgreementFactory(host=agreement.host, partner=agreement.partner)
        SharingAgreement.objects.filter(pk=agreement.pk).update(ended_at=timezone.now())
        SharingAgreementFactory(host=agreement.host, partner=agreement.partner)


class TestAuditEvent:
    def test_audit_events_cannot_be_changed(self):
        event = AuditEventFactory()
        with refused_by_database(ProgrammingError):
            AuditEvent.objects.filter(pk=event.pk).update(action=AuditEvent.Action.BOOKED)

    def test_audit_events_cannot_be_deleted(self):
        event = AuditEventFactory()
        with refused_by_database(ProgrammingError):
            AuditEvent.objects.filter(pk=event.pk).delete()
        assert AuditEvent.objects.filter(pk=event.pk).exists()


def _location_for(patient):
    from tests.factories import LocationFactory

    return LocationFactory(organisation=patient.organisation)
