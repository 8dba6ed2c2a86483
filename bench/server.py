"""gunicorn on 127.0.0.1 with the bench's settings, and its workers' peak memory."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.environment import ROOT, bench_environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`with Server(workers=2) as server:` serves http://127.0.0.1:<server.port> until the block ends."""

    def __init__(self, *, workers: int = 2, port: int | None = None, log: Path | None = None) -> None:
        self.workers = workers
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def _started(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError("The server isn't started: use it in a `with Server(...)` block.")
        return self.process

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "hero.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--timeout",
            "60",
            # Nothing manages this server at run time; don't leave a socket in the home folder.
            "--no-control-socket",
        ]
        output = self.log.open("w") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, cwd=ROOT, env=bench_environment(), stdout=output, stderr=output)  # noqa: S603
        self._wait_until_serving()
        return self

    def _wait_until_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._started.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self._started.returncode}; see {self.log}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/b/not-a-link", headers={"Host": "127.0.0.1"})
                connection.getresponse().read()
                connection.close()
                if len(self.worker_pids()) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn didn't start serving within {timeout} s; see {self.log}")

    def worker_pids(self) -> list[int]:
        """The master's children: its workers."""
        pid = self._started.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [int(child) for child in children]

    def worker_peak_memory(self) -> dict[int, int]:
        """Each worker's peak resident memory (VmHWM), in KiB."""
        peaks = {}
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1])
        return peaks

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
