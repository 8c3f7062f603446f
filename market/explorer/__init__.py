"""The interactive explorer: what-if runs and finished sweeps, in the browser and in Jupyter.

    market explore                               # the web app on http://127.0.0.1:8765
    market explore openai_google_tpu --port 8800 # a scenario (or a .toml file) opened in What-if
    market explore outputs/seed_scenarios        # a finished sweep opened in the Sweep browser

    >>> import market
    >>> market.explore("openai_google_tpu")       # in a notebook: the same page in the cell's output  # doctest: +SKIP

:mod:`levers` reads a scenario's levers and their ranges from the scenario schema,
:mod:`whatif` runs a what-if against its baseline over paired seeds, :mod:`sweeps` opens and
filters a finished sweep, :mod:`app` is the Solara page, :mod:`bench` its benchmark.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PORT", "check_target", "explore", "port_free", "serve"]

DEFAULT_PORT = 8765


def check_target(target: str | None) -> None:
    """Raise :class:`~market.scenario.ScenarioError` (a scenario) or
    :class:`~market.explorer.sweeps.SweepError` (a folder) if ``target`` cannot be opened."""
    if not target:
        return
    if Path(target).is_dir():
        from market.explorer.sweeps import open_sweep  # noqa: PLC0415

        open_sweep(target)
    else:
        from market.explorer.levers import levers_of  # noqa: PLC0415

        levers_of(target)


def explore(target: str | os.PathLike | None = None, *, workers: int | None = None) -> Any:
    """The explorer as a Solara element: the cell's last expression in Jupyter shows it.

    ``target``: a built-in scenario, a scenario file (opened in What-if) or a finished sweep's
    folder (opened in the Sweep browser); ``workers``: processes for what-if runs (default 2)."""
    from market.explorer.app import Explorer  # noqa: PLC0415 - solara only when exploring

    return Explorer(str(target) if target is not None else None, workers)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _stop(signum: int, frame: object) -> None:
    """On SIGTERM: stop the worker processes, then end as SIGTERM ends a process."""
    from market.explorer.whatif import shutdown_pool  # noqa: PLC0415

    shutdown_pool()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def serve(target: str | None = None, port: int = DEFAULT_PORT, *, open_browser: bool = True,
          workers: int | None = None) -> None:
    """Serve the explorer on http://127.0.0.1:``port`` until interrupted (Solara's server)."""
    from solara.__main__ import run as solara_run  # noqa: PLC0415

    from market.explorer import app  # noqa: PLC0415
    from market.explorer.whatif import warm_up  # noqa: PLC0415

    os.environ[app.ENV_TARGET] = target or ""
    if workers is not None:
        os.environ[app.ENV_WORKERS] = str(workers)
    warm_up(workers)  # the worker processes start now, not on the first "run"
    signal.signal(signal.SIGTERM, _stop)  # Solara's server runs in a thread: a SIGTERM would skip atexit
    args = ["market.explorer.app", "--host", "127.0.0.1", "--port", str(port), "--production",
            "--log-level", "warning", "--open" if open_browser else "--no-open"]
    solara_run.main(args=args, standalone_mode=False)
