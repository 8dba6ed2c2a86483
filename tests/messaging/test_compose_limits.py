"""The builder refuses an oversized body early and cheaply: it never measures what it will refuse."""

from __future__ import annotations

import pytest

from booking.references import encode_reference
from messaging.models import Message
from messaging.views import compose

pytestmark = pytest.mark.django_db

HALF_A_MEGABYTE = "a" * 500_000


@pytest.fixture
def measuring(monkeypatch):
    """Every SMS length measurement the builder makes, by body length."""
    calls: list[int] = []
    measure = compose.sms_length_of_body

    def counted(body, **kwargs):
        calls.append(len(body))
        return measure(body, **kwargs)

    monkeypatch.setattr(compose, "sms_length_of_body", counted)
    return calls


def patient_ref(practice) -> str:
    return encode_reference(practice.patient.pk, namespace="patient")


@pytest.mark.parametrize("url", ["/messages/new/count/", "/messages/new/"])
def test_half_a_megabyte_is_refused_with_413_before_it_is_measured(staff_client, practice, measuring, url):
    response = staff_client.post(url, {"patient": patient_ref(practice), "channel": "sms", "body": HALF_A_MEGABYTE})
    assert response.status_code == 413
    assert "at most 5000 characters" in response.content.decode()
    assert measuring == []
    assert not Message.objects.exists()


def test_a_body_just_over_the_limit_says_so_without_being_measured(staff_client, practice, measuring):
    response = staff_client.post(
        "/messages/new/count/", {"patient": patient_ref(practice), "channel": "sms", "body": "a" * 5001}
    )
    assert response.status_code == 200
    assert "a message can be at most 5000 characters" in response.content.decode()
    assert measuring == []


def test_sending_a_body_just_over_the_limit_is_a_form_error_and_not_measured(staff_client, practice, measuring):
    response = staff_client.post(
        "/messages/new/",
        {"patient": patient_ref(practice), "channel": "sms", "body": "a" * 5001, "action": "send"},
    )
    assert response.status_code == 400
    assert "The message can be at most 5000 characters." in response.content.decode()
    assert measuring == []
    assert not Message.objects.exists()


def test_a_full_length_body_of_four_byte_characters_still_fits(staff_client, practice, measuring):
    response = staff_client.post(
        "/messages/new/count/", {"patient": patient_ref(practice), "channel": "sms", "body": "😀" * 5000}
    )
    assert response.status_code == 200
    assert measuring == [5000]


def test_signed_out_it_is_still_the_sign_in_page(client):
    response = client.post("/messages/new/count/", {"body": HALF_A_MEGABYTE})
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
