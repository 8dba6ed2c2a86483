"""The NHS logo is a registered trade mark: the product's own pages name the product without it,
and a patient page shows the NHS primary care logo ("Providing NHS services") only for a
practice whose admin says it uses the NHS identity."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.template.loader import render_to_string
from django.test import Client

from booking.models import Organisation
from tests.factories import BookingLinkFactory, OrganisationFactory

# The start of the NHS logo's outline in NHS.UK frontend's SVG: any copy of the logo carries it,
# whatever its class or label says.
NHS_LOGO_OUTLINE = "M200 0v80H0V0h200Z"
PRIMARY_CARE_LOGO = "NHS: Providing NHS services"


class _AccessibleNames(HTMLParser):
    """The images and links of a page by their accessible names (`aria-label`, an image's
    `alt`, or a link's text) and the text of its banner. Enough for our own markup; not a full
    accessible-name algorithm."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self._banner_text: list[str] = []
        self._in_banner = False
        self._link_text: list[str] | None = None
        self._link_label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        label = attributes.get("aria-label")
        if attributes.get("role") == "img" or (tag == "img" and attributes.get("alt")):
            self.images.append(label or attributes.get("alt") or "")
        if tag == "a" and attributes.get("href") is not None:
            self._link_text, self._link_label = [], label
        if tag == "header" and attributes.get("role") == "banner":
            self._in_banner = True

    def handle_data(self, data: str) -> None:
        if self._link_text is not None:
            self._link_text.append(data)
        if self._in_banner:
            self._banner_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "header":
            self._in_banner = False
        if tag == "a" and self._link_text is not None:
            self.links.append(self._link_label or " ".join("".join(self._link_text).split()))
            self._link_text = self._link_label = None

    @property
    def banner(self) -> str:
        return " ".join("".join(self._banner_text).split())


def accessible_names(html: str) -> _AccessibleNames:
    parser = _AccessibleNames()
    parser.feed(html)
    parser.close()
    return parser


def assert_no_nhs_logo(html: str) -> None:
    assert NHS_LOGO_OUTLINE not in html
    assert "nhsuk-header__logo" not in html
    assert [name for name in accessible_names(html).images if "NHS" in name] == []


def assert_names_the_product(html: str) -> None:
    assert "Self-booking links homepage" in accessible_names(html).links
    assert "NHS Self-booking links homepage" not in html


class TestTheProductsOwnPages:
    def test_the_landing_page_names_the_product_without_the_nhs_logo(self, client, db):
        html = client.get("/").content.decode()
        assert_names_the_product(html)
        assert_no_nhs_logo(html)

    def test_the_staff_home_page_names_the_product_without_the_nhs_logo(self, staff_client, practice):
        practice.organisation.uses_nhs_identity = True  # a practice's setting is for its patients' pages
        practice.organisation.save()
        html = staff_client.get("/").content.decode()
        assert "Send message" in html
        assert_names_the_product(html)
        assert_no_nhs_logo(html)

    def test_the_sign_in_page_names_the_product_without_the_nhs_logo(self, client, db):
        html = client.get("/accounts/login/").content.decode()
        assert_names_the_product(html)
        assert_no_nhs_logo(html)

    @pytest.mark.parametrize("template", ["400.html", "403.html", "403_csrf.html", "404.html", "500.html"])
    def test_every_error_page_names_the_product_without_the_nhs_logo(self, template, db):
        html = render_to_string(template)
        assert_names_the_product(html)
        assert_no_nhs_logo(html)

    def test_a_real_404_names_the_product_without_the_nhs_logo(self, client, db):
        response = client.get("/no-such-page/")
        assert response.status_code == 404
        assert_no_nhs_logo(response.content.decode())

    def test_a_real_csrf_failure_names_the_product_without_the_nhs_logo(self, db):
        response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "a", "password": "b"})
        assert response.status_code == 403
        assert_no_nhs_logo(response.content.decode())

    @pytest.mark.parametrize("template", ["404.html", "500.html"])
    def test_the_browsers_icon_is_the_products_own_not_nhs_uk_frontends_nhs_logo(self, template, db):
        html = render_to_string(template)
        assert "/static/images/favicon.svg" in html
        assert "favicon.ico" not in html
        assert "build/assets/images/" not in html

    @pytest.mark.parametrize("path", ["/admin/", "/admin/booking/organisation/", "/admin/booking/organisation/add/"])
    def test_django_admin_shows_no_nhs_logo(self, admin_client, path):
        OrganisationFactory(uses_nhs_identity=True)
        response = admin_client.get(path)
        assert response.status_code == 200
        assert "Self-booking links administration" in response.content.decode()
        assert_no_nhs_logo(response.content.decode())


