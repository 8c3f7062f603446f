"""Batches: a worker writes several complete runs together, one file per table (``batch-<k>``).

The dataset is the one a file per run gives, and what holds for run files holds for batches: a
batch killed before its commit, or damaged later, is deleted and its runs run again; a failed run
keeps its own ``runs`` row until it is run again; compaction merges batches and run files, and
a compaction killed after its commit counts nothing twice.
"""

from __future__ import annotations

import shutil
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import polars as pl
import pytest
from helpers import assert_same_dataset, assert_whole, batch_runs, names

import market
from market.batch import runner, storage
from market.batch.experiment import Experiment
from market.batch.runner import Task, _batches
from market.batch.storage import compact, completed_runs, repair

EXP = Experiment(name="batched", scenarios=["baseline", "openai_google_tpu"], replications=5, steps=2, base_seed=7)
N = 10
IDS = {s.run_id for s in EXP.runs()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one-per-run") / "sweep"
    assert market.sweep(EXP, out, workers=1, progress=False, batch=1).completed == N
    assert all(not n.split("/")[1].startswith("batch-") for n in names(out))
    return out


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batched") / "sweep"
    assert market.sweep(EXP, out, workers=1, progress=False, batch=4).completed == N
    return out


def copy(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "sweep"))


def test_a_batched_sweep_writes_batches_and_the_same_dataset(reference: Path, batched: Path) -> None:
    held = batch_runs(batched)
    assert held, names(batched)
    assert max(len(ids) for ids in held.values()) == 4
    assert_whole(batched)
    assert_same_dataset(reference, batched)
    assert completed_runs(batched) == completed_runs(reference) == IDS


def test_two_workers_write_the_same_dataset(reference: Path, tmp_path: Path) -> None:
    report = market.sweep(EXP, tmp_path / "two", workers=2, progress=False, batch=3)
    assert (report.completed, report.failed) == (N, 0)
    assert batch_runs(tmp_path / "two")
    assert_same_dataset(reference, tmp_path / "two")


