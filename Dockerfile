# syntax=docker/dockerfile:1
# Production image: gunicorn serving Django, static files built here and served by whitenoise.
# The same image runs the task worker (`python manage.py db_worker`); see docker-compose.yml
# and docs/deployment.md.

# --- Front-end assets: NHS.UK frontend compiled from its Sass, and htmx ------------------------
FROM node:20-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
# No package needs an install script: sass is pure JavaScript (its optional file watcher
# is for `sass --watch` only).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/ scripts/
COPY static/scss/ static/scss/
RUN npm run build

# --- The application ----------------------------------------------------------------------------
FROM python:3.13-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

# The same uv version the Makefile pins.
RUN pip install --no-cache-dir uv==0.13.8

WORKDIR /app

# Dependencies first, in their own layer, so a code change doesn't reinstall them.
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --locked --no-dev --no-install-project

COPY . .
RUN uv sync --locked --no-dev
COPY --from=assets /build/static/build/ static/build/

# Collect static files (hashed and compressed for whitenoise). Settings refuse to load without
# secrets when DEBUG is off, so the build gives throwaway ones; nothing connects to a database.
RUN DEBUG=false SECRET_KEY=build-only-not-a-secret HASHIDS_SALT=build-only PUBLIC_BASE_URL=http://build.invalid \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin app
USER app

EXPOSE 8000
# gunicorn reads its worker count from WEB_CONCURRENCY; exec form so it runs as PID 1 and
# receives the container's stop signal directly.
ENV WEB_CONCURRENCY=3
CMD ["gunicorn", "hero.wsgi:application", "--bind", "0.0.0.0:8000"]
