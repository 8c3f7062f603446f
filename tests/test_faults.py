"""Fault injection on sweeps: what survives SIGKILL, a lost Dask worker, a full or read-only output
folder, and result files damaged by hand.

In every case no completed run is lost or rewritten, none is duplicated, a damaged run is detected
and run again, and after ``--resume`` the dataset equals that of an uninterrupted sweep (every
table, row for row, except ``runs.wall_seconds``). Kill points come from a numpy Generator with a
fixed seed. ``pytest -m slow tests/test_faults.py`` runs the larger SIGKILL campaign whose figures
docs/RELIABILITY.md records.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import (
    SCRIPT,
    TABLES,
    assert_one_file_per_run,
    assert_same_dataset,
    assert_whole,
    batch_runs,
    cli,
    cli_env,
    dask_command,
    free_port,
    needs_script,
    run_ids,
    start_process,
    stop_process,
    tail,
    write_experiment,
)

from market.batch import sweep
from market.batch.storage import checksum_path, completed_runs, run_path

SEED = 20251126
KILL_TRIALS = 5  # SIGKILLs at random points in CI
SLOW_KILL_TRIALS = 30  # in the campaign behind -m slow
DONE_LINE = re.compile(r"(\d+) runs done, (\d+) already complete, (\d+) failed")


# -- helpers -------------------------------------------------------------------------------------


def run_files(out: Path, run_ids_: set[str]) -> dict[str, bytes]:
    """The bytes of every file of the given runs (tables, runs row, checksums), and of the batches
    that hold any of them."""
    batches = {name for name, ids in batch_runs(out).items() if set(ids) & run_ids_}
    files = {}
    for folder in [*TABLES, "checksums"]:
        for f in (out / folder).glob("scenario=*/*"):
            if f.stem in run_ids_ or f"{f.parent.name}/{f.stem}" in batches:
                files[str(f.relative_to(out))] = f.read_bytes()
    return files


def assert_kept(out: Path, before: dict[str, bytes], done: set[str]) -> None:
    """Runs complete before a fault are still complete, and their files were not touched."""
    assert done <= completed_runs(out), sorted(done - completed_runs(out))
    after = run_files(out, done)
    assert after.keys() == before.keys(), sorted(after.keys() ^ before.keys())
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"files of complete runs were rewritten: {changed[:5]}"


def assert_final(out: Path, reference: Path, batched: bool = False) -> None:
    """One intact file per run (or batch) and table, no temporaries, the uninterrupted sweep's dataset."""
    ids = set(run_ids(reference))
    assert completed_runs(out) == ids
    if batched:
        assert_whole(out)
    else:
        assert_one_file_per_run(out, [*TABLES], ids)
        assert sorted(f.stem for f in (out / "checksums").glob("scenario=*/*.json")) == sorted(ids)
    assert not [p.name for p in out.rglob(".*") if p.name.endswith(".tmp")], "temporary files left behind"
    assert_same_dataset(reference, out)


