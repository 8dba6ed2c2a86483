"""What a transport returns when the provider took a message, and the one error it raises when not.

The error drives what delivery does next (messaging/delivery.py): a permanent one fails the
message at once with its reason, anything else is tried again later with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    provider_status: str


class TransportError(Exception):
    """The provider didn't take the message.

    permanent: trying again won't help (a bad number, an opted-out patient); the message fails
    now with `reason`, which staff read. Otherwise it is tried again later. code: the
    provider's own error code, kept in the message's history. opted_out: the provider says the
    number opted out, so the patient's record should say so too.
    """

    def __init__(self, reason: str, *, permanent: bool, code: str = "", opted_out: bool = False) -> None:
        self.reason = reason
        self.permanent = permanent
        self.code = code
        self.opted_out = opted_out
        super().__init__(reason)


def http_status_is_transient(status: int | None) -> bool:
    """Worth another try: no answer at all, too many requests, or the provider's own fault."""
    return status is None or status == 429 or status >= 500
