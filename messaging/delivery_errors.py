"""What a backend returns, and what it raises when a message didn't go."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    provider_status: str


class DeliveryError(Exception):
    """The provider didn't take the message.

    permanent: trying again won't help (a bad number, an opted-out patient); the message fails
    now with `reason`, which staff read. Otherwise it is tried again later.
    """

    def __init__(self, reason: str, *, permanent: bool, code: str = "", opted_out: bool = False) -> None:
        self.reason = reason
        self.permanent = permanent
        self.code = code
        self.opted_out = opted_out
        super().__init__(reason)
