"""A campaign's call list: the patients to phone, and the outcome of each call.

Staff and managers of the campaign's organisation only (anyone else gets 404). The list is the
rows `campaign_call_list` says are due (messaging/campaigns/follow_ups.py), a page at a time, and
below it the calls already recorded. Each row has a form (works without JavaScript) that posts
the outcome and comes back here with a message; a second member of staff recording the same row
is told it was recorded already and changes nothing; a bad outcome is a 400 with the reason.
The page costs the same number of queries whatever the size of the list.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from booking.access import ANY_ROLE, organisation_ids_for
from booking.links import booking_link_state
from booking.references import decode_reference
from booking.users import AnyUser
from messaging.campaigns.call_list import campaign_entry_call_outcome_record
from messaging.campaigns.follow_ups import campaign_call_list
from messaging.models import Campaign, CampaignEntry

PER_PAGE = 25
# The latest calls recorded, under the list; the count says how many there are in all.
RECORDED_SHOWN = 50


class CallOutcomeForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=CampaignEntry.CallOutcome.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose Booked by phone, Declined or No answer.",
            "invalid_choice": "Choose Booked by phone, Declined or No answer.",
        },
    )


def _get_campaign_for_staff(user: AnyUser, reference: str) -> Campaign:
    """The campaign with this reference in one of the user's organisations, or 404."""
    pk = decode_reference(reference, namespace="campaign")
    campaign = (
        Campaign.objects.select_related("organisation")
        .filter(pk=pk, organisation_id__in=organisation_ids_for(user, roles=ANY_ROLE))
        .first()
        if pk is not None
        else None
    )
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


def _link_state(entry: CampaignEntry) -> str:
    """How the row's link stands, as the message pages say it (never booked here: those left the list)."""
    # For the type checker: the call list has invited rows only, each with its link.
    assert entry.link is not None
    return booking_link_state(link=entry.link, appointment=None)


def _call_list_page(
    request: HttpRequest, campaign: Campaign, *, error: str = "", error_entry: int | None = None, status: int = 200
) -> HttpResponse:
    page = Paginator(campaign_call_list(campaign=campaign, now=timezone.now()), PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [(entry, _link_state(entry)) for entry in page.object_list]
    recorded_rows = (
        CampaignEntry.objects.filter(campaign=campaign, link__isnull=False)
        .exclude(call_outcome="")
        .select_related("patient", "call_outcome_by")
        .order_by("-call_outcome_at", "-pk")
    )
    return render(
        request,
        "messaging/campaigns/call_list.html",
        {
            "campaign": campaign,
            "page": page,
            "rows": rows,
            "recorded": list(recorded_rows.fetch_mode(models.FETCH_RAISE)[:RECORDED_SHOWN]),
            "recorded_count": recorded_rows.count(),
            "outcomes": CampaignEntry.CallOutcome.choices,
            "error": error,
            "error_entry": error_entry,
        },
        status=status,
    )


@never_cache
@login_required
@require_safe
def call_list(request: HttpRequest, reference: str) -> HttpResponse:
    """The patients to phone, with an outcome form for each, and the calls recorded."""
    return _call_list_page(request, _get_campaign_for_staff(request.user, reference))


@never_cache
@login_required
@require_POST
def call_outcome(request: HttpRequest, reference: str, entry: int) -> HttpResponse:
    """Record "Booked by phone", "Declined" or "No answer" for one row of the call list."""
    campaign = _get_campaign_for_staff(request.user, reference)
    row = (
        CampaignEntry.objects.select_related("patient").filter(pk=entry, campaign=campaign, link__isnull=False).first()
    )
    if row is None:
        raise Http404("No such patient on this campaign's call list.")
    row.campaign = campaign
    form = CallOutcomeForm(request.POST)
    if not form.is_valid():
        return _call_list_page(request, campaign, error=str(form.errors["outcome"][0]), error_entry=row.pk, status=400)
    outcome = CampaignEntry.CallOutcome(form.cleaned_data["outcome"])
    # For the type checker: an invited row is a found row, which has its patient (the database says so).
    assert row.patient is not None
    if campaign_entry_call_outcome_record(entry=row, outcome=outcome, actor=request.user):
        flash.success(request, f"{row.patient.full_name}: {outcome.label.lower()} recorded.")
    else:
        flash.info(
            request,
            f"{row.patient.full_name} already had an outcome recorded: "
            f"{CampaignEntry.CallOutcome(row.call_outcome).label.lower()}. Nothing was changed.",
        )
    return redirect(reverse("messaging:campaign_call_list", kwargs={"reference": campaign.reference}))
