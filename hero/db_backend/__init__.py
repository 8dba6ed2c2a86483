"""PostgreSQL backend that starts the project's embedded server on first connection.

Used when DATABASE_URL is unset, so that a fresh machine runs the real database engine with
nothing to install. Everything else is Django's own PostgreSQL backend.
"""
