"""Which organisations a user may act in: one helper, `organisation_ids_for`, with named role sets."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from booking.access import (
    ADMIN_ROLES,
    ANY_ROLE,
    MANAGING_ROLES,
    get_patient_for_staff,
    managed_organisation,
    organisation_ids_for,
)
from booking.models import StaffMembership
from tests.factories import OrganisationFactory, PatientFactory, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    """A user who is staff at Ashby, a manager at Brook and an admin at Crane."""
    user = UserFactory()
    for name, role in (("Ashby", "staff"), ("Brook", "manager"), ("Crane", "admin")):
        StaffMembershipFactory(user=user, organisation=OrganisationFactory(name=name), role=role)
    return user


def names(ids: list[int]) -> list[str]:
    return [m.organisation.name for m in StaffMembership.objects.filter(organisation_id__in=ids).distinct()]


class TestOrganisationIdsFor:
    def test_any_role_is_every_organisation_the_user_works_in(self, member):
        assert names(organisation_ids_for(member, roles=ANY_ROLE)) == ["Ashby", "Brook", "Crane"]

    def test_managing_roles_are_managers_and_admins(self, member):
        assert names(organisation_ids_for(member, roles=MANAGING_ROLES)) == ["Brook", "Crane"]

    def test_admin_roles_are_admins_only(self, member):
        assert names(organisation_ids_for(member, roles=ADMIN_ROLES)) == ["Crane"]

    def test_they_come_in_the_order_of_the_organisations_names(self, member):
        ids = organisation_ids_for(member, roles=ANY_ROLE)
        assert ids == [
            StaffMembership.objects.get(user=member, organisation__name=name).organisation_id
            for name in ("Ashby", "Brook", "Crane")
        ]

    def test_an_anonymous_user_acts_nowhere(self):
        assert organisation_ids_for(AnonymousUser(), roles=ANY_ROLE) == []

    def test_a_superuser_acts_only_where_they_are_a_member(self):
        assert organisation_ids_for(UserFactory(is_superuser=True), roles=ANY_ROLE) == []

    def test_every_role_set_asks_the_database_once_per_user_object(self, member, django_assert_num_queries):
        with django_assert_num_queries(1):
            for roles in (ANY_ROLE, MANAGING_ROLES, ADMIN_ROLES, ANY_ROLE):
                organisation_ids_for(member, roles=roles)


class TestBuiltOnIt:
    def test_managed_organisation_is_the_first_one_managed(self, member):
        assert managed_organisation(member, what="Message templates").name == "Brook"

    def test_managed_organisation_refuses_plain_staff(self):
        user = UserFactory()
        StaffMembershipFactory(user=user)
        with pytest.raises(PermissionDenied, match=r"Message templates are for managers\."):
            managed_organisation(user, what="Message templates")

    def test_a_patient_is_found_in_any_organisation_the_user_works_in(self, member):
        ashby = StaffMembership.objects.get(user=member, organisation__name="Ashby").organisation
        patient = PatientFactory(organisation=ashby)
        assert get_patient_for_staff(user=member, reference=patient.reference) == patient

    def test_another_organisations_patient_is_not_found(self, member):
        with pytest.raises(Http404):
            get_patient_for_staff(user=member, reference=PatientFactory().reference)
