"""Staff sign-in throttle and password reset limits, both audited for the account's managers.

django-axes counts failed sign-ins (the sign-in page and /admin/login/ alike) in the database
and refuses further tries once a limit is reached, for SIGN_IN_LOCKOUT_MINUTES. Three limits
(settings.py): one account from one address, one account from any address, one address across
accounts. Axes compares one count with one limit, so `SignInAttemptHandler` scales each count
to AXES_FAILURE_LIMIT (`count * base // own_limit` reaches `base` exactly when `count` reaches
its own limit) and also writes the audit trail: every failure the password was checked for,
and the try that locks. Tries refused during a lockout are not checked, counted or audited,
so hammering a locked account writes nothing.

Password reset requests are limited per client address (an IPv6 address's /64) and per email
address, each counted per hour with booking/throttle.py's `attempts_record`. The page says the same whatever the email
address: an email is sent only to an active account with that address, and a request over the
email address's limit is dropped without saying so.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordResetView
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from booking.audit import audit_record_for_accounts
from booking.http import client_ip
from booking.models import AuditEvent
from booking.throttle import address_bucket, attempts_record


class AxesRequest(HttpRequest):
    """The type of a request axes has seen: it sets these before any handler runs. Only an annotation."""

    axes_ip_address: str | None
    axes_locked_out: bool


class SignInThrottleBackend(AxesStandaloneBackend):
    """Axes' check before the password is, for sign-ins over HTTP.

    `authenticate()` without a request (a management command, the shell) is not a sign-in
    anyone can repeat from outside, and axes can't count it without an address.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class SignInAttemptHandler(AxesDatabaseHandler):
    """Axes' database handler, with a limit of its own per lockout parameter, and audited."""

    def _limits(self) -> list[int]:
        # In the order of AXES_LOCKOUT_PARAMETERS: account and address, account, address.
        return [
            settings.SIGN_IN_FAILURE_LIMIT,
            settings.SIGN_IN_ACCOUNT_FAILURE_LIMIT,
            settings.SIGN_IN_ADDRESS_FAILURE_LIMIT,
        ]

    def get_failures(self, request: AxesRequest, credentials: dict[str, Any] | None = None) -> int:
        base = settings.AXES_FAILURE_LIMIT
        scaled = 0
        for attempts, limit in zip(self.get_user_attempts(request, credentials), self._limits(), strict=True):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            scaled = max(scaled, failures * base // limit)
        return scaled

    def reset_user_attempts(self, request: AxesRequest, credentials: dict[str, Any] | None = None) -> int:
        # After the right password, forget this account's failures from this address only: a
        # colleague's typos, or someone else's guesses from elsewhere, still count.
        username = get_client_username(request, credentials)
        deleted, _ = AccessAttempt.objects.filter(username=username, ip_address=request.axes_ip_address).delete()
        return deleted

    def user_login_failed(
        self, sender: object, credentials: dict[str, Any], request: AxesRequest | None = None, **kwargs: Any
    ) -> None:
        # Set by the backend when it refused the try without checking the password.
        refused_unchecked = request is not None and request.axes_locked_out
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or refused_unchecked:
            return
        username = get_client_username(request, credentials)
        accounts = list(User.objects.filter(username=username)) if username else []
        # An unknown username has no managers to tell; axes keeps its own record of it.
        audit_record_for_accounts(
            action=AuditEvent.Action.SIGN_IN_FAILED, users=accounts, ip_address=request.axes_ip_address
        )
        if request.axes_locked_out:
            audit_record_for_accounts(
                action=AuditEvent.Action.LOCKED_OUT,
                users=accounts,
                ip_address=request.axes_ip_address,
                detail={"minutes": settings.SIGN_IN_LOCKOUT_MINUTES},
            )


def sign_in_locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """The page for a sign-in axes refused (AXES_LOCKOUT_CALLABLE), in our layout."""
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": settings.SIGN_IN_LOCKOUT_MINUTES},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


RESET_WINDOW_SECONDS = 60 * 60


class LimitedPasswordResetView(PasswordResetView):
    """Django's password reset request, limited per client address and per email address."""

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        ip_address = client_ip(self.request)
        asked_from_address = attempts_record(
            key=f"password-reset-address:{address_bucket(ip_address)}", window_seconds=RESET_WINDOW_SECONDS
        )
        if asked_from_address > settings.PASSWORD_RESET_ADDRESS_LIMIT_PER_HOUR:
            # Says nothing about the email address: the address asking is over its limit.
            return render(self.request, "registration/password_reset_limited.html", status=429)
        email = form.cleaned_data["email"]
        asked_for_email = attempts_record(
            key=f"password-reset-email:{email.casefold()}", window_seconds=RESET_WINDOW_SECONDS
        )
        if asked_for_email > settings.PASSWORD_RESET_EMAIL_LIMIT_PER_HOUR:
            # The same page as when it is sent: the limit must not tell which addresses exist.
            return HttpResponseRedirect(self.get_success_url())
        audit_record_for_accounts(
            action=AuditEvent.Action.PASSWORD_RESET_REQUESTED, users=form.get_users(email), ip_address=ip_address
        )
        return super().form_valid(form)
