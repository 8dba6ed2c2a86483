"""The load generator: `python -m bench.load PLAN RESULTS --base-url http://127.0.0.1:PORT`.

Its own process, with no Django in it: plain HTTP/1.1 from the standard library, one new
connection per request (gunicorn's sync workers close each one), cookies and CSRF handled as a
browser would (the csrftoken cookie's value posted as csrfmiddlewaretoken), each simulated
patient with its own session and its own address in X-Forwarded-For. Every scenario runs a
fixed number of requests with a fixed number of clients at once (closed loop), after a few
unrecorded warm-up requests, and stops by itself; only 127.0.0.1 is ever contacted.

Latency is measured from sending the request to reading the whole response. The server's own
view of each request comes back in X-Query-Count and Server-Timing (bench/middleware.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

REQUEST_TIMEOUT = 60
TAKEN = b"just been taken"

LABELS = {
    "floor": "Floor: unknown link, 404 page, no SQL",
    "a_open": "(a) Open link (GET /b/&lt;token&gt;)",
    "a_dob": "(a) Date of birth (POST, correct)",
    "b_times": "(b) Times page (the first page and its first day)",
    "c_book": "(c) Book, uncontended (POST)",
    "d_race": "(d) 200 clients racing for 20 slots (POST)",
    "e_search": "(e) Staff patient search (htmx)",
    "f_send": "(f) Send message with link (POST)",
    "h_change": "(h) Change appointment (POST)",
    "g_any_first": "(g) 20 clinicians, any clinician: first times page",
    "g_any_day": "(g) 20 clinicians, any clinician: a day's times",
    "g_one_first": "(g) 20 clinicians, one practitioner: first times page",
    "g_one_day": "(g) 20 clinicians, one practitioner: a day's times",
}
DAY_LINK = re.compile(rb'/times\?day=([0-9-]{10})"')


# --- Statistics -------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least p% of values at or below it.

    Always a value that was observed; p99 of 100 values is the 99th smallest.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[rank - 1]


@dataclass
class Sample:
    status: int
    ms: float
    queries: int | None
    app_ms: float | None
    db_ms: float | None
    size: int = 0


@dataclass
class Phase:
    name: str
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    expected: tuple[int, ...] = (200,)
    extra: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)

    def summary(self) -> dict:
        latencies = [sample.ms for sample in self.samples]
        queries = [sample.queries for sample in self.samples if sample.queries is not None]
        app = [sample.app_ms for sample in self.samples if sample.app_ms is not None]
        db = [sample.db_ms for sample in self.samples if sample.db_ms is not None]
        statuses = Counter(str(sample.status) for sample in self.samples)
        result = {
            "label": LABELS.get(self.name, self.name),
            "count": len(self.samples),
            "seconds": round(self.seconds, 3),
            "rps": round(len(self.samples) / self.seconds, 1) if self.seconds else 0.0,
            "statuses": dict(sorted(statuses.items())),
            "unexpected": sum(1 for sample in self.samples if sample.status not in self.expected),
            "server_errors": sum(1 for sample in self.samples if sample.status >= 500),
        }
        if latencies:
            result.update(
                p50=round(percentile(latencies, 50), 2),
                p95=round(percentile(latencies, 95), 2),
                p99=round(percentile(latencies, 99), 2),
                max=round(max(latencies), 2),
                mean=round(sum(latencies) / len(latencies), 2),
            )
        if queries:
            result.update(queries_min=min(queries), queries_max=max(queries))
        if self.samples:
            result.update(bytes_max=max(sample.size for sample in self.samples))
        if app:
            result.update(app_p50=round(percentile(app, 50), 2), app_p99=round(percentile(app, 99), 2))
        if db:
            result.update(db_p50=round(percentile(db, 50), 2), db_p99=round(percentile(db, 99), 2))
        result.update(self.extra)
        return result


# --- HTTP -------------------------------------------------------------------------------------

_SERVER_TIMING = re.compile(r"(\w+);dur=([0-9.]+)")


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    ms: float

    def sample(self) -> Sample:
        timing = dict(_SERVER_TIMING.findall(self.headers.get("Server-Timing", "")))
        queries = self.headers.get("X-Query-Count")
        return Sample(
            status=self.status,
            ms=self.ms,
            queries=int(queries) if queries is not None else None,
            app_ms=float(timing["app"]) if "app" in timing else None,
            db_ms=float(timing["db"]) if "db" in timing else None,
            size=len(self.body),
        )


class Client:
    """One browser: its cookies, its address; a new connection per request."""

    def __init__(self, base_url: str, *, address: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None:
            raise ValueError(f"{base_url!r} names no host")
        self.host, self.port = parts.hostname, parts.port or 80
        self.address = address
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, data: dict | None = None, headers: dict | None = None) -> Response:
        body = urlencode(data) if data is not None else None
        sent = {"Host": f"{self.host}:{self.port}", "User-Agent": "bench-load/1", "Accept": "text/html"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        if self.address:
            sent["X-Forwarded-For"] = self.address
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        try:
            start = time.perf_counter()
            connection.request(method, path, body, sent)
            response = connection.getresponse()
            content = response.read()
            elapsed = (time.perf_counter() - start) * 1000
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Response(response.status, response.headers, content, elapsed)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, data: dict, **kwargs: Any) -> Response:
        return self.request("POST", path, {**data, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}, **kwargs)


def _dob(iso: str) -> dict[str, str]:
    year, month, day = iso.split("-")
    return {"day": str(int(day)), "month": str(int(month)), "year": year}


def _expect(response: Response, statuses: tuple[int, ...], what: str) -> Response:
    if response.status not in statuses:
        raise RuntimeError(f"{what}: HTTP {response.status}, expected {statuses}: {response.body[:300]!r}")
    return response


# --- Running phases ---------------------------------------------------------------------------


type Record = Callable[[Response], None]


def run_phase[Item](
    phase: Phase, items: list[Item], work: Callable[[Item, Record], None], *, concurrency: int, warmup: int = 0
) -> Phase:
    """work(item, record) for each item, `concurrency` at once; the first `warmup` aren't recorded."""

    def ignore(_response: Response) -> None:
        pass

    def record(response: Response) -> None:
        phase.add(response.sample())

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda item: work(item, ignore), items[:warmup]))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda item: work(item, record), items[warmup:]))
    phase.seconds = time.perf_counter() - started
    return phase


