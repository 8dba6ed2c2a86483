"""Sharing needs the partner's consent: the host offers, the partner's manager accepts or
declines, either side ends it, and every step is on both organisations' audit trails."""

from __future__ import annotations

import pytest
from django.db import IntegrityError
from django.test import Client

from booking.appointments import appointment_book
from booking.exceptions import LinkNotBookable
from booking.links import LinkState, booking_link_patient_state
from booking.models import Appointment, AuditEvent, SharingAgreement, Slot, StaffMembership
from booking.offers import appointment_types_offered_to
from booking.sharing import (
    sharing_agreement_accept,
    sharing_agreement_decline,
    sharing_agreement_end,
    sharing_agreement_offer,
)
from tests.factories import BookingLinkFactory, SharingAgreementFactory
from tests.scenarios import Hub, Practice, make_practice

pytestmark = pytest.mark.django_db


def manager_client(practice: Practice) -> Client:
    StaffMembership.objects.filter(user=practice.user, organisation=practice.organisation).update(role="manager")
    client = Client()
    client.force_login(practice.user)
    return client


@pytest.fixture
def offer(host: Practice, practice: Practice) -> SharingAgreement:
    return sharing_agreement_offer(
        host=host.organisation,
        partner=practice.organisation,
        appointment_types=[host.appointment_type],
        locations=[host.location],
        actor=host.user,
    )


def sharing_events(organisation) -> list[tuple[str, str | None]]:
    return [
        (event.detail["sharing"], event.actor.username if event.actor else None)
        for event in AuditEvent.objects.filter(organisation=organisation, detail__has_key="sharing").order_by("pk")
    ]


def shared_type_names(practice: Practice) -> list[str]:
    return [offered.label for offered in appointment_types_offered_to(organisation=practice.organisation)]


