"""How messaging is put together: one module queues work, and no module imports in a circle."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
THE_ONE_THAT_ENQUEUES = ROOT / "messaging" / "tasks.py"
NOT_PROJECT_CODE = {"tests", "node_modules", "staticfiles"}


def project_sources() -> list[Path]:
    """Every Python file of the project's own code: not the tests, not .venv and other tools."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name not in NOT_PROJECT_CODE]
        found.extend(Path(folder) / name for name in files if name.endswith(".py"))
    return found


def enqueue_calls(path: Path) -> list[int]:
    """Lines that call `.enqueue(...)` (or `.aenqueue(...)`) on anything, lambdas and nested calls included."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("enqueue", "aenqueue")
    ]


def test_only_messaging_tasks_enqueues_work():
    sources = project_sources()
    assert THE_ONE_THAT_ENQUEUES in sources
    assert enqueue_calls(THE_ONE_THAT_ENQUEUES), "the scan finds nothing: it would pass by accident"
    elsewhere = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if path != THE_ONE_THAT_ENQUEUES and (lines := enqueue_calls(path))
    }
    assert elsewhere == {}, "queue work through messaging/tasks.py"


def test_messaging_imports_in_no_circle_not_even_inside_functions():
    # Imports inside functions count: moving an import into a function is how a circle hides.
    graph = grimp.build_graph("messaging", exclude_type_checking_imports=True, cache_dir=None)
    assert "messaging.tasks" in graph.modules
    circles = {
        (module, *graph.find_shortest_chain(importer=imported, imported=module))
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    }
    assert circles == set()
