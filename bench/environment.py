"""The environment the bench runs everything in: production settings, its own database.

Throwaway secrets, plain HTTP on 127.0.0.1, the database task backend (so sending a message only
enqueues, as in production; the SMS and email backends are the outbox and memory anyway), one
trusted proxy so each simulated patient can have its own address in X-Forwarded-For (the
per-address date-of-birth limit stays on), and the query count header. The data set lives in
its own database: `hero_bench` on the embedded PostgreSQL, or the server named by
BENCH_DATABASE_URL. DATABASE_URL is never used, so the bench can't write into a real database
by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Data set manifest, link tokens, run plans, results and profiles: git-ignored, beside the code.
BENCH_DIR = Path(os.environ.get("BENCH_DIR") or ROOT / ".bench")
DATABASE_NAME = "hero_bench"
PUBLIC_BASE_URL = "http://127.0.0.1:8000"
# The per-user password of the data set's staff logins; the data set is for benchmarks only.
STAFF_PASSWORD = "bench-only-password-7f3a"  # noqa: S105 -- a benchmark login, never a real one

SETTINGS = {
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-5d1e9b7c3a2f4860aa11",
    "HASHIDS_SALT": "bench-only-hashids-salt",
    # Sending with a link keeps the token encrypted for retries, so production settings need a
    # key (a published one: the benchmark's links are synthetic and its database throwaway).
    "LINK_ENCRYPTION_KEYS": "YmVuY2gtb25seS1saW5rLWtleS1ub3QtYS1zZWNyZXQ=",
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "EMBEDDED_DATABASE_NAME": DATABASE_NAME,
    "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
    # No worker runs the delivery tasks; should one ever, nothing leaves the machine either way.
    "SMS_BACKEND": "outbox",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "TRUSTED_PROXY_COUNT": "1",
    "STATIC_MANIFEST": "true",
    "BENCH_QUERY_COUNT": "true",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "hero.settings",
}


def bench_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `base` (default: this process's environment) with the bench's settings."""
    env = dict(os.environ if base is None else base)
    env.update(SETTINGS)
    env.pop("DATABASE_URL", None)
    if env.get("BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = env["BENCH_DATABASE_URL"]
    return env


def apply() -> None:
    """Put the bench's settings into this process's environment, before Django is set up."""
    env = bench_environment()
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)
