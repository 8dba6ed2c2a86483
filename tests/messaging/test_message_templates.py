"""Managers look after their organisation's message templates."""

from __future__ import annotations

import pytest

from messaging.models import MessageTemplate
from tests.factories import MessageTemplateFactory

pytestmark = pytest.mark.django_db


def test_staff_who_are_not_managers_cannot_reach_templates(staff_client, practice):
    assert staff_client.get("/templates/").status_code == 403
    assert staff_client.post("/templates/new/", {"name": "x", "body": "y"}).status_code == 403
    assert not MessageTemplate.objects.exists()


def test_a_manager_adds_a_template_that_the_builder_then_offers(manager_client, practice):
    response = manager_client.post(
        "/templates/new/", {"name": "Flu", "body": "Hi <<Patient First Name>>: {{Appointment Link}}", "is_active": "on"}
    )
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    assert (template.organisation, template.body) == (
        practice.organisation,
        "Hi {{Patient First Name}}: {{Appointment Link}}",
    )
    assert "Flu" in manager_client.get("/templates/").content.decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "", "body": "Hi"}, "Enter a name for the template."),
        ({"name": "A", "body": ""}, "Enter the message."),
        ({"name": "A", "body": "Hi {{Surname}}"}, "{{Surname}} is not a token we know."),
        ({"name": "existing", "body": "Hi"}, "There is already a template with that name."),
    ],
)
def test_bad_templates_are_form_errors(manager_client, practice, data, error):
    MessageTemplateFactory(organisation=practice.organisation, name="Existing")
    response = manager_client.post("/templates/new/", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert MessageTemplate.objects.count() == 1


def test_another_organisations_template_is_not_found(manager_client, other_practice):
    theirs = MessageTemplateFactory(organisation=other_practice.organisation, body="Theirs")
    assert manager_client.get(f"/templates/{theirs.pk}/").status_code == 404
    assert manager_client.post(f"/templates/{theirs.pk}/", {"name": "Mine now", "body": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.body == "Theirs"
    assert "Theirs" not in manager_client.get("/templates/").content.decode()
