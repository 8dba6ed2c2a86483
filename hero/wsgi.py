"""WSGI entry point (gunicorn hero.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hero.settings")
application = get_wsgi_application()
