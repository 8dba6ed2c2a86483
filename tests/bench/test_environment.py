"""The benchmark's server environment passes the project's own start-up checks.

gunicorn runs no system checks, so a production setting the bench forgot (a new required key)
would show up only as 500s in the middle of a run.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench.environment import ROOT, bench_environment


def test_the_bench_server_environment_passes_manage_py_check():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "ERROR"],
        cwd=ROOT,
        # Only what a shell gives: not the test run's own settings (pytest-env sets a key too).
        env=bench_environment({name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
