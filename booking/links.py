"""Booking links: issuing them, the state changes staff make, and the patient's side.

Status changes are conditional UPDATEs (`... WHERE status IN (...)`), so two staff acting at
once, or staff acting while the patient books, can't leave a link in a mixed state.

On the patient's side, `booking_link_patient_state` says which page a link gets (a
`LinkState`), `booking_link_check_dob` applies both date-of-birth limits, per link and
per client address (and marks the link verified on its first match), and
`booking_link_decline` lets the patient decline a campaign's invitation.
"""

from __future__ import annotations

import enum
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.models import User
from django.db import models, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from booking.audit import audit_record
from booking.exceptions import LinkNotAllowed
from booking.formats import date_and_time
from booking.link_lookup import booking_link_by_digest
from booking.models import (
    MAX_DOB_ATTEMPTS,
    Appointment,
    AppointmentType,
    AuditEvent,
    BookingLink,
    DeclineReason,
    Location,
    Organisation,
    Patient,
    Practitioner,
    hash_token,
)
from booking.offers import (
    appointment_type_offered_to,
    booking_link_still_shared,
    locations_offering,
    practitioners_offering,
)
from booking.throttle import dob_failure_record, dob_failures_exceeded
from booking.users import AnyUser


class LinkExpiry(models.TextChoices):
    """How long a link works. The product's six options; 14 days is the default."""

    HOURS_24 = "24h", "24 hours"
    HOURS_48 = "48h", "48 hours"
    DAYS_7 = "7d", "7 days"
    DAYS_14 = "14d", "14 days"
    DAYS_30 = "30d", "30 days"
    NEVER = "never", "Never"

    @property
    def lifetime(self) -> timedelta | None:
        return {
            "24h": timedelta(hours=24),
            "48h": timedelta(hours=48),
            "7d": timedelta(days=7),
            "14d": timedelta(days=14),
            "30d": timedelta(days=30),
            "never": None,
        }[self.value]

    def expires_at(self, *, now: datetime) -> datetime | None:
        return now + self.lifetime if self.lifetime else None


DEFAULT_EXPIRY = LinkExpiry.DAYS_14


def booking_link_check(
    *,
    organisation: Organisation,
    appointment_type: AppointmentType,
    location: Location,
    practitioner: Practitioner | None,
) -> None:
    """Raise LinkNotAllowed unless the organisation may offer this type, here, with this practitioner."""
    if appointment_type_offered_to(organisation=organisation, appointment_type_id=appointment_type.pk) is None:
        raise LinkNotAllowed(
            "That appointment type can't be booked through a link from this practice.", field="appointment_type"
        )
    if (
        not locations_offering(organisation=organisation, appointment_type=appointment_type)
        .filter(pk=location.pk)
        .exists()
    ):
        raise LinkNotAllowed("That appointment type isn't offered at that location.", field="location")
    if (
        practitioner is not None
        and not practitioners_offering(appointment_type=appointment_type, location=location)
        .filter(pk=practitioner.pk)
        .exists()
    ):
        raise LinkNotAllowed(
            "That practitioner doesn't offer this appointment type at that location.", field="practitioner"
        )


def booking_link_issue(
    *,
    patient: Patient,
    appointment_type: AppointmentType,
    location: Location,
    practitioner: Practitioner | None,
    expiry: LinkExpiry,
    created_by: User | None,
    now: datetime | None = None,
) -> BookingLink:
    """Make a link for a patient of the sending organisation. Raises LinkNotAllowed.

    Call inside the transaction that sends the message, so the link and its message are saved
    together or not at all. The returned instance knows its token (`link.token`).
    """
    now = now or timezone.now()
    organisation = patient.organisation
    booking_link_check(
        organisation=organisation, appointment_type=appointment_type, location=location, practitioner=practitioner
    )
    return BookingLink.objects.create(
        organisation=organisation,
        patient=patient,
        appointment_type=appointment_type,
        location=location,
        practitioner=practitioner,
        expires_at=LinkExpiry(expiry).expires_at(now=now),
        created_by=created_by,
        created_at=now,
    )


