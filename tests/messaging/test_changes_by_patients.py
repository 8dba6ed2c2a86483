"""Home's "Changes by patients": how many appointments patients cancelled or changed since the
user last opened the list of them, and the link to that list, which records the look."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from booking.models import PatientChangesSeen
from tests.factories import StaffMembershipFactory, UserFactory
from tests.scenarios import make_every_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_since_last_week(practice):
    """The practice's member of staff, whose account is older than the changes."""
    User.objects.filter(pk=practice.user.pk).update(date_joined=timezone.now() - timedelta(days=7))
    client = Client()
    client.force_login(practice.user)
    return client


def changes_link(home) -> str:
    match = re.search(r'<a href="([^"]+)">(\d+) changes? since you last looked</a>', home.content.decode())
    assert match, "no link to the changes on home"
    return unescape(match.group(1))


def test_home_counts_the_patients_changes_and_links_to_them(staff_since_last_week, every_status):
    home = staff_since_last_week.get("/")
    assert home.status_code == 200
    content = home.content.decode()
    assert "Changes by patients" in content
    assert "2 changes since you last looked" in content  # cancelled by the patient, and changed
    listed = staff_since_last_week.get(changes_link(home))
    assert listed.status_code == 200
    assert set(listed.context["page"].object_list) == {every_status.by_patient, every_status.changed}


def test_rendering_home_is_not_a_look(staff_since_last_week, practice, every_status):
    staff_since_last_week.get("/")
    assert "2 changes since you last looked" in staff_since_last_week.get("/").content.decode()
    assert not PatientChangesSeen.objects.filter(user=practice.user).exists()


def test_opening_the_list_is_a_look_and_the_list_still_shows_what_was_new(
    staff_since_last_week, practice, every_status
):
    url = changes_link(staff_since_last_week.get("/"))
    before = timezone.now()
    staff_since_last_week.get(url)
    assert PatientChangesSeen.objects.get(user=practice.user).seen_at >= before
    home = staff_since_last_week.get("/").content.decode()
    assert "No appointments cancelled or changed by patients since you last looked." in home
    # The same link (Back, a reload) still lists the changes it was made for.
    again = staff_since_last_week.get(url)
    assert set(again.context["page"].object_list) == {every_status.by_patient, every_status.changed}


def test_a_change_after_the_look_is_counted(staff_since_last_week, practice, every_status):
    staff_since_last_week.get(changes_link(staff_since_last_week.get("/")))
    newer = make_every_status(
        practice, start=timezone.now() + timedelta(days=8), cancelled_at=timezone.now() + timedelta(seconds=1)
    )
    home = staff_since_last_week.get("/")
    assert "2 changes since you last looked" in home.content.decode()
    listed = staff_since_last_week.get(changes_link(home))
    assert set(listed.context["page"].object_list) == {newer.by_patient, newer.changed}


def test_each_user_has_their_own_last_look(staff_since_last_week, practice, every_status):
    colleague = UserFactory(date_joined=timezone.now() - timedelta(days=7))
    StaffMembershipFactory(user=colleague, organisation=practice.organisation)
    staff_since_last_week.get(changes_link(staff_since_last_week.get("/")))
    other = Client()
    other.force_login(colleague)
    assert "2 changes since you last looked" in other.get("/").content.decode()


def test_a_new_member_of_staff_counts_from_when_their_account_was_made(client, practice, every_status):
    newcomer = UserFactory()  # joined now: the changes an hour ago came before them
    StaffMembershipFactory(user=newcomer, organisation=practice.organisation)
    client.force_login(newcomer)
    content = client.get("/").content.decode()
    assert "No appointments cancelled or changed by patients since you last looked." in content


def test_another_practices_changes_are_not_counted(client, every_status, other_practice):
    User.objects.filter(pk=other_practice.user.pk).update(date_joined=timezone.now() - timedelta(days=7))
    client.force_login(other_practice.user)
    content = client.get("/").content.decode()
    assert "No appointments cancelled or changed by patients since you last looked." in content


def test_home_makes_the_same_queries_however_many_changes(
    staff_since_last_week, practice, django_assert_max_num_queries
):
    def count() -> int:
        with django_assert_max_num_queries(6) as captured:
            assert staff_since_last_week.get("/").status_code == 200
        return len(captured.captured_queries)

    make_every_status(practice)
    small = count()
    for i in range(15):
        make_every_status(practice, start=timezone.now() + timedelta(days=5 + i))
    assert "32 changes since you last looked" in staff_since_last_week.get("/").content.decode()
    assert count() == small
