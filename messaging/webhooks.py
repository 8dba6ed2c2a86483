"""Provider callbacks: Twilio's status reports and inbound texts, and the email service's tracking.

None needs a login or a CSRF token; each checks the provider's own proof instead:
- Twilio signs each request (X-Twilio-Signature, an HMAC of the URL it called and the form
  fields, keyed with our auth token). The URL is our public one (PUBLIC_BASE_URL): behind a
  proxy the host and scheme Django sees may differ from the ones Twilio called.
- Email tracking goes through anymail's view for the configured email service, which checks
  the webhook's basic auth (ANYMAIL_WEBHOOK_SECRET) and the service's own signature where it
  has one.
Anything unsigned or forged gets 403 and changes nothing; a signed email report whose body
isn't JSON gets 400. A genuine report about a message that isn't ours (an unknown reference,
another message's provider id, another Twilio account) gets 200, so the provider stops
retrying, and changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    QueryDict,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from booking.models import Organisation
from booking.patients import patients_opt_out
from booking.phones import normalise_phone_number
from messaging.models import Channel, Message
from messaging.status_reports import StatusReport, message_find_for_report, message_status_report
from messaging.transports.sms import TWILIO_OPTED_OUT, organisations_sending_through, twilio_reason

logger = logging.getLogger(__name__)

Status = Message.Status

# --- Twilio ---------------------------------------------------------------------------------

# Twilio's MessageStatus values (https://www.twilio.com/docs/messaging/api/message-resource).
TWILIO_STATUSES = {
    "accepted": Status.SENT,
    "scheduled": Status.SENT,
    "queued": Status.SENT,
    "sending": Status.SENT,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.DELIVERED,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}

# Twilio's standard opt-out and opt-in keywords: the whole text, any case.
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})


def twilio_signature_is_valid(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    # Without a token any HMAC would be keyed with nothing, which anyone can compute.
    if not token or not signature:
        return False
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    return RequestValidator(token).validate(url, request.POST, signature)


def twilio_signed(view: Callable) -> Callable:
    @wraps(view)
    def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not twilio_signature_is_valid(request):
            logger.warning("Refused a Twilio webhook to %s: missing or wrong signature.", request.path)
            return HttpResponseForbidden()
        return view(request, *args, **kwargs)

    return checked


def _from_our_twilio_account(params: QueryDict) -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID) and params.get("AccountSid") == settings.TWILIO_ACCOUNT_SID


@csrf_exempt
@require_POST
@twilio_signed
def twilio_status(request: HttpRequest, reference: str) -> HttpResponse:
    twilio_status_record(reference=reference, params=request.POST)
    return HttpResponse()


def twilio_status_record(*, reference: str, params: QueryDict) -> bool:
    """Apply Twilio's status callback for message `reference`; True when the message's status moved."""
    raw_status = (params.get("MessageStatus") or "").strip().lower()
    status = TWILIO_STATUSES.get(raw_status)
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    if status is None or not sid or not _from_our_twilio_account(params):
        logger.info("Ignored a Twilio status callback for %s (%s).", reference, raw_status or "no status")
        return False
    message = message_find_for_report(channel=Channel.SMS, reference=reference, provider_message_id=sid)
    if message is None:
        logger.info("Ignored a Twilio status callback for %s: not a message of ours.", reference)
        return False
    error_code = (params.get("ErrorCode") or "").strip()
    code = int(error_code) if error_code.isdigit() else None
    failure_reason = ""
    if status == Status.FAILED:
        if raw_status == "canceled":
            failure_reason = "The text was cancelled at Twilio before it went."
        else:
            failure_reason = twilio_reason(code, "Twilio couldn't deliver the text (no reason given)")
    moved = message_status_report(
        message=message,
        report=StatusReport(
            status=status,
            provider_status=raw_status,
            error_code=error_code,
            detail=failure_reason,
            failure_reason=failure_reason,
            provider_message_id=sid,
        ),
    )
    if code == TWILIO_OPTED_OUT:
        # The patient opted out of the sender this message went from: this organisation's.
        patients_opt_out(
            mobile=message.to_address,
            organisations=Organisation.objects.filter(pk=message.organisation_id),
            why="Twilio says the number opted out (error 21610).",
        )
    return moved


@csrf_exempt
@require_POST
@twilio_signed
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    twilio_inbound_record(params=request.POST)
    # An empty reply: Twilio's Advanced Opt-Out sends the patient its own confirmation.
    return HttpResponse(str(MessagingResponse()), content_type="text/xml")


def twilio_inbound_opt_out(params: QueryDict) -> bool | None:
    """True for an opt-out, False for an opt-in, None for any other text.

    Twilio's Advanced Opt-Out says which it took the text to be (OptOutType), keywords a
    Messaging Service added included; without it, Twilio's standard keywords.
    """
    opt_out_type = (params.get("OptOutType") or "").strip().upper()
    if opt_out_type in ("STOP", "START"):
        return opt_out_type == "STOP"
    keyword = (params.get("Body") or "").strip().upper()
    if keyword in STOP_KEYWORDS:
        return True
    if keyword in START_KEYWORDS:
        return False
    return None


def twilio_inbound_record(*, params: QueryDict) -> int:
    """Opt the sender out of texts (STOP) or back in (START); how many patient records changed.

    Only at the organisations that text through the Messaging Service or number the text
    reached (transports/sms.py, organisations_sending_through; docs/deployment.md), and only
    the first time Twilio's id for the text is seen: the id is stored (InboundText, unique) in
    the same transaction as the change, so a replay, or Twilio's retry of a post we answered,
    changes nothing. Raises nothing of its own.
    """
    opted_out = twilio_inbound_opt_out(params)
    try:
        # In the stored form, so it finds the patients; a short code or a sender name isn't one.
        mobile = normalise_phone_number(params.get("From") or "")
    except ValidationError:
        mobile = ""
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    if opted_out is None or not mobile or not sid or not _from_our_twilio_account(params):
        return 0
    keyword = (params.get("Body") or "").strip().upper()[:20]
    organisations = organisations_sending_through(
        messaging_service_sid=(params.get("MessagingServiceSid") or "").strip(), number=params.get("To") or ""
    )
    with transaction.atomic():
        if not _inbound_text_first_seen(sid):
            logger.info("Ignored inbound text %s: seen before.", sid)
            return 0
        return patients_opt_out(
            mobile=mobile,
            organisations=organisations,
            opted_out=opted_out,
            why=f"The patient texted {keyword or params.get('OptOutType')} to our number.",
        )


def _inbound_text_first_seen(sid: str) -> bool:
    # INSERT ... ON CONFLICT DO NOTHING: a replay arriving at the same moment as the original
    # waits for its commit, then inserts nothing; one round trip, no savepoint.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_inboundtext (provider_message_id, received_at)"
            " VALUES (%s, now()) ON CONFLICT (provider_message_id) DO NOTHING RETURNING id",
            [sid[:64]],
        )
        return cursor.fetchone() is not None


# --- Email tracking (anymail) ----------------------------------------------------------------

# Each email service's anymail tracking view, by the name in its backend's module path
# (anymail.backends.postmark.EmailBackend → "postmark"). Inbound email views are left out.
ANYMAIL_TRACKING_VIEWS = {
    pattern.name.removesuffix("_tracking_webhook"): pattern.callback
    for pattern in anymail_urls.urlpatterns
    if pattern.name.endswith("_tracking_webhook")
}


def anymail_services_configured() -> set[str]:
    """The email services our mailers send through (only their tracking webhooks answer)."""
    services = set()
    for mailer in settings.MAILERS.values():
        backend = mailer.get("BACKEND", "")
        if backend.startswith("anymail.backends."):
            services.add(backend.split(".")[2])
    return services


@csrf_exempt
def anymail_tracking(request: HttpRequest, esp: str) -> HttpResponse:
    """The email service's delivery reports, through anymail's own view for that service.

    Only there when ANYMAIL_WEBHOOK_SECRET is set (without it anymail accepts anyone's posts
    with a warning) and only for the service we send through. Read per request, so a settings
    change needs no URLconf reload. The reports arrive as anymail's tracking signal
    (messaging/receivers.py → messaging/tracking.py).
    """
    view = ANYMAIL_TRACKING_VIEWS.get(esp)
    if view is None or not settings.ANYMAIL.get("WEBHOOK_SECRET") or esp not in anymail_services_configured():
        raise Http404("No such email tracking webhook.")
    try:
        return view(request)
    except AnymailWebhookValidationFailure as error:
        # anymail's own answer is 400 (a SuspiciousOperation); a failed credential is a 403.
        logger.warning("Refused an email tracking webhook (%s): %s", esp, error)
        return HttpResponseForbidden()
    except (json.JSONDecodeError, UnicodeDecodeError):
        # anymail parses the body after checking the credentials and lets a parse error
        # through as a 500 (and a traceback in the log); a body that isn't JSON is the
        # sender's mistake, and the service won't retry a 400.
        logger.warning("Refused an email tracking webhook (%s): the body isn't valid JSON", esp)
        return HttpResponseBadRequest("The request body isn't valid JSON.", content_type="text/plain")
