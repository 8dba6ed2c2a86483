from __future__ import annotations

from django.db.backends.postgresql import base as postgresql

from hero import embedded_postgres


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        # Starting the server here rather than in settings keeps `import hero.settings` free of
        # side effects: only code that really talks to the database pays for the start-up.
        # NAME is None when Django connects to the maintenance database (to create test ones).
        socket_dir = embedded_postgres.ensure_running(database=self.settings_dict["NAME"] or "postgres")
        self.settings_dict["HOST"] = socket_dir
        params = super().get_connection_params()
        params["host"] = socket_dir
        return params
