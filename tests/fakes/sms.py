"""An SMS backend that misbehaves on purpose, chosen with SMS_BACKEND="tests.fakes.sms.UnreliableSmsBackend".

What it does with a text is written in the text itself, as "case <name>", so real worker
processes (tests/messaging/test_delivery_never_strands.py) need no other channel to be told:

- ok: accepted.
- valueerror / keyerror / clienterror / timeouterror / requeststimeout: raises that error (a
  ValueError like Django's BadHeaderError, a KeyError, the Twilio client's own error, the
  built-in TimeoutError, requests' Timeout) on every try, or on the first `-N` tries only
  ("keyerror-1": the first try raises, the second is accepted).
- crash: the worker process dies on the spot (os._exit), as a killed worker would, with the
  message claimed and nothing recorded.
"""

from __future__ import annotations

import os
import re

import requests
from twilio.base.exceptions import TwilioRestException

from messaging.models import Message
from messaging.transports.errors import SendResult

CASE = re.compile(r"case ([a-z]+)(?:-(\d+))?")


def _error(kind: str) -> BaseException:
    match kind:
        case "valueerror":
            return ValueError("Header values can't contain newlines")
        case "keyerror":
            return KeyError("sender")
        case "clienterror":
            return TwilioRestException(400, "/2010-04-01/Accounts/AC/Messages.json", "Bad request", code=99999)
        case "timeouterror":
            return TimeoutError("timed out")
        case "requeststimeout":
            return requests.Timeout("read timed out")
    raise AssertionError(f"no such case: {kind}")


class UnreliableSmsBackend:
    name = "unreliable"

    def send(self, message: Message) -> SendResult:
        found = CASE.search(message.body)
        kind, tries = (found.group(1), found.group(2)) if found else ("ok", None)
        failing = tries is None or message.attempts <= int(tries)
        if kind == "crash" and failing:
            os._exit(1)
        if kind != "ok" and failing:
            raise _error(kind)
        return SendResult(provider_message_id=f"unreliable-{message.reference}", provider_status="queued")
