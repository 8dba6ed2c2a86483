"""System checks: the link encryption keys (always), and deploy checks that warn when messages
would not reach patients in production."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet
from django.apps import AppConfig
from django.conf import settings
from django.core import checks

NOT_DELIVERING_EMAIL = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}


@checks.register(checks.Tags.security)
def link_encryption_configured(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every link is sent with its token encrypted (booking/encryption.py): no key, no link."""
    keys = settings.LINK_ENCRYPTION_KEYS
    if not keys:
        return [
            checks.Error(
                "LINK_ENCRYPTION_KEYS is not set: no booking link can be sent.",
                hint="Set LINK_ENCRYPTION_KEYS to a Fernet key: python -c "
                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
                id="messaging.E001",
            )
        ]
    found: list[checks.CheckMessage] = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            found.append(
                checks.Error(
                    f"Key {position} of LINK_ENCRYPTION_KEYS is not a Fernet key (32 bytes, URL-safe base64).",
                    hint="Generate one with cryptography's Fernet.generate_key(); the first key encrypts.",
                    id="messaging.E002",
                )
            )
    return found


@checks.register(checks.Tags.security, deploy=True)
def delivery_configured(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    if settings.SMS_BACKEND != "twilio":
        found.append(
            checks.Warning(
                f"SMS_BACKEND is {settings.SMS_BACKEND!r}: texts are not sent to patients.",
                hint="Set SMS_BACKEND=twilio with TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
                id="messaging.W001",
            )
        )
    email_backend = settings.MAILERS["default"]["BACKEND"]
    if email_backend in NOT_DELIVERING_EMAIL:
        found.append(
            checks.Warning(
                f"EMAIL_BACKEND is {email_backend}: emails are not sent to patients.",
                hint="Set EMAIL_BACKEND to an anymail backend (anymail.backends.<provider>.EmailBackend).",
                id="messaging.W002",
            )
        )
    if "ImmediateBackend" in settings.TASKS["default"]["BACKEND"]:
        found.append(
            checks.Warning(
                "TASKS_BACKEND is the immediate backend: messages are sent inside the web request and "
                "retries wait for `manage.py requeue_messages`.",
                hint="Set TASKS_BACKEND=django_tasks_db.DatabaseBackend and run `manage.py db_worker`.",
                id="messaging.W003",
            )
        )
    if email_backend.startswith("anymail.") and not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        found.append(
            checks.Warning(
                "ANYMAIL_WEBHOOK_SECRET is not set: the email tracking webhook is switched off, so bounces "
                "and delivery reports are not recorded.",
                hint='Set ANYMAIL_WEBHOOK_SECRET="user:long-random-password" and give the provider that URL.',
                id="messaging.W004",
            )
        )
    found.extend(_tracking_webhook_problems())
    return found


def _tracking_webhook_problems() -> list[checks.CheckMessage]:
    """The email service's tracking view must be able to start (Mailgun's needs its signing key)."""
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return []
    from django.core.exceptions import ImproperlyConfigured

    from messaging.webhooks import ANYMAIL_TRACKING_VIEWS, anymail_services_configured

    problems: list[checks.CheckMessage] = []
    for service in sorted(anymail_services_configured()):
        view = ANYMAIL_TRACKING_VIEWS.get(service)
        if view is None:
            continue
        try:
            view.view_class(**view.view_initkwargs)
        except ImproperlyConfigured as error:
            problems.append(
                checks.Warning(
                    f"The {service} delivery-report webhook can't start, so its reports would be refused: {error}",
                    id="messaging.W005",
                )
            )
    return problems
