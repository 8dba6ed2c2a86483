"""The development outbox: what would have reached patients, at /dev/outbox, when DEBUG is on.

Nothing leaves a development install (SMS_BACKEND=outbox, the console email backend), so a
person trying the demo reads their "texts" and "emails" here and can open the link in them:
the link is put back from its encrypted token (messaging/texts.py) while it can still book.
Nowhere else shows a working link.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from messaging.models import Message
from messaging.texts import message_text_or_stored

SHOWN = 50


@never_cache
@require_GET
def dev_outbox(request: HttpRequest) -> HttpResponse:
    if not settings.DEBUG:
        raise Http404("The outbox is only there in development.")
    outbox_messages = [
        (message, message_text_or_stored(message=message))
        for message in Message.objects.select_related("patient", "organisation", "booking_link")
        .filter(status__in=[Message.Status.SENT, Message.Status.DELIVERED])
        .order_by("-created_at", "-pk")[:SHOWN]
    ]
    return render(request, "messaging/dev_outbox.html", {"outbox_messages": outbox_messages, "shown": SHOWN})
