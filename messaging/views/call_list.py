"""SCAFFOLDING for the `declines` branch, which replaces this whole module: every view answers 404."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def call_list(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def call_outcome(request: HttpRequest, reference: str, entry: int) -> HttpResponse:
    raise Http404
