"""The batch-experiment runner (``market sweep``): executors agree, kill + resume, failed runs,
reading back, bad experiment files, seeds and designs.

Every experiment here is tiny (2 scenarios, 5-6 steps, 2-8 replications). The Dask tests use the
session cluster of ``conftest.py`` (a real scheduler and two workers, or MARKET_DASK_SCHEDULER).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import (
    KEYS,
    SCENARIOS,
    SCRIPT,
    TABLES,
    TINY_MARKET,
    assert_one_file_per_run,
    assert_same_dataset,
    assert_user_error,
    cli,
    cli_env,
    needs_script,
    overflowing_scenario,
    run_ids,
    run_script,
    snapshot,
    write_experiment,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import market
from market.batch import (
    ExperimentError,
    Grid,
    LatinHypercube,
    Parameter,
    Saltelli,
    SobolSequence,
    load_experiment,
    run_seed,
    scan,
    sweep,
)
from market.batch.storage import completed_runs

# tables every run of these scenarios fills from step 0 (withholding may be empty in a short run)
ALWAYS_FILLED = ["steps", "shares", "prices", "contracts", "fleet", "vendors", "clouds", "labs", "readiness",
                 "lab_mix"]
FAILURE_LINE = re.compile(r"^(\d+) of (\d+) runs failed")

SWITCHING = {"kind": "grid", "parameters": {"labs.openai.switching_cost": {"values": [0.5, 2.0]}}}


# -- shared sweeps (module scope: run once, read by several tests) ----------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 scenarios x 2 design points x 2 replications x 5 steps = 8 runs."""
    return write_experiment(tmp_path_factory.mktemp("exp"), "tiny", design=SWITCHING)


