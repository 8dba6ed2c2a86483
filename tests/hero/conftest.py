"""Fixtures for the project layer's tests: sign-in, password reset, staff sessions."""

from __future__ import annotations

import pytest

from tests.factories import StaffMembershipFactory, UserFactory


@pytest.fixture
def reception_account(db):
    """A member of staff at one practice, signing in as "reception" with the factories' password."""
    user = UserFactory(username="reception", email="reception@riverside.example")
    StaffMembershipFactory(user=user)
    return user
