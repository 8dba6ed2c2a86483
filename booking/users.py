"""Who acts: the type of `request.user`, for every `user` and `actor` the project passes around.

The project keeps Django's own user model (no AUTH_USER_MODEL setting), so a signed-in person
is a `User`; a visitor who isn't signed in is an `AnonymousUser`. django-stubs types
`request.user` as exactly this union, so a view can hand it on without a cast.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

type AnyUser = User | AnonymousUser
