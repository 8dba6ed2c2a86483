from __future__ import annotations

import pytest

from tests.factories import UserFactory


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


def pytest_terminal_summary(terminalreporter):
    # Here, in the top conftest, so it prints once in the main process even under xdist.
    from tests.e2e.conftest import CHROMIUM, chromium_available

    if not chromium_available():
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM} (sudo apt-get install chromium)", red=True
        )
