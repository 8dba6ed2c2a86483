"""Staff sessions end after an idle period and a maximum age, as well as at browser close.

A practice PC is often shared and left signed in: STAFF_SESSION_IDLE_MINUTES without a request,
or STAFF_SESSION_MAX_HOURS after signing in, signs the user out (the next page asks them to
sign in again and comes back). SESSION_EXPIRE_AT_BROWSER_CLOSE makes the cookie end with the
browser. Patients are never signed in, so this never touches them: their pages keep their own
30-minute clock for a verified date of birth (booking/views/patient.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import logout
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

SIGNED_IN_AT = "staff_signed_in_at"
LAST_SEEN_AT = "staff_last_seen_at"
# Restarting the idle clock is a session write (an UPDATE) on every page; once a minute is
# precise enough for an idle limit counted in minutes.
LAST_SEEN_REFRESH_SECONDS = 60


@receiver(user_logged_in)
def staff_session_start(sender: object, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    """Start both clocks when someone signs in."""
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SIGNED_IN_AT] = now
        request.session[LAST_SEEN_AT] = now


class StaffSessionMiddleware:
    """Signs out a session idle or old past the settings; goes after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        now = time.time()
        session = request.session
        signed_in_at = session.get(SIGNED_IN_AT)
        last_seen_at = session.get(LAST_SEEN_AT)
        if signed_in_at is None or last_seen_at is None:
            # A session from before this middleware: its clocks start now.
            session[SIGNED_IN_AT] = session[LAST_SEEN_AT] = now
            return
        idle = now - last_seen_at > settings.STAFF_SESSION_IDLE_MINUTES * 60
        too_old = now - signed_in_at > settings.STAFF_SESSION_MAX_HOURS * 60 * 60
        if idle or too_old:
            # logout() flushes the session and makes request.user anonymous, so the view sees a
            # visitor: staff pages send them to sign in and back here afterwards.
            logout(request)
            flash.info(
                request,
                f"You were signed out after {settings.STAFF_SESSION_IDLE_MINUTES} minutes without activity."
                if idle
                else f"You were signed out: sessions last at most {settings.STAFF_SESSION_MAX_HOURS} hours.",
            )
            return
        if now - last_seen_at >= LAST_SEEN_REFRESH_SECONDS:
            session[LAST_SEEN_AT] = now
