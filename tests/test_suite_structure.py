"""The suite's own shape: each fixture is defined once, and test files don't import each other.

A fixture defined again in a test file, a class or a folder's conftest.py quietly wins over the
shared one for the tests beside it, so one name comes to mean two things and a test reads as
testing one thing while it tests another. Importing from another test file does the same more
quietly still: the fixtures it imports are defined there a second time. Shared fixtures live in
tests/conftest.py (or a folder's conftest.py), the scenarios they build in tests/scenarios.py.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

TESTS = Path(__file__).resolve().parent


@cache  # parsed once for the three tests
def modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in sorted(TESTS.rglob("*.py"))]


def fixture_name(function: ast.FunctionDef | ast.AsyncFunctionDef, decorator: ast.expr) -> str | None:
    """The name `decorator` registers `function` under as a fixture, or None if it isn't one."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if ast.unparse(target) not in ("pytest.fixture", "fixture"):
        return None
    if isinstance(decorator, ast.Call):
        for keyword in decorator.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                return str(keyword.value.value)
    return function.name


def fixture_definitions() -> dict[str, list[str]]:
    """Every fixture defined under tests/, by name, with where each definition is."""
    found: dict[str, list[str]] = defaultdict(list)
    for path, module in modules():
        for node in ast.walk(module):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    if name := fixture_name(node, decorator):
                        found[name].append(f"{path.relative_to(TESTS.parent)}:{node.lineno}")
    return found


def imported_modules(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module]
    return []


def test_no_fixture_is_defined_twice():
    twice = {name: places for name, places in fixture_definitions().items() if len(places) > 1}
    assert twice == {}, "give each its own name that says how they differ, or share one"


def test_the_scan_finds_fixtures_wherever_they_are_defined():
    # So the test above can't pass because the scan found nothing: these are defined in
    # tests/conftest.py, a folder's conftest.py, a test file, and a test class.
    assert {"practice", "link", "browser", "data_set", "mailgun_email"} <= set(fixture_definitions())


def test_no_test_file_imports_from_another():
    imports = [
        f"{path.relative_to(TESTS.parent)}:{node.lineno} imports {name}"
        for path, module in modules()
        for node in ast.walk(module)
        for name in imported_modules(node)
        if name.rpartition(".")[2].startswith("test_")
    ]
    assert imports == [], "move what they share to a conftest.py, tests/scenarios.py or a helper module"
