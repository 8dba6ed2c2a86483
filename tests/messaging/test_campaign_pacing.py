"""Pacing a campaign's invitations: when they are made, how many, and what each one is (clock moved with `now=`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from booking.encryption import token_decrypt
from booking.formats import LONDON
from booking.models import AuditEvent, BookingLink, Location, Slot
from messaging.campaigns.pacing import campaign_pace, campaigns_pace
from messaging.models import Campaign, CampaignEntry, Message
from messaging.tokens import LINK_PLACEHOLDER
from tests.factories import AppointmentFactory, BookingLinkFactory, LocationFactory, SlotFactory
from tests.scenarios import make_free_times, make_paced_campaign

pytestmark = pytest.mark.django_db

# A Wednesday in January 2027, 10am London (GMT): inside sending hours.
WEDNESDAY_10AM = datetime(2027, 1, 13, 10, 0, tzinfo=LONDON)


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def invited(campaign: Campaign) -> list[CampaignEntry]:
    return list(campaign.entries.filter(link__isnull=False).order_by("row_number"))


def campaign_audits(campaign: Campaign) -> list[str]:
    return list(
        AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN, detail__campaign=campaign.reference)
        .order_by("pk")
        .values_list("detail__did", flat=True)
    )


class TestAnInvitation:
    def test_is_a_declinable_link_a_message_an_audit_event_and_the_row(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=2)
        run = campaigns_pace(now=WEDNESDAY_10AM)
        assert (run.campaigns, run.invited, run.unreachable) == (1, 2, 0)
        entry = invited(campaign)[0]
        link, message = entry.link, entry.message
        assert entry.invited_at == WEDNESDAY_10AM
        assert link.declinable
        assert link.status == BookingLink.Status.ACTIVE
        assert (link.patient, link.appointment_type, link.location, link.practitioner) == (
            entry.patient,
            campaign.appointment_type,
            campaign.location,
            None,
        )
        assert link.expires_at == WEDNESDAY_10AM + timedelta(days=14)
        assert link.created_by == practice.user
        assert message.booking_link == link
        assert message.patient == entry.patient
        assert (message.channel, message.to_address, message.status) == ("sms", entry.patient.mobile, "queued")
        assert message.template_body == campaign.body
        assert message.body == (
            f"{entry.patient.first_name}, {practice.organisation.name} invites you to book: {LINK_PLACEHOLDER}"
        )
        assert message.sent_by == practice.user
        # The token is kept only encrypted, and opens this link.
        token = token_decrypt(link.token_encrypted)
        assert token
        assert token not in message.body
        assert BookingLink.objects.get(token_digest=link.token_digest) == link
        sent = AuditEvent.objects.get(action=AuditEvent.Action.SENT, booking_link=link)
        assert sent.patient == entry.patient
        assert sent.actor == practice.user
        assert sent.detail == {"message": message.reference, "channel": "sms", "campaign": campaign.reference}

    def test_goes_in_the_lists_order(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=5, per_day=3)
        campaigns_pace(now=WEDNESDAY_10AM)
        assert [entry.row_number for entry in invited(campaign)] == [2, 3, 4]

    def test_goes_by_email_when_texts_no_longer_reach_the_patient(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=1)
        entry = campaign.entries.get()
        entry.patient.sms_opted_out = True
        entry.patient.save()
        campaigns_pace(now=WEDNESDAY_10AM)
        message = Message.objects.get(patient=entry.patient)
        assert (message.channel, message.to_address) == ("email", entry.patient.email)
        assert message.subject == f"A message from {practice.organisation.name}"

    def test_the_preferred_channel_comes_first(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=1, preferred_channel="email")
        campaigns_pace(now=WEDNESDAY_10AM)
        assert Message.objects.get(patient=campaign.entries.get().patient).channel == "email"

    def test_a_patient_no_longer_reachable_gets_no_contact_and_no_message(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=2)
        unreachable = campaign.entries.get(row_number=2)
        unreachable.patient.mobile = ""
        unreachable.patient.email = ""
        unreachable.patient.save()
        run = campaigns_pace(now=WEDNESDAY_10AM)
        assert (run.invited, run.unreachable) == (1, 1)
        unreachable.refresh_from_db()
        assert (unreachable.problem, unreachable.link, unreachable.invited_at) == ("no_contact", None, None)
        assert not Message.objects.filter(patient=unreachable.patient).exists()

    def test_a_patient_who_booked_or_was_sent_a_link_since_the_check_is_not_invited_again(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=3)
        booked, linked, invitable = campaign.entries.order_by("row_number")
        slot = Slot.objects.filter(appointment_type=practice.appointment_type, status="free").first()
        Slot.objects.filter(pk=slot.pk).update(status="booked")
        AppointmentFactory(slot=slot, patient=booked.patient, booking_link=None)
        BookingLinkFactory(
            patient=linked.patient,
            appointment_type=practice.appointment_type,
            location=practice.location,
            created_at=WEDNESDAY_10AM - timedelta(days=1),
            expires_at=WEDNESDAY_10AM + timedelta(days=6),
        )
        run = campaigns_pace(now=WEDNESDAY_10AM)
        assert run.invited == 1
        rows = {entry.pk: entry for entry in campaign.entries.all()}
        assert rows[booked.pk].problem == CampaignEntry.Problem.HAS_APPOINTMENT
        assert rows[linked.pk].problem == CampaignEntry.Problem.HAS_LINK
        assert rows[booked.pk].link is None
        assert rows[linked.pk].message is None
        assert rows[invitable.pk].link is not None
        assert Message.objects.filter(patient__in=[booked.patient, linked.patient]).count() == 0

    def test_the_command_runs_it_once_at_the_moment_given(self, practice, capsys):
        make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=2)
        call_command("pace_campaigns", now=WEDNESDAY_10AM.isoformat())
        assert capsys.readouterr().out == "Made 2 invitations for 1 campaign.\n"
        call_command("pace_campaigns", now=WEDNESDAY_10AM.isoformat())
        assert Message.objects.count() == 2


class TestWhenInvitationsAreMade:
    @pytest.mark.parametrize(
        "status",
        [
            Campaign.Status.CHECKING,
            Campaign.Status.CHECKED,
            Campaign.Status.PAUSED,
            Campaign.Status.STOPPED,
            Campaign.Status.FINISHED,
        ],
    )
    def test_only_a_sending_or_waiting_campaign_makes_any(self, practice, status):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, status=status)
        assert campaigns_pace(now=WEDNESDAY_10AM).invited == 0
        assert campaign_pace(campaign_id=campaign.pk, now=WEDNESDAY_10AM).invited == 0
        assert not invited(campaign)
        assert not Message.objects.exists()
        campaign.refresh_from_db()
        assert campaign.status == status

    def test_not_before_its_start_time(self, practice):
        starts_at = WEDNESDAY_10AM + timedelta(hours=2)
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=2, starts_at=starts_at)
        assert campaigns_pace(now=starts_at - timedelta(seconds=1)).invited == 0
        assert campaign_pace(campaign_id=campaign.pk, now=starts_at - timedelta(seconds=1)).invited == 0
        assert campaigns_pace(now=starts_at).invited == 2

    @pytest.mark.parametrize(
        "moment",
        [
            london(2027, 1, 13, 7, 59),
            london(2027, 1, 13, 20, 0),
            london(2027, 1, 13, 23, 30),
            # 07:30 London in summer time is 06:30 UTC: London's hours, not UTC's.
            london(2027, 6, 16, 7, 30),
        ],
    )
    def test_nothing_outside_08_00_to_20_00_london_time(self, practice, moment):
        campaign = make_paced_campaign(practice, now=moment, patients=2)
        assert campaigns_pace(now=moment).invited == 0
        assert campaign_pace(campaign_id=campaign.pk, now=moment).invited == 0
        assert not invited(campaign)

    @pytest.mark.parametrize(
        "moment", [london(2027, 1, 13, 8, 0), london(2027, 1, 13, 19, 59), london(2027, 6, 16, 8, 0)]
    )
    def test_from_08_00_until_just_before_20_00(self, practice, moment):
        campaign = make_paced_campaign(practice, now=moment, patients=2)
        assert campaigns_pace(now=moment).invited == 2
        assert len(invited(campaign)) == 2


class TestThePerDayCap:
    def test_counts_the_london_day_across_midnight_and_the_clock_change(self, practice):
        # Sunday 31 October 2027: the clocks go back at 2am BST. The day is 25 hours long.
        sunday_8am = london(2027, 10, 31, 8, 0)
        campaign = make_paced_campaign(practice, now=sunday_8am, patients=8, per_day=3, free_times=20)
        earlier = list(campaign.entries.order_by("row_number")[:2])
        # Saturday 7pm BST (18:00 UTC): the day before in London, though within 24 hours.
        # Sunday 00:30 BST (Saturday 23:30 UTC): the same London day, though Saturday in UTC.
        moments = [datetime(2027, 10, 30, 18, 0, tzinfo=UTC), datetime(2027, 10, 30, 23, 30, tzinfo=UTC)]
        for entry, moment in zip(earlier, moments, strict=True):
            entry.link = BookingLinkFactory(
                patient=entry.patient,
                appointment_type=campaign.appointment_type,
                location=campaign.location,
                created_at=moment,
                expires_at=moment + timedelta(days=14),
            )
            entry.invited_at = moment
            entry.save()
        # Only the 00:30 one counts against Sunday: 3 - 1.
        assert campaigns_pace(now=sunday_8am).invited == 2
        assert campaigns_pace(now=london(2027, 10, 31, 19, 59)).invited == 0
        # Monday is a new London day.
        assert campaigns_pace(now=london(2027, 11, 1, 8, 0)).invited == 3
        assert campaigns_pace(now=london(2027, 11, 1, 12, 0)).invited == 0
        assert len(invited(campaign)) == 7

    def test_across_the_spring_clock_change(self, practice):
        # Sunday 28 March 2027: the clocks go forward at 1am GMT; the London day is 23 hours.
        saturday = london(2027, 3, 27, 19, 0)
        campaign = make_paced_campaign(practice, now=saturday, patients=5, per_day=2, free_times=20)
        assert campaigns_pace(now=saturday).invited == 2
        assert campaigns_pace(now=london(2027, 3, 28, 8, 0)).invited == 2
        assert campaigns_pace(now=london(2027, 3, 28, 19, 59)).invited == 0
        assert len(invited(campaign)) == 4


class TestFreeTimes:
    def test_none_left_makes_it_wait_by_itself_and_new_rota_weeks_resume_it(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=4, free_times=0)
        pacing = campaign_pace(campaign_id=campaign.pk, now=WEDNESDAY_10AM)
        assert (pacing.status, pacing.invited) == (Campaign.Status.WAITING, 0)
        campaign.refresh_from_db()
        assert (campaign.status, campaign.status_changed_at) == (Campaign.Status.WAITING, WEDNESDAY_10AM)
        assert campaign_audits(campaign) == ["waiting"]
        # Still none a minute later: no second audit event.
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(minutes=1)).invited == 0
        assert campaign_audits(campaign) == ["waiting"]
        # The next rota week's slots are made.
        make_free_times(practice, count=1, start=WEDNESDAY_10AM + timedelta(days=7))
        later = WEDNESDAY_10AM + timedelta(minutes=2)
        assert campaigns_pace(now=later).invited == 2  # per_free_time 2 × 1 free time
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.SENDING
        assert campaign_audits(campaign) == ["waiting", "resumed_by_itself"]

    def test_a_cancellation_frees_a_time_and_resumes_it(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=4, free_times=1)
        Slot.objects.filter(appointment_type=practice.appointment_type).update(status=Slot.Status.BOOKED)
        campaigns_pace(now=WEDNESDAY_10AM)
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.WAITING
        Slot.objects.filter(appointment_type=practice.appointment_type).update(status=Slot.Status.FREE)
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(minutes=1)).invited == 2
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.SENDING

    def test_per_free_time_caps_the_invitations_still_open(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=10, free_times=2, per_free_time=2)
        assert campaigns_pace(now=WEDNESDAY_10AM).invited == 4
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(minutes=1)).invited == 0
        first, second, third, *_ = invited(campaign)
        # Declined, a call outcome recorded, revoked: none is open any more, so three more go.
        BookingLink.objects.filter(pk=first.link_id).update(
            status=BookingLink.Status.DECLINED, declined_at=WEDNESDAY_10AM
        )
        CampaignEntry.objects.filter(pk=second.pk).update(
            call_outcome=CampaignEntry.CallOutcome.NO_ANSWER, call_outcome_at=WEDNESDAY_10AM
        )
        BookingLink.objects.filter(pk=third.link_id).update(status=BookingLink.Status.REVOKED)
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(minutes=2)).invited == 3
        assert len(invited(campaign)) == 7

    def test_an_expired_invitation_is_no_longer_open(self, practice):
        make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=4, free_times=1, per_free_time=1, link_expiry="24h")
        assert campaigns_pace(now=WEDNESDAY_10AM).invited == 1
        # The free time is two days on: still offered a day later, when the first link has expired.
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(hours=23, minutes=59)).invited == 0
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(hours=24)).invited == 1


class TestTheEnd:
    def test_no_rows_left_finishes_it(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=3)
        # The run that invites the last row finds none left after it.
        assert campaigns_pace(now=WEDNESDAY_10AM).invited == 3
        campaign.refresh_from_db()
        assert campaign.status == Campaign.Status.FINISHED
        assert campaign_audits(campaign) == ["finished"]
        assert campaigns_pace(now=WEDNESDAY_10AM + timedelta(minutes=1)).campaigns == 0

    def test_rows_left_unreachable_finish_it_too(self, practice):
        campaign = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=1)
        patient = campaign.entries.get().patient
        patient.mobile, patient.email = "", ""
        patient.save()
        assert campaign_pace(campaign_id=campaign.pk, now=WEDNESDAY_10AM).status == Campaign.Status.FINISHED


class TestSettingsThatNoLongerHold:
    def test_a_campaign_that_cant_make_its_links_is_skipped_and_the_others_go_on(self, practice, caplog):
        broken = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=2)
        other = make_paced_campaign(practice, now=WEDNESDAY_10AM, patients=2)
        elsewhere = LocationFactory(organisation=practice.organisation)
        SlotFactory(
            practitioner=practice.practitioner,
            location=elsewhere,
            appointment_type=practice.appointment_type,
            start=WEDNESDAY_10AM + timedelta(days=5),
        )
        Campaign.objects.filter(pk=other.pk).update(location=elsewhere)
        # The first campaign's location closed, its times still in the book: no link can be made there.
        Location.objects.filter(pk=broken.location_id).update(is_active=False)
        run = campaigns_pace(now=WEDNESDAY_10AM)
        assert run.invited == 2
        assert not invited(broken)
        assert len(invited(other)) == 2
        assert f"Campaign {broken.pk} can't make its links" in caplog.text
