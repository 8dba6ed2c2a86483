"""The one secret kept reversibly: a link's token, encrypted while a later message may carry it.

The database keeps every link's SHA-256 digest (booking/models.py, `hash_token`), which can
check a token but never give it back. A message that goes out later (a delivery retry) needs
the token itself, so the link also holds it encrypted (`BookingLink.token_encrypted`) with a
key from the environment, never from the database: a copy of the database alone can't open a
link. The copy is wiped once the link can't book any more (booking/links.py,
`booking_links_wipe_unusable`).

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) through MultiFernet:
settings.LINK_ENCRYPTION_KEYS lists the keys, the first encrypts and every one decrypts, so a
key is rotated by putting the new one first and dropping the old one once the links it
encrypted have expired (docs/security.md).
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("LINK_ENCRYPTION_KEYS is not set: links can't be kept for a later message.")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def link_cipher() -> MultiFernet:
    """The configured keys; raises ImproperlyConfigured when there are none (or one isn't a Fernet key)."""
    # Keyed by the setting's value, so a changed setting (a test, a rotation) builds a new one.
    return _cipher(tuple(settings.LINK_ENCRYPTION_KEYS))


def token_encrypt(token: str) -> str:
    return link_cipher().encrypt(token.encode()).decode()


def token_decrypt(encrypted: str) -> str | None:
    """The token, or None when there is none or no configured key opens it (a key dropped too early)."""
    if not encrypted:
        return None
    try:
        return link_cipher().decrypt(encrypted.encode()).decode()
    except InvalidToken:
        return None
