"""A fake Postmark API on 127.0.0.1, so anymail's real Postmark backend runs in tests.

Accepts POST /email like Postmark (200 with a MessageID), or, when told: refuse the recipient
as inactive (422, ErrorCode 406: a hard bounce or spam complaint before), or fail (500).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler

from tests.fakes.server import LocalServer

SERVER_TOKEN = "fake-postmark-server-token"


class FakePostmark(LocalServer):
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.requests: list[dict] = []
        self._script: deque[str] = deque()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return super().url + "/"

    def then(self, *outcomes: str) -> None:
        """Outcomes for the next requests: "accept", "inactive" or "error"."""
        with self._lock:
            self._script.extend(outcomes)

    def mailers(self) -> dict:
        return {
            "default": {
                "BACKEND": "anymail.backends.postmark.EmailBackend",
                "OPTIONS": {"server_token": SERVER_TOKEN, "api_url": self.url},
            }
        }

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        payload = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        with self._lock:
            outcome = self._script.popleft() if self._script else "accept"
            self.requests.append(payload)
        if handler.headers.get("X-Postmark-Server-Token") != SERVER_TOKEN:
            status, body = 401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}
        elif outcome == "error":
            status, body = 500, {"ErrorCode": 500, "Message": "Internal server error"}
        elif outcome == "inactive":
            status, body = (
                422,
                {
                    "ErrorCode": 406,
                    "Message": "You tried to send to recipient(s) that have been marked as inactive.\n"
                    f"Found inactive addresses: {payload['To'].lower()}.\n"
                    "Inactive recipients are ones that have generated a hard bounce or a spam complaint. ",
                },
            )
        else:
            message_id = str(uuid.uuid4())
            with self._lock:
                self.sent.append({**payload, "MessageID": message_id})
            status, body = (
                200,
                {
                    "To": payload["To"],
                    "SubmittedAt": "2026-11-24T12:00:00.0000000Z",
                    "MessageID": message_id,
                    "ErrorCode": 0,
                    "Message": "OK",
                },
            )
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
