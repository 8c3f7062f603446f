"""Helpers shared by the test modules: no test module imports another, they all import from here
(and the session fixtures live in ``conftest.py``)."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import market
from market.batch import scan
from market.cli import app

# Extreme magnitudes float64 and int64 barely hold or cannot hold, as TOML writes them: the fuzz and
# property tests give them to every numeric field.
EXTREMES = ["1e300", "-1e300", "1e-300", "-1e-300", "5e-324", "-5e-324", "2.2250738585072014e-308",
            "1.7976931348623157e308", "1e309", "9223372036854775807", "-9223372036854775808",
            "18446744073709551616", "1e12", "1e13", "inf", "-inf", "nan", "-nan"]


TINY_MARKET = Path(__file__).parent / "scenarios" / "tiny_market.toml"
EXPERIMENTS = Path(__file__).parent.parent / "experiments"


def experiment_script(name: str) -> types.ModuleType:
    """A script of ``experiments/`` (``name`` without ``.py``) imported as a module, to call its
    functions; it is registered in ``sys.modules`` only while it loads (dataclasses look their
    module up there)."""
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def overflowing_scenario(folder: Path) -> Path:
    """A valid scenario whose arithmetic overflows: the tiny market with demand multiplied by 100 every
    month, which is inf at step 154 (of 200)."""
    jumps = ", ".join(f"{{ step = {s}, factor = 100 }}" for s in range(1, 200))
    path = folder / "demand_overflow.toml"
    path.write_text(f'extends = "{TINY_MARKET}"\nsteps = 200\n[demand]\njumps = [{jumps}]\n')
    return path


def numeric_leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, int | float]]:
    """(path, value) of every number in a scenario's data (``Scenario.model_dump(mode="json")``),
    inside tables and lists alike; a path is a tuple of keys and list positions."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from numeric_leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from numeric_leaves(v, (*path, i))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


def with_value(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the value at ``path`` (from :func:`numeric_leaves`) replaced."""
    out = copy.deepcopy(data)
    node: Any = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


# -- sweeps: experiment files, datasets, result folders --------------------------------------------

SCRIPT = Path(sys.executable).with_name("market")
SCENARIOS = ["baseline", "openai_google_tpu"]
TABLES = list(market.TABLES)
# the natural key of each table: one row per (run, step, entity)
KEYS: dict[str, list[str]] = {
    "runs": ["run_id"],
    "steps": ["run_id", "step"],
    "shares": ["run_id", "step", "vendor"],
    "vendors": ["run_id", "step", "vendor"],
    "prices": ["run_id", "step", "product"],
    "clouds": ["run_id", "step", "cloud"],
    "labs": ["run_id", "step", "lab"],
    "fleet": ["run_id", "step", "cloud", "product"],
    "readiness": ["run_id", "step", "lab", "purpose", "ecosystem"],
    "lab_mix": ["run_id", "step", "lab", "vendor", "purpose"],
    "contracts": ["run_id", "step", "contract_id"],
    "points": ["scenario", "point"],
}

assert set(KEYS) - {"points"} | {"withholding"} == set(TABLES), "a table was added: give it a key here"

runner = CliRunner()


def write_experiment(folder: Path, name: str, *, scenarios: list[str] = SCENARIOS, replications: Any = 2,
                     steps: int = 5, base_seed: int = 7, design: dict[str, Any] | None = None,
                     filename: str | None = None) -> Path:
    """Write an experiment TOML file; ``design`` = {"kind": ..., "samples": ..., "parameters":
    {dotted path: {"values": [...]} or {"low": .., "high": .., "integer": ..}}}."""
    lines = [f'name = "{name}"', f"scenarios = {json.dumps(scenarios)}", f"replications = {replications}",
             f"steps = {steps}", f"base_seed = {base_seed}"]
    if design is not None:
        lines += ["", "[design]"]
        for key in ("kind", "samples"):
            if key in design:
                lines.append(f"{key} = {json.dumps(design[key])}")
        if not design.get("parameters"):
            lines.append("parameters = {}")
        for path, spec in design.get("parameters", {}).items():
            lines.append(f'[design.parameters."{path}"]')
            lines += [f"{k} = {json.dumps(v)}" for k, v in spec.items()]
    path = folder / (filename or f"{name}.toml")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_ids(folder: Path) -> list[str]:
    return sorted(pl.read_parquet(folder / "runs" / "scenario=*" / "*.parquet")["run_id"])


def read_dataset(folder: Path) -> dict[str, pl.DataFrame]:
    """Every table of a sweep, collected, in a canonical row and column order, without the one
    column that may differ between identical runs (runs.wall_seconds)."""
    out = {}
    for name, lf in scan(folder).items():
        df = lf.collect()
        if name == "runs":
            df = df.drop("wall_seconds")
        keys = KEYS.get(name, [])
        rest = sorted(c for c in df.columns if c not in keys)
        out[name] = df.select(sorted(df.columns)).sort(keys + rest, nulls_last=True)
    return out


def assert_same_dataset(expected: Path, actual: Path) -> None:
    """Two sweep folders hold the same dataset: every table row for row (:func:`read_dataset`) and
    the same experiment record."""
    a, b = read_dataset(expected), read_dataset(actual)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].height == b[name].height, (name, a[name].height, b[name].height)
        try:
            assert_frame_equal(a[name], b[name], check_exact=True)
        except AssertionError as exc:
            raise AssertionError(f"table {name!r} differs between {expected} and {actual}: {exc}") from None
    assert (json.loads((expected / "experiment.json").read_text())
            == json.loads((actual / "experiment.json").read_text()))


def assert_one_file_per_run(folder: Path, tables: list[str], expected_ids: set[str]) -> None:
    """Each table folder holds exactly one readable Parquet file per run, in its scenario's partition."""
    for table in tables:
        files = sorted((folder / table).glob("scenario=*/*.parquet"))
        counts = Counter(f.stem for f in files)
        assert set(counts) == expected_ids, (table, sorted(set(counts) ^ expected_ids))
        assert all(n == 1 for n in counts.values()), (table, [r for r, n in counts.items() if n > 1])
        for f in files:
            assert f.parent.name == f"scenario={f.stem.split('-p')[0]}", f
            pl.read_parquet(f)  # readable


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def cli(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def cli_env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "140"}


def run_script(*args: str | Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=cli_env(), timeout=timeout)


needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason="the market console script is not installed")


