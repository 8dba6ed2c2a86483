"""docker-compose.yml publishes no secret: each one must be set, or compose refuses to start.

Read as text (no YAML parser is installed): every `NAME: value` line and every `${NAME...}`
reference is checked, so a secret added later with a fallback fails here too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"

# Names that hold a secret (or, for HASHIDS_SALT, a value each deployment must choose itself).
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|(^|_)KEY(S)?($|_)|SALT|CREDENTIAL|PRIVATE", re.IGNORECASE)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+=])(?P<rest>[^}]*))?\}")
SETTING = re.compile(r"^\s*-?\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*[:=]\s*(?P<value>.*?)\s*$")
# user:password@ in a URL, with the password not a required reference.
URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")
REQUIRED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$")


def compose_problems(text: str) -> list[str]:
    """Each way `text` (a compose file) publishes a secret, as a sentence."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        for reference in REFERENCE.finditer(code):
            name, op, rest = reference["name"], reference["op"] or "", reference["rest"] or ""
            if SECRET_NAME.search(name) and op.endswith(("-", "=")) and rest.strip():
                problems.append(f"line {number}: {name} falls back to a published default")
        setting = SETTING.match(code)
        if setting and SECRET_NAME.search(setting["name"]):
            value = setting["value"].strip("\"'")
            if value and not REQUIRED.match(value) and not REFERENCE.fullmatch(value):
                problems.append(f"line {number}: {setting['name']} is written in the file")
        for url in URL_PASSWORD.finditer(code):
            if not REQUIRED.match(url["password"]):
                problems.append(f"line {number}: a URL carries a password written in the file")
    return problems


def test_the_compose_file_publishes_no_secret():
    assert compose_problems(COMPOSE.read_text()) == []


@pytest.mark.parametrize("name", ["SECRET_KEY", "HASHIDS_SALT", "POSTGRES_PASSWORD"])
def test_compose_refuses_to_start_without_each_secret(name):
    text = COMPOSE.read_text()
    assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), f"{name} should be ${{{name}:?...}}"
    assert not re.search(r"\$\{" + name + r"(:?-|\}|:?=)", text), f"{name} is used somewhere without :?"


@pytest.mark.parametrize(
    "line",
    [
        "    SECRET_KEY: ${SECRET_KEY:-compose-local-only-insecure-secret-key}",
        "    HASHIDS_SALT: ${HASHIDS_SALT-some-salt}",
        "      POSTGRES_PASSWORD: hero",
        "    DATABASE_URL: postgres://hero:hero@postgres:5432/hero",
        '    TOKEN_ENCRYPTION_KEYS: "abc="',
        "    - ANYMAIL_WEBHOOK_SECRET=user:password",
    ],
)
def test_the_check_catches_a_published_secret(line):
    assert compose_problems(line) != []


@pytest.mark.parametrize(
    "line",
    [
        "    SECRET_KEY: ${SECRET_KEY:?set SECRET_KEY in .env}",
        "    TWILIO_AUTH_TOKEN: ${TWILIO_AUTH_TOKEN:-}",
        "    DATABASE_URL: postgres://hero:${POSTGRES_PASSWORD:?set it}@postgres:5432/hero",
        '    SESSION_COOKIE_SECURE: "false"',
        "    # SECRET_KEY: a comment that mentions a default",
    ],
)
def test_the_check_allows_required_and_empty_ones(line):
    assert compose_problems(line) == []
