"""Compaction of a sweep's run files: the same dataset before and after, resume and repair still
work, and a compaction killed at any point loses nothing and counts nothing twice."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from helpers import assert_same_dataset

import market
from market.batch import storage
from market.batch.experiment import Experiment
from market.batch.storage import compact, completed_runs, repair, scan
from market.recording import TABLES

EXP = Experiment(name="packed", scenarios=["baseline", "openai_google_tpu"], replications=3, steps=2, base_seed=5)
N = 6


@pytest.fixture(scope="module")
def loose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loose") / "sweep"
    report = market.sweep(EXP, out, workers=1, progress=False, compact=False)
    assert report.completed == N
    return out


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "sweep"
    shutil.copytree(src, dst)
    return dst


def files(folder: Path, table: str) -> list[str]:
    return sorted(p.name for p in (folder / table).rglob("*.parquet"))


def test_compaction_keeps_the_dataset_and_leaves_one_part_per_scenario(loose: Path, tmp_path: Path) -> None:
    out = copy(loose, tmp_path)
    assert compact(out) == N
    for table in TABLES:
        assert files(out, table) == ["part-00000.parquet"] * 2, table
    assert_same_dataset(loose, out)
    assert completed_runs(out) == completed_runs(loose)
    assert compact(out) == 0  # nothing left to do


def test_parts_hold_at_most_runs_per_part(loose: Path, tmp_path: Path) -> None:
    out = copy(loose, tmp_path)
    assert compact(out, runs_per_part=2) == N
    assert files(out, "steps") == ["part-00000.parquet", "part-00000.parquet", "part-00001.parquet",
                                   "part-00001.parquet"]
    assert_same_dataset(loose, out)


def test_killed_before_commit_counts_nothing_twice(loose: Path, tmp_path: Path, monkeypatch) -> None:
    out = copy(loose, tmp_path)
    real = storage._sink_atomic

    def crash_on_commit(lf: pl.LazyFrame, path: Path, *args: object) -> None:
        if path.parent.parent.name == "runs":
            raise KeyboardInterrupt  # killed just before writing the commit
        real(lf, path, *args)

    monkeypatch.setattr(storage, "_sink_atomic", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        compact(out)
    monkeypatch.undo()
    assert any(p.name.startswith("part-") for p in (out / "steps").rglob("*.parquet"))
    assert_same_dataset(loose, out)  # uncommitted parts are ignored
    assert completed_runs(out) == completed_runs(loose)
    repair(out)
    assert not any(p.name.startswith("part-") for p in out.rglob("*.parquet"))
    assert compact(out) == N
    assert_same_dataset(loose, out)


def test_killed_after_commit_counts_nothing_twice(loose: Path, tmp_path: Path) -> None:
    out = copy(loose, tmp_path)
    compact(out)
    for table in TABLES:  # the run files it had not yet deleted
        for src in (loose / table).rglob("*.parquet"):
            shutil.copy(src, out / src.relative_to(loose))
    assert_same_dataset(loose, out)  # covered run files are ignored
    assert completed_runs(out) == completed_runs(loose)
    repair(out)
    for table in TABLES:
        assert files(out, table) == ["part-00000.parquet"] * 2, table


def test_a_corrupt_part_is_run_again_on_resume(loose: Path, tmp_path: Path) -> None:
    out = copy(loose, tmp_path)
    compact(out)
    (out / "labs" / "scenario=baseline" / "part-00000.parquet").write_bytes(b"PAR1 torn")
    assert completed_runs(out) == {r for r in completed_runs(loose) if not r.startswith("baseline")}
    report = market.sweep(EXP, out, workers=1, progress=False, resume=True, compact=False)
    assert (report.completed, report.skipped) == (3, 3)
    assert_same_dataset(loose, out)


def test_a_part_edited_so_that_it_still_decodes_is_detected_by_its_checksum(loose: Path, tmp_path: Path) -> None:
    """Parts carry checksums like run files: a part replaced by another valid Parquet file (here the
    other scenario's, which decodes fine) counts as damaged, is removed, and its runs run again."""
    out = copy(loose, tmp_path)
    compact(out)
    assert sorted(p.name for p in (out / "checksums").rglob("*.json")) == ["part-00000.json"] * 2
    shutil.copy(out / "prices" / "scenario=openai_google_tpu" / "part-00000.parquet",
                out / "prices" / "scenario=baseline" / "part-00000.parquet")
    assert completed_runs(out) == {r for r in completed_runs(loose) if not r.startswith("baseline")}
    report = market.sweep(EXP, out, workers=1, progress=False, resume=True, compact=True)
    assert (report.completed, report.skipped) == (3, 3)
    assert_same_dataset(loose, out)


def test_killed_between_commit_and_checksums_loses_nothing(loose: Path, tmp_path: Path) -> None:
    """A committed part without its checksums (killed just after the commit) still counts, and the
    next repair writes them; its run files are then removed."""
    out = copy(loose, tmp_path)
    compact(out)
    for sums in (out / "checksums").rglob("part-*.json"):
        sums.unlink()
    assert completed_runs(out) == completed_runs(loose)
    assert_same_dataset(loose, out)
    repair(out)
    assert sorted(p.name for p in (out / "checksums").rglob("*.json")) == ["part-00000.json"] * 2
    assert completed_runs(out) == completed_runs(loose)


def test_resume_after_compaction_adds_a_part(loose: Path, tmp_path: Path) -> None:
    out = copy(loose, tmp_path)
    for table in TABLES:  # three runs not done yet
        for p in (out / table).glob("scenario=baseline/*.parquet"):
            p.unlink()
    compact(out)
    report = market.sweep(EXP, out, workers=1, progress=False, resume=True, compact=True)
    assert (report.completed, report.skipped) == (3, 3)
    assert files(out, "steps") == ["part-00000.parquet", "part-00000.parquet"]
    assert_same_dataset(loose, out)


def test_failed_runs_keep_their_own_file(tmp_path: Path) -> None:
    exp = Experiment(name="faulty", scenarios=["baseline"], replications=2, steps=3, base_seed=1,
                     overrides={"faults.raise_at_step": 1})
    out = tmp_path / "faulty"
    report = market.sweep(exp, out, workers=1, progress=False, compact=True)
    assert report.failed == 2
    assert files(out, "runs") == sorted(f"{s.run_id}.parquet" for s in exp.runs())


def test_market_compact_command(loose: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from market.cli import app

    out = copy(loose, tmp_path)
    result = CliRunner().invoke(app, ["compact", str(out)])
    assert result.exit_code == 0, result.output
    assert f"compacted {N} runs" in result.output
    assert files(out, "labs") == ["part-00000.parquet"] * 2
    assert_same_dataset(loose, out)
    bad = CliRunner().invoke(app, ["compact", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "error:" in bad.output and "no experiment.json" in bad.output


def test_scan_is_a_lazy_read_only_mapping(loose: Path, monkeypatch) -> None:
    """market.scan lists the tables present and builds a table's frame only when it is asked for
    (opening a big sweep to query one table costs that table only)."""
    built = []
    real = storage._files
    monkeypatch.setattr(storage, "_files", lambda out, table, *a: built.append(table) or real(out, table, *a))
    tables = scan(loose)
    assert list(tables) == [*TABLES, "points"] and len(tables) == len(TABLES) + 1
    assert built == []
    assert tables["shares"].collect().height > 0 and built == ["shares"]
    assert tables["shares"] is tables["shares"] and built == ["shares"]  # built once
    assert "withholding" in tables and "nothing" not in tables
    with pytest.raises(KeyError):
        tables["nothing"]


def test_row_groups_are_bounded_in_bytes_not_rows(loose: Path, tmp_path: Path, monkeypatch) -> None:
    """The writer holds a whole row group in memory, so a table of wide rows (``runs`` holds each
    run's resolved configuration) gets few rows per group, one of narrow ones the rows of at most
    ``ROW_GROUP_FILES`` run files; rows split into many small groups read back as the same dataset."""
    sizes = {}
    real = storage._sink_atomic

    def spy(lf: pl.LazyFrame, path: Path, row_group_size: int | None = None) -> None:
        sizes[path.parent.parent.name] = row_group_size
        real(lf, path, row_group_size)

    monkeypatch.setattr(storage, "_sink_atomic", spy)
    compact(copy(loose, tmp_path / "a"))
    assert sizes["runs"] * 5_000 <= storage.ROW_GROUP_BYTES  # over 5 kB a row
    shares_per_file = pl.read_parquet(next((loose / "shares").rglob("*.parquet"))).height
    assert sizes["shares"] == storage.ROW_GROUP_FILES * shares_per_file
    monkeypatch.setattr(storage, "ROW_GROUP_BYTES", 1)  # one row per group
    out = copy(loose, tmp_path / "b")
    assert compact(out) == N
    assert sizes["contracts"] == sizes["runs"] == 1
    assert_same_dataset(loose, out)


def test_compaction_hashes_each_committed_part_once(loose: Path, tmp_path: Path, monkeypatch) -> None:
    """compact() verifies the parts already there once (in repair) and hands them on: a resumed
    sweep's compaction does not read a big part's files twice."""
    out = copy(loose, tmp_path)
    for table in TABLES:  # the baseline runs come later, as if added by --resume
        for p in (out / table).glob("scenario=baseline/*.parquet"):
            p.unlink()
    compact(out)
    for src in loose.rglob("scenario=baseline/*"):
        shutil.copy(src, out / src.relative_to(loose))
    hashed = []
    real = storage._sha256
    monkeypatch.setattr(storage, "_sha256", lambda path: hashed.append(path) or real(path))
    assert compact(out) == 3
    old_part = [p for p in hashed if p.parent.name == "scenario=openai_google_tpu"]
    assert sorted(p.parent.parent.name for p in old_part) == sorted(TABLES)  # each file once
    assert_same_dataset(loose, out)


def test_completed_runs_given_what_repair_returned(loose: Path, tmp_path: Path) -> None:
    """``completed_runs(out, repair(out))`` is ``completed_runs(out)`` without hashing the parts
    again, also after a damaged part was removed."""
    out = copy(loose, tmp_path)
    compact(out, runs_per_part=2)
    (out / "labs" / "scenario=baseline" / "part-00000.parquet").write_bytes(b"PAR1 torn")
    before = completed_runs(out)
    assert len(before) == N - 2
    assert completed_runs(out, repair(out)) == before == completed_runs(out)


def test_run_files_are_judged_one_by_one(loose: Path, tmp_path: Path, monkeypatch) -> None:
    """The ``runs`` rows of all run files are read at once, yet each file is judged on its own: one
    with an extra column (written by another version, before checksums) is complete, one saying
    failed, holding two rows or another run's row is not, and compaction leaves those runs their own
    files. If reading them at once fails, they are read one by one, with the same verdicts."""
    out = copy(loose, tmp_path)
    first, failed, doubled, misnamed = sorted(completed_runs(loose))[:4]
    for run_id, edit in [(first, lambda df: df.with_columns(note=pl.lit("older"))),
                         (failed, lambda df: df.with_columns(status=pl.lit("failed"))),
                         (doubled, lambda df: pl.concat([df, df])),
                         (misnamed, lambda df: df.with_columns(run_id=pl.lit(first)))]:
        path = next((out / "runs").rglob(f"{run_id}.parquet"))
        edit(pl.read_parquet(path, hive_partitioning=False)).write_parquet(path)
        next((out / "checksums").rglob(f"{run_id}.json")).unlink()
    expected = completed_runs(loose) - {failed, doubled, misnamed}
    assert completed_runs(out) == expected
    with monkeypatch.context() as m:
        m.setattr(pl, "scan_parquet", lambda *a, **k: pl.DataFrame().lazy().select(pl.col("x")))  # fails on collect
        assert completed_runs(out) == expected
    assert compact(out) == N - 3
    assert sorted(p.stem for p in (out / "runs").rglob("*.parquet") if not p.stem.startswith("part-")) == sorted(
        [failed, doubled, misnamed])
