"""Shared fixtures: a real Dask distributed cluster (a scheduler and two workers, each a separate
process bound to 127.0.0.1 only) for the sweep runner's tests.

Set ``MARKET_DASK_SCHEDULER=tcp://host:port`` to use a cluster started elsewhere (e.g. by CI)
instead; it needs at least two workers that can import ``market``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from helpers import dask_command, free_port, start_process, stop_process, tail

WORKERS = 2
START_TIMEOUT = 60.0  # seconds for the scheduler to listen and both workers to join


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
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = start_process(dask_command("scheduler") + [
        "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", f"127.0.0.1:{free_port()}",
    ], base / "scheduler.log", base)
    workers: list[subprocess.Popen] = []
    logs = [base / "scheduler.log"]
    try:
        for i in range(WORKERS):
            local = base / f"worker-{i}"
            local.mkdir()
            logs.append(base / f"worker-{i}.log")
            workers.append(start_process(dask_command("worker") + [
                address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                "--dashboard-address", f"127.0.0.1:{free_port()}", "--name", f"market-test-{i}",
                "--local-directory", str(local), "--death-timeout", "60",
            ], logs[-1], base))

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            dead = [p for p in (scheduler, *workers) if p.poll() is not None]
            if dead:
                raise RuntimeError("a Dask process exited while starting:\n"
                                   + "\n---\n".join(f"{log.name}:\n{tail(log)}" for log in logs))
            try:
                with distributed.Client(address, timeout=5) as client:
                    client.wait_for_workers(WORKERS, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Dask cluster at {address} did not start within {START_TIMEOUT} s "
                                       f"({exc}):\n" + "\n---\n".join(f"{log.name}:\n{tail(log)}" for log in logs)
                                       ) from exc
                time.sleep(0.2)
        yield address
    finally:
        for proc in workers:  # workers first, so they do not try to reconnect to a dead scheduler
            stop_process(proc)
        stop_process(scheduler)
        shutil.rmtree(base, ignore_errors=True)