def booking_links_issue_many(
    *,
    patients: list[Patient],
    organisation: Organisation,
    appointment_type: AppointmentType,
    location: Location,
    practitioner: Practitioner | None,
    expiry: LinkExpiry,
    created_by: User | None,
    declinable: bool = False,
    now: datetime | None = None,
) -> list[BookingLink]:
    """Make one link per patient, in one INSERT: `booking_link_issue` for a campaign's batch.

    The settings are checked once (`booking_link_check`), not per patient: they are the same
    for every link. Each link gets its own token as `BookingLink.save` gives it
    (`BookingLink.token_new`), so each returned instance knows its token; `declinable` links (a
    campaign's invitations) offer "I don't want this appointment". Call inside the transaction
    that saves their messages. Locks nothing; raises LinkNotAllowed (settings, or a patient of
    another organisation) before writing anything.
    """
    now = now or timezone.now()
    booking_link_check(
        organisation=organisation, appointment_type=appointment_type, location=location, practitioner=practitioner
    )
    if any(patient.organisation_id != organisation.pk for patient in patients):
        raise LinkNotAllowed("A link can only be made for one of the practice's own patients.", field="patient")
    expires_at = LinkExpiry(expiry).expires_at(now=now)
    links = [
        BookingLink(
            organisation=organisation,
            patient=patient,
            appointment_type=appointment_type,
            location=location,
            practitioner=practitioner,
            expires_at=expires_at,
            created_by=created_by,
            created_at=now,
            declinable=declinable,
        )
        for patient in patients
    ]
    for link in links:
        link.token_new()
    return BookingLink.objects.bulk_create(links)


def booking_link_state(*, link: BookingLink, appointment: Appointment | None, now: datetime | None = None) -> str:
    """The link's status as staff read it: "Active, expires in 3 days", "Booked for ...", "Expired".

    `appointment` is the link's booked appointment, if any (a revoked link may still have one)."""
    now = now or timezone.now()
    if link.status == BookingLink.Status.BOOKED and appointment is not None:
        return f"Booked for {date_and_time(appointment.slot.start)}"
    if link.status == BookingLink.Status.REVOKED and appointment is not None:
        # Revoked after booking: the appointment stands, the link no longer changes or cancels it.
        return f"Booked for {date_and_time(appointment.slot.start)}, link revoked"
    if link.status == BookingLink.Status.REVOKED:
        return "Revoked"
    if link.status == BookingLink.Status.LOCKED:
        return "Locked (wrong date of birth 5 times)"
    if link.status == BookingLink.Status.DECLINED:
        return "Declined by the patient"
    if link.status == BookingLink.Status.BOOKED:
        return "Booked"
    if link.expires_at is None:
        return "Active, never expires"
    if link.expires_at <= now:
        return "Expired"
    left = link.expires_at - now
    if left < timedelta(days=1):
        hours = max(1, round(left.total_seconds() / 3600))
        return f"Active, expires in {hours} hour{'s' if hours != 1 else ''}"
    # Nearest whole day: a 14-day link just sent reads "14 days", not "13".
    days = round(left / timedelta(days=1))
    return f"Active, expires in {days} day{'s' if days != 1 else ''}"


# Which statuses each change may start from. A booked link can be revoked too: that stops the
# patient changing or cancelling online, and leaves the appointment booked.
REVOCABLE = (BookingLink.Status.ACTIVE, BookingLink.Status.LOCKED, BookingLink.Status.BOOKED)
UNLOCKABLE = (BookingLink.Status.LOCKED,)


def booking_link_revoke(*, link: BookingLink, actor: AnyUser) -> bool:
    """Revoke a link so it can no longer book, or (booked) change or cancel. Returns whether it changed.

    Active, locked and booked links can be revoked. A booked link keeps its appointment:
    cancelling that is a separate act; revoking only stops the patient changing or cancelling
    it online (later messages then carry no link). The encrypted token is wiped in the same
    UPDATE: a revoked link is never sent again. A conditional UPDATE of the link's row, so it
    waits for a booking that holds that row's lock and then revokes the booked link.
    """
    with transaction.atomic():
        changed = BookingLink.objects.filter(pk=link.pk, status__in=REVOCABLE).update(
            status=BookingLink.Status.REVOKED, revoked_at=timezone.now(), token_encrypted=""
        )
        if changed:
            audit_record(action=AuditEvent.Action.REVOKED, actor=actor, patient=link.patient, booking_link=link)
    if changed:
        link.refresh_from_db(fields=["status", "revoked_at"])
    return bool(changed)


