"""Shared fixtures: a real Dask distributed cluster (a scheduler and two workers, each a separate
process bound to 127.0.0.1 only) for the sweep runner's tests.

Set ``MARKET_DASK_SCHEDULER=tcp://host:port`` to use a cluster started elsewhere (e.g. by CI)
instead; it needs at least two workers that can import ``market``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

WORKERS = 2
START_TIMEOUT = 60.0  # seconds for the scheduler to listen and both workers to join


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_command(role: str) -> list[str]:
    """``<venv>/bin/dask scheduler|worker``, or ``python -m distributed.cli.dask_<role>``."""
    script = Path(sys.executable).with_name("dask")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), role]
    return [sys.executable, "-m", f"distributed.cli.dask_{role}"]


def _start(cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    # Own session (process group): a nanny's worker child can be killed with its nanny.
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True)


def _stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Terminate one process we started (and its process group), killing it if it hangs."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Still not reaped, so its process group is still ours: kill it with what it started.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            proc.kill()
        proc.wait(timeout=timeout)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a running Dask scheduler with two single-threaded workers."""
    distributed = pytest.importorskip("distributed")
    external = os.environ.get("MARKET_DASK_SCHEDULER")
    if external:
        with distributed.Client(external, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(WORKERS, timeout=START_TIMEOUT)
        yield external
        return

    base = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start(_dask_command("scheduler") + [
        "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", f"127.0.0.1:{_free_port()}",
    ], base / "scheduler.log", base)
    workers: list[subprocess.Popen] = []
    logs = [base / "scheduler.log"]
    try:
        for i in range(WORKERS):
            local = base / f"worker-{i}"
            local.mkdir()
            logs.append(base / f"worker-{i}.log")
            workers.append(_start(_dask_command("worker") + [
                address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                "--dashboard-address", f"127.0.0.1:{_free_port()}", "--name", f"market-test-{i}",
                "--local-directory", str(local), "--death-timeout", "60",
            ], logs[-1], base))

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            dead = [p for p in (scheduler, *workers) if p.poll() is not None]
            if dead:
                raise RuntimeError("a Dask process exited while starting:\n"
                                   + "\n---\n".join(f"{log.name}:\n{_tail(log)}" for log in logs))
            try:
                with distributed.Client(address, timeout=5) as client:
                    client.wait_for_workers(WORKERS, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Dask cluster at {address} did not start within {START_TIMEOUT} s "
                                       f"({exc}):\n" + "\n---\n".join(f"{log.name}:\n{_tail(log)}" for log in logs)
                                       ) from exc
                time.sleep(0.2)
        yield address
    finally:
        for proc in workers:  # workers first, so they do not try to reconnect to a dead scheduler
            _stop(proc)
        _stop(scheduler)
        shutil.rmtree(base, ignore_errors=True)