def run(plan: dict, *, base_url: str, concurrency: int, log: Callable[[str], None] = print) -> dict:
    warmup = plan["warmup"]
    phases: dict[str, Phase] = {}

    def client(address: str | None = None) -> Client:
        return Client(base_url, address=address)

    # Floor: what any request costs here (gunicorn, Django's middleware, a template).
    log("floor: unknown links")
    phases["floor"] = run_phase(
        Phase("floor", expected=(404,)),
        plan["floor"],
        lambda path, record: record(client().get(path)),
        concurrency=concurrency,
        warmup=warmup,
    )

    # (a) and (b): a patient opens the link, gives their date of birth, looks at two weeks of times.
    patients = [(item, client(item["ip"])) for item in plan["open"]]
    log(f"(a) open link: {len(patients) - warmup} patients")
    phases["a_open"] = run_phase(
        Phase("a_open"),
        patients,
        lambda pair, record: record(_expect(pair[1].get(f"/b/{pair[0]['token']}"), (200,), "open link")),
        concurrency=concurrency,
        warmup=warmup,
    )
    log("(a) date of birth")
    phases["a_dob"] = run_phase(
        Phase("a_dob", expected=(302,)),
        patients,
        lambda pair, record: record(
            _expect(pair[1].post(f"/b/{pair[0]['token']}", _dob(pair[0]["dob"])), (302,), "date of birth")
        ),
        concurrency=concurrency,
        warmup=warmup,
    )

    def times(pair: tuple[dict, Client], record: Record) -> None:
        token = pair[0]["token"]
        first = _expect(pair[1].get(f"/b/{token}/times"), (200,), "times")
        record(first)
        # Many times: the days first, then a day's page; few: one page, asked for again.
        day = DAY_LINK.search(first.body)
        query = f"?day={day.group(1).decode()}" if day else ""
        record(_expect(pair[1].get(f"/b/{token}/times{query}"), (200,), "times, a day"))

    log("(b) times page")
    phases["b_times"] = run_phase(Phase("b_times"), patients, times, concurrency=concurrency, warmup=warmup)

    # (c) Each patient books a different free time: no contention.
    def verified(item: dict) -> Client:
        patient = client(item["ip"])
        _expect(patient.get(f"/b/{item['token']}"), (200,), "open link")
        _expect(patient.post(f"/b/{item['token']}", _dob(item["dob"])), (302,), "date of birth")
        _expect(patient.get(f"/b/{item['token']}/confirm?slot={item['slot']}"), (200,), "confirm page")
        return patient

    log(f"(c) book, uncontended: {len(plan['book']) - warmup} patients (getting ready)")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        bookers = list(zip(plan["book"], pool.map(verified, plan["book"]), strict=True))
    log("(c) book, uncontended")
    phases["c_book"] = run_phase(
        Phase("c_book", expected=(302,)),
        bookers,
        lambda pair, record: record(
            _expect(pair[1].post(f"/b/{pair[0]['token']}/confirm", {"slot": pair[0]["slot"]}), (302,), "book")
        ),
        concurrency=concurrency,
        warmup=warmup,
    )

    log(f"(d) race: {len(plan['race']['clients'])} clients for {len(plan['race']['slots'])} slots (getting ready)")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        racers = list(zip(plan["race"]["clients"], pool.map(verified, plan["race"]["clients"]), strict=True))
    log("(d) race")
    phases["d_race"] = race(racers)

    # (g) The many-clinicians clinic: the first page and a day's page, for any clinician and one.
    clinic = plan.get("clinic")
    if clinic:
        for kind in ("any", "one"):
            group = clinic[kind]
            log(f"(g) many clinicians, {kind}: {len(group['patients'])} patients (getting ready)")
            browsers = []
            for item in group["patients"]:
                patient = client(item["ip"])
                _expect(patient.get(f"/b/{item['token']}"), (200,), "open link")  # the CSRF cookie
                _expect(patient.post(f"/b/{item['token']}", _dob(item["dob"])), (302,), "date of birth")
                browsers.append((item["token"], patient))
            rounds = [browsers[n % len(browsers)] for n in range(clinic["requests"])]
            for page, query in (("first", ""), ("day", f"?day={group['day']}")):
                name = f"g_{kind}_{page}"
                log(LABELS[name])
                phases[name] = run_phase(
                    Phase(name), rounds, _clinic_page(query), concurrency=concurrency, warmup=warmup
                )

    # (e) and (f): reception staff, one signed-in browser per practice.
    log("(e) staff sign in")
    staff = [sign_in(client("127.0.0.1"), account) for account in plan["staff"]]
    log(f"(e) patient search: {len(plan['search']) - warmup} searches")
    phases["e_search"] = run_phase(
        Phase("e_search"),
        plan["search"],
        lambda item, record: record(
            _expect(
                staff[item["staff"]].get(
                    f"/messages/new/patients/?{urlencode({'q': item['q']})}", headers={"HX-Request": "true"}
                ),
                (200,),
                "search",
            )
        ),
        concurrency=concurrency,
        warmup=warmup,
    )
    log(f"(f) send message: {len(plan['send']) - warmup} messages")
    phases["f_send"] = run_phase(
        Phase("f_send", expected=(302,)),
        plan["send"],
        lambda item, record: record(_expect(send(staff[item["staff"]], item), (302,), "send")),
        concurrency=concurrency,
        warmup=warmup,
    )
    if "change" in plan:
        phases["h_change"] = change_appointments(
            plan["change"], client, concurrency=concurrency, warmup=warmup, log=log
        )
    return {name: phase.summary() for name, phase in phases.items()}


