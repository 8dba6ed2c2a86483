"""`python -m bench profile`: where each scenario's time goes, with pyinstrument.

The same requests as the load generator, made in this process through Django's test client
against the bench database (no HTTP, no gunicorn), with the profiler running only around the
measured requests. Profiles go to .bench/profiles/<scenario>.txt and .html; docs/benchmarks.md
explains what they show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http.response import HttpResponseBase
from django.test import Client
from pyinstrument import Profiler

from bench.dataset import Manifest
from bench.environment import BENCH_DIR
from bench.load import send_form
from bench.plan import make_plan

# Any: the test client's extra keyword arguments are WSGI environ values.
HOST: dict[str, Any] = {"HTTP_HOST": "127.0.0.1"}
# One request handler for every simulated browser, as a gunicorn worker has: each test client
# would otherwise build the middleware again (WhiteNoise scans the static files) on its first request.
_HANDLER = Client().handler


def _client(**defaults: Any) -> Client:
    client = Client(**HOST, **defaults)
    client.handler = _HANDLER
    return client


def _dob(iso: str) -> dict[str, str]:
    year, month, day = iso.split("-")
    return {"day": str(int(day)), "month": str(int(month)), "year": year}


def _patient(item: dict) -> Client:
    return _client(HTTP_X_FORWARDED_FOR=item["ip"])


def _check[ResponseT: HttpResponseBase](response: ResponseT, *statuses: int) -> ResponseT:
    if response.status_code not in statuses:
        # getattr: django-stubs types the test client's responses as HttpResponseBase, which has
        # no `content` (a streaming response has none).
        content = getattr(response, "content", b"")
        raise RuntimeError(f"HTTP {response.status_code}, expected {statuses}: {content[:300]!r}")
    return response


def profile_scenarios(*, manifest: Manifest, requests: int = 200) -> int:
    plan = make_plan(requests=max(requests / 600, 0.01))
    out = BENCH_DIR / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    opened = plan["open"][:requests]
    patients = [(item, _patient(item)) for item in opened]
    staff = []
    for account in plan["staff"]:
        client = _client()
        _check(client.post("/accounts/login/", account), 302)
        staff.append(client)

    def each[Item](items: list[Item], request: Callable[[Item], object]) -> Callable[[], list[object]]:
        return lambda: [request(item) for item in items]

    scenarios = {
        "a_open": each(patients, lambda p: _check(p[1].get(f"/b/{p[0]['token']}"), 200)),
        "a_dob": each(patients, lambda p: _check(p[1].post(f"/b/{p[0]['token']}", _dob(p[0]["dob"])), 302)),
        "b_times": each(patients, lambda p: _check(p[1].get(f"/b/{p[0]['token']}/times"), 200)),
        "e_search": each(
            plan["search"][:requests],
            lambda s: _check(
                staff[s["staff"]].get("/messages/new/patients/", {"q": s["q"]}, headers={"HX-Request": "true"}), 200
            ),
        ),
        "f_send": each(plan["send"][:requests], lambda s: _check(_send(staff[s["staff"]], s), 302)),
    }
    bookers = []
    for item in plan["book"][:requests]:
        client = _patient(item)
        _check(client.post(f"/b/{item['token']}", _dob(item["dob"])), 302)
        bookers.append((item, client))
    scenarios["c_book"] = each(
        bookers, lambda b: _check(b[1].post(f"/b/{b[0]['token']}/confirm", {"slot": b[0]["slot"]}), 302)
    )
    order = ["a_open", "a_dob", "b_times", "c_book", "e_search", "f_send"]
    for name in order:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        scenarios[name]()
        profiler.stop()
        (out / f"{name}.txt").write_text(profiler.output_text(unicode=True, show_all=False))
        (out / f"{name}.html").write_text(profiler.output_html())
        print(f"\n===== {name} =====")
        print(profiler.output_text(unicode=True, show_all=False)[:6000])
    print(f"Profiles in {out}.")
    return 0


def _send(client: Client, item: dict) -> HttpResponseBase:
    return client.post("/messages/new/", send_form(item))
