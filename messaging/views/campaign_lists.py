"""SCAFFOLDING for the `lists` branch, which replaces this whole module: every view answers 404."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def campaign_list(request: HttpRequest) -> HttpResponse:
    raise Http404


def campaign_new(request: HttpRequest) -> HttpResponse:
    raise Http404


def campaign_check(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_rejected_csv(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_start(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404