@pytest.fixture(scope="module")
def serial(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serial") / "out"
    report = sweep(tiny, out, workers=1, progress=False)
    assert (report.total, report.completed, report.skipped, report.failed) == (8, 8, 0, 0), report
    assert report.out == out and not report.interrupted
    return out


@pytest.fixture(scope="module")
def local(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    report = sweep(tiny, out, workers=2, progress=False)
    assert (report.total, report.completed, report.skipped, report.failed) == (8, 8, 0, 0), report
    return out


# -- 1. executors agree ----------------------------------------------------------------------


def test_serial_and_two_local_processes_give_identical_tables(serial: Path, local: Path) -> None:
    assert_same_dataset(serial, local)
    assert len(run_ids(serial)) == 8


def test_dask_cluster_gives_identical_tables(serial: Path, tiny: Path, tmp_path: Path, dask_scheduler: str) -> None:
    from distributed import Client, get_task_stream

    # batches of up to 4 runs: with 8 runs to do on the cluster's 2 workers, 8 // (2 x 2) = 2 runs, then single
    # runs (batch sizes follow the cluster's workers, not the local `workers`, which a scheduler overrides)
    for batch, n_tasks in [(None, 8), (4, 7)]:
        out = tmp_path / f"dask-{batch}"
        with Client(dask_scheduler) as client, get_task_stream(client=client) as stream:
            report = sweep(tiny, out, scheduler=dask_scheduler, progress=False, batch=batch, workers=8)
        assert (report.total, report.completed, report.failed) == (8, 8, 0), report
        # the runs really ran on the cluster's workers (a task per run, or per batch), not in this process
        tasks = [t for t in stream.data if str(t["key"]).startswith("execute_batch-")]
        assert len(tasks) == n_tasks, [t["key"] for t in stream.data]
        assert {t["worker"] for t in tasks} <= client_workers(dask_scheduler)
        assert_same_dataset(serial, out)


def client_workers(address: str) -> set[str]:
    from distributed import Client

    with Client(address) as client:
        return set(client.scheduler_info()["workers"])


@needs_script
def test_cli_sweep_on_dask_cluster_end_to_end(serial: Path, tiny: Path, tmp_path: Path, dask_scheduler: str) -> None:
    out = tmp_path / "cli-dask"
    proc = run_script("sweep", "--no-figures", tiny, "--scheduler", dask_scheduler, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tiny: 8 runs done, 0 already complete, 0 failed" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert_same_dataset(serial, out)


# -- 2. SIGKILL mid-way, then --resume ----------------------------------------------------------


@needs_script
def test_sigkilled_sweep_resumes_to_the_uninterrupted_dataset(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, "killme", replications=8, steps=6)
    total = 2 * 8
    out = tmp_path / "killed"
    with open(tmp_path / "killed.log", "wb") as log:
        proc = subprocess.Popen([str(SCRIPT), "sweep", "--no-figures", str(exp), "--out", str(out), "--workers", "2"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path,
                                env=cli_env(), start_new_session=True)
    markers = out / "runs"
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if markers.is_dir() and any(markers.glob("scenario=*/*.parquet")):
                break  # some run is complete: kill now, while the rest are in flight
            time.sleep(0.002)
    finally:
        if proc.poll() is None:  # not reaped, so the group (the sweep and its pool children) is ours
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (
        f"the sweep was not killed mid-way (exit {proc.returncode}); log:\n{(tmp_path / 'killed.log').read_text()}")

    done = completed_runs(out)
    assert 0 < len(done) < total, f"{len(done)} of {total} runs complete when killed"
    # a writer killed mid-write leaves a hidden temporary file; make sure there is one to clean up
    (out / "steps" / "scenario=baseline").mkdir(parents=True, exist_ok=True)
    (out / "steps" / "scenario=baseline" / ".baseline-p0000-r007.k1ll3d.tmp").write_bytes(b"PAR1 torn")

    resumed = run_script("sweep", "--no-figures", exp, "--out", out, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"killme: {total - len(done)} runs done, {len(done)} already complete, 0 failed" in resumed.stdout

    reference = tmp_path / "uninterrupted"
    report = sweep(exp, reference, workers=1, progress=False)
    assert (report.completed, report.failed) == (total, 0)

    ids = set(run_ids(reference))
    assert len(ids) == total
    assert_one_file_per_run(out, TABLES, ids)  # none missing, none duplicated, all readable
    assert sorted(p.name for p in out.rglob(".*")) == [], "hidden temporary files left after --resume"
    for f in out.rglob("*.parquet"):
        pl.read_parquet(f)
    runs = pl.read_parquet(out / "runs" / "scenario=*" / "*.parquet")
    assert runs.height == total and runs["run_id"].n_unique() == total
    assert runs["status"].to_list() == ["complete"] * total
    assert_same_dataset(reference, out)


# -- 3. a failing run is recorded, the others are complete --------------------------------------


FAULTY = {"kind": "grid", "parameters": {"faults.raise_at_step": {"values": [2, 1000]}}}


def check_faulty_dataset(out: Path) -> None:
    """Point 0 (raise at step 2) failed in every replication; point 1 (1000: never) is complete."""
    runs = pl.read_parquet(out / "runs" / "scenario=*" / "*.parquet").sort("run_id")
    assert runs.height == 8 and runs["run_id"].n_unique() == 8, runs.select("run_id", "status")
    failed = runs.filter(pl.col("point") == 0)
    complete = runs.filter(pl.col("point") == 1)
    assert failed.height == 4 and complete.height == 4
    assert failed["status"].to_list() == ["failed"] * 4
    for error in failed["error"]:
        assert "RuntimeError" in error and "fault injected" in error and "raise_at_step = 2" in error, error
    assert complete["status"].to_list() == ["complete"] * 4
    assert complete["error"].null_count() == 4
    assert [json.loads(p) for p in failed["parameters"]] == [{"faults.raise_at_step": 2}] * 4
    failed_ids, complete_ids = set(failed["run_id"]), set(complete["run_id"])

    tables = {name: lf.collect() for name, lf in scan(out).items()}
    for name in ALWAYS_FILLED + ["withholding"]:
        ids = set(tables[name]["run_id"]) if name in tables else set()
        assert not ids & failed_ids, f"failed runs have rows in {name}"
        # no file at all for a failed run: partial tables never enter the dataset
        assert not [f for f in (out / name).glob("scenario=*/*.parquet") if f.stem in failed_ids], name
        if name in ALWAYS_FILLED:
            assert ids == complete_ids, name
    steps = tables["steps"].group_by("run_id").agg(pl.col("step").sort())
    assert {r: s for r, s in steps.iter_rows()} == {r: list(range(5)) for r in complete_ids}
    assert_one_file_per_run(out, ["runs"], failed_ids | complete_ids)
    assert_one_file_per_run(out, [t for t in TABLES if t != "runs"], complete_ids)


def failure_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if FAILURE_LINE.match(line)]


def test_failed_runs_are_recorded_through_the_api(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, "faulty", design=FAULTY)
    report = sweep(exp, tmp_path / "out", workers=1, progress=False)
    assert (report.total, report.completed, report.failed) == (8, 4, 4)
    assert sorted(report.failures) == sorted(f"{s}-p0000-r{r:03d}" for s in SCENARIOS for r in range(2))
    assert all("fault injected" in e for e in report.failures.values())
    check_faulty_dataset(tmp_path / "out")

    again = sweep(exp, tmp_path / "out", workers=2, resume=True, progress=False)
    assert (again.total, again.skipped, again.completed, again.failed) == (8, 4, 0, 4)
    check_faulty_dataset(tmp_path / "out")


def test_a_run_whose_numbers_overflow_is_recorded_as_failed_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """A valid scenario whose demand overflows a float (x100 a month) stops with a ModelError naming the
    step and the quantity; the sweep records that run as failed and completes the others."""
    overflowing = overflowing_scenario(tmp_path)
    exp = write_experiment(tmp_path, "overflow", scenarios=[overflowing.name, str(TINY_MARKET)], replications=1,
                           steps=200)
    report = sweep(exp, tmp_path / "out", workers=1, progress=False)
    assert (report.total, report.completed, report.failed) == (2, 1, 1)
    (error,) = report.failures.values()
    assert error.startswith("market.model.ModelError: step 154, at the start of the month: the demand (PFLOP/s) "
                            "of lab is inf"), error
    runs = scan(tmp_path / "out")["runs"].collect()
    assert sorted(runs["status"]) == ["complete", "failed"]


@needs_script
def test_failed_runs_make_the_cli_exit_1_and_resume_reruns_them(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, "faulty", design=FAULTY)
    out = tmp_path / "out"
    proc = run_script("sweep", "--no-figures", exp, "--out", out, "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert failure_lines(proc.stderr) == [proc.stderr.strip().splitlines()[-1]]
    assert failure_lines(proc.stderr)[0].startswith("4 of 8 runs failed"), proc.stderr
    assert "faulty: 4 runs done, 0 already complete, 4 failed" in proc.stdout
    check_faulty_dataset(out)

    # --resume runs the failed ones again (and only those): they fail again, still recorded once
    resumed = run_script("sweep", "--no-figures", exp, "--out", out, "--resume", "--workers", "1", cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    assert failure_lines(resumed.stderr) == [resumed.stderr.strip().splitlines()[-1]]
    assert failure_lines(resumed.stderr)[0].startswith("4 of 8 runs failed"), resumed.stderr
    assert "faulty: 0 runs done, 4 already complete, 4 failed" in resumed.stdout
    assert len(re.findall(r"\] \S+ failed;", resumed.stderr)) == 4  # exactly the four failed runs re-ran
    check_faulty_dataset(out)


# -- 4. reading back ----------------------------------------------------------------------------


def test_scan_returns_every_table_lazily_with_unique_natural_keys(serial: Path) -> None:
    tables = scan(serial)
    assert set(tables) == set(TABLES) | {"points"}
    assert all(isinstance(lf, pl.LazyFrame) for lf in tables.values())
    ids = run_ids(serial)
    label = {r: r.split("-p")[0] for r in ids}
    for name, lf in tables.items():
        df = lf.collect()
        assert "scenario" in df.columns, name
        keys = KEYS.get(name)
        if keys is not None:
            assert df.select(keys).null_count().row(0) == (0,) * len(keys), name
            dup = df.select(keys).is_duplicated()
            assert not dup.any(), (name, df.filter(dup).select(keys).head())
        if name == "points":
            continue
        # the partition's scenario is each run's scenario
        pairs = set(df.select("run_id", "scenario").unique().iter_rows())
        assert pairs <= set(label.items()), name
        if name in ALWAYS_FILLED or name == "runs":
            assert {r for r, _ in pairs} == set(ids), name
    runs = tables["runs"].collect()
    assert runs.height == 8 and set(runs["scenario"]) == set(SCENARIOS)
    assert set(runs.columns) >= {"experiment", "point", "replication", "parameters", "seed", "status", "config"}
    assert runs.group_by("scenario").len().sort("scenario")["len"].to_list() == [4, 4]
    # one steps row per (run, step), every step of every run
    assert tables["steps"].collect().height == 8 * 5
    points = tables["points"].collect().sort("scenario", "point")
    assert points.to_dicts() == [{"scenario": s, "point": p, "labs.openai.switching_cost": v}
                                 for s in SCENARIOS for p, v in enumerate([0.5, 2.0])]
    # every run's design values are those of its point
    joined = runs.join(points, on=["scenario", "point"], how="left")
    for params, value in joined.select("parameters", "labs.openai.switching_cost").iter_rows():
        assert json.loads(params) == {"labs.openai.switching_cost": value}


def test_scan_of_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan(tmp_path / "nothing")


# -- 5. bad experiment files and output folders --------------------------------------------------


HEAD = 'name = "bad"\nscenarios = ["baseline", "openai_google_tpu"]\nreplications = 2\nsteps = 5\n'
BAD_FILES = {
    "unknown parameter path": (HEAD + '[design]\nkind = "grid"\n[design.parameters."clouds.gcp.witholding.share"]\n'
                               "values = [0.0, 0.5]\n", ["clouds.gcp.witholding.share", "unknown key"]),
    "empty design": (HEAD + "[design]\nparameters = {}\n", ["design", "no parameters"]),
    "negative replications": (HEAD.replace("replications = 2", "replications = -3"), ["replications", "-3"]),
    "binary garbage": (bytes(range(256)) * 4, ["cannot be read"]),
    "unknown scenario": (HEAD.replace('"openai_google_tpu"', '"openai_goggle_tpu"'),
                         ["openai_goggle_tpu", "unknown scenario"]),
    "value out of range": (HEAD + '[design]\nkind = "grid"\n[design.parameters."clouds.gcp.withholding.share"]\n'
                           "values = [0.0, 1.5]\n", ["clouds.gcp.withholding.share", "1.5"]),
    "grid with low/high": (HEAD + '[design]\nkind = "grid"\n[design.parameters."clouds.gcp.withholding.share"]\n'
                           "low = 0.0\nhigh = 1.0\n", ["clouds.gcp.withholding.share", "values"]),
    "lhs without samples": (HEAD + '[design]\nkind = "lhs"\n[design.parameters."clouds.gcp.withholding.share"]\n'
                            "low = 0.0\nhigh = 1.0\n", ["samples"]),
    "range ends out of range": (HEAD + '[design]\nkind = "lhs"\nsamples = 4\n'
                                '[design.parameters."clouds.gcp.withholding.share"]\nlow = 0.5\nhigh = 2.0\n',
                                ["clouds.gcp.withholding.share", "2.0"]),
    "not TOML": (HEAD + "steps = = 3\n", ["not valid TOML"]),
    "unknown top-level key": (HEAD + "replicatoins = 4\n", ["replicatoins", "unknown key"]),
    "zero steps": (HEAD.replace("steps = 5", "steps = 0"), ["steps"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_experiment_files_exit_2_before_any_run(case: str, tmp_path: Path) -> None:
    content, mentions = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    out = tmp_path / "out"
    assert_user_error(cli("sweep", path, "--out", out, "--workers", "1"), *mentions)
    assert not out.exists()
    with pytest.raises(ExperimentError):
        sweep(path, out, workers=1, progress=False)
    assert not out.exists()


def test_missing_experiment_file_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_user_error(cli("sweep", tmp_path / "nope.toml", "--out", out), "nope.toml", "does not exist")
    assert_user_error(cli("sweep", tmp_path, "--out", out), "does not exist")  # a folder is not a file
    assert not out.exists()


def test_existing_output_folders_are_protected(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, "small", scenarios=["baseline"], replications=1, steps=2)

    # a non-empty folder that is not an experiment: refused without a flag, with --overwrite, --resume
    stranger = tmp_path / "stranger"
    (stranger / "sub").mkdir(parents=True)
    (stranger / "notes.txt").write_text("precious")
    (stranger / "sub" / "data.parquet").write_bytes(b"not ours")
    before = snapshot(stranger)
    assert_user_error(cli("sweep", exp, "--out", stranger, "--workers", "1"), "not empty", "--resume", "--overwrite")
    assert snapshot(stranger) == before
    assert_user_error(cli("sweep", exp, "--out", stranger, "--overwrite", "--workers", "1"), "experiment.json")
    assert snapshot(stranger) == before
    assert_user_error(cli("sweep", exp, "--out", stranger, "--resume", "--workers", "1"), "experiment.json")
    assert snapshot(stranger) == before
    with pytest.raises(ExperimentError):
        sweep(exp, stranger, workers=1, overwrite=True, progress=False)
    assert snapshot(stranger) == before

    # a finished experiment folder: refused without a flag, left as it was
    done = tmp_path / "done"
    assert sweep(exp, done, workers=1, progress=False).completed == 1
    before = snapshot(done)
    assert_user_error(cli("sweep", exp, "--out", done, "--workers", "1"), "not empty")
    assert snapshot(done) == before
    assert_user_error(cli("sweep", exp, "--out", done, "--resume", "--overwrite"), "--resume", "--overwrite")
    assert snapshot(done) == before
    # ... resumed by a changed experiment file: refused
    changed = write_experiment(tmp_path, "small", scenarios=["baseline"], replications=1, steps=3,
                               filename="changed.toml")
    assert_user_error(cli("sweep", changed, "--out", done, "--resume", "--workers", "1"), "different experiment")
    assert snapshot(done) == before
    # ... resumed when complete: nothing to do; overwritten: run again
    report = sweep(exp, done, workers=1, resume=True, progress=False)
    assert (report.skipped, report.completed, report.failed) == (1, 0, 0)
    assert snapshot(done) == before
    report = sweep(exp, done, workers=1, overwrite=True, progress=False)
    assert (report.skipped, report.completed) == (0, 1)
    assert sorted(snapshot(done)) == sorted(before)

    # an existing empty folder is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sweep(exp, empty, workers=1, progress=False).completed == 1


def test_output_path_that_is_a_file_or_a_bad_scheduler_exits_2(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, "small", scenarios=["baseline"], replications=1, steps=2)
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    assert_user_error(cli("sweep", exp, "--out", a_file, "--workers", "1"), "a_file")
    assert a_file.read_text() == "keep"
    # an address Dask cannot use: a user error, and nothing is created
    out = tmp_path / "out"
    assert_user_error(cli("sweep", exp, "--out", out, "--scheduler", "foo://127.0.0.1:1"), "--scheduler", "foo://")
    assert not out.exists()


# -- 6. seeds -------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(base=st.integers(0, 2**63 - 1), point=st.integers(0, 10**6), rep=st.integers(0, 10**5))
def test_run_seed_is_a_pure_function(base: int, point: int, rep: int) -> None:
    seed = run_seed(base, point, rep)
    assert seed == run_seed(base, point, rep)
    assert isinstance(seed, int) and 0 <= seed < 2**63


def test_run_seeds_differ_across_points_replications_and_base_seeds() -> None:
    seeds = {(p, r): run_seed(7, p, r) for p in range(20) for r in range(20)}
    assert len(set(seeds.values())) == len(seeds)
    assert seeds[(0, 1)] != seeds[(1, 0)]
    assert run_seed(7, 0, 0) != run_seed(8, 0, 0)


def test_seeds_do_not_depend_on_replication_count_or_scenario(tmp_path: Path) -> None:
    small = load_experiment(write_experiment(tmp_path, "e", replications=2, design=SWITCHING))
    big = load_experiment(write_experiment(tmp_path, "e", replications=5, design=SWITCHING, filename="big.toml"))
    by_id = {s.run_id: s.seed for s in big.runs()}
    for spec in small.runs():
        assert by_id[spec.run_id] == spec.seed == run_seed(7, spec.point, spec.replication)
    # common random numbers: the scenarios share the seed of each (point, replication)
    per_cell: dict[tuple[int, int], set[int]] = {}
    for spec in big.runs():
        per_cell.setdefault((spec.point, spec.replication), set()).add(spec.seed)
    assert all(len(s) == 1 for s in per_cell.values())
    assert len({next(iter(s)) for s in per_cell.values()}) == len(per_cell)


def test_runs_table_seeds_match_run_seed_whatever_the_workers(serial: Path, local: Path) -> None:
    tables = {name: scan(out)["runs"].collect().sort("run_id") for name, out in (("serial", serial), ("local", local))}
    for runs in tables.values():
        for scenario, point, rep, seed in runs.select("scenario", "point", "replication", "seed").iter_rows():
            assert seed == run_seed(7, point, rep), (scenario, point, rep)
        shared = runs.group_by("point", "replication").agg(pl.col("seed").n_unique().alias("n"),
                                                           pl.col("scenario").n_unique().alias("s"))
        assert shared["n"].to_list() == [1] * 4 and shared["s"].to_list() == [2] * 4
    assert tables["serial"].select("run_id", "seed").equals(tables["local"].select("run_id", "seed"))


# -- 7. designs --------------------------------------------------------------------------------------


def test_grid_is_the_full_product_in_order() -> None:
    params = {"a": Parameter(values=[1, 2, 3]), "b": Parameter(values=["x", "y"]), "c": Parameter(values=[0.5])}
    points = Grid(params).points(seed=0)
    assert points == [{"a": a, "b": b, "c": c} for a, b, c in itertools.product([1, 2, 3], ["x", "y"], [0.5])]
    assert points == Grid(params).points(seed=123)  # a grid ignores the seed


def test_experiment_runs_are_ordered_scenario_point_replication(tmp_path: Path) -> None:
    design = {"kind": "grid", "parameters": {"clouds.gcp.withholding.share": {"values": [0.0, 1.0]},
                                             "labs.openai.switching_cost": {"values": [0.5, 1.0, 2.0]}}}
    exp = load_experiment(write_experiment(tmp_path, "g", design=design))
    points = exp.design_points()
    assert points == [{"clouds.gcp.withholding.share": w, "labs.openai.switching_cost": c}
                      for w in (0.0, 1.0) for c in (0.5, 1.0, 2.0)]
    runs = exp.runs()
    assert [(s.scenario, s.point, s.replication) for s in runs] == list(itertools.product(SCENARIOS, range(6), range(2)))
    assert [s.run_id for s in runs][:3] == ["baseline-p0000-r000", "baseline-p0000-r001", "baseline-p0001-r000"]
    assert all(s.parameters == points[s.point] for s in runs)
    assert len({s.run_id for s in runs}) == len(runs) == 2 * 6 * 2


RANGES = {"share": Parameter(low=0.1, high=0.9), "months": Parameter(low=1, high=24, integer=True),
          "cost": Parameter(low=-2.0, high=3.5)}


def check_points(points: list[dict[str, Any]], n: int, params: dict[str, Parameter] = RANGES) -> None:
    assert len(points) == n
    for point in points:
        assert list(point) == list(params)
        for name, value in point.items():
            p = params[name]
            assert p.low <= value <= p.high, (name, value)
            if p.integer:
                assert type(value) is int, (name, value)
            else:
                assert type(value) is float, (name, value)


@pytest.mark.parametrize(("design", "samples", "expected"), [
    (LatinHypercube, 7, 7), (LatinHypercube, 1, 1),
    (SobolSequence, 8, 8), (SobolSequence, 6, 6), (SobolSequence, 1, 1),
    (Saltelli, 4, 4 * (2 * 3 + 2)), (Saltelli, 8, 8 * (2 * 3 + 2)),
])
def test_sampled_designs_count_range_type_and_reproducibility(design: type, samples: int, expected: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Sobol'/Saltelli warn when samples is not a power of two
        points = design(RANGES, samples).points(seed=11)
        again = design(RANGES, samples).points(seed=11)
        other = design(RANGES, samples).points(seed=12)
    check_points(points, expected)
    assert points == again
    assert points != other


def test_latin_hypercube_fills_every_stratum() -> None:
    n = 10
    points = LatinHypercube({"x": Parameter(low=2.0, high=4.0), "y": Parameter(low=0.0, high=1.0)}, n).points(seed=3)
    for name, (low, high) in {"x": (2.0, 4.0), "y": (0.0, 1.0)}.items():
        strata = sorted(math.floor((p[name] - low) / (high - low) * n) for p in points)
        assert strata == list(range(n)), (name, strata)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["lhs", "sobol", "saltelli"]), d=st.integers(1, 3), samples=st.integers(1, 9),
       seed=st.integers(0, 2**32 - 1), low=st.floats(-1e3, 1e3), width=st.floats(0.01, 1e3))
def test_sampled_designs_property(kind: str, d: int, samples: int, seed: int, low: float, width: float) -> None:
    from market.batch import DESIGNS

    params = {f"p{j}": Parameter(low=low, high=low + width, integer=(j == 1)) for j in range(d)}
    if d > 1:  # an integer parameter needs whole ends to stay within them
        params["p1"] = Parameter(low=math.floor(low), high=math.floor(low) + max(1, math.ceil(width)), integer=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = DESIGNS[kind](params, samples).points(seed)
        again = DESIGNS[kind](params, samples).points(seed)
    expected = samples * (2 * d + 2) if kind == "saltelli" else samples
    check_points(points, expected, params)
    assert points == again


@pytest.mark.parametrize(("kind", "samples", "per_scenario"), [("lhs", 5, 5), ("sobol", 4, 4), ("saltelli", 2, 2 * 6)])
def test_sampled_designs_in_experiment_files(kind: str, samples: int, per_scenario: int, tmp_path: Path) -> None:
    design = {"kind": kind, "samples": samples, "parameters": {
        "clouds.gcp.withholding.share": {"low": 0.0, "high": 1.0},
        "negotiation.max_rounds": {"low": 2, "high": 30, "integer": True}}}
    path = write_experiment(tmp_path, kind, design=design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = load_experiment(path)
        points = exp.design_points()
        assert points == load_experiment(path).design_points()  # same base_seed: same points
        runs = exp.runs()
    assert len(points) == per_scenario
    assert len(runs) == len(SCENARIOS) * per_scenario * 2
    for point in points:
        assert 0.0 <= point["clouds.gcp.withholding.share"] <= 1.0
        rounds = point["negotiation.max_rounds"]
        assert type(rounds) is int and 2 <= rounds <= 30
    # every point is a valid scenario
    for point in points[:3]:
        market.load_scenario("baseline", {**point, "steps": 5})


# -- bugs found and fixed: each stays as a regression test ------------------------------------------


def test_integer_grid_values_are_rounded_or_rejected_before_any_run(tmp_path: Path) -> None:
    design = {"kind": "grid", "parameters": {"negotiation.max_rounds": {"values": [2.5, 10], "integer": True}}}
    path = write_experiment(tmp_path, "intgrid", scenarios=["baseline"], replications=1, steps=2, design=design)
    try:
        exp = load_experiment(path)
    except ExperimentError:
        return  # rejected before any run: fine
    report = sweep(exp, tmp_path / "out", workers=1, progress=False)
    assert report.failed == 0, report.failures


def test_scenarios_with_the_same_file_name_do_not_overwrite_each_other(tmp_path: Path) -> None:
    for sub, parent in (("a", "baseline"), ("b", "openai_google_tpu")):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.toml").write_text(f'extends = "{parent}"\n')
    path = write_experiment(tmp_path, "dup", scenarios=["a/x.toml", "b/x.toml"], replications=1, steps=2)
    try:
        exp = load_experiment(path)
    except ExperimentError:
        return  # rejected before any run: fine
    report = sweep(exp, tmp_path / "out", workers=1, progress=False)
    assert report.completed == 2
    assert len(run_ids(tmp_path / "out")) == 2


def test_every_grid_point_is_validated_before_any_run(tmp_path: Path) -> None:
    # each value is allowed on its own, but min_margin = 5 with max_margin = 1 is not
    design = {"kind": "grid", "parameters": {"clouds.gcp.pricing.min_margin": {"values": [0.0, 5.0]},
                                             "clouds.gcp.pricing.max_margin": {"values": [1.0, 10.0]}}}
    path = write_experiment(tmp_path, "combo", scenarios=["baseline"], replications=1, steps=2, design=design)
    try:
        exp = load_experiment(path)
    except ExperimentError:
        return  # rejected before any run: fine
    report = sweep(exp, tmp_path / "out", workers=1, progress=False)
    assert report.failed == 0, report.failures


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _pool_workers(pid: int) -> list[int]:
    """The local pool's worker processes of the sweep process ``pid``: forked by its fork server
    (a child running ``multiprocessing.forkserver``), or spawned by it."""
    workers = []
    for child in _children(pid):
        if "multiprocessing.forkserver" in _cmdline(child):
            workers += _children(child)
        elif "spawn_main" in _cmdline(child):
            workers.append(child)
    return workers


@needs_script
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the pool's processes")
def test_a_lost_local_worker_loses_only_its_run(tmp_path: Path) -> None:
    exp = write_experiment(tmp_path, "lost", replications=8, steps=6)
    out = tmp_path / "out"
    proc = subprocess.Popen([str(SCRIPT), "sweep", "--no-figures", str(exp), "--out", str(out), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=cli_env(),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if (out / "runs").is_dir() and any((out / "runs").glob("scenario=*/*.parquet")):
                break
            time.sleep(0.002)
        workers = _pool_workers(proc.pid)
        if proc.poll() is not None or not workers:
            pytest.skip("the sweep ended before a worker could be lost")
        os.kill(workers[0], signal.SIGKILL)  # one pool worker dies (as under the OOM killer)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert "Traceback" not in stderr, stderr[-2000:]
    assert proc.returncode in (0, 1), stderr[-2000:]
    runs = pl.read_parquet(out / "runs" / "scenario=*" / "*.parquet")
    assert runs.height == 16
    assert runs.filter(pl.col("status") != "complete").height <= 1, runs.filter(pl.col("status") != "complete")


def test_the_fork_server_imports_no_polars() -> None:
    """Pool workers are forked from a server that has imported ``PRELOAD`` only: polars starts
    threads when imported, and a child forked from a process with polars threads can hang."""
    import multiprocessing

    from market.batch.runner import PRELOAD, pool_context

    code = ("import importlib, sys\n"
            f"for name in {PRELOAD!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('polars', 'market')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    if "forkserver" in multiprocessing.get_all_start_methods():
        assert pool_context().get_start_method() == "forkserver"
