"""The patient's pages: date of birth, times, confirm, declining a campaign's invitation, and the
calendar file.

The booked page, and changing or cancelling from it, are in booking/views/manage.py.

Opening a link (GET or HEAD) changes nothing but the "opened" record: phones, chat apps and
mail scanners fetch links for previews. A signed cookie remembers which links the browser
opened, so each open is counted but audited once per browser session. Only POSTs act, and
the rules live in booking/links.py, booking/slots.py and booking/appointments.py; these views
parse input, call them and render.

Once the date of birth matches, the session remembers that this link (and only this link) was
verified, with the time it was last used; it lapses after 30 minutes idle. Declining (a campaign's
invitation only: `BookingLink.declinable`) needs that too, as booking does. Every response is
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
from booking.forms import DateOfBirthForm, DeclineForm, slot_id_from_reference
from booking.http import client_ip
from booking.links import (
    DobCheck,
    LinkState,
    booking_link_check_dob,
    booking_link_decline,
    booking_link_find,
    booking_link_patient_state,
    booking_link_record_opened,
)
from booking.models import Appointment, BookingLink, DeclineReason
from booking.references import encode_reference
from booking.slots import (
    FreeDay,
    FreeStart,
    slot_find_choice,
    slot_starts_and_days,
    slot_starts_on_day,
)

VERIFIED_SESSION_KEY = "booking_verified_links"
VERIFIED_IDLE = timedelta(minutes=30)
VERIFIED_REFRESH = timedelta(minutes=1)
# The cookie naming the links this browser has opened (their opens already audited), the latest few.
OPENED_COOKIE = "booking_opened"
OPENED_REMEMBERED = 20
# More free times than this and the times page shows the days first, then a day's times.
ONE_PAGE_LIMIT = 30
# The list of days shows a week (Monday to Sunday) at a time: a day's choices are one tap away,
# and the query behind the list reads one week's rows (docs/benchmarks.md).
DAYS_PAGE = 7
PERIODS = ("Morning", "Afternoon", "Evening")

# The pages for links that can't be used, whoever opens them. None of them says anything
# about the patient, so they show before the date of birth.
STATE_PAGES = {
    LinkState.NOT_FOUND: ("booking/link_not_found.html", 404),
    LinkState.EXPIRED: ("booking/link_expired.html", 410),
    LinkState.REVOKED: ("booking/link_revoked.html", 410),
    LinkState.AGREEMENT_ENDED: ("booking/link_agreement_ended.html", 410),
    LinkState.TYPE_WITHDRAWN: ("booking/link_type_withdrawn.html", 410),
    LinkState.LOCKED: ("booking/link_locked.html", 403),
    # Gone, like a revoked link: the patient said no (reopening it, or a booking POSTed after).
    LinkState.DECLINED: ("booking/link_declined.html", 410),
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
    """One time to choose: the slot that names it, how it reads, and who (when only one is free then)."""

    reference: str
    time: str
    day: str
    practitioner: str


@dataclass
class Day:
    label: str
    choices: list[SlotChoice] = field(default_factory=list)


@dataclass(frozen=True)
class DayLink:
    """A day with free times, in the list of days: where it goes and how many times it has."""

    iso: str
    label: str
    times: int


@dataclass(frozen=True)
class PageLink:
    """Previous or Next in the list of days: the `from` date it goes to and how it reads."""

    iso: str
    label: str


@dataclass
class TimesPage:
    """What the times page shows, in one of three layouts.

    `list`: up to ONE_PAGE_LIMIT times, "Next available" then the rest by day, as radios.
    `days`: "Next available", then the days with free times in a week, as links.
    `day`: one day's times as radios in `periods` (Morning, Afternoon, Evening).
    """

    layout: str
    next_available: SlotChoice | None = None
    days: list[Day] = field(default_factory=list)
    day_links: list[DayLink] = field(default_factory=list)
    week_label: str = ""
    previous: PageLink | None = None
    next: PageLink | None = None
    day: date | None = None
    day_label: str = ""
    periods: list[Day] = field(default_factory=list)
    other_days_from: str = ""

    @property
    def first_choice_id(self) -> str:
        """The id of the first radio, for the error summary's link."""
        if self.next_available is not None:
            return "slot-next"
        for period in self.periods:
            if period.choices:
                return f"slot-{period.choices[0].reference}"
        return ""


@dataclass(frozen=True)
class TimesPosition:
    """Where in the times pages a request is: a day's page, a week of days, or the start.

    `invalid` says a `day` was given that isn't a date (the page says so, with 400).
    """

    day: date | None = None
    start_from: date | None = None
    invalid: bool = False


