"""A campaign's page for its managers: the live funnel, the controls, and the outcomes CSV.

Managers of the campaign's organisation only: anyone else gets 403 (not a manager anywhere) or
404 (a campaign that isn't theirs, told apart from one that doesn't exist by nothing). Before
it starts (its list being checked, or checked and waiting for the manager), the page is the
check's (messaging:campaign_check).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from itertools import batched

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.access import MANAGING_ROLES, organisation_ids_for
from booking.formats import time_of_day
from booking.links import LinkExpiry
from booking.references import decode_reference
from booking.spreadsheets import spreadsheet_rows_write
from messaging.campaigns import controls
from messaging.campaigns.funnel import OUTCOME_CHUNK, campaign_outcome_rows
from messaging.campaigns.funnel import campaign_funnel as funnel_at
from messaging.models import Campaign
from messaging.reminders import SENDING_FROM, SENDING_UNTIL

Status = Campaign.Status

# The status as the page says it: what it means for the manager, not only its name.
STATUS_TEXT = {
    Status.SENDING: "Sending",
    Status.WAITING: "Waiting for free times: it goes on by itself when more appear",
    Status.PAUSED: "Paused",
    Status.STOPPED: "Stopped",
    Status.FINISHED: "Finished",
}
NOT_STARTED = (Status.CHECKING, Status.CHECKED)
# How often the page's funnel refreshes itself (htmx), in seconds.
REFRESH_SECONDS = 10


def _get_campaign_for_manager(request: HttpRequest, reference: str) -> Campaign:
    """The campaign with this reference in one of the user's managed organisations, with what its
    page shows joined; 403 for someone who manages no organisation, 404 for any other campaign."""
    organisation_ids = organisation_ids_for(request.user, roles=MANAGING_ROLES)
    if not organisation_ids:
        raise PermissionDenied("Campaigns are for managers.")
    pk = decode_reference(reference, namespace="campaign")
    campaign = (
        Campaign.objects.select_related("organisation", "appointment_type", "location", "practitioner")
        .filter(pk=pk, organisation_id__in=organisation_ids)
        .first()
        if pk is not None
        else None
    )
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def _settings(campaign: Campaign) -> list[tuple[str, str]]:
    """The campaign's settings as the page lists them, label and value."""
    try:
        expiry = LinkExpiry(campaign.link_expiry).label
    except ValueError:
        expiry = campaign.link_expiry
    follow_ups = [days for days in (campaign.follow_up_1_days, campaign.follow_up_2_days) if days is not None]
    return [
        ("Appointment type", campaign.appointment_type.name),
        ("Location", campaign.location.name),
        ("Practitioner", campaign.practitioner.name if campaign.practitioner else "Any"),
        ("Link expiry", str(expiry)),
        ("Sent by", f"{campaign.get_preferred_channel_display()}, else the other way the patient can be reached"),
        (
            "Pace",
            f"At most {campaign.per_day} invitation{'s' if campaign.per_day != 1 else ''} a day and "
            f"{campaign.per_free_time} for each free time, texts from {time_of_day(SENDING_FROM)} "
            f"to {time_of_day(SENDING_UNTIL)}",
        ),
        (
            "Follow-ups",
            f"{' and '.join(str(days) for days in follow_ups)} days after the invitation, then the call list"
            if follow_ups
            else "None",
        ),
        ("List", f"{campaign.list_name or 'Pasted NHS numbers'}, {campaign.list_rows} rows"),
    ]


def _funnel_context(campaign: Campaign) -> dict[str, object]:
    now = timezone.now()
    return {
        "campaign": campaign,
        "status_text": STATUS_TEXT.get(Status(campaign.status), campaign.get_status_display()),
        "funnel": funnel_at(campaign=campaign, now=now),
        "now": now,
        "refresh_seconds": REFRESH_SECONDS,
    }


@never_cache
@login_required
@require_GET
def campaign_page(request: HttpRequest, reference: str) -> HttpResponse:
    """The campaign's page: its status and settings, the live funnel, the controls, the downloads."""
    campaign = _get_campaign_for_manager(request, reference)
    if campaign.status in NOT_STARTED:
        return redirect("messaging:campaign_check", reference=campaign.reference)
    context = _funnel_context(campaign)
    context.update(
        settings=_settings(campaign),
        can_pause=campaign.status in controls.PAUSABLE,
        can_resume=campaign.status in controls.RESUMABLE,
        can_stop=campaign.status in controls.STOPPABLE,
    )
    return render(request, "messaging/campaigns/campaign.html", context)


