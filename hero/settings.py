"""Settings for the self-booking links project, all read from the environment.

Every variable is listed, with its meaning, in `.env.example`. With DEBUG off (production),
SECRET_KEY and HASHIDS_SALT must be set or start-up stops; `manage.py check --deploy` then
reports nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)


def _required_in_production(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. It is required when DEBUG is off: set it in the environment "
        f"(see .env.example), or set DEBUG=true for local development."
    )


# Development fallbacks are deliberately long and labelled so they are never mistaken for
# real secrets; production refuses to start without its own.
SECRET_KEY = _required_in_production(
    "SECRET_KEY", "dev-only-insecure-secret-key-4f9b2c7e1a8d6053-never-use-in-production"
)
HASHIDS_SALT = _required_in_production("HASHIDS_SALT", "dev-only-hashids-salt")

# Keys that encrypt a link's token while a later message may carry it (booking/encryption.py):
# Fernet keys, comma-separated; the first encrypts, all decrypt (rotation: docs/security.md).
# Production must set its own (a system check says so); development derives one from the
# development SECRET_KEY, labelled so it is never mistaken for a real one.
LINK_ENCRYPTION_KEYS = env.list("LINK_ENCRYPTION_KEYS", default=[])
if not LINK_ENCRYPTION_KEYS and DEBUG:
    LINK_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(b"dev-only-link-key:" + SECRET_KEY.encode()).digest()).decode()
    ]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
# Required in production: a forgotten value would put localhost addresses in patients' texts.
PUBLIC_BASE_URL = _required_in_production("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.forms",
    "django_tasks_db",
    "anymail",
    "axes",
    "booking",
    "messaging",
    "hero",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After the messages, to say why someone was signed out.
    "hero.sessions.StaffSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a sign-in it refused into the "too many failed
    # sign-ins" page (hero/sign_in.py).
    "axes.middleware.AxesMiddleware",
]
# The benchmark (`make bench`, bench/) counts each request's queries in a response header; the
# middleware goes first so the session and user lookups are counted too. Never on otherwise.
if env.bool("BENCH_QUERY_COUNT", default=False):
    MIDDLEWARE.insert(0, "bench.middleware.QueryCountMiddleware")

# Form widgets render with the project's templates, so our own widget templates are found.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

ROOT_URLCONF = "hero.urls"
WSGI_APPLICATION = "hero.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: PostgreSQL always. DATABASE_URL names a server; without it the project starts its
# own embedded PostgreSQL (hero/embedded_postgres.py) on first connection.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    # libpq URLs name a Unix socket folder as a percent-encoded host (postgres://u@%2Fvar%2Frun%2Fpostgresql/db);
    # django-environ leaves it encoded.
    DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST", ""))
else:
    DATABASES = {
        "default": {
            "ENGINE": "hero.db_backend",
            "NAME": env.str("EMBEDDED_DATABASE_NAME", default="hero"),
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": "",
        }
    }
# DATABASE_POOL=true uses psycopg's connection pool (one per process) instead of persistent
# connections; Django requires CONN_MAX_AGE=0 with it.
if env.bool("DATABASE_POOL", default=False):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# The link lookup every patient page starts with is a prepared statement (booking/link_lookup.py);
# off behind a pooler in transaction mode, which can't keep a connection's prepared statements.
DATABASE_PREPARED_LINK_LOOKUP = env.bool("DATABASE_PREPARED_LINK_LOOKUP", default=True)
# A booking waits at most this long for a row lock before the patient is asked to try again.
DATABASES["default"]["OPTIONS"].setdefault(
    "options", f"-c lock_timeout={env.int('DATABASE_LOCK_TIMEOUT_MS', default=5000)}"
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One store every web process shares, never per-process memory: the database by default (table
# made by `manage.py createcachetable`; the test database gets it too), Redis with
# CACHE_URL=redis://host:6379/0. Rate limits don't live here: a cache culls (the database cache
# keeps 300 entries), so their counts are rows of booking's AttemptCount (booking/throttle.py).
CACHES = {"default": env.cache_url("CACHE_URL", default="dbcache://django_cache")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env.bool("STATIC_MANIFEST", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Staff sign-in throttle: django-axes counts failed sign-ins in the database (hero/sign_in.py,
# docs/security.md). Three limits, each counted over the last SIGN_IN_LOCKOUT_MINUTES: one
# account from one address, one account from any address (guesses spread over many
# addresses), one address across accounts (one password tried on many accounts). The
# address limit is the highest because a practice's staff share one address.
AUTHENTICATION_BACKENDS = [
    "hero.sign_in.SignInThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
SIGN_IN_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=5)
SIGN_IN_ACCOUNT_FAILURE_LIMIT = env.int("SIGN_IN_ACCOUNT_FAILURE_LIMIT", default=10)
SIGN_IN_ADDRESS_FAILURE_LIMIT = env.int("SIGN_IN_ADDRESS_FAILURE_LIMIT", default=30)
SIGN_IN_LOCKOUT_MINUTES = env.int("SIGN_IN_LOCKOUT_MINUTES", default=15)
AXES_HANDLER = "hero.sign_in.SignInAttemptHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username", "ip_address"]
# Axes compares one number with one limit: the handler scales each count to this one.
AXES_FAILURE_LIMIT = SIGN_IN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=SIGN_IN_LOCKOUT_MINUTES)
# Tries refused during a lockout don't extend it: someone hammering a colleague's account
# can't keep them out for longer than the lockout itself.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A successful sign-in clears that account's failures from that address only (the handler).
AXES_RESET_ON_SUCCESS = True
# The address behind our proxies, as everywhere else (TRUSTED_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "booking.http.client_ip"
AXES_LOCKOUT_CALLABLE = "hero.sign_in.sign_in_locked_out"
AXES_HTTP_RESPONSE_CODE = 429

# Staff sessions (hero/sessions.py) end after this long without a request, this long after
# signing in, and when the browser closes: a practice PC is often shared.
STAFF_SESSION_IDLE_MINUTES = env.int("STAFF_SESSION_IDLE_MINUTES", default=20)
STAFF_SESSION_MAX_HOURS = env.int("STAFF_SESSION_MAX_HOURS", default=10)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# The stored session lasts no longer than the longest a staff session may.
SESSION_COOKIE_AGE = STAFF_SESSION_MAX_HOURS * 60 * 60

# Password reset requests (hero/sign_in.py), counted per email address and per client address
# (higher: a practice's staff share one address).
PASSWORD_RESET_EMAIL_LIMIT_PER_HOUR = env.int("PASSWORD_RESET_EMAIL_LIMIT_PER_HOUR", default=5)
PASSWORD_RESET_ADDRESS_LIMIT_PER_HOUR = env.int("PASSWORD_RESET_ADDRESS_LIMIT_PER_HOUR", default=20)

TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django.tasks.backends.immediate.ImmediateBackend"),
    }
}

# Delivery (messaging/transports/, docs/deployment.md). Texts go through SMS_BACKEND: "outbox"
# (development: kept, and shown at /dev/outbox when DEBUG is on), "console" (printed to the
# log), "twilio", or the dotted path of a class with `name` and `send(message)` (like
# EMAIL_BACKEND; the tests use one that raises). Email goes through the EMAIL_BACKEND variable
# (Django 6.1 MAILERS): an anymail backend in production (anymail.backends.<esp>.EmailBackend,
# its settings from ANYMAIL_* variables).
SMS_BACKENDS = ("outbox", "console", "twilio")
SMS_BACKEND = env.str("SMS_BACKEND", default="outbox")
if SMS_BACKEND not in SMS_BACKENDS and "." not in SMS_BACKEND:
    raise ImproperlyConfigured(
        f"SMS_BACKEND must be one of {', '.join(SMS_BACKENDS)} or a class's dotted path, not {SMS_BACKEND!r}."
    )
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
if SMS_BACKEND == "twilio" and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN):
    raise ImproperlyConfigured("SMS_BACKEND is twilio: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN too.")
# Organisations without their own sender (admin: Sender profiles) use these.
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_SENDER_ID = env.str("TWILIO_SENDER_ID", default="")
# Only the tests change this (their fake Twilio server); a regional endpoint could too.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=15.0)

_email_backend = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
_email_options = {}
if _email_backend == "django.core.mail.backends.smtp.EmailBackend":
    # An SMTP relay (NHSmail's, say) instead of an email service's API.
    _email_options = {
        "host": env.str("EMAIL_HOST", default="localhost"),
        "port": env.int("EMAIL_PORT", default=587),
        "username": env.str("EMAIL_HOST_USER", default=""),
        "password": env.str("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env.bool("EMAIL_USE_TLS", default=True),
        "timeout": env.int("EMAIL_TIMEOUT", default=15),
    }
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="appointments@localhost")
# Every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"]: ANYMAIL_POSTMARK_SERVER_TOKEN,
# ANYMAIL_WEBHOOK_SECRET ("user:password" for the tracking webhook's basic auth), and so on.
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")}

# Retries of transient failures: exponential backoff with jitter, then the message fails.
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=8)
DELIVERY_RETRY_BASE_SECONDS = env.float("DELIVERY_RETRY_BASE_SECONDS", default=30.0)
DELIVERY_RETRY_MAX_SECONDS = env.float("DELIVERY_RETRY_MAX_SECONDS", default=3600.0)
# How long a worker holds a message it is sending; a message held past this by a worker that
# died is picked up again by `manage.py requeue_messages`.
DELIVERY_LEASE_SECONDS = env.float("DELIVERY_LEASE_SECONDS", default=120.0)

# Security. Production defaults are strict; each can be relaxed from the environment when a
# proxy already does the job (documented in docs/deployment.md).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies in front of the app append to X-Forwarded-For (booking/http.py).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
# same-origin, never no-referrer: with no-referrer browsers send `Origin: null` on form posts
# and Django's CSRF check refuses every patient's form.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# No working link in a log record: the filter (booking/logs.py) rewrites /b/<token> to
# /b/<redacted>. On the loggers that name request paths (django.request's 4xx and 5xx,
# runserver's django.server, gunicorn's access log when one is switched on), so the record is
# clean before any handler sees it, and on the console handler for everything else.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"link_tokens": {"()": "booking.logs.LinkTokenFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["link_tokens"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own console handler would print each record a second time through the root.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        # Failures and lockouts (WARNING) only; axes' INFO lines narrate every sign-in.
        "axes": {"level": "WARNING"},
        # Its INFO lines narrate every run of every job; hero/scheduler.py logs what matters.
        "apscheduler": {"level": "WARNING"},
        "django.request": {"filters": ["link_tokens"], "propagate": True},
        # Through the root's handler, not Django's own (which would print unfiltered).
        "django.server": {"handlers": [], "filters": ["link_tokens"], "propagate": True},
        "gunicorn.access": {"filters": ["link_tokens"]},
    },
}
# Error reports (ADMINS emails, the technical 500 page) leave a link's token out.
DEFAULT_EXCEPTION_REPORTER = "booking.logs.LinkTokenExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "booking.logs.LinkTokenReporterFilter"
