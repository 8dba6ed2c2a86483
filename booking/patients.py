"""Patients: finding them as staff type (by name, NHS number or date of birth, within their
organisations), and their choice to receive texts or not (opt-outs, per organisation).
"""

from __future__ import annotations

import re
from datetime import date, datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Upper

from booking.audit import audit_record_many
from booking.models import AuditEvent, Organisation, Patient
from booking.nhs_numbers import normalise_nhs_number

MAX_RESULTS = 20
MIN_NAME_LENGTH = 2
SHORT_TERM = 3
_DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d", "%d %b %Y", "%d %B %Y", "%d/%m/%y")


def parse_date_of_birth(text: str) -> date | None:
    cleaned = re.sub(r"\s+", " ", text.strip())
    for date_format in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(cleaned, date_format).date()
        except ValueError:
            continue
        if date_format.endswith("%y") and parsed > date.today():
            parsed = parsed.replace(year=parsed.year - 100)
        return parsed
    return None


def patient_search(*, organisation_ids: list[int], query: str, limit: int = MAX_RESULTS) -> QuerySet[Patient]:
    """Patients of these organisations matching `query`, best guess at what was typed.

    Ten digits (spaces allowed) are an NHS number; a date is a date of birth; anything else is
    parts of a name, each of which must appear in the first or last name, or start one when it
    is shorter than three letters (what staff have typed so far: "sm" finds Smith, not
    Chisman). The trigram indexes serve both. One query.
    """
    query = (query or "").strip()[:100]
    patients = (
        Patient.objects.filter(organisation_id__in=organisation_ids)
        .select_related("organisation")
        .fetch_mode(models.FETCH_RAISE)
    )
    if not query:
        return patients.none()
    digits = normalise_nhs_number(query)
    if digits.isdigit() and len(digits) == 10:
        return patients.filter(nhs_number=digits)[:limit]
    born = parse_date_of_birth(query)
    if born is not None:
        return patients.filter(date_of_birth=born).order_by("last_name", "first_name")[:limit]
    terms = [term for term in re.split(r"[\s,]+", query) if term][:4]
    if sum(len(term) for term in terms) < MIN_NAME_LENGTH:
        return patients.none()  # one letter matches half the list and no index can help
    for term in terms:
        if len(term) < SHORT_TERM:
            # A trigram index can find two letters at the start of a word, but not anywhere in it.
            patients = patients.filter(Q(first_name__istartswith=term) | Q(last_name__istartswith=term))
        else:
            patients = patients.filter(Q(first_name__icontains=term) | Q(last_name__icontains=term))
    # Sorted case-insensitively, which no index provides: ordering by last_name as stored lets
    # the planner walk the (organisation, last_name, first_name) index and filter thousands of
    # rows for a common name (25 ms for "smith" on a 22,000-patient list) instead of fetching
    # the few hundred matches from the trigram indexes and sorting them (4 ms).
    return patients.order_by(Upper("last_name"), Upper("first_name"), "pk")[:limit]


def patients_opt_out(
    *,
    mobile: str,
    organisations: QuerySet[Organisation],
    why: str,
    opted_out: bool = True,
    ip_address: str | None = None,
) -> int:
    """Mark the patient records with this mobile at these organisations as opted out of texts (or back in).

    Returns how many changed. Only `organisations`: a STOP is an answer to the sender it was
    sent to, so a patient registered at two practices that text from different senders stays
    reachable by the other (messaging decides which organisations a sender or a report covers).

    One UPDATE ... RETURNING that skips the records already so, and one audit event per record
    it changed, with `why`, in the caller's transaction (or its own). The UPDATE locks the rows
    it changes, and a second report about the same number at once (Twilio's error and the
    patient's STOP text) waits for it, then finds nothing left to change: the change is
    recorded once. Raises nothing of its own.
    """
    try:
        scope_sql, scope_params = (
            Patient.objects.filter(mobile=mobile, organisation__in=organisations).values("pk").query.sql_with_params()
        )
    except EmptyResultSet:
        return 0  # no organisation (organisations.none()): nothing to change
    # No savepoint of its own: one fewer round trip for every inbound text, and a caller's
    # transaction (messaging's replay guard) wants all or nothing anyway.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Only Django's own compiled SQL is pasted in; every value is a parameter.
        cursor.execute(
            "UPDATE booking_patient SET sms_opted_out = %s WHERE sms_opted_out <> %s"  # noqa: S608
            f" AND id IN ({scope_sql}) RETURNING id, organisation_id",
            [opted_out, opted_out, *scope_params],
        )
        changed = [Patient(pk=pk, organisation_id=organisation_id) for pk, organisation_id in cursor.fetchall()]
        if changed:
            audit_record_many(
                action=AuditEvent.Action.OPTED_OUT if opted_out else AuditEvent.Action.OPTED_IN,
                actor=None,
                patients=changed,
                ip_address=ip_address,
                detail={"why": why},
            )
    return len(changed)