def done_counts(stdout: str) -> tuple[int, int, int]:
    m = DONE_LINE.search(stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2 scenarios x 8 replications x 5 steps experiment and its uninterrupted sweep."""
    folder = tmp_path_factory.mktemp("faults")
    exp = write_experiment(folder, "faults", replications=8, steps=5, base_seed=11)
    reference = folder / "reference"
    report = sweep(exp, reference, workers=1, progress=False)
    assert (report.completed, report.failed) == (16, 0)
    return exp, reference


# -- 1. SIGKILL at random points, then --resume ------------------------------------------------------


def committed(out: Path) -> int:
    """How many runs or batches have been written (their checksums come just before their commit)."""
    return len(list((out / "checksums").glob("scenario=*/*.json")))


def sigkill_trials(exp: Path, out: Path, trials: int, total: int, rng: np.random.Generator, log: Path,
                   *options: str) -> int:
    """Start ``market sweep --resume [options]`` and SIGKILL it (with its pool) at a random point,
    ``trials`` times; after each kill, check that the runs complete before it are kept. Returns the
    kills."""
    kills = 0
    done: set[str] = set()
    before: dict[str, bytes] = {}
    for _ in range(trials):
        with open(log, "ab") as fh:
            proc = subprocess.Popen([str(SCRIPT), "sweep", "--no-figures", str(exp), "--out", str(out), "--workers", "2",
                                     "--resume", *options], stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=out.parent, env=cli_env(), start_new_session=True)
        # a random point: after 0-2 more runs (or batches) are written, then 0-150 ms more (startup, mid-run,
        # mid-write); near the end, sooner, so that every trial is a kill and not a finished sweep
        late = total - len(done) <= 8
        target = committed(out) + (0 if late else int(rng.integers(0, 3)))
        pause = float(rng.uniform(0.0, 0.02 if late else 0.15))
        deadline = time.monotonic() + 120
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if committed(out) >= target:
                    break
                time.sleep(0.002)
            time.sleep(pause)
        finally:
            if proc.poll() is None:  # not reaped: the group (the sweep and its pool) is ours
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        if proc.returncode != -signal.SIGKILL:
            break  # it finished before the kill point
        kills += 1
        assert_kept(out, before, done)
        done = completed_runs(out)
        before = run_files(out, done)
        print(f"kill {kills}: {len(done)} of {total} runs complete")
    return kills


def resume_to_the_end(exp: Path, out: Path, reference: Path, *options: str) -> None:
    done = completed_runs(out)
    before = run_files(out, done)
    proc = subprocess.run([str(SCRIPT), "sweep", "--no-figures", str(exp), "--out", str(out), "--resume", *options],
                          check=False, capture_output=True, text=True, cwd=out.parent, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    total = len(run_ids(reference))
    assert done_counts(proc.stdout) == (total - len(done), len(done), 0), proc.stdout
    assert_kept(out, before, done)
    assert_final(out, reference, batched=bool(options))


@needs_script
def test_sigkill_at_random_points_then_resume(small: tuple[Path, Path], tmp_path: Path) -> None:
    exp, reference = small
    out = tmp_path / "killed"
    kills = sigkill_trials(exp, out, KILL_TRIALS, 16, np.random.default_rng(SEED), tmp_path / "kills.log")
    print(f"\nSIGKILL trials: {kills} kills, then --resume")
    assert kills == KILL_TRIALS, (tmp_path / "kills.log").read_text()[-3000:]
    resume_to_the_end(exp, out, reference)


@needs_script
def test_sigkill_during_batches_then_resume(small: tuple[Path, Path], tmp_path: Path) -> None:
    """The same with batches of up to 3 runs (written together, committed by their runs file)."""
    exp, reference = small
    out = tmp_path / "killed"
    kills = sigkill_trials(exp, out, KILL_TRIALS, 16, np.random.default_rng(SEED + 2), tmp_path / "kills.log",
                           "--batch", "3")
    print(f"\nSIGKILL trials with batches: {kills} kills, then --resume")
    assert kills == KILL_TRIALS, (tmp_path / "kills.log").read_text()[-3000:]
    assert list(out.glob("runs/scenario=*/batch-*.parquet")), "no batch was written before the last kill"
    resume_to_the_end(exp, out, reference, "--batch", "3")


@needs_script
@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--batch", "5")], ids=["run-files", "batches"])
def test_sigkill_campaign(tmp_path: Path, options: tuple[str, ...]) -> None:
    exp = write_experiment(tmp_path, "campaign", replications=40, steps=6, base_seed=12)
    reference = tmp_path / "reference"
    assert sweep(exp, reference, workers=1, progress=False).completed == 80
    out = tmp_path / "killed"
    kills = sigkill_trials(exp, out, SLOW_KILL_TRIALS, 80, np.random.default_rng(SEED + 1), tmp_path / "kills.log",
                           *options)
    before = len(completed_runs(out))
    print(f"\nSIGKILL campaign {' '.join(options)}: {kills} kills over 80 runs ({before} complete by the last), "
          "then --resume")
    assert kills == SLOW_KILL_TRIALS, (tmp_path / "kills.log").read_text()[-3000:]
    resume_to_the_end(exp, out, reference, *options)


# -- 2. a Dask worker killed mid-sweep ----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Child processes, whichever of the parent's threads started them."""
    return [int(c) for path in Path(f"/proc/{pid}/task").glob("*/children") for c in path.read_text().split()]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the worker processes")
@pytest.mark.parametrize("batch", [None, 3], ids=["run-files", "batches"])
def test_a_dask_worker_killed_mid_sweep_loses_nothing(small: tuple[Path, Path], tmp_path: Path,
                                                      batch: int | None) -> None:
    """A cluster of our own (the shared one is used by other tests): a scheduler and two nannies,
    each with one worker process, all on 127.0.0.1. One worker process is SIGKILLed (as by the OOM
    killer) once the first run (or batch) is complete; its nanny starts a new one and the scheduler
    gives the lost run (or batch) to a live worker."""
    distributed = pytest.importorskip("distributed")
    exp, reference = small
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = [tmp_path / "scheduler.log", tmp_path / "worker-0.log", tmp_path / "worker-1.log"]
    scheduler = start_process(dask_command("scheduler") + ["--host", "127.0.0.1", "--port", str(port),
                                                     "--dashboard-address", f"127.0.0.1:{free_port()}"],
                       logs[0], tmp_path)
    nannies = [start_process(dask_command("worker") + [address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                                                 "--dashboard-address", f"127.0.0.1:{free_port()}",
                                                 "--local-directory", str(tmp_path / f"w{i}"),
                                                 "--death-timeout", "60"], logs[i + 1], tmp_path) for i in range(2)]
    out = tmp_path / "dask"
    killed: list[int] = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((out / "checksums").glob("scenario=*/*.json")):
            time.sleep(0.002)
        workers = [c for c in _children(nannies[0].pid)
                   if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]
        if workers:
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        killer = threading.Thread(target=kill_a_worker, daemon=True)
        killer.start()
        report = sweep(exp, out, scheduler=address, progress=False, batch=batch)
        killer.join(timeout=60)
    finally:
        for proc in nannies:
            stop_process(proc)
        stop_process(scheduler)
    assert killed, "the sweep ended before a worker could be killed:\n" + "\n".join(tail(log) for log in logs)
    assert (report.completed, report.failed) == (16, 0), (report, [tail(log) for log in logs])
    assert_final(out, reference, batched=batch is not None)


# -- 3. a full disk, a read-only folder -----------------------------------------------------------------


class DiskFull:
    """``DataFrame.write_parquet`` that writes part of a file and fails with ENOSPC after ``allowed``
    successful writes (as when the disk fills up), until ``free()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, allowed: int) -> None:
        self.allowed = allowed
        self.calls = 0
        self.monkeypatch = monkeypatch
        original = pl.DataFrame.write_parquet

        def write_parquet(df: pl.DataFrame, file, *args, **kwargs):
            self.calls += 1
            if self.calls > self.allowed:
                Path(file).write_bytes(b"PAR1 half a file")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
            return original(df, file, *args, **kwargs)

        monkeypatch.setattr(pl.DataFrame, "write_parquet", write_parquet)

    def free(self) -> None:
        self.monkeypatch.undo()


def read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Writing anything under ``folder`` fails with EROFS, as on a read-only mount (simulated:
    the tests may run as root, whom file modes do not stop)."""
    root = str(folder.resolve())

    def inside(path: object) -> bool:
        try:
            return str(Path(os.fsdecode(path)).resolve()).startswith(root)
        except (TypeError, ValueError):
            return False

    def refuse(path: object) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    real_replace, real_unlink, real_rename, real_rmdir = os.replace, os.unlink, os.rename, os.rmdir

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and inside(file) and any(c in mode for c in "wax+"):
            raise refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if inside(path):
            if os.path.exists(path):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(path))
            raise refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def guard(real):
        def wrapped(path, *args, **kwargs):
            if inside(path):
                raise refuse(path)
            return real(path, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", mkdir)
    for name, real in (("replace", real_replace), ("unlink", real_unlink), ("rename", real_rename),
                       ("rmdir", real_rmdir)):
        monkeypatch.setattr(os, name, guard(real))


def assert_one_line_error(result, *mentions: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()  # progress lines may come first
    assert "Traceback" not in result.output
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    err = errors[0]
    for m in mentions:
        assert m in err, (m, err)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_a_full_disk_keeps_the_complete_runs_and_resume_finishes(small: tuple[Path, Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    exp, reference = small
    out = tmp_path / "out"
    per_run = len(TABLES)
    disk = DiskFull(monkeypatch, allowed=1 + 3 * per_run + 4)  # points.parquet, 3 runs, part of the 4th
    result = cli("sweep", "--no-figures", exp, "--out", out, "--workers", "1")
    disk.free()
    assert_one_line_error(result, "No space left on device", "3 of 16 runs are complete and kept", "--resume")
    done = completed_runs(out)
    assert len(done) == 3
    before = run_files(out, done)
    assert not list(out.rglob(".*.tmp")), "a temporary file was left behind"

    resumed = cli("sweep", "--no-figures", exp, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert done_counts(resumed.stdout) == (13, 3, 0)
    assert_kept(out, before, done)
    assert_final(out, reference)


def test_a_read_only_folder_is_refused_untouched_and_resume_finishes(small: tuple[Path, Path], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    exp, reference = small
    out = tmp_path / "out"
    disk = DiskFull(monkeypatch, allowed=1 + 5 * len(TABLES))  # a sweep stopped after 5 runs
    assert cli("sweep", "--no-figures", exp, "--out", out, "--workers", "1").exit_code == 2
    disk.free()
    done = completed_runs(out)
    assert len(done) == 5
    before = snapshot(out)

    with monkeypatch.context() as m:
        read_only(m, out)
        result = cli("sweep", "--no-figures", exp, "--out", out, "--resume", "--workers", "1")
    assert_one_line_error(result, "Read-only file system", "--resume")
    assert snapshot(out) == before, "the read-only folder was changed"

    resumed = cli("sweep", "--no-figures", exp, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert done_counts(resumed.stdout) == (11, 5, 0)
    assert_final(out, reference)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="file modes do not stop root")
def test_a_folder_without_write_permission_for_real(small: tuple[Path, Path], tmp_path: Path) -> None:
    exp, reference = small
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    for run_id in sorted(completed_runs(out))[:4]:  # four runs to do again
        for table in TABLES:
            run_path(out, table, run_id.split("-p")[0], run_id).unlink()
    folders = [out, *[p for p in out.rglob("*") if p.is_dir()]]
    for p in folders:
        p.chmod(0o555)
    try:
        result = cli("sweep", "--no-figures", exp, "--out", out, "--resume", "--workers", "1")
    finally:
        for p in folders:
            p.chmod(0o755)
    assert_one_line_error(result, "--resume")
    resumed = cli("sweep", "--no-figures", exp, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert_final(out, reference)


# -- 4. result files damaged by hand before --resume ------------------------------------------------------


def damage(out: Path, rng: np.random.Generator) -> tuple[set[str], int]:
    """Damage files of several runs in different ways; returns the runs that must run again and
    the number of files damaged."""
    ids = sorted(completed_runs(out))
    label = lambda run_id: run_id.split("-p")[0]
    path = lambda table, run_id: run_path(out, table, label(run_id), run_id)
    victims = iter(ids)
    again: set[str] = set()

    r = next(victims)  # truncated to half
    data = path("steps", r).read_bytes()
    path("steps", r).write_bytes(data[: len(data) // 2])
    again.add(r)
    r = next(victims)  # overwritten with garbage
    path("labs", r).write_bytes(rng.bytes(3000))
    again.add(r)
    r = next(victims)  # one byte changed in the middle: the file may still decode, with other values
    data = bytearray(path("contracts", r).read_bytes())
    data[len(data) // 2] ^= 0x01
    path("contracts", r).write_bytes(bytes(data))
    again.add(r)
    r = next(victims)  # deleted
    path("prices", r).unlink()
    again.add(r)
    r = next(victims)  # the runs row replaced by garbage
    path("runs", r).write_bytes(b"PAR1" + rng.bytes(500) + b"PAR1")
    again.add(r)
    r = next(victims)  # the checksums themselves damaged
    checksum_path(out, label(r), r).write_text('{"run_id": "x", "sha256": {"steps": ')
    again.add(r)
    r, other = next(victims), next(victims)  # a valid file of another run copied over it (edited by hand)
    shutil.copyfile(path("fleet", other), path("fleet", r))
    again.add(r)
    r = next(victims)  # emptied
    path("vendors", r).write_bytes(b"")
    again.add(r)
    r = next(victims)  # its checksums deleted, files intact: still complete (checked by decoding every file)
    checksum_path(out, label(r), r).unlink()
    return again, 9


@needs_script
def test_damaged_result_files_are_detected_and_run_again(small: tuple[Path, Path], tmp_path: Path) -> None:
    exp, reference = small
    out = tmp_path / "damaged"
    shutil.copytree(reference, out)
    again, damaged = damage(out, np.random.default_rng(SEED))
    print(f"\ndamaged {damaged} files, {len(again)} runs to run again")
    intact = completed_runs(out)
    assert not intact & again
    before = run_files(out, intact)
    proc = subprocess.run([str(SCRIPT), "sweep", "--no-figures", str(exp), "--out", str(out), "--resume"],
                          check=False, capture_output=True, text=True, cwd=tmp_path, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "panicked" not in proc.stderr, proc.stderr[-3000:]
    assert done_counts(proc.stdout) == (len(again), 16 - len(again), 0), proc.stdout
    assert_kept(out, before, intact)  # incl. the run whose checksums were deleted: kept as it was
    assert_one_file_per_run(out, [*TABLES], set(run_ids(reference)))
    assert_same_dataset(reference, out)


def test_damage_in_a_folder_written_before_checksums_is_detected_by_decoding(small: tuple[Path, Path],
                                                                             tmp_path: Path) -> None:
    """A folder from before checksums existed: a run is complete when every file decodes in full;
    a damaged footer (on which polars may even panic) means: run it again."""
    exp, reference = small
    out = tmp_path / "legacy"
    shutil.copytree(reference, out)
    shutil.rmtree(out / "checksums")
    ids = sorted(completed_runs(out))
    assert len(ids) == 16
    rng = np.random.default_rng(SEED + 2)
    victims = ids[:3]
    for r, table in zip(victims, ["steps", "labs", "runs"], strict=True):
        path = run_path(out, table, r.split("-p")[0], r)
        data = bytearray(path.read_bytes())
        for i in rng.integers(len(data) - 40, len(data) - 8, size=6):  # the footer: metadata and its length
            data[int(i)] = int(rng.integers(256))
        path.write_bytes(bytes(data[: len(data) - int(rng.integers(0, 3))]))
    again = set(ids) - completed_runs(out)
    assert again <= set(victims) and again, again
    result = cli("sweep", "--no-figures", exp, "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert done_counts(result.stdout) == (len(again), 16 - len(again), 0)
    assert_same_dataset(reference, out)


def test_a_damaged_design_table_is_rewritten_on_resume(small: tuple[Path, Path], tmp_path: Path) -> None:
    exp, reference = small
    out = tmp_path / "points"
    shutil.copytree(reference, out)
    (out / "points.parquet").write_bytes(b"garbage")
    result = cli("sweep", "--no-figures", exp, "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert done_counts(result.stdout) == (0, 16, 0)
    assert_same_dataset(reference, out)


def test_reading_a_damaged_folder_is_a_one_line_error(small: tuple[Path, Path], tmp_path: Path) -> None:
    _, reference = small
    out = tmp_path / "read"
    shutil.copytree(reference, out)
    victim = next((out / "steps").glob("scenario=*/*.parquet"))
    victim.write_bytes(victim.read_bytes()[:100])
    for command in (["plot", out, "--format", "png"], ["compare", out]):
        assert_one_line_error(cli(*command), "cannot be read", "--resume")
    assert json.loads((out / "experiment.json").read_text())  # nothing else was touched


def test_a_run_killed_before_its_runs_row_is_not_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checksums are written before the ``runs`` row that commits a run: killed between the two,
    the run is not complete (it is run again), and no complete run is ever left without checksums."""
    from market import run
    from market.batch import storage

    tables = dict(run("baseline", steps=2, seed=1, run_id="baseline-p0000-r000").tables)
    write_checksums = storage._write_checksums

    def killed(*args: object) -> None:  # as a SIGKILL right after the checksums are in place
        write_checksums(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "_write_checksums", killed)
    with pytest.raises(KeyboardInterrupt):
        storage.write_run(tmp_path, "baseline", "baseline-p0000-r000", tables)
    assert checksum_path(tmp_path, "baseline", "baseline-p0000-r000").is_file()
    assert not run_path(tmp_path, "runs", "baseline", "baseline-p0000-r000").exists()
    assert completed_runs(tmp_path) == set()
    monkeypatch.setattr(storage, "_write_checksums", write_checksums)
    storage.write_run(tmp_path, "baseline", "baseline-p0000-r000", tables)  # run again on --resume
    assert completed_runs(tmp_path) == {"baseline-p0000-r000"}
