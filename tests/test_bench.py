"""``market bench --quick`` runs every benchmark at tiny sizes and reports every figure.

Nothing here is about speed: the quick sizes only prove that the benchmark code works.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from typer.testing import CliRunner

from market.bench import BENCHMARKS
from market.cli import app

FIGURES = {
    "collector": ["collector overhead (recording on / off)", "seconds per seed-scenario run"],
    "datacollector": ["Mesa DataCollector / ours (collect + to polars)"],
    "batch_run": ["mesa.batch_run overhead / our sweep's", "runs per second, mesa.batch_run",
                  "runs per second, our sweep"],
    "parallel": ["parallel efficiency, local pool (2 workers)", "parallel efficiency, Dask cluster (2 workers)",
                 "runs per second per core (local pool)"],
    "scaling": ["log-log slope of time per step"],
    "memory": ["peak RSS"],
    "readback": ["reading back: compacted sweep / one Parquet file"],
    "explore": ["what-if, first result", "sweep browser, redraw"],
}


def test_quick_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--quick", "--json", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["machine"]["cores"] >= 1
    assert {"python", "mesa", "polars", "numpy"} <= set(report["machine"])
    assert set(FIGURES) == set(BENCHMARKS)
    for bench, names in FIGURES.items():
        got = [f for f in report["figures"] if f["benchmark"] == bench]
        assert len(got) == len(names), (bench, [f["figure"] for f in got])
        for f, name in zip(got, names, strict=True):
            assert f["figure"].startswith(name)
            assert isinstance(f["value"], float) and math.isfinite(f["value"]), f
            # times and ratios are positive; a log-log slope is any real number (at the quick
            # mode's 20-80 labs a step's fixed costs dominate, so it sits near 0, either side)
            assert f["value"] > 0 or f["figure"].startswith("log-log slope"), f
            assert f["met"] in (True, False) if f["target"] else f["met"] is None
            assert f["details"]
    identical = {f["benchmark"]: f["data"]["identical"] for f in report["figures"] if "identical" in f["data"]}
    # both sides recorded the same values; recording left the run where it would have been without
    assert identical == {"collector": True, "datacollector": True, "readback": True}
    assert "collector overhead" in result.stdout and "cores" in result.stdout


def test_the_collector_benchmark_notices_a_recorder_that_changes_the_run(monkeypatch) -> None:
    """The "same end state" check can fail: a recorder that nudges the model is caught."""
    from market.bench import QUICK, bench_collector
    from market.recording import Recorder

    collect = Recorder.collect

    def meddling(self: Recorder) -> None:
        collect(self)
        self.model.lab_list[0].demand *= 1.0 + 1e-12

    monkeypatch.setattr(Recorder, "collect", meddling)
    overhead = bench_collector(QUICK, repeats=1)[0]
    assert overhead.data["identical"] is False and "same end state: NO" in overhead.details


def test_against_times_another_checkout_run_for_run(tmp_path: Path) -> None:
    """``--against DIR`` adds two ratios, this checkout over DIR's, each from runs timed in turn;
    here DIR is this very checkout, so both sides run the same code."""
    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--quick", "--only", "against", "--against", str(root),
                                      "--json", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    figures = json.loads(out.read_text())["figures"]
    assert [f["benchmark"] for f in figures] == ["against", "against"]
    assert figures[0]["figure"].startswith("seed-scenario run, this / ")
    assert figures[1]["figure"].startswith("step with 80 labs, this / ")
    for f in figures:
        assert math.isfinite(f["value"]) and f["value"] > 0 and f["target"] == "<= 1.2"
        assert len(f["data"]["theirs"]) == len(f["data"]["ours"]) >= 1


def test_against_mistakes_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    no_dir = runner.invoke(app, ["bench", "--quick", "--only", "against"])
    assert no_dir.exit_code == 2 and "--against" in no_dir.output
    not_a_checkout = runner.invoke(app, ["bench", "--quick", "--only", "against", "--against", str(tmp_path)])
    assert not_a_checkout.exit_code == 2 and "no market/ package" in not_a_checkout.output


def test_memory_is_each_forkserver_workers_own_peak(tmp_path: Path) -> None:
    """The pool's workers are forked by a fork server, so the sweep process's RUSAGE_CHILDREN never
    sees them: each of the two workers reports its own peak, and a worker that imported the
    package and ran models holds tens of MB at least."""
    from market.bench.memory import measure_sweep

    got = measure_sweep(4, 1, tmp_path / "sweep", workers=2)
    assert got["runs"] == 4 and got["failed"] == 0
    assert len(got["workers_mb"]) == 2 and os.getpid() not in got["worker_pids"]  # two workers answered
    assert min(got["workers_mb"]) > 30 and got["worker_mb"] == max(got["workers_mb"])
