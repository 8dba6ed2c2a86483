"""The site's front page: the staff home when signed in, what the product is otherwise."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from messaging.views.messages import home as staff_home


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return staff_home(request)
    return render(request, "hero/home.html")
