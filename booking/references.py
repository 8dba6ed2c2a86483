"""Short public references made with hashids: never secrets, just short and non-sequential.

A booking reference is what a patient reads out on the phone, so the alphabet leaves out the
characters people confuse (0/O, 1/I/L) and uses capitals only.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from hashids import Hashids

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MIN_LENGTH = 6


@lru_cache(maxsize=8)
def _hashids(salt: str) -> Hashids:
    return Hashids(salt=salt, min_length=MIN_LENGTH, alphabet=ALPHABET)


def encode_reference(pk: int, *, namespace: str = "") -> str:
    """The short reference for a primary key; `namespace` keeps kinds of object apart."""
    return _hashids(settings.HASHIDS_SALT + namespace).encode(pk)


def decode_reference(reference: str, *, namespace: str = "") -> int | None:
    """The primary key for a reference, or None for anything that isn't one of ours."""
    cleaned = (reference or "").strip().upper().replace(" ", "").replace("-", "")
    if not cleaned or len(cleaned) > 32:
        return None
    decoded = _hashids(settings.HASHIDS_SALT + namespace).decode(cleaned)
    if len(decoded) != 1:
        return None
    # Reject non-canonical spellings that happen to decode, so each id has one reference.
    if encode_reference(decoded[0], namespace=namespace) != cleaned:
        return None
    return decoded[0]
