"""Campaigns for managers: the list of them, a new one with its list of patients, the list's check, starting it.

The request never checks the rows: "Check the list" stores the campaign and its file (after a
quick look at the file's shape) and the scheduler checks it (messaging/campaigns/checks.py);
the check page polls its progress every 2 seconds while it runs (htmx; without JavaScript the
page reloads itself), then shows what it found and
the pace form. Every page is for managers of the campaign's organisation (403 for other
staff, 404 for another organisation's campaign).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.access import MANAGING_ROLES, managed_organisation, organisation_ids_for
from booking.references import decode_reference
from booking.spreadsheets import spreadsheet_cell
from booking.users import SignedInRequest
from messaging.campaigns.capacity import campaign_free_times
from messaging.campaigns.creation import CampaignRefused, campaign_create
from messaging.campaigns.creation import campaign_start as campaign_start_now
from messaging.campaigns.forms import CampaignForm, PaceForm
from messaging.models import Campaign, CampaignEntry

WHAT = "Campaigns"
# The check page reloads itself this often while the scheduler checks the list.
REFRESH_SECONDS = 2
# Invitations per free time at most (the pace form's limit): more patients than this many per
# free time can't all be invited before the free times run out.
MOST_PER_FREE_TIME = 5
# The rejected rows' download reads the rows this many at a time.
CSV_CHUNK_ROWS = 2000


def _get_campaign_for_manager(request: HttpRequest, reference: str) -> Campaign:
    """The campaign with this reference in one of the manager's organisations; 403 for staff, 404 otherwise."""
    managed_organisation(request.user, what=WHAT)
    pk = decode_reference(reference, namespace="campaign")
    campaign = (
        Campaign.objects.select_related("organisation", "appointment_type", "location", "practitioner")
        .filter(pk=pk, organisation_id__in=organisation_ids_for(request.user, roles=MANAGING_ROLES))
        .first()
        if pk is not None
        else None
    )
    if campaign is None:
        raise Http404("No such campaign.")
    return campaign


@never_cache
@login_required
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    organisation = managed_organisation(request.user, what=WHAT)
    campaigns = Campaign.objects.filter(organisation=organisation).order_by("-created_at")
    return render(request, "messaging/campaigns/list.html", {"campaigns": campaigns, "organisation": organisation})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def campaign_new(request: SignedInRequest) -> HttpResponse:
    organisation = managed_organisation(request.user, what=WHAT)
    if request.method == "GET":
        if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
            # A link choice changed: the link's fields again, narrowed to what is chosen.
            # Bound to the choices so far only to narrow the lists: no error shows.
            form = CampaignForm(request.GET, organisation=organisation)
            form.errors.clear()
            return render(request, "messaging/campaigns/_link_fields.html", {"form": form})
        form = CampaignForm(organisation=organisation)
        return render(request, "messaging/campaigns/new.html", {"form": form})
    form = CampaignForm(request.POST, request.FILES, organisation=organisation)
    if form.is_valid():
        try:
            campaign = campaign_create(
                organisation=organisation,
                user=request.user,
                settings=form.settings(),
                list_name=form.list_name,
                content=form.list_content,
                list_rows=form.list_rows,
            )
        except CampaignRefused as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return redirect("messaging:campaign_check", reference=campaign.reference)
    return render(request, "messaging/campaigns/new.html", {"form": form}, status=400)


@never_cache
@login_required
@require_GET
def campaign_check(request: HttpRequest, reference: str) -> HttpResponse:
    campaign = _get_campaign_for_manager(request, reference)
    # htmx restoring the page from history asks with HX-Request too: it gets the whole page.
    if request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request"):
        # The page's progress polling: the progress again, or, once checked, the whole page.
        if campaign.status == Campaign.Status.CHECKING:
            context = {"campaign": campaign, "refresh_seconds": REFRESH_SECONDS}
            return render(request, "messaging/campaigns/_check_progress.html", context)
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    if campaign.status not in (Campaign.Status.CHECKING, Campaign.Status.CHECKED):
        return redirect("messaging:campaign", reference=campaign.reference)
    return _render_check(request, campaign=campaign, form=PaceForm())


def _render_check(request: HttpRequest, *, campaign: Campaign, form: PaceForm, status: int = 200) -> HttpResponse:
    context: dict[str, object] = {"campaign": campaign, "form": form, "refresh_seconds": REFRESH_SECONDS}
    if campaign.status == Campaign.Status.CHECKED:
        counts = dict(
            CampaignEntry.objects.filter(campaign=campaign)
            .order_by()
            .values_list("problem")
            .annotate(rows=Count("pk"))
            .values_list("problem", "rows")
        )
        found = counts.get(CampaignEntry.Problem.NONE, 0)
        free_times = campaign_free_times(campaign=campaign, now=timezone.now())
        context.update(
            outcomes=[(problem.label, counts.get(problem.value, 0)) for problem in CampaignEntry.Problem],
            found=found,
            rejected=sum(counts.values()) - found,
            free_times=free_times,
            window_days=campaign.appointment_type.maximum_days_ahead,
            too_many=found > free_times * MOST_PER_FREE_TIME,
        )
    return render(request, "messaging/campaigns/check.html", context, status=status)


class _Line:
    """A file-like that hands back what is written to it: one CSV line at a time for streaming."""

    def write(self, text: str) -> str:
        return text


@never_cache
@login_required
@require_GET
def campaign_rejected_csv(request: HttpRequest, reference: str) -> StreamingHttpResponse:
    campaign = _get_campaign_for_manager(request, reference)
    response = StreamingHttpResponse(_rejected_lines(campaign=campaign), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.reference}-rejected-rows.csv"'
    return response


def _rejected_lines(*, campaign: Campaign) -> Iterator[str]:
    writer = csv.writer(_Line())
    labels = dict(CampaignEntry.Problem.choices)
    yield writer.writerow(["Row", "NHS number", "Reason"])
    rows = (
        CampaignEntry.objects.filter(campaign=campaign)
        .exclude(problem=CampaignEntry.Problem.NONE)
        .order_by("row_number")
        .values_list("row_number", "nhs_number", "problem")
    )
    # Read in chunks through a server-side cursor: a 50,000-row list is never held whole.
    for row_number, nhs_number, problem in rows.iterator(chunk_size=CSV_CHUNK_ROWS):
        # The NHS number as it was in the file: a formula cell stays text in the spreadsheet.
        yield writer.writerow([row_number, spreadsheet_cell(nhs_number), labels[problem]])


@never_cache
@login_required
@require_POST
def campaign_start(request: SignedInRequest, reference: str) -> HttpResponse:
    campaign = _get_campaign_for_manager(request, reference)
    if campaign.status != Campaign.Status.CHECKED:
        # Started already (another tab), or still checking: its page says which.
        return redirect("messaging:campaign", reference=campaign.reference)
    form = PaceForm(request.POST)
    if form.is_valid():
        pace = form.pace()
        try:
            campaign_start_now(
                campaign=campaign,
                user=request.user,
                starts_at=pace.starts_at,
                per_day=pace.per_day,
                per_free_time=pace.per_free_time,
                follow_up_1_days=pace.follow_up_1_days,
                follow_up_2_days=pace.follow_up_2_days,
            )
        except CampaignRefused as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            return redirect("messaging:campaign", reference=campaign.reference)
    return _render_check(request, campaign=campaign, form=form, status=400)
