"""A fake Twilio REST API on 127.0.0.1, so the real twilio SDK runs against it in tests.

It answers POST /2010-04-01/Accounts/<sid>/Messages.json like Twilio does. Tell it what to
do with the next requests (`then(...)`), or by default (`always(...)`):
  Accept()              201 with a new SM… sid (the message is "accepted": counted as sent)
  Refuse(code)          400 with a Twilio error code (21211, 21614, 21610...)
  Answer(status)        an HTTP error with no Twilio code (500, 503, 429)
  Hang()                no answer until `release()` (or the client gives up)
  AcceptThenHang()      accepted, but the answer never comes (until `release()`)
  Slow(seconds)         accept after a pause
It records every request, and which were accepted, for the tests to count.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from base64 import b64decode
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.fakes.server import LocalServer

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "fake-twilio-auth-token"

ERROR_MESSAGES = {
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
}


@dataclass(frozen=True)
class Accept:
    pass


@dataclass(frozen=True)
class Refuse:
    code: int
    status: int = 400


@dataclass(frozen=True)
class Answer:
    status: int


@dataclass(frozen=True)
class Hang:
    pass


@dataclass(frozen=True)
class AcceptThenHang:
    """Twilio took the message, but its answer never comes back (the worker dies waiting)."""


@dataclass(frozen=True)
class Slow:
    seconds: float


@dataclass
class Request:
    path: str
    form: dict[str, str]
    authorised: bool
    outcome: str = ""
    sid: str = ""


@dataclass
class FakeTwilio(LocalServer):
    requests: list[Request] = field(default_factory=list)
    _script: deque = field(default_factory=deque)
    _default: object = field(default_factory=Accept)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def stop(self) -> None:
        self._released.set()
        super().stop()

    def then(self, *behaviours) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def always(self, behaviour) -> None:
        with self._lock:
            self._default = behaviour

    def release(self) -> None:
        self._released.set()

    def accepted(self) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.outcome == "accepted"]

    def accepted_to(self) -> list[str]:
        return [request.form["To"] for request in self.accepted()]

    def wait_for_requests(self, count: int, timeout: float = 10) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)}")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {key: values[0] for key, values in parse_qs(handler.rfile.read(length).decode()).items()}
        authorised = self._authorised(handler.headers.get("Authorization", ""))
        request = Request(path=handler.path, form=form, authorised=authorised)
        with self._lock:
            behaviour = self._script.popleft() if self._script else self._default
            self.requests.append(request)
        with self._arrived:
            self._arrived.notify_all()
        if not authorised:
            self._reply(handler, request, 401, {"code": 20003, "message": "Authenticate", "status": 401}, "refused")
        elif not handler.path.endswith(f"/Accounts/{ACCOUNT_SID}/Messages.json"):
            self._reply(handler, request, 404, {"code": 20404, "message": "Not found", "status": 404}, "refused")
        elif isinstance(behaviour, Hang):
            self._released.wait(timeout=60)
            request.outcome = "hung"
        elif isinstance(behaviour, AcceptThenHang):
            with self._lock:
                request.sid = "SM" + secrets.token_hex(16)
                request.outcome = "accepted"
            self._released.wait(timeout=60)
        elif isinstance(behaviour, Refuse):
            body = {
                "code": behaviour.code,
                "message": ERROR_MESSAGES.get(behaviour.code, "Refused"),
                "more_info": f"https://www.twilio.com/docs/errors/{behaviour.code}",
                "status": behaviour.status,
            }
            self._reply(handler, request, behaviour.status, body, "refused")
        elif isinstance(behaviour, Answer):
            self._reply(
                handler, request, behaviour.status, {"message": "Server error", "status": behaviour.status}, "error"
            )
        else:
            if isinstance(behaviour, Slow):
                time.sleep(behaviour.seconds)
            request.sid = "SM" + secrets.token_hex(16)
            body = {
                "sid": request.sid,
                "account_sid": ACCOUNT_SID,
                "to": form.get("To"),
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "accepted" if form.get("MessagingServiceSid") else "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{request.sid}.json",
            }
            self._reply(handler, request, 201, body, "accepted")

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        return b64decode(header.removeprefix("Basic ")).decode() == f"{ACCOUNT_SID}:{AUTH_TOKEN}"

    def _reply(self, handler, request: Request, status: int, body: dict, outcome: str) -> None:
        # Decided before answering, as at Twilio: a message it accepted goes out even when the
        # client never reads the answer (timed out, or killed).
        with self._lock:
            request.outcome = outcome
        payload = json.dumps(body).encode()
        with contextlib.suppress(OSError):  # the client may have given up waiting
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
