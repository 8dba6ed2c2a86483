"""Take working links out of the messages already stored.

Until now `Message.body` held the text as sent, link included. Each message with a link gets
the link in its body replaced by the placeholder staff now read (messaging/tokens.py,
LINK_PLACEHOLDER); the URL is found by its token's digest, so only the message's own link is
touched, whatever PUBLIC_BASE_URL was when it went.

Where the token is kept, encrypted on its BookingLink: only for a message that hasn't finished
delivering (queued or sending, so a retry still needs the link) whose link can still book
(active or locked, not expired), and only when LINK_ENCRYPTION_KEYS is set. Every other copy
is dropped: a delivered message's patient already has their link, and a link that can't book
is worth nothing to keep. Without a key an undelivered message loses its link, and delivery
then fails it with a reason staff can read ("Send a new one") rather than send a text with a
hidden link: keeping a working token in clear to avoid that is what this migration removes.
Set the key before migrating to keep them.

Not reversible in substance: going back leaves the placeholders (the clear links are gone).
"""

from __future__ import annotations

import hashlib
import re

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone

PLACEHOLDER = "[link to book: hidden]"  # messaging/tokens.py LINK_PLACEHOLDER, frozen here
# A URL ending in /b/<token>: the whole run of non-space characters, so the host goes too.
LINK_URL = re.compile(r"\S*/b/([A-Za-z0-9_-]{16,64})")
BATCH = 500


def hide_links(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Message = apps.get_model("messaging", "Message")
    BookingLink = apps.get_model("booking", "BookingLink")
    keys = [key for key in getattr(settings, "LINK_ENCRYPTION_KEYS", []) if key]
    cipher = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None
    now = timezone.now()
    messages = Message.objects.filter(booking_link__isnull=False).select_related("booking_link")
    changed_messages = []
    kept_links = []
    for message in messages.iterator(chunk_size=BATCH):
        link = message.booking_link
        token = None

        def replace(match: re.Match[str], link=link) -> str:
            nonlocal token
            if hashlib.sha256(match.group(1).encode()).hexdigest() != link.token_digest:
                return match.group(0)
            token = match.group(1)
            return PLACEHOLDER

        body = LINK_URL.sub(replace, message.body)
        if token is None:
            continue
        message.body = body
        changed_messages.append(message)
        usable = link.status in ("active", "locked") and (link.expires_at is None or link.expires_at > now)
        if cipher is not None and message.status in ("queued", "sending") and usable:
            link.token_encrypted = cipher.encrypt(token.encode()).decode()
            kept_links.append(link)
        if len(changed_messages) >= BATCH:
            Message.objects.bulk_update(changed_messages, ["body"])
            changed_messages = []
    Message.objects.bulk_update(changed_messages, ["body"], batch_size=BATCH)
    BookingLink.objects.bulk_update(kept_links, ["token_encrypted"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0010_tokens_token_encrypted"),
        ("messaging", "0005_strand_template_name_printable"),
    ]

    operations = [migrations.RunPython(hide_links, migrations.RunPython.noop, elidable=True)]
