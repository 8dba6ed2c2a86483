from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from booking.models import BookingLink, hash_token

# Longer than any token we issue (22 characters) with room to spare; anything longer is junk.
MAX_TOKEN_LENGTH = 64


def booking_link(request: HttpRequest, token: str) -> HttpResponse:
    """The patient's entry point. GET changes nothing: previews and mail scanners fetch links.

    The date-of-birth check and the times come with the patient journey (issue 4); until then
    a valid link shows its practice's name and phone number, and nothing about the patient.
    """
    link = None
    if len(token) <= MAX_TOKEN_LENGTH:
        link = BookingLink.objects.select_related("organisation").filter(token_digest=hash_token(token)).first()
    if link is None:
        return render(request, "booking/link_not_found.html", status=404)
    return render(request, "booking/link_pending.html", {"organisation": link.organisation})
