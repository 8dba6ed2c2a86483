"""The patient's pages: date of birth, times, confirm, and the calendar file.

The booked page, and changing or cancelling from it, are in booking/views/manage.py.

Opening a link (GET or HEAD) changes nothing but the "opened" record: phones, chat apps and
mail scanners fetch links for previews. A signed cookie remembers which links the browser
opened, so each open is counted but audited once per browser session. Only POSTs act, and
the rules live in booking/links.py, booking/slots.py and booking/appointments.py; these views
parse input, call them and render.

Once the date of birth matches, the session remembers that this link (and only this link) was
verified, with the time it was last used; it lapses after 30 minutes idle. Every response is
`Cache-Control: no-store`: a shared phone's back button must not show someone's appointment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from booking.appointments import appointment_book, booking_link_booked_appointment
from booking.calendar import appointment_calendar
from booking.exceptions import BookingBusy, LinkNotBookable, SlotNotAllowed, SlotTaken
from booking.formats import LONDON, day_label, time_of_day, today_in_london
from booking.forms import DateOfBirthForm, slot_id_from_reference
from booking.http import client_ip
from booking.links import (
    DobCheck,
    LinkState,
    booking_link_check_dob,
    booking_link_find,
    booking_link_patient_state,
    booking_link_record_opened,
)
from booking.models import Appointment, BookingLink
from booking.references import encode_reference
from booking.slots import FreeTime, slot_find_available, slot_times_available

VERIFIED_SESSION_KEY = "booking_verified_links"
VERIFIED_IDLE = timedelta(minutes=30)
VERIFIED_REFRESH = timedelta(minutes=1)
# The cookie naming the links this browser has opened (their opens already audited), the latest few.
OPENED_COOKIE = "booking_opened"
OPENED_REMEMBERED = 20
# More free times than this and the times page shows a week at a time.
ONE_PAGE_LIMIT = 30

# The pages for links that can't be used, whoever opens them. None of them says anything
# about the patient, so they show before the date of birth.
STATE_PAGES = {
    LinkState.NOT_FOUND: ("booking/link_not_found.html", 404),
    LinkState.EXPIRED: ("booking/link_expired.html", 410),
    LinkState.REVOKED: ("booking/link_revoked.html", 410),
    LinkState.AGREEMENT_ENDED: ("booking/link_agreement_ended.html", 410),
    LinkState.TYPE_WITHDRAWN: ("booking/link_type_withdrawn.html", 410),
    LinkState.LOCKED: ("booking/link_locked.html", 403),
}


# --- Session: which links this browser has verified -------------------------------------------


def _verified_links(request: HttpRequest) -> dict[str, float]:
    value = request.session.get(VERIFIED_SESSION_KEY)
    return dict(value) if isinstance(value, dict) else {}


def _is_verified(request: HttpRequest, link: BookingLink, now: datetime) -> bool:
    """Whether this browser verified this link less than 30 minutes ago; refreshes the clock if so."""
    verified = _verified_links(request)
    last_seen = verified.get(str(link.pk))
    if last_seen is None:
        return False
    if now.timestamp() - last_seen > VERIFIED_IDLE.total_seconds():
        del verified[str(link.pk)]
        request.session[VERIFIED_SESSION_KEY] = verified
        return False
    # Restarting the idle clock is a session write (an UPDATE) on every page; once a minute is
    # as good for a 30-minute limit and spares the pages a patient clicks through quickly.
    if now.timestamp() - last_seen >= VERIFIED_REFRESH.total_seconds():
        verified[str(link.pk)] = now.timestamp()
        request.session[VERIFIED_SESSION_KEY] = verified
    return True


def _mark_verified(request: HttpRequest, link: BookingLink, now: datetime) -> None:
    # A new session key on a match, so a key fixed or seen before the check is worth nothing after.
    request.session.cycle_key()
    cutoff = now.timestamp() - VERIFIED_IDLE.total_seconds()
    verified = {pk: seen for pk, seen in _verified_links(request).items() if seen >= cutoff}
    verified[str(link.pk)] = now.timestamp()
    request.session[VERIFIED_SESSION_KEY] = verified


def _opened_links(request: HttpRequest) -> list[str]:
    """The references of the links this browser opened in this session (a signed cookie)."""
    value = request.get_signed_cookie(OPENED_COOKIE, default="", salt=OPENED_COOKIE)
    return [reference for reference in str(value).split(",") if reference][-OPENED_REMEMBERED:]


def _remember_opened(response: HttpResponse, *, opened: list[str], link: BookingLink) -> None:
    # A signed cookie rather than the session: a preview or scanner without cookies would
    # otherwise add a session row per open, and the link page has a query ceiling to keep.
    # No max_age: it ends when the browser closes, which is the session the audit counts.
    response.set_signed_cookie(
        OPENED_COOKIE,
        ",".join([*opened, link.reference][-OPENED_REMEMBERED:]),
        salt=OPENED_COOKIE,
        path="/b/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


# --- Shared steps -----------------------------------------------------------------------------


def _state_page(request: HttpRequest, link: BookingLink | None, state: str) -> HttpResponse:
    template, status = STATE_PAGES[LinkState(state)]
    # An unknown link has no practice to name: the page says "your GP practice".
    return render(request, template, {"organisation": link.organisation if link else None}, status=status)


def _start_url(token: str) -> str:
    return reverse("booking:link", kwargs={"token": token})


def _open_verified(request: HttpRequest, token: str, *, allow: LinkState) -> BookingLink | HttpResponse:
    """The link for a page behind the date of birth, or the response to send instead.

    Unknown tokens get "Link not found"; expired, revoked, locked and no-longer-shared links
    their own pages; an unverified (or lapsed) browser goes back to the date of birth; a link
    in a state the page doesn't serve goes to the page that does (times while active, booked
    once booked).
    """
    link = booking_link_find(token)
    now = timezone.now()
    state = booking_link_patient_state(link=link, now=now)
    if link is None or state in STATE_PAGES:
        return _state_page(request, link, state)
    if not _is_verified(request, link, now):
        return redirect(_start_url(token))
    if state != allow:
        return redirect(_after_verification_url(token, state))
    return link


def _after_verification_url(token: str, state: LinkState) -> str:
    return reverse("booking:booked" if state == LinkState.BOOKED else "booking:times", kwargs={"token": token})


# --- Presenting times -------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotChoice:
    reference: str
    time: str
    day: str
    practitioner: str


@dataclass
class Day:
    label: str
    choices: list[SlotChoice] = field(default_factory=list)


@dataclass
class TimesPage:
    next_available: SlotChoice | None
    days: list[Day]
    week_label: str = ""
    previous_week: int | None = None
    next_week: int | None = None
    previous_label: str = ""
    next_label: str = ""


def _choice(slot: FreeTime, today: date, *, day: str | None = None) -> SlotChoice:
    return SlotChoice(
        reference=encode_reference(slot.pk, namespace="slot"),
        time=time_of_day(slot.start),
        day=day_label(slot.start, today=today) if day is None else day,
        practitioner=slot.practitioner_name,
    )


def _week_param(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def times_page(*, slots: list[FreeTime], week: int, today: date) -> TimesPage:
    """The earliest time on its own, then the rest by London day, a week at a time when there are many."""
    if not slots:
        return TimesPage(next_available=None, days=[])
    rest = slots[1:]
    # A busy link offers hundreds of times: each is converted to London time once, and each
    # day's label is made once.
    local_days = [slot.start.astimezone(LONDON).date() for slot in rest]
    page = TimesPage(next_available=_choice(slots[0], today), days=[])
    chosen = list(zip(rest, local_days, strict=True))
    if len(rest) > ONE_PAGE_LIMIT:
        # Only weeks (Monday to Sunday) that have times, so Next never lands on an empty week.
        weeks = sorted({day - timedelta(days=day.weekday()) for day in set(local_days)})
        week = min(week, len(weeks) - 1)
        monday = weeks[week]
        chosen = [(slot, day) for slot, day in chosen if monday <= day < monday + timedelta(days=7)]
        page.week_label = f"{day_label(monday, today=today)} to {day_label(monday + timedelta(days=6), today=today)}"
        if week > 0:
            page.previous_week = week - 1
            page.previous_label = f"Week of {day_label(weeks[week - 1], today=today)}"
        if week < len(weeks) - 1:
            page.next_week = week + 1
            page.next_label = f"Week of {day_label(weeks[week + 1], today=today)}"
    days: dict[date, Day] = {}
    for slot, day in chosen:
        if day not in days:
            days[day] = Day(label=day_label(day, today=today))
        days[day].choices.append(_choice(slot, today, day=days[day].label))
    page.days = list(days.values())
    return page


@dataclass(frozen=True)
class TimesFlow:
    """Which journey the times pages serve: booking a first time, or changing to another.

    The same pages list the link's free times for both; the flow says where their navigation
    and their form go, and (when changing) the appointment being moved, which is shown as the
    current one and is never among the choices (it is booked, so `offered_by` leaves it out).
    """

    times_url: str
    confirm_url: str
    current: Appointment | None = None


def booking_flow(token: str) -> TimesFlow:
    return TimesFlow(
        times_url=reverse("booking:times", kwargs={"token": token}),
        confirm_url=reverse("booking:confirm", kwargs={"token": token}),
    )


def render_times(
    request: HttpRequest,
    link: BookingLink,
    *,
    token: str,
    flow: TimesFlow | None = None,
    week: int = 0,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The times page for `link` in `flow` (booking, unless told otherwise)."""
    flow = flow or booking_flow(token)
    slots = slot_times_available(link=link, now=timezone.now())
    if flow.current is not None:
        # The time already booked is shown as current, never offered (nor another clinician's slot at that start).
        slots = [slot for slot in slots if slot.start != flow.current.slot.start]
    page = times_page(slots=slots, week=week, today=today_in_london())
    return render(
        request,
        "booking/times.html",
        {
            "organisation": link.organisation,
            "link": link,
            "token": token,
            "page": page,
            "flow": flow,
            "error": error,
        },
        status=status,
    )


