"""Django admin for an organisation's admins: filter sidebars list only their organisations'
records, and only superusers create organisations."""

from __future__ import annotations

import pytest
from django.contrib.admin import RelatedFieldListFilter

from booking.admin_scope import ScopedRelatedFieldListFilter
from booking.models import Location, Organisation, StaffMembership
from tests.booking.test_admin_access import SCOPED, member, url, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def ours():
    return world("Riverside")


@pytest.fixture
def theirs():
    return world("Hillview")


@pytest.fixture
def org_admin_client(client, ours):
    client.force_login(member(ours[Organisation], StaffMembership.Role.ADMIN, is_staff=True))
    return client


@pytest.mark.parametrize("model", SCOPED, ids=lambda model: model._meta.label)
def test_no_filter_sidebar_names_another_organisations_records(org_admin_client, ours, theirs, model):
    response = org_admin_client.get(url(model, "changelist"))
    assert response.status_code == 200
    related = [spec for spec in response.context["cl"].filter_specs if isinstance(spec, RelatedFieldListFilter)]
    assert all(isinstance(spec, ScopedRelatedFieldListFilter) for spec in related)
    assert "Hillview" not in response.content.decode()


def test_the_organisation_filter_lists_the_admins_own_organisations(client, ours, theirs):
    admin_user = member(ours[Organisation], StaffMembership.Role.ADMIN, is_staff=True)
    second = world("Eastfield")
    StaffMembership.objects.create(user=admin_user, organisation=second[Organisation], role="admin")
    client.force_login(admin_user)
    response = client.get(url(Location, "changelist"))
    (organisations,) = [spec for spec in response.context["cl"].filter_specs if spec.field_path == "organisation"]
    assert sorted(name for _, name in organisations.lookup_choices) == ["Eastfield Practice", "Riverside Practice"]


def test_a_superuser_still_sees_every_organisation_in_the_filters(admin_client, ours, theirs):
    response = admin_client.get(url(Location, "changelist"))
    assert "Hillview Practice" in response.content.decode()


class TestCreatingOrganisations:
    def test_an_organisations_admin_cannot_add_one(self, org_admin_client):
        assert org_admin_client.get(url(Organisation, "add")).status_code == 403
        response = org_admin_client.post(
            url(Organisation, "add"),
            {"name": "Made Up Practice", "ods_code": "A12345", "kind": "practice", "phone": "01632 960000"},
        )
        assert response.status_code == 403
        assert not Organisation.objects.filter(name="Made Up Practice").exists()

    def test_the_changelist_offers_no_add_button(self, org_admin_client):
        response = org_admin_client.get(url(Organisation, "changelist"))
        assert url(Organisation, "add") not in response.content.decode()

    def test_a_superuser_can(self, admin_client):
        assert admin_client.get(url(Organisation, "add")).status_code == 200
