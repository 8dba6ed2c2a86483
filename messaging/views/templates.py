"""Message templates: the texts a practice's managers keep for staff to start from."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from booking.access import managed_organisation
from messaging.forms import MessageTemplateForm
from messaging.models import MessageTemplate


@never_cache
@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    organisation = managed_organisation(request.user, what="Message templates")
    templates = MessageTemplate.objects.filter(organisation=organisation).order_by("name")
    return render(
        request, "messaging/template_list.html", {"templates": templates, "organisation_name": organisation.name}
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    organisation = managed_organisation(request.user, what="Message templates")
    template = None
    if pk is not None:
        template = MessageTemplate.objects.filter(pk=pk, organisation=organisation).first()
        if template is None:
            raise Http404("No such template.")
    form = MessageTemplateForm(request.POST or None, instance=template, organisation=organisation)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(request, f"Template “{form.instance.name}” saved.")
        return redirect("messaging:templates")
    return render(
        request,
        "messaging/template_form.html",
        {"form": form, "template": template},
        status=400 if request.method == "POST" else 200,
    )