def _parse_date(value: str | None) -> date | None:
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def times_position(request: HttpRequest) -> TimesPosition:
    """The times page a request asks for: `day` (a day's page) or `from` (the week of days from it).

    GET reads the query string (`?day=2026-12-07`, `?from=2026-12-07`); POST reads the form's
    `day` field first, so a booking that lost its race shows the same day again.
    """
    data = request.POST if request.method == "POST" else request.GET
    raw_day = data.get("day") or request.GET.get("day")
    day = _parse_date(raw_day)
    return TimesPosition(
        day=day,
        start_from=_parse_date(request.GET.get("from")),
        invalid=bool(raw_day) and day is None,
    )


def _choice(slot: FreeStart, today: date, *, day: str | None = None) -> SlotChoice:
    return SlotChoice(
        reference=encode_reference(slot.pk, namespace="slot"),
        time=time_of_day(slot.start),
        day=day_label(slot.start, today=today) if day is None else day,
        # Several free then: the patient gets the first free clinician, so no name is promised.
        practitioner=slot.practitioner_name if slot.clinicians == 1 else "",
    )


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def times_list_page(*, starts: list[FreeStart], today: date) -> TimesPage:
    """Up to ONE_PAGE_LIMIT times: the earliest on its own, then the rest by London day."""
    if not starts:
        return TimesPage(layout="list")
    page = TimesPage(layout="list", next_available=_choice(starts[0], today))
    days: dict[date, Day] = {}
    for start in starts[1:]:
        day = start.start.astimezone(LONDON).date()
        if day not in days:
            days[day] = Day(label=day_label(day, today=today))
        days[day].choices.append(_choice(start, today, day=days[day].label))
    page.days = list(days.values())
    return page


def times_days_page(
    *, first: FreeStart, monday: date, free_days: list[FreeDay], last_day: date, today: date
) -> TimesPage:
    """Many times: "Next available", then the days with free times in the week from `monday`."""
    first_monday = _monday(first.start.astimezone(LONDON).date())
    page = TimesPage(
        layout="days",
        next_available=_choice(first, today),
        day_links=[
            DayLink(iso=free.day.isoformat(), label=day_label(free.day, today=today), times=free.times)
            for free in free_days
        ],
        week_label=(
            f"{day_label(monday, today=today)} to {day_label(monday + timedelta(days=DAYS_PAGE - 1), today=today)}"
        ),
    )
    if monday > first_monday:
        previous = max(first_monday, monday - timedelta(days=DAYS_PAGE))
        page.previous = PageLink(iso=previous.isoformat(), label=f"From {day_label(previous, today=today)}")
    following = monday + timedelta(days=DAYS_PAGE)
    if following <= last_day:
        page.next = PageLink(iso=following.isoformat(), label=f"From {day_label(following, today=today)}")
    return page


def times_day_page(*, day: date, starts: list[FreeStart], today: date) -> TimesPage:
    """One London day's times, grouped Morning (before 12:00), Afternoon (to 17:59), Evening."""
    label = day_label(day, today=today)
    periods = {name: Day(label=name) for name in PERIODS}
    for start in starts:
        hour = start.start.astimezone(LONDON).hour
        name = "Morning" if hour < 12 else "Afternoon" if hour < 18 else "Evening"
        periods[name].choices.append(_choice(start, today, day=label))
    return TimesPage(
        layout="day",
        day=day,
        day_label=label,
        periods=[period for period in periods.values() if period.choices],
        other_days_from=_monday(day).isoformat(),
    )


@dataclass(frozen=True)
class TimesFlow:
    """Which journey the times pages serve: booking a first time, or changing to another.

    The same pages list the link's free times for both; the flow says where their navigation
    and their form go, and (when changing) the appointment being moved, which is shown as the
    current one and is never among the choices (it is booked, so `offered_by` leaves it out).
    `times_url` is a path without a query string: the pages add `?day=` and `?from=` to it.
    """

    times_url: str
    confirm_url: str
    current: Appointment | None = None


def booking_flow(token: str) -> TimesFlow:
    return TimesFlow(
        times_url=reverse("booking:times", kwargs={"token": token}),
        confirm_url=reverse("booking:confirm", kwargs={"token": token}),
    )