def booking_link_unlock(*, link: BookingLink, actor: AnyUser) -> bool:
    """Unlock a link locked by wrong dates of birth, resetting its count. Returns whether it changed."""
    with transaction.atomic():
        # A link locked after it booked goes back to booked, not active: it has had its one booking,
        # even if that appointment has since been cancelled (active, it could book a second).
        booked = Appointment.objects.filter(booking_link=link).exists()
        changed = BookingLink.objects.filter(pk=link.pk, status__in=UNLOCKABLE).update(
            status=BookingLink.Status.BOOKED if booked else BookingLink.Status.ACTIVE, failed_attempts=0
        )
        if changed:
            audit_record(action=AuditEvent.Action.UNLOCKED, actor=actor, patient=link.patient, booking_link=link)
    if changed:
        link.refresh_from_db(fields=["status", "failed_attempts"])
    return bool(changed)


def booking_links_wipe_unusable(*, now: datetime | None = None) -> int:
    """Wipe the encrypted token of every link that can do nothing more; returns how many.

    A link is useful while it can book (active or locked, and not expired: staff can unlock a
    locked one, and a message still being delivered may carry it) or, once booked, while its
    appointment is still to come (the confirmation and reminders carry it to change or cancel;
    a booked link's expiry doesn't end that). Revoking and cancelling wipe their own link as
    they happen; this catches links that expired and appointments whose time has passed.
    One UPDATE, no lock held beyond its rows; run by the delivery sweep (messaging/tasks.py).
    """
    now = now or timezone.now()
    appointment_to_come = Appointment.objects.filter(
        booking_link=models.OuterRef("pk"), status=Appointment.Status.BOOKED, slot__start__gt=now
    )
    return (
        BookingLink.objects.exclude(token_encrypted="")
        .filter(
            models.Q(status__in=[BookingLink.Status.REVOKED, BookingLink.Status.DECLINED])
            | (~models.Q(status=BookingLink.Status.BOOKED) & models.Q(expires_at__lte=now))
            | (models.Q(status=BookingLink.Status.BOOKED) & ~models.Exists(appointment_to_come))
        )
        .update(token_encrypted="")
    )


# --- The patient's side: finding a link and checking the date of birth ----------------------

# token_urlsafe(16) makes 22 characters of [A-Za-z0-9_-]; allow a little either way so a token
# format change isn't a silent outage, and refuse anything else before touching the database.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def booking_link_find(token: str) -> BookingLink | None:
    """The link for a token, or None for anything unknown, malformed or oversized. Never raises.

    With what the patient's pages show of it joined (booking/link_lookup.py: one prepared
    statement; a lazy load of anything else raises in the tests).
    """
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token):
        return None
    return booking_link_by_digest(hash_token(token))


# Audit events for opens, at most, per link: the count and the last open keep counting after.
OPENED_EVENTS_PER_LINK = 20


def booking_link_record_opened(*, link: BookingLink, ip_address: str | None, audit: bool = True) -> None:
    """Record that the link was opened: the only write a GET may make.

    Phones and mail scanners open links for previews too, so this changes nothing that
    matters to the booking; it is what staff and auditors see. Every open updates the link's
    own row (first and last open, a count) in one UPDATE, so two opens at once both count.
    An OPENED audit event is added only when `audit` (the view passes whether this browser
    session has opened the link before) and while the link has fewer than
    OPENED_EVENTS_PER_LINK opens, so a scanner that keeps no cookies can't grow the trail
    without end.
    """
    now = timezone.now()
    with transaction.atomic():
        BookingLink.objects.filter(pk=link.pk).update(
            first_opened_at=Coalesce(F("first_opened_at"), Value(now)),
            last_opened_at=now,
            open_count=F("open_count") + 1,
        )
        if audit and link.open_count < OPENED_EVENTS_PER_LINK:
            audit_record(
                action=AuditEvent.Action.OPENED, patient=link.patient, booking_link=link, ip_address=ip_address
            )
    link.first_opened_at = link.first_opened_at or now
    link.last_opened_at = now
    link.open_count += 1


