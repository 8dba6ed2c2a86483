"""Start-up: settings from the environment, and the database with and without DATABASE_URL.

These run manage.py in a subprocess with a clean environment, as a person or a process
manager would start the project.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "HASHIDS_SALT",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "SECURE_SSL_REDIRECT",
    "STATIC_MANIFEST",
    "PUBLIC_BASE_URL",
    "EMBEDDED_POSTGRES_DIR",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set for the browser tests in this process only
    "SMS_BACKEND",
    "EMAIL_BACKEND",
    "TASKS_BACKEND",
    "LINK_ENCRYPTION_KEYS",
}
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-" + "x9Qz" * 16,
    "HASHIDS_SALT": "a-salt-for-the-deploy-check",
    "ALLOWED_HOSTS": "booking.example.org",
    "PUBLIC_BASE_URL": "https://booking.example.org",
    "SMS_BACKEND": "twilio",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "a-twilio-auth-token",
    "TWILIO_SENDER_ID": "PRACTICE",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "a-postmark-token",
    "ANYMAIL_WEBHOOK_SECRET": "hooks:a-long-webhook-password",
    "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
    "LINK_ENCRYPTION_KEYS": "84ifzUVnw1LFv2pVyBk23hxUMwFOInsupVILTe8-YQg=",
}


def manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class TestProductionSettings:
    @pytest.mark.parametrize("missing", ["SECRET_KEY", "HASHIDS_SALT", "PUBLIC_BASE_URL"])
    def test_a_missing_secret_stops_start_up_with_a_clear_message(self, missing):
        env = {key: value for key, value in PRODUCTION.items() if key != missing}
        result = manage("check", env=env)
        assert result.returncode != 0
        assert f"{missing} is not set" in result.stderr
        assert ".env.example" in result.stderr

    def test_the_deploy_check_reports_nothing(self):
        result = manage("check", "--deploy", "--fail-level", "DEBUG", env=PRODUCTION)
        assert result.returncode == 0, result.stderr
        assert "System check identified no issues" in result.stdout

    @pytest.mark.parametrize(
        ("variable", "value", "warning"),
        [
            ("SMS_BACKEND", "outbox", "messaging.W001"),
            ("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend", "messaging.W002"),
            ("TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend", "messaging.W003"),
            ("ANYMAIL_WEBHOOK_SECRET", "", "messaging.W004"),
        ],
    )
    def test_the_deploy_check_warns_when_messages_would_not_reach_patients(self, variable, value, warning):
        result = manage("check", "--deploy", env={**PRODUCTION, variable: value})
        assert warning in result.stderr + result.stdout

    def test_the_deploy_check_warns_when_the_email_services_webhook_cant_start(self):
        # Mailgun's view checks signatures with its signing key (or, without one, the API key).
        mailgun = {**PRODUCTION, "EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend"}
        result = manage("check", "--deploy", env=mailgun)
        assert "messaging.W005" in result.stderr + result.stdout
        assert "webhook_signing_key" in (result.stderr + result.stdout).lower()
        signed = manage("check", "--deploy", env={**mailgun, "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY": "s"})
        assert "messaging.W005" not in signed.stderr + signed.stdout

    def test_without_a_link_encryption_key_the_check_refuses_to_start(self):
        result = manage("check", env={**PRODUCTION, "LINK_ENCRYPTION_KEYS": ""})
        assert result.returncode != 0
        assert "messaging.E001" in result.stderr
        assert "LINK_ENCRYPTION_KEYS is not set" in result.stderr

    def test_a_link_encryption_key_that_isnt_a_fernet_key_is_refused(self):
        keys = PRODUCTION["LINK_ENCRYPTION_KEYS"] + ",not-a-key"
        result = manage("check", env={**PRODUCTION, "LINK_ENCRYPTION_KEYS": keys})
        assert result.returncode != 0
        assert "messaging.E002" in result.stderr
        assert "Key 2 of LINK_ENCRYPTION_KEYS" in result.stderr

    def test_twilio_without_credentials_stops_start_up(self):
        result = manage("check", env={**PRODUCTION, "TWILIO_AUTH_TOKEN": ""})
        assert result.returncode != 0
        assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in result.stderr

    def test_an_unknown_sms_backend_stops_start_up(self):
        result = manage("check", env={**PRODUCTION, "SMS_BACKEND": "pigeon"})
        assert result.returncode != 0
        assert "SMS_BACKEND must be one of outbox, console, twilio" in result.stderr

    def test_development_runs_without_any_secrets(self):
        result = manage("check", env={"DEBUG": "true"})
        assert result.returncode == 0, result.stderr


class TestDatabase:
    def test_without_database_url_the_embedded_postgresql_is_used(self, db):
        assert settings.DATABASES["default"]["ENGINE"] == "hero.db_backend"
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            (version,) = cursor.fetchone()
        assert int(version.split(".")[0]) >= 18

    def test_with_database_url_that_server_is_used(self, db):
        # Point DATABASE_URL at the running server by its socket, as a deployer would point
        # it at theirs; the stock PostgreSQL backend must then be the one in use.
        socket_dir = connection.settings_dict["HOST"]
        url = f"postgres://postgres@{quote(socket_dir, safe='')}/postgres"
        script = (
            "from django.db import connection; connection.ensure_connection();"
            "print(connection.vendor, connection.settings_dict['ENGINE'], connection.settings_dict['HOST'])"
        )
        result = manage("shell", "-c", script, env={"DEBUG": "true", "DATABASE_URL": url})
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1].split() == ["postgresql", "django.db.backends.postgresql", socket_dir]

    def test_a_fresh_machine_starts_the_embedded_server_and_reuses_it(self, tmp_path):
        data_dir = tmp_path / "pgdata"
        env = {"DEBUG": "true", "EMBEDDED_POSTGRES_DIR": str(data_dir)}
        try:
            first = manage("migrate", "--no-input", env=env, timeout=300)
            assert first.returncode == 0, first.stderr
            assert (data_dir / "PG_VERSION").exists()
            pid = (data_dir / "postmaster.pid").read_text().splitlines()[0]

            second = manage("showmigrations", "booking", env=env)
            assert second.returncode == 0, second.stderr
            assert "[X] 0002_audit_event_append_only" in second.stdout
            # The same server answered: it was reused, not started again.
            assert (data_dir / "postmaster.pid").read_text().splitlines()[0] == pid
        finally:
            stop = subprocess.run(
                [sys.executable, "-m", "hero.embedded_postgres", "stop"],
                cwd=ROOT,
                env={**os.environ, "EMBEDDED_POSTGRES_DIR": str(data_dir)},
                capture_output=True,
                text=True,
                check=False,
            )
        assert "Stopped" in stop.stdout