def change_appointments(
    items: list[dict],
    client: Callable[[str | None], Client],
    *,
    concurrency: int,
    warmup: int,
    log: Callable[[str], None],
) -> Phase:
    """(h) Patients who booked move their appointment to another time: the change's POST is measured."""

    def ready(item: dict) -> Client:
        patient = client(item["ip"])
        token = item["token"]
        _expect(patient.get(f"/b/{token}"), (200,), "open booked link")
        _expect(patient.post(f"/b/{token}", _dob(item["dob"])), (302,), "date of birth")
        _expect(patient.get(f"/b/{token}/change/confirm?slot={item['slot']}"), (200,), "change confirm page")
        return patient

    log(f"(h) change appointment: {len(items) - warmup} patients (getting ready)")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        changers = list(zip(items, pool.map(ready, items), strict=True))
    log("(h) change appointment")
    return run_phase(
        Phase("h_change", expected=(302,)),
        changers,
        lambda pair, record: record(
            _expect(
                pair[1].post(
                    f"/b/{pair[0]['token']}/change/confirm",
                    {"appointment": pair[0]["appointment"], "slot": pair[0]["slot"]},
                ),
                (302,),
                "change",
            )
        ),
        concurrency=concurrency,
        warmup=warmup,
    )


def _clinic_page(query: str) -> Callable[[tuple[str, Client], Record], None]:
    """One look at a clinic link's times page (`query`: "" or "?day=...")."""

    def look(pair: tuple[str, Client], record: Record) -> None:
        record(_expect(pair[1].get(f"/b/{pair[0]}/times{query}"), (200,), "clinic times"))

    return look