@never_cache
@login_required
@require_GET
def campaign_funnel(request: HttpRequest, reference: str) -> HttpResponse:
    """The funnel and status alone: what the page fetches every REFRESH_SECONDS to stay live."""
    campaign = _get_campaign_for_manager(request, reference)
    return render(request, "messaging/campaigns/_funnel.html", _funnel_context(campaign))


def _nothing_changed(request: HttpRequest, campaign: Campaign) -> None:
    flash.info(request, f"The campaign is {campaign.get_status_display().lower()}, so nothing changed.")


@never_cache
@login_required
@require_POST
def campaign_pause(request: HttpRequest, reference: str) -> HttpResponse:
    campaign = _get_campaign_for_manager(request, reference)
    if controls.campaign_pause(campaign=campaign, user=request.user):
        flash.success(request, "Campaign paused: no more invitations go until you resume it.")
    else:
        _nothing_changed(request, campaign)
    return redirect("messaging:campaign", reference=campaign.reference)


@never_cache
@login_required
@require_POST
def campaign_resume(request: HttpRequest, reference: str) -> HttpResponse:
    campaign = _get_campaign_for_manager(request, reference)
    if controls.campaign_resume(campaign=campaign, user=request.user):
        flash.success(request, "Campaign resumed: invitations go on as free times allow.")
    else:
        _nothing_changed(request, campaign)
    return redirect("messaging:campaign", reference=campaign.reference)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def campaign_stop(request: HttpRequest, reference: str) -> HttpResponse:
    """GET asks to confirm (a page, so it works without JavaScript); POST stops the campaign."""
    campaign = _get_campaign_for_manager(request, reference)
    if request.method == "GET":
        return render(request, "messaging/campaigns/confirm_stop.html", {"campaign": campaign})
    if controls.campaign_stop(campaign=campaign, user=request.user):
        flash.success(
            request,
            "Campaign stopped: nothing more will be sent. Links already sent keep working until they expire.",
        )
    else:
        _nothing_changed(request, campaign)
    return redirect("messaging:campaign", reference=campaign.reference)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def campaign_links_revoke(request: HttpRequest, reference: str) -> HttpResponse:
    """GET asks to confirm, saying how many links still work; POST revokes them all (and stops it)."""
    campaign = _get_campaign_for_manager(request, reference)
    if request.method == "GET":
        context = {"campaign": campaign, "funnel": funnel_at(campaign=campaign, now=timezone.now())}
        return render(request, "messaging/campaigns/confirm_revoke.html", context)
    result = controls.campaign_links_revoke(campaign=campaign, user=request.user)
    if result.changed:
        revoked = f"{result.links} link{'s' if result.links != 1 else ''} revoked"
        stopped = " The campaign is stopped: nothing more will be sent." if result.stopped else ""
        flash.success(
            request, f"{revoked}: they can no longer be used to book. Booked appointments stay booked.{stopped}"
        )
    else:
        flash.info(request, "No links were left to revoke, so nothing changed.")
    return redirect("messaging:campaign", reference=campaign.reference)


def _csv_chunks(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV text a chunk of rows at a time, every cell through booking/spreadsheets.py."""
    for chunk in batched(rows, OUTCOME_CHUNK):
        out = io.StringIO()
        spreadsheet_rows_write(out=out, rows=chunk)
        yield out.getvalue()


@never_cache
@login_required
@require_GET
def campaign_outcomes_csv(request: HttpRequest, reference: str) -> StreamingHttpResponse:
    """Every row of the campaign's list and what came of it, as CSV for the clinical system.

    Streamed: the rows are read and written a chunk at a time, so a 50,000-row list never sits
    in memory whole. No link (nor its token) is in it.
    """
    campaign = _get_campaign_for_manager(request, reference)
    rows = campaign_outcome_rows(campaign=campaign, now=timezone.now())
    response = StreamingHttpResponse(_csv_chunks(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.reference}-outcomes.csv"'
    return response
