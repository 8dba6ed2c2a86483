"""Fixtures every folder shares, over the scenarios in tests/scenarios.py.

A fixture only one folder uses lives in that folder's conftest.py. pytest-django's own (client,
admin_user, admin_client, settings, live_server...) are used as they come. No fixture name is
defined twice under tests/: tests/test_suite_structure.py fails if one is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import override_settings

from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.scenarios import EveryStatus, Hub, Practice, make_every_status, make_hub, make_practice


@pytest.fixture(autouse=True, scope="session")
def fast_password_hashing() -> Iterator[None]:
    # PBKDF2's deliberate slowness protects real passwords; in tests it only costs time. For
    # the whole session, so rows a class-scoped fixture makes get the same hashes too.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def empty_cache(db):
    """An empty cache before and after the test.

    The cache is a database table that is not a model's: the flush after a transactional test
    leaves it alone. Failed tries per address are no longer in it (they are `AttemptCount`
    rows, cleared like any model's), so this only keeps tests from seeing each other's entries.
    """
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def practice(db) -> Practice:
    return make_practice()


@pytest.fixture
def other_practice(db) -> Practice:
    return make_practice("Hillview")


@pytest.fixture
def fake_twilio():
    """The fake Twilio API on 127.0.0.1, with the twilio SMS backend pointed at it."""
    fake = FakeTwilio().start()
    with override_settings(
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_BASE_URL=fake.url,
        TWILIO_SENDER_ID="RIVERSIDE",
        TWILIO_MESSAGING_SERVICE_SID="",
        TWILIO_TIMEOUT_SECONDS=1.0,
    ):
        yield fake
    if fake.running:
        fake.stop()


@pytest.fixture
def staff_client(client, practice):
    client.force_login(practice.user)
    return client


@pytest.fixture
def hub(practice: Practice) -> Hub:
    return make_hub(practice)


@pytest.fixture
def every_status(practice: Practice) -> EveryStatus:
    """The practice's appointments booked, cancelled by the patient, by the practice, and changed."""
    return make_every_status(practice)


def pytest_terminal_summary(terminalreporter):
    # Here, in the top conftest, so it prints once in the main process even under xdist.
    from tests.e2e.conftest import CHROMIUM, chromium_available

    if not chromium_available():
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM} (sudo apt-get install chromium)", red=True
        )