def race(racers: list[tuple[dict, Client]]) -> Phase:
    """Every client posts its booking at the same moment: one thread each, released by a barrier."""
    phase = Phase("d_race", expected=(302, 409))
    barrier = threading.Barrier(len(racers))
    # None where a thread never finished: counted below as a client error, like an exception.
    responses: list[Response | Exception | None] = [None] * len(racers)

    def book(index: int) -> None:
        item, patient = racers[index]
        try:
            barrier.wait(timeout=REQUEST_TIMEOUT)
            responses[index] = patient.post(f"/b/{item['token']}/confirm", {"slot": item["slot"]})
        except Exception as error:  # counted below as an error, never lost
            responses[index] = error

    threads = [threading.Thread(target=book, args=(n,)) for n in range(len(racers))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT * 2)
    phase.seconds = time.perf_counter() - started
    failures = [response for response in responses if not isinstance(response, Response)]
    for response in responses:
        if isinstance(response, Response):
            phase.add(response.sample())
    booked = [
        r for r in responses if isinstance(r, Response) and r.status == 302 and "/booked" in r.headers["Location"]
    ]
    taken = [r for r in responses if isinstance(r, Response) and r.status == 409 and TAKEN in r.body]
    phase.extra = {
        "bookings": len(booked),
        "taken": len(taken),
        "client_errors": len(failures),
        "slots": len({racer[0]["slot"] for racer in racers}),
    }
    return phase


def sign_in(staff: Client, account: dict) -> Client:
    _expect(staff.get("/accounts/login/"), (200,), "login page")
    _expect(staff.post("/accounts/login/", account), (302,), f"sign in as {account['username']}")
    return staff


def send_form(item: dict) -> dict[str, str]:
    """The compose form as staff submit it: an SMS with a flu-clinic link (the profiler posts it too)."""
    import uuid

    return {
        "patient": item["patient"],
        "channel": "sms",
        "body": "Hello {{Patient First Name}}, book your flu vaccination here: {{Appointment Link}}",
        "appointment_type": item["appointment_type"],
        "location": item["location"],
        "practitioner": "",
        "link_expiry": "14d",
        "link_added": "True",
        "idempotency_key": str(uuid.uuid4()),
        "action": "send",
    }


def send(staff: Client, item: dict) -> Response:
    return staff.post("/messages/new/", send_form(item))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", help="the plan file (bench/plan.py writes it)")
    parser.add_argument("results", help="where to write the results (JSON)")
    parser.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    if urlsplit(args.base_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the load generator only talks to this machine (127.0.0.1)")
    with open(args.plan) as plan_file:
        plan = json.load(plan_file)
    started = time.time()
    scenarios = run(plan, base_url=args.base_url, concurrency=args.concurrency,
                    log=lambda text: print(f"  {text}", flush=True))  # fmt: skip
    with open(args.results, "w") as out:
        json.dump(
            {"started_at": started, "seconds": round(time.time() - started, 1), "concurrency": args.concurrency,
             "scenarios": scenarios},
            out,
            indent=2,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