class TestNothingIsSharedBeforeAcceptance:
    def test_an_offer_is_not_in_force_and_offers_the_partner_nothing(self, offer, host, practice):
        assert not SharingAgreement.objects.in_force().exists()
        assert list(SharingAgreement.objects.pending()) == [offer]
        assert f"Flu vaccination ({host.organisation.name})" not in shared_type_names(practice)

    def test_a_link_for_an_offered_type_cannot_book_until_accepted(self, hub: Hub, practice):
        SharingAgreement.objects.filter(pk=hub.agreement.pk).update(accepted_at=None)
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=hub.appointment_type, location=hub.location
        )
        slot = Slot.objects.get(appointment_type=hub.appointment_type)
        assert booking_link_patient_state(link=link) == LinkState.AGREEMENT_ENDED
        with pytest.raises(LinkNotBookable):
            appointment_book(link_id=link.pk, slot_id=slot.pk)
        assert not Appointment.objects.exists()

    def test_once_accepted_the_partner_offers_it(self, offer, host, practice):
        assert sharing_agreement_accept(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        assert f"Flu vaccination ({host.organisation.name})" in shared_type_names(practice)
        offer.refresh_from_db()
        assert offer.accepted_by == practice.user
        assert offer.offered_by == host.user


class TestOnlyThePartnerAnswers:
    def test_the_host_cannot_accept_its_own_offer(self, offer, host):
        assert not sharing_agreement_accept(partner=host.organisation, agreement_id=offer.pk, actor=host.user)
        assert not SharingAgreement.objects.in_force().exists()

    def test_a_third_organisation_cannot_accept_or_decline(self, offer):
        outsider = make_practice("Eastfield")
        for answer in (sharing_agreement_accept, sharing_agreement_decline):
            assert not answer(partner=outsider.organisation, agreement_id=offer.pk, actor=outsider.user)
        offer.refresh_from_db()
        assert offer.is_pending

    def test_an_offer_accepts_once(self, offer, practice):
        assert sharing_agreement_accept(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        assert not sharing_agreement_accept(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        assert not sharing_agreement_decline(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)

    def test_a_declined_offer_is_closed_and_never_shared(self, offer, host, practice):
        assert sharing_agreement_decline(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        offer.refresh_from_db()
        assert (offer.accepted_at, offer.ended_by) == (None, practice.user)
        assert offer.ended_at is not None
        assert not sharing_agreement_accept(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        assert f"Flu vaccination ({host.organisation.name})" not in shared_type_names(practice)

    def test_the_partner_declines_rather_than_ends_an_offer(self, offer, practice):
        assert not sharing_agreement_end(organisation=practice.organisation, agreement_id=offer.pk, actor=practice.user)


class TestEitherSideEnds:
    def test_the_partner_ends_an_accepted_agreement(self, hub: Hub, practice):
        assert sharing_agreement_end(
            organisation=practice.organisation, agreement_id=hub.agreement.pk, actor=practice.user
        )
        hub.agreement.refresh_from_db()
        assert hub.agreement.ended_by == practice.user
        assert not SharingAgreement.objects.in_force().exists()

    def test_the_host_withdraws_an_offer(self, offer, host):
        assert sharing_agreement_end(organisation=host.organisation, agreement_id=offer.pk, actor=host.user)
        assert not SharingAgreement.objects.open().exists()

    def test_a_third_organisation_cannot_end_it(self, hub: Hub):
        outsider = make_practice("Eastfield")
        assert not sharing_agreement_end(
            organisation=outsider.organisation, agreement_id=hub.agreement.pk, actor=outsider.user
        )


class TestAudit:
    def test_offered_accepted_and_ended_are_on_both_trails_with_who_did_it(self, offer, host, practice):
        sharing_agreement_accept(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        sharing_agreement_end(organisation=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        expected = [("offered", "northgate"), ("accepted", "riverside"), ("ended", "riverside")]
        assert sharing_events(host.organisation) == expected
        assert sharing_events(practice.organisation) == expected

    def test_a_decline_is_on_both_trails(self, offer, host, practice):
        sharing_agreement_decline(partner=practice.organisation, agreement_id=offer.pk, actor=practice.user)
        expected = [("offered", "northgate"), ("declined", "riverside")]
        assert sharing_events(host.organisation) == expected
        assert sharing_events(practice.organisation) == expected


class TestOneOpenAgreementPerPair:
    def test_a_second_offer_beside_a_pending_one_is_refused_by_the_database(self, offer, host, practice):
        with pytest.raises(IntegrityError):
            SharingAgreementFactory(host=host.organisation, partner=practice.organisation, accepted_at=None)

    def test_the_form_says_so_while_an_offer_is_waiting(self, offer, host, practice):
        response = manager_client(host).post(
            "/sharing/",
            {
                "partner": practice.organisation.pk,
                "appointment_types": [host.appointment_type.pk],
                "locations": [host.location.pk],
            },
        )
        assert response.status_code == 400
        assert "end that agreement first" in response.content.decode()


class TestTheSharingPage:
    def test_the_partner_sees_the_offer_with_accept_and_decline(self, offer, host, practice):
        page = manager_client(practice).get("/sharing/").content.decode()
        assert "Offers waiting for you" in page
        assert f"/sharing/{offer.pk}/accept/" in page
        assert f"/sharing/{offer.pk}/decline/" in page

    def test_the_host_sees_its_offer_waiting(self, offer, host, practice):
        page = manager_client(host).get("/sharing/").content.decode()
        assert f"Waiting for {practice.organisation.name} to accept" in page
        assert f"/sharing/{offer.pk}/accept/" not in page

    def test_the_partner_accepts_declines_and_ends_through_the_page(self, offer, host, practice):
        client = manager_client(practice)
        assert client.post(f"/sharing/{offer.pk}/accept/").status_code == 302
        assert SharingAgreement.objects.in_force().get() == offer
        assert client.post(f"/sharing/{offer.pk}/end/").status_code == 302
        assert not SharingAgreement.objects.open().exists()

    def test_the_host_cannot_accept_through_the_page(self, offer, host):
        assert manager_client(host).post(f"/sharing/{offer.pk}/accept/").status_code == 404
        assert manager_client(host).post(f"/sharing/{offer.pk}/decline/").status_code == 404
        offer.refresh_from_db()
        assert offer.is_pending

    def test_staff_who_are_not_managers_cannot_answer(self, offer, practice):
        client = Client()
        client.force_login(practice.user)
        assert client.post(f"/sharing/{offer.pk}/accept/").status_code == 403
        offer.refresh_from_db()
        assert offer.is_pending