class TestPatientPages:
    def test_a_practice_that_does_not_use_the_nhs_identity_shows_its_name_without_the_logo(self, client, db):
        link = BookingLinkFactory(patient__organisation=OrganisationFactory(name="Hillview Surgery"))
        assert link.organisation.uses_nhs_identity is False
        html = client.get(link.get_absolute_url()).content.decode()
        assert accessible_names(html).banner == "Hillview Surgery"
        assert "Providing NHS services" not in html
        assert_no_nhs_logo(html)

    def test_a_practice_that_uses_the_nhs_identity_shows_the_providing_nhs_services_logo(self, client, db):
        organisation = OrganisationFactory(name="Riverside Medical Practice", uses_nhs_identity=True)
        link = BookingLinkFactory(patient__organisation=organisation)
        html = client.get(link.get_absolute_url()).content.decode()
        page = accessible_names(html)
        assert page.banner == "Riverside Medical Practice Providing NHS services"
        assert page.images == [PRIMARY_CARE_LOGO]
        assert NHS_LOGO_OUTLINE in html
        assert ">Providing NHS services</span>" in html

    def test_the_practice_name_is_not_a_link_to_the_staff_pages(self, client, db):
        link = BookingLinkFactory(patient__organisation=OrganisationFactory(uses_nhs_identity=True))
        html = client.get(link.get_absolute_url()).content.decode()
        assert accessible_names(html).links == ["Skip to main content"]

    def test_a_link_that_is_not_found_has_no_practice_and_so_no_logo(self, client, db):
        OrganisationFactory(uses_nhs_identity=True)
        response = client.get("/b/not-a-real-link")
        assert response.status_code == 404
        html = response.content.decode()
        assert_names_the_product(html)
        assert_no_nhs_logo(html)


class TestTheSetting:
    def test_a_new_organisation_does_not_use_the_nhs_identity(self, db):
        organisation = Organisation.objects.create(name="Riverside Medical Practice", ods_code="A99001")
        organisation.refresh_from_db()
        assert organisation.uses_nhs_identity is False

    def test_the_admin_can_turn_it_on(self, admin_client):
        organisation = OrganisationFactory(name="Riverside Medical Practice", ods_code="A99001")
        response = admin_client.post(
            f"/admin/booking/organisation/{organisation.pk}/change/",
            {
                "name": organisation.name,
                "ods_code": organisation.ods_code,
                "kind": organisation.kind,
                "phone": organisation.phone,
                "email": "",
                "uses_nhs_identity": "on",
                "memberships-TOTAL_FORMS": "0",
                "memberships-INITIAL_FORMS": "0",
            },
        )
        assert response.status_code == 302, response.content.decode()
        organisation.refresh_from_db()
        assert organisation.uses_nhs_identity is True

    def test_the_admin_form_says_who_may_turn_it_on(self, admin_client):
        organisation = OrganisationFactory()
        html = admin_client.get(f"/admin/booking/organisation/{organisation.pk}/change/").content.decode()
        assert "Uses the NHS identity" in html
        assert "Only a practice that provides NHS services may turn this on" in html


@pytest.mark.django_db(transaction=True)
def test_organisations_from_before_the_migration_do_not_use_the_nhs_identity_and_lose_the_sms_sender_name():
    before = [("booking", "0004_appointment_link_booked_at")]
    after = [("booking", "0005_organisation_uses_nhs_identity_no_sms_sender_name")]
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate(before)
        old_apps = executor.loader.project_state(before).apps
        old_apps.get_model("booking", "Organisation").objects.create(
            name="Riverside Medical Practice", ods_code="A99001", sms_sender_name="Riverside"
        )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        with connection.cursor() as cursor:
            columns = {
                column.name for column in connection.introspection.get_table_description(cursor, "booking_organisation")
            }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    assert "sms_sender_name" not in columns
    assert Organisation.objects.get(ods_code="A99001").uses_nhs_identity is False
