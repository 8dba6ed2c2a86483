"""SCAFFOLDING for the `funnel` branch, which replaces this whole module: every view answers 404."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse


def campaign_page(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_funnel(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_pause(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_resume(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_stop(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_links_revoke(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404


def campaign_outcomes_csv(request: HttpRequest, reference: str) -> HttpResponse:
    raise Http404