class DobCheck(enum.Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    LOCKED = "locked"
    # This client address has used up its wrong tries across links (booking/throttle.py).
    TOO_MANY_TRIES = "too_many_tries"


@dataclass(frozen=True)
class DobResult:
    check: DobCheck
    tries_left: int


def booking_link_verify_dob(*, link: BookingLink, date_of_birth: date, ip_address: str | None) -> tuple[DobCheck, int]:
    """Check a date of birth against the link's patient. Returns (result, tries left).

    A wrong date counts with one conditional UPDATE (`... WHERE failed_attempts < 5`), so 50
    wrong guesses at once still count exactly five; the fifth locks the link in the same
    statement. A locked link refuses even the right date. The comparison is constant-time.
    """
    check, tries_left, _ = _dob_verify(link=link, date_of_birth=date_of_birth, ip_address=ip_address)
    return check, tries_left


def _dob_verify(*, link: BookingLink, date_of_birth: date, ip_address: str | None) -> tuple[DobCheck, int, bool]:
    # The third value: whether the link's conditional UPDATE counted this wrong date. Only
    # those count towards the client's address; a try the locked link refused doesn't.
    link.refresh_from_db(fields=["status", "failed_attempts", "verified_at"])
    if link.status == BookingLink.Status.LOCKED:
        return DobCheck.LOCKED, 0, False
    matches = hmac.compare_digest(date_of_birth.isoformat().encode(), link.patient.date_of_birth.isoformat().encode())
    if matches:
        if link.verified_at is None:
            _verified_first_record(link=link)
        return DobCheck.MATCH, MAX_DOB_ATTEMPTS - link.failed_attempts, False
    with transaction.atomic():
        counted = (
            BookingLink.objects.filter(pk=link.pk, failed_attempts__lt=MAX_DOB_ATTEMPTS)
            .exclude(status=BookingLink.Status.LOCKED)
            .update(
                failed_attempts=F("failed_attempts") + 1,
                status=Case(
                    When(failed_attempts__gte=MAX_DOB_ATTEMPTS - 1, then=Value(BookingLink.Status.LOCKED)),
                    default=F("status"),
                ),
            )
        )
        if not counted:
            return DobCheck.LOCKED, 0, False
        link.refresh_from_db(fields=["status", "failed_attempts"])
        audit_record(
            action=AuditEvent.Action.DOB_FAILED,
            patient=link.patient,
            booking_link=link,
            ip_address=ip_address,
            detail={"attempt": link.failed_attempts},
        )
        if link.status == BookingLink.Status.LOCKED:
            audit_record(
                action=AuditEvent.Action.LOCKED, patient=link.patient, booking_link=link, ip_address=ip_address
            )
            return DobCheck.LOCKED, 0, True
    return DobCheck.MISMATCH, MAX_DOB_ATTEMPTS - link.failed_attempts, True


def _verified_first_record(*, link: BookingLink) -> None:
    """Record the link's first date-of-birth match (a campaign's funnel counts "Date of birth confirmed").

    Only when the read above found none, so later matches cost no query; and conditional
    (`... WHERE verified_at IS NULL`), so two first matches at once keep the earlier time.
    """
    now = timezone.now()
    if BookingLink.objects.filter(pk=link.pk, verified_at__isnull=True).update(verified_at=now):
        link.verified_at = now


def booking_link_check_dob(*, link: BookingLink, date_of_birth: date, ip_address: str | None) -> DobResult:
    """Check a date of birth under both limits: the link's five tries and the address's.

    An address that has used up its wrong tries across links (booking/throttle.py) is refused
    before the date is compared, so it learns nothing more, and the link's count is untouched.
    Otherwise the link's own count decides (a counted conditional UPDATE of the link row), and
    a wrong date that UPDATE counted also counts against the address (one upsert of its
    `AttemptCount` row); a try the link refused because it was locked doesn't, so a burst on one
    link adds at most five. The address is checked before and counted after, so parallel tries
    from one address can pass its limit by at most their own number. Returns MATCH, MISMATCH
    with the tries left, LOCKED (the fifth wrong date, or already locked) or TOO_MANY_TRIES.
    """
    if dob_failures_exceeded(ip_address=ip_address):
        return DobResult(DobCheck.TOO_MANY_TRIES, 0)
    check, tries_left, counted = _dob_verify(link=link, date_of_birth=date_of_birth, ip_address=ip_address)
    if check is DobCheck.MATCH:
        return DobResult(check, tries_left)
    if counted:
        dob_failure_record(ip_address=ip_address)
    if check is DobCheck.LOCKED or tries_left <= 0:
        return DobResult(DobCheck.LOCKED, 0)
    return DobResult(DobCheck.MISMATCH, tries_left)


class LinkState(enum.StrEnum):
    """Which page a patient opening a link gets. A str, so it compares equal to its value."""

    ACTIVE = "active"
    BOOKED = "booked"
    EXPIRED = "expired"
    REVOKED = "revoked"
    LOCKED = "locked"
    # A campaign's invitation the patient declined.
    DECLINED = "declined"
    NOT_FOUND = "not_found"
    # The link's type belongs to a host whose sharing agreement with the sender has ended.
    AGREEMENT_ENDED = "agreement_ended"
    # The practice deactivated the link's type, or stopped patients booking it themselves.
    TYPE_WITHDRAWN = "type_withdrawn"


def booking_link_patient_state(*, link: BookingLink | None, now: datetime | None = None) -> LinkState:
    """Which page the patient should see for this link (None: no such link).

    A booked link stays BOOKED after it expires, or after its sharing agreement ends, so the
    patient can still see their appointment. An active link whose type has been deactivated or
    made not self-bookable is TYPE_WITHDRAWN (read from `link.appointment_type`, so no query
    when it is joined). An active link for a host's type re-checks the sharing agreement (one
    query; none for the sender's own types), so ending an agreement stops links already sent.
    """
    now = now or timezone.now()
    if link is None:
        return LinkState.NOT_FOUND
    if link.status == BookingLink.Status.BOOKED:
        return LinkState.BOOKED
    if link.status == BookingLink.Status.REVOKED:
        return LinkState.REVOKED
    if link.status == BookingLink.Status.LOCKED:
        return LinkState.LOCKED
    if link.status == BookingLink.Status.DECLINED:
        return LinkState.DECLINED
    if link.expires_at is not None and link.expires_at <= now:
        return LinkState.EXPIRED
    return booking_link_offer_withdrawn(link=link) or LinkState.ACTIVE


def booking_link_offer_withdrawn(*, link: BookingLink) -> LinkState | None:
    """Why the link's type can no longer be booked through it, or None while it can.

    TYPE_WITHDRAWN when the practice deactivated the type or stopped patients booking it;
    AGREEMENT_ENDED when a host's type is no longer shared with the sender. Booking (through
    `booking_link_patient_state`) and changing to another time both ask here. Reads
    `link.appointment_type`; one query for a host's type, none for the sender's own.
    """
    if not (link.appointment_type.is_active and link.appointment_type.self_bookable):
        return LinkState.TYPE_WITHDRAWN
    if not booking_link_still_shared(link=link):
        return LinkState.AGREEMENT_ENDED
    return None


# --- The patient declines a campaign's invitation ----------------------------------------------


def booking_link_decline(
    *, link: BookingLink, reason: str, detail: str, ip_address: str | None, now: datetime | None = None
) -> bool:
    """The patient says they don't want this appointment: the link can't book any more. Returns
    whether it declined it (False when it was already booked, declined, revoked, locked, expired or
    was never declinable: read the link's state again to know which page to show).

    Only a campaign's invitation (`declinable`) can be declined, and only while it could book:
    one conditional UPDATE of the link's row (`... WHERE status = 'active' AND declinable AND
    not expired`) that also wipes its encrypted token, as revoking does: nothing will send it
    again. That UPDATE waits for the row lock a booking of the same link holds from its check to
    its commit (booking/appointments.py, `_link_locked`), and PostgreSQL then re-reads the row,
    so a booking and a decline at once end with exactly one of them done. `reason` is a
    DeclineReason value or "" (the patient need not say), `detail` their own words (at most 200
    characters). The audit event records the reason's code only: the words stay on the link.
    Raises ValueError for a reason that is not a DeclineReason; the database refuses a longer detail.
    """
    if reason and reason not in DeclineReason.values:
        raise ValueError(f"{reason!r} is not a reason to decline.")
    now = now or timezone.now()
    with transaction.atomic():
        declined = (
            BookingLink.objects.filter(pk=link.pk, status=BookingLink.Status.ACTIVE, declinable=True)
            .filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))
            .update(
                status=BookingLink.Status.DECLINED,
                declined_at=now,
                decline_reason=reason,
                decline_detail=detail,
                token_encrypted="",
            )
        )
        if declined:
            audit_record(
                action=AuditEvent.Action.DECLINED,
                patient=link.patient,
                booking_link=link,
                ip_address=ip_address,
                detail={"reason": reason},
            )
    link.refresh_from_db(fields=["status", "declined_at", "decline_reason", "decline_detail", "token_encrypted"])
    return bool(declined)
