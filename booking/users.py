"""Who acts: the type of `request.user`, for every `user` and `actor` the project passes around,
and the request of a view behind `@login_required`, whose user is known to be signed in.

The project keeps Django's own user model (no AUTH_USER_MODEL setting), so a signed-in person
is a `User`; a visitor who isn't signed in is an `AnonymousUser`. django-stubs types
`request.user` as exactly this union, so a view can hand it on without a cast.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

type AnyUser = User | AnonymousUser


class SignedInRequest(HttpRequest):
    """The type of a request in a `@login_required` view: its user is a `User`, never anonymous.

    Only an annotation (django-stubs' recommended way): `login_required` has already sent
    anyone else to the sign-in page, so a view typed with it may hand `request.user` to
    functions that record who acted.
    """

    user: User  # narrows HttpRequest's User | AnonymousUser
