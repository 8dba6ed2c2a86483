"""Keeping working links out of logs and error reports.

A link's path is `/b/<token>/...`, and the token is all it takes to reach the date-of-birth
page. Django's request logger names the path of every 4xx and 5xx (a 409 for a lost race, a
429 for too many tries), runserver logs every request, and an error report prints the URL, the
request's META and each frame's variables. `LinkTokenFilter` (settings.LOGGING) rewrites the
token in a record's message and arguments, before any handler formats it;
`LinkTokenExceptionReporter` (settings.DEFAULT_EXCEPTION_REPORTER) does the same to the whole
error report, text and HTML, whatever part of it the token turned up in, and
`LinkTokenReporterFilter` (settings.DEFAULT_EXCEPTION_REPORTER_FILTER) hides the frame
variables that hold a bare token (the patient's views take `token`; a frame's `kwargs` holds it).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.http import HttpRequest
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

# The link's path (booking/urls.py); the token's alphabet is token_urlsafe's. The length is
# looser than booking/links.py's shape check so a malformed or guessed token is hidden too.
_LINK_PATH = re.compile(r"/b/[A-Za-z0-9_-]{8,}")
REDACTED = "/b/<redacted>"


def link_tokens_redact(text: str, *, replacement: str = REDACTED) -> str:
    """`text` with every link path's token replaced by <redacted>."""
    return _LINK_PATH.sub(replacement, text)


def _redacted(value: Any) -> Any:
    return link_tokens_redact(value) if isinstance(value, str) else value


class LinkTokenFilter(logging.Filter):
    """Rewrites link tokens in a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redacted(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redacted(value) for value in record.args)
        return True


class LinkTokenExceptionReporter(ExceptionReporter):
    """Django's error report (the ADMINS email, the technical 500 page) with link tokens redacted."""

    def get_traceback_html(self) -> SafeString:
        # The report is escaped HTML already, and the replacement is escaped too.
        return mark_safe(link_tokens_redact(super().get_traceback_html(), replacement=escape(REDACTED)))  # noqa: S308

    def get_traceback_text(self) -> SafeString:
        return mark_safe(link_tokens_redact(super().get_traceback_text()))  # noqa: S308 -- plain text, as Django's


class LinkTokenReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, which also cleanses each frame's variables named like a secret.

    Django hides settings whose names match `hidden_settings` (TOKEN among them) and, only for
    functions marked @sensitive_variables, their variables. A frame variable is cleansed the
    same way as a setting here, so `token` and a dict's "token" key never reach a report.
    """

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        return [
            (name, self.cleanse_setting(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
