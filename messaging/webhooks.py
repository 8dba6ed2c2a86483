"""Provider callbacks (work in progress on the webhooks branch: signatures, status, STOP/START)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest, reference: str):
    return HttpResponseForbidden()


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest):
    return HttpResponseForbidden()