# --- Views ------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def booking_link(request: HttpRequest, token: str) -> HttpResponse:
    """The short link: the date-of-birth page (GET), and the check itself (POST)."""
    link = booking_link_find(token)
    now = timezone.now()
    state = booking_link_patient_state(link=link, now=now)
    if link is None:
        return _state_page(request, None, state)
    if request.method == "POST":
        return _check_date_of_birth(request, link, token=token, state=state, now=now)
    # Every open counts; this browser's first in its session is the one audited.
    opened = _opened_links(request)
    first_in_session = link.reference not in opened
    booking_link_record_opened(link=link, ip_address=client_ip(request), audit=first_in_session)
    response = _opened_page(request, link, token=token, state=state, now=now)
    if first_in_session:
        _remember_opened(response, opened=opened, link=link)
    return response


def _opened_page(
    request: HttpRequest, link: BookingLink, *, token: str, state: LinkState, now: datetime
) -> HttpResponse:
    if state in STATE_PAGES:
        return _state_page(request, link, state)
    if _is_verified(request, link, now):
        return redirect(_after_verification_url(token, state))
    return _render_date_of_birth(request, link, token=token, form=DateOfBirthForm())


def _render_date_of_birth(
    request: HttpRequest, link: BookingLink, *, token: str, form: DateOfBirthForm, mismatch: str = ""
) -> HttpResponse:
    # Only the practice's name shows here: nothing about the patient or their appointment
    # until the date of birth matches.
    return render(
        request,
        "booking/date_of_birth.html",
        {"organisation": link.organisation, "token": token, "form": form, "mismatch": mismatch},
    )