def _times_page(link: BookingLink, position: TimesPosition, *, now: datetime) -> tuple[TimesPage, str]:
    """The page for `position`, and an error to show when the position was not a real day."""
    today = timezone.localdate(now, LONDON)
    earliest, latest = link.appointment_type.booking_window(now=now)
    first_day, last_day = earliest.astimezone(LONDON).date(), latest.astimezone(LONDON).date()
    if position.day is not None:
        # A day outside the booking window has no times to read (and year 1 or 9999 can't be
        # turned into instants at all).
        inside = first_day <= position.day <= last_day
        starts = slot_starts_on_day(link=link, day=position.day, now=now) if inside else []
        return times_day_page(day=position.day, starts=starts, today=today), ""
    error = "Choose a day from the list" if position.invalid else ""
    week_of = min(position.start_from, last_day) if position.start_from else None
    # One round trip: the first times, and the days of the week asked for (or the first free
    # time's week), so the page costs the same whatever the window or the number of clinicians.
    starts, free_days = slot_starts_and_days(
        link=link, week_of=week_of, last=last_day + timedelta(days=1), now=now, limit=ONE_PAGE_LIMIT + 1
    )
    if len(starts) <= ONE_PAGE_LIMIT:
        return times_list_page(starts=starts, today=today), error
    first_free = starts[0].start.astimezone(LONDON).date()
    monday = _monday(max(week_of, first_free) if week_of else first_free)
    page = times_days_page(first=starts[0], monday=monday, free_days=free_days, last_day=last_day, today=today)
    return page, error


def render_times(
    request: HttpRequest,
    link: BookingLink,
    *,
    token: str,
    flow: TimesFlow | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The times page for `link` in `flow` (booking, unless told otherwise).

    Which page it shows comes from the request (`times_position`): `?day=YYYY-MM-DD` is that
    London day's times; `?from=YYYY-MM-DD` the week of days from it; neither, the first page (all
    the times when there are up to 30, else "Next available" and the days). Navigation links are
    `flow.times_url` plus `?day=` or `?from=`; the form goes to `flow.confirm_url` (GET) with
    the chosen `slot` and, on a day's page, a hidden `day`.

    For a flow's confirm page to come back to the same day (its "choose a different time" link,
    or a POST that lost its race re-rendered with `render_times(..., error=..., status=409)`),
    carry the `day` it received: in the link as `?day=`, and in the POST form as a hidden field
    named `day`; on a POST, render_times reads `request.POST["day"]` before the query string.
    A `day` that is not a date shows the first page with "Choose a day from the list" and 400.
    """
    flow = flow or booking_flow(token)
    position = times_position(request)
    page, position_error = _times_page(link, position, now=timezone.now())
    if position_error and not error:
        error, status = position_error, 400
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
    return render_times(request, link, token=token)


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
    found = slot_find_choice(link=link, slot_id=slot_id)
    if found is None:
        return render_times(
            request,
            link,
            token=token,
            error="Sorry, that time is no longer available. Choose another time.",
            status=409,
        )
    slot, clinicians = found
    position = times_position(request)
    return render(
        request,
        "booking/confirm.html",
        {
            "organisation": link.organisation,
            "link": link,
            "token": token,
            "slot": slot,
            "choice": _choice(FreeStart(slot.pk, slot.start, clinicians, slot.practitioner.name), today_in_london()),
            # Several clinicians free at that start: the booking takes whichever is still free.
            "first_available": clinicians > 1,
            "day": position.day.isoformat() if position.day else "",
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
        # "Try again" goes back to the same time, and from there to the same day's times.
        day = times_position(request).day
        response = render(
            request,
            "booking/busy.html",
            {**context, "message": error.message, "slot": slot_reference, "day": day.isoformat() if day else ""},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    return redirect(reverse("booking:booked", kwargs={"token": token}))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def decline(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks why (optional), with "I don't want this appointment"; POST declines the invitation.

    Only a campaign's invitation offers it: any other link goes back to its times. A POST that
    finds the link no longer active (booked in another tab, declined twice) shows what it is now.
    """
    link = _open_verified(request, token, allow=LinkState.ACTIVE)
    if isinstance(link, HttpResponse):
        return link
    if not link.declinable:
        return redirect(reverse("booking:times", kwargs={"token": token}))
    if request.method != "POST":
        return _render_decline(request, link, token=token, form=DeclineForm())
    form = DeclineForm(request.POST)
    if not form.is_valid():
        return _render_decline(request, link, token=token, form=form, status=400)
    declined = booking_link_decline(
        link=link,
        reason=form.cleaned_data["reason"],
        detail=form.cleaned_data["detail"],
        ip_address=client_ip(request),
    )
    if not declined:
        state = booking_link_patient_state(link=link)
        if state in STATE_PAGES:
            return _state_page(request, link, state)
        return redirect(_after_verification_url(token, state))
    # The answer itself, not a redirect: reopened, the link shows this page again (410, gone).
    return render(request, "booking/link_declined.html", {"organisation": link.organisation})


def _render_decline(
    request: HttpRequest, link: BookingLink, *, token: str, form: DeclineForm, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "booking/decline.html",
        {"organisation": link.organisation, "link": link, "token": token, "form": form, "other": DeclineReason.OTHER},
        status=status,
    )


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