def test_batches_shrink_towards_the_end_and_never_mix_scenarios() -> None:
    exp = Experiment(name="many", scenarios=["baseline", "openai_google_tpu", "tpu_merchant"], replications=30,
                     steps=2, base_seed=1)
    tasks = [Task(s, exp.name, s.scenario, {}, "unused") for s in exp.runs()]
    numbers = {"openai_google_tpu": 7}  # batches 0-6 of this scenario exist already
    chunks = list(_batches(tasks, 10, 2, numbers))
    assert [t for chunk, _ in chunks for t in chunk] == tasks  # every run once, in order
    left = len(tasks)
    for chunk, name in chunks:
        assert len({t.spec.scenario_label for t in chunk}) == 1
        assert 1 <= len(chunk) <= max(1, min(10, left // 4))  # at most the runs left / (2 x workers)
        assert (name is None) == (len(chunk) == 1)
        left -= len(chunk)
    assert max(len(c) for c, _ in chunks) == 10
    assert [len(c) for c, _ in chunks[-4:]] == [1, 1, 1, 1]  # the workers finish together
    named = [(c[0].spec.scenario_label, n) for c, n in chunks if n is not None]
    for label, first in [("baseline", 0), ("openai_google_tpu", 7), ("tpu_merchant", 0)]:
        mine = [n for lab, n in named if lab == label]
        assert mine == [f"batch-{k:05d}" for k in range(first, first + len(mine))]
    assert numbers["openai_google_tpu"] == 7 + len([n for lab, n in named if lab == "openai_google_tpu"])
    assert list(_batches(tasks, 10, 2, {})) == list(_batches(tasks, 10, 2, {}))  # never depends on timing


def test_a_batch_killed_before_its_commit_is_removed_and_its_runs_run_again(reference: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "killed"
    real = storage.replace_atomically
    commits = []

    def killed_at_the_second_commit(path: Path, write) -> None:  # noqa: ANN001
        if path.parent.parent.name == "runs" and path.stem.startswith("batch-"):
            commits.append(path)
            if len(commits) == 2:
                raise KeyboardInterrupt  # killed after the batch's tables and checksums, before its runs file
        real(path, write)

    monkeypatch.setattr(storage, "replace_atomically", killed_at_the_second_commit)
    report = market.sweep(EXP, out, workers=1, progress=False, batch=4)
    monkeypatch.undo()
    assert report.interrupted
    torn = out / "steps" / commits[1].parent.name / f"{commits[1].stem}.parquet"  # its tables are there
    torn_ids = set(pl.read_parquet(torn)["run_id"])
    done = completed_runs(out)
    assert len(torn_ids) > 1 and done and not torn_ids & done
    assert done == {i for ids in batch_runs(out).values() for i in ids} | {n.split("/")[1] for n in names(out)
                                                                          if "batch-" not in n}

    repair(out)  # as --resume does first
    assert not [p for p in out.rglob(f"{commits[1].stem}.*") if p.parent.name == commits[1].parent.name]
    assert completed_runs(out) == done

    report = market.sweep(EXP, out, workers=1, progress=False, batch=4, resume=True)
    assert (report.completed, report.skipped, report.failed) == (N - len(done), len(done), 0)
    assert_whole(out)
    assert_same_dataset(reference, out)


def test_a_damaged_batch_is_deleted_and_its_runs_run_again(reference: Path, batched: Path, tmp_path: Path) -> None:
    out = copy(batched, tmp_path)
    name, ids = min(batch_runs(out).items())
    (out / "prices" / f"{name}.parquet").write_bytes(b"PAR1 torn")
    assert completed_runs(out) == IDS - set(ids)
    report = market.sweep(EXP, out, workers=1, progress=False, batch=4, resume=True)
    assert (report.completed, report.skipped) == (len(ids), N - len(ids))
    assert_whole(out)
    assert_same_dataset(reference, out)


def test_a_failed_run_keeps_its_own_row_until_it_is_run_again(reference: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Four failed runs: on resume, two are run as a batch (which deletes their failed rows) and
    two on their own (each overwrites its row)."""
    out = tmp_path / "failing"
    unlucky = sorted(IDS)[1:5]  # baseline r1-r4: the first batch (r0-r3) holds r0 only
    real = market.run

    def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if kwargs.get("run_id") in unlucky:
            raise RuntimeError("a fault injected by the test")
        return real(*args, **kwargs)

    monkeypatch.setattr(market, "run", run)
    report = market.sweep(EXP, out, workers=1, progress=False, batch=4)
    monkeypatch.undo()
    assert sorted(report.failures) == unlucky
    assert {f"scenario=baseline/{r}" for r in unlucky} <= set(names(out))  # their own runs rows, status failed
    assert batch_runs(out)["scenario=baseline/batch-00000"] == [min(IDS)]
    runs = pl.read_parquet(list((out / "runs").glob("scenario=*/*.parquet")))
    assert runs.height == N and sorted(runs.filter(pl.col("status") == "failed")["run_id"]) == unlucky

    report = market.sweep(EXP, out, workers=1, progress=False, batch=4, resume=True)
    assert (report.completed, report.skipped, report.failed) == (4, N - 4, 0)
    assert batch_runs(out)["scenario=baseline/batch-00001"] == unlucky[:2]
    assert_whole(out)  # the failed row is gone: one row per run
    assert_same_dataset(reference, out)


def test_compaction_merges_batches_and_run_files_without_splitting_a_batch(reference: Path, batched: Path,
                                                                          tmp_path: Path) -> None:
    out = copy(batched, tmp_path)
    batches = batch_runs(out)
    assert compact(out, runs_per_part=3) == N
    assert not batch_runs(out)
    parts = {f"{p.parent.name}/{p.stem}": sorted(pl.read_parquet(p, columns=["run_id"])["run_id"])
             for p in (out / "runs").glob("scenario=*/*.parquet")}
    assert all(n.split("/")[1].startswith("part-") for n in parts), parts
    assert any(len(ids) == 4 for ids in batches.values())  # larger than a part: a part of its own
    for ids in parts.values():
        assert len(ids) <= 3 or ids in batches.values()
    for ids in batches.values():
        assert any(set(ids) <= set(held) for held in parts.values())  # never split
    assert_whole(out)
    assert_same_dataset(reference, out)
    assert completed_runs(out) == IDS


def test_batches_a_part_covers_are_ignored_then_deleted(reference: Path, batched: Path, tmp_path: Path) -> None:
    """A compaction killed after its commit, before deleting the batches it merged."""
    out = copy(batched, tmp_path)
    compact(out)
    for src in batched.rglob("batch-*"):
        shutil.copy(src, out / src.relative_to(batched))
    assert batch_runs(out)
    assert_same_dataset(reference, out)  # covered batches are not read
    assert completed_runs(out) == IDS
    assert sorted(repair(out)) == [(label, "part-00000") for label in ("baseline", "openai_google_tpu")]
    assert not batch_runs(out) and not list(out.rglob("batch-*"))
    assert_same_dataset(reference, out)


def test_the_batch_option_is_checked(tmp_path: Path) -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(runner.ExperimentError, match="batch"):
            market.sweep(EXP, tmp_path / "never", workers=1, progress=False, batch=bad)
    assert not (tmp_path / "never").exists()


class DiesAfterWriting(Executor):
    """Runs each batch here, then reports that its worker died, as if it was killed after
    committing the batch and before answering."""

    _max_workers = 1

    def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        fn(*args, **kwargs)
        future = Future()
        future.set_exception(BrokenProcessPool("a worker died"))
        return future


def test_a_batch_whose_worker_keeps_dying_is_failed_not_counted_twice(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "dying"
    report = market.sweep(EXP, out, executor=DiesAfterWriting(), progress=False, batch=4)
    assert report.failed == N and "a worker died" in next(iter(report.failures.values()))
    assert not batch_runs(out) and not list(out.rglob("batch-*"))  # deleted: their runs are failed
    runs = pl.read_parquet(list((out / "runs").glob("scenario=*/*.parquet")))
    assert runs.height == N and set(runs["status"]) == {"failed"}
    assert completed_runs(out) == set()

    report = market.sweep(EXP, out, workers=1, progress=False, batch=4, resume=True)
    assert (report.completed, report.failed) == (N, 0)
    assert_whole(out)
    assert_same_dataset(reference, out)
