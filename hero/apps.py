from __future__ import annotations

from django.apps import AppConfig


class HeroConfig(AppConfig):
    """The project as an app: its landing page, the demo data and its own commands
    (`embedded_postgres`, `seed_demo`)."""

    name = "hero"
    verbose_name = "Self-booking links"

    def ready(self) -> None:
        # Connects the receiver that starts a staff session's clocks at sign-in.
        from hero import sessions  # noqa: F401
