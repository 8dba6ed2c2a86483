"""Staff pages about messages, by family: compose.py, messages.py, templates.py, outbox.py (development)."""