def _check_date_of_birth(
    request: HttpRequest, link: BookingLink, *, token: str, state: LinkState, now: datetime
) -> HttpResponse:
    if state in STATE_PAGES:
        return _state_page(request, link, state)
    form = DateOfBirthForm(request.POST, today=timezone.localdate(now, LONDON))
    if not form.is_valid():
        return _render_date_of_birth(request, link, token=token, form=form)
    result = booking_link_check_dob(
        link=link, date_of_birth=form.cleaned_data["date_of_birth"], ip_address=client_ip(request)
    )
    if result.check is DobCheck.MATCH:
        _mark_verified(request, link, now)
        return redirect(_after_verification_url(token, state))
    if result.check is DobCheck.TOO_MANY_TRIES:
        return render(request, "booking/too_many_tries.html", {"organisation": link.organisation}, status=429)
    if result.check is DobCheck.LOCKED:
        return _state_page(request, link, LinkState.LOCKED)
    tries = f"{result.tries_left} {'try' if result.tries_left == 1 else 'tries'}"
    return _render_date_of_birth(
        request,
        link,
        token=token,
        form=form,
        mismatch=f"The date of birth does not match. You have {tries} left.",
    )


@never_cache
@require_safe
def times(request: HttpRequest, token: str) -> HttpResponse:
    link = _open_verified(request, token, allow=LinkState.ACTIVE)
    if isinstance(link, HttpResponse):
        return link
    return render_times(request, link, token=token, week=_week_param(request.GET.get("week")))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the chosen time with "Book appointment"; POST books it."""
    link = _open_verified(request, token, allow=LinkState.ACTIVE)
    if isinstance(link, HttpResponse):
        return link
    if request.method == "POST":
        return _book(request, link, token=token)
    slot_id = slot_id_from_reference(request.GET.get("slot"))
    if slot_id is None:
        return render_times(request, link, token=token, error="Choose a time")
    slot = slot_find_available(link=link, slot_id=slot_id)
    if slot is None:
        return render_times(
            request,
            link,
            token=token,
            error="Sorry, that time is no longer available. Choose another time.",
            status=409,
        )
    return render(
        request,
        "booking/confirm.html",
        {
            "organisation": link.organisation,
            "link": link,
            "token": token,
            "slot": slot,
            "choice": _choice(FreeTime(slot.pk, slot.start, slot.practitioner.name), today_in_london()),
        },
    )


def _book(request: HttpRequest, link: BookingLink, *, token: str) -> HttpResponse:
    slot_reference = request.POST.get("slot", "")
    slot_id = slot_id_from_reference(slot_reference)
    context = {"organisation": link.organisation, "token": token}
    if slot_id is None:
        return render(
            request, "booking/slot_not_allowed.html", {**context, "message": SlotNotAllowed().message}, status=400
        )
    try:
        appointment_book(link_id=link.pk, slot_id=slot_id, ip_address=client_ip(request))
    except SlotTaken as error:
        return render_times(request, link, token=token, error=error.message, status=409)
    except SlotNotAllowed as error:
        return render(request, "booking/slot_not_allowed.html", {**context, "message": error.message}, status=400)
    except LinkNotBookable as error:
        # A double submit, or another tab that booked first: the link booked once; show that.
        if error.state in STATE_PAGES:
            return _state_page(request, link, error.state)
        return redirect(reverse("booking:booked", kwargs={"token": token}))
    except BookingBusy as error:
        response = render(
            request, "booking/busy.html", {**context, "message": error.message, "slot": slot_reference}, status=503
        )
        response["Retry-After"] = "5"
        return response
    return redirect(reverse("booking:booked", kwargs={"token": token}))


@never_cache
@require_safe
def appointment_ics(request: HttpRequest, token: str) -> HttpResponse:
    link = _open_verified(request, token, allow=LinkState.BOOKED)
    if isinstance(link, HttpResponse):
        return link
    appointment = booking_link_booked_appointment(link=link)
    if appointment is None:
        return redirect(reverse("booking:booked", kwargs={"token": token}))
    response = HttpResponse(
        appointment_calendar(appointment=appointment, organisation=link.organisation),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="appointment.ics"'
    return response


@never_cache
def link_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under /b/: a token with a slash in it, a path cut short, an extra part."""
    if len(rest) > 1 and rest.endswith("/") and rest.count("/") == 1:
        # Some apps add a slash to the end of a link they show.
        return redirect(_start_url(rest[:-1]))
    return _state_page(request, None, LinkState.NOT_FOUND)
