from __future__ import annotations

import pytest
from django.test import override_settings

from tests.factories import UserFactory
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.scenarios import Hub, Practice, make_hub, make_practice


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects real passwords; in tests it only costs time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


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


def pytest_terminal_summary(terminalreporter):
    # Here, in the top conftest, so it prints once in the main process even under xdist.
    from tests.e2e.conftest import CHROMIUM, chromium_available

    if not chromium_available():
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM} (sudo apt-get install chromium)", red=True
        )
