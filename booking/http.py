"""The client's address, as far as it can be trusted.

Behind a reverse proxy REMOTE_ADDR is the proxy, and every patient would share one rate-limit
bucket. TRUSTED_PROXY_COUNT says how many proxies in front of the app append to
X-Forwarded-For; the client is the address that many places from the right. Anything further
left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    address = request.META.get("REMOTE_ADDR")
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None