def names(folder: Path, table: str = "runs") -> list[str]:
    """The files' names (without .parquet) under ``table``, as scenario/name."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in (folder / table).glob("scenario=*/*.parquet"))


def assert_whole(folder: Path) -> None:
    """Every table, and the checksums, hold exactly the names that ``runs`` holds (no leftover
    files of an uncommitted batch), and no run is in two files."""
    for table in TABLES:
        assert names(folder, table) == names(folder), table
    checksums = sorted(f"{p.parent.name}/{p.stem}" for p in (folder / "checksums").glob("scenario=*/*.json"))
    assert checksums == names(folder)
    run_ids = pl.read_parquet(list((folder / "runs").glob("scenario=*/*.parquet")), columns=["run_id"])["run_id"]
    assert run_ids.is_unique().all()


def batch_runs(folder: Path) -> dict[str, list[str]]:
    """scenario/batch name -> the run ids it holds."""
    return {f"{p.parent.name}/{p.stem}": sorted(pl.read_parquet(p, columns=["run_id"])["run_id"])
            for p in (folder / "runs").glob("scenario=*/batch-*.parquet")}


# -- the command line ---------------------------------------------------------------------------------


def assert_user_error(result, *mentions: str, after_start: bool = False) -> None:
    """Exit 2, one ``error:`` paragraph on stderr naming the problem, no traceback anywhere.
    ``after_start``: the run had started, so the progress line comes first."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr.strip()
    if after_start:
        progress, _, err = err.partition("\n")
        assert progress.startswith("Running ")
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for m in mentions:
        assert m in err, (m, err)


# -- processes (a Dask cluster started by hand) ---------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_command(role: str) -> list[str]:
    """``<venv>/bin/dask scheduler|worker``, or ``python -m distributed.cli.dask_<role>``."""
    script = Path(sys.executable).with_name("dask")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), role]
    return [sys.executable, "-m", f"distributed.cli.dask_{role}"]


def start_process(cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    # Own session (process group): a nanny's worker child can be killed with its nanny.
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True)


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
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


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


