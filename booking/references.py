"""Short public references made with hashids: never secrets, just short and non-sequential.

A booking reference is what a patient reads out on the phone, so the alphabet leaves out the
characters people confuse (0/O, 1/I/L) and uses capitals only.

Each kind of object (patient, message, link, slot, appointment) has its own references, and
one kind's reference never decodes as another's. The kind is folded into the number hashids
encodes (`pk * KIND_SPACE + kind`), not into the salt: hashids reads only the first ~20
characters of its salt, so a namespace appended to a production-length salt was cut off and
every kind got the same reference for the same id. One salt for every kind, and hashids
decodes what it encodes, so two different numbers never share a reference: the kinds are
apart by construction, not by luck. The salt from settings is hashed down to a length hashids
reads in full, so every character of it counts.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from django.conf import settings
from hashids import Hashids

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MIN_LENGTH = 6

# Index in this tuple = the kind folded into the number. Append new kinds at the end (an
# existing kind's index is part of every reference already given out); KIND_SPACE leaves room.
KINDS = ("", "patient", "message", "link", "slot", "appointment", "campaign")
KIND_SPACE = 8
# Any other namespace (none in the product) shares this one index: apart from every kind
# above, though not from each other.
OTHER_KIND = KIND_SPACE - 1
# hashids uses at most len(alphabet) - guards - separators (about 20) salt characters.
SALT_LENGTH = 16


@lru_cache(maxsize=8)
def _hashids(salt: str) -> Hashids:
    digest = hashlib.sha256(salt.encode()).digest()
    return Hashids(salt=base64.b32encode(digest).decode()[:SALT_LENGTH], min_length=MIN_LENGTH, alphabet=ALPHABET)


def _kind(namespace: str) -> int:
    return KINDS.index(namespace) if namespace in KINDS else OTHER_KIND


def encode_reference(pk: int, *, namespace: str = "") -> str:
    """The short reference for a primary key; `namespace` names the kind of object."""
    return _hashids(settings.HASHIDS_SALT).encode(pk * KIND_SPACE + _kind(namespace))


def decode_reference(reference: str, *, namespace: str = "") -> int | None:
    """The primary key for a reference of this kind, or None for anything that isn't one."""
    cleaned = (reference or "").strip().upper().replace(" ", "").replace("-", "")
    if not cleaned or len(cleaned) > 32:
        return None
    decoded = _hashids(settings.HASHIDS_SALT).decode(cleaned)
    if len(decoded) != 1:
        return None
    pk, kind = divmod(decoded[0], KIND_SPACE)
    if kind != _kind(namespace):
        return None
    # Reject non-canonical spellings that happen to decode, so each id has one reference.
    if encode_reference(pk, namespace=namespace) != cleaned:
        return None
    return pk
