"""Global sensitivity analysis: the Morris design, the analysis on a known function, a tiny real
Morris sweep end to end (``sensitivity()`` and ``market sensitivity``), and the errors for folders
that are not a finished morris or saltelli sweep.

The real sweep is tiny: 3 parameters x 3 trajectories = 12 design points, 1 replication, 4 steps.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from market.analysis.outcomes import OUTCOMES
from market.analysis.sensitivity import SensitivityReport, _noise, analyse, plot_sensitivity, sensitivity
from market.batch import ExperimentError, load_experiment, sweep
from market.batch.designs import DESIGNS, Morris, Parameter
from market.cli import app

runner = CliRunner()

RANGES = {"x1": Parameter(low=0.0, high=1.0), "x2": Parameter(low=0.0, high=10.0), "x3": Parameter(low=-1.0, high=1.0)}
DESIGN_RECORD = {"parameters": {n: {"low": p.low, "high": p.high, "integer": False} for n, p in RANGES.items()}}

TINY = """
name = "tiny_morris"
scenarios = ["openai_google_tpu"]
replications = 1
steps = 4
base_seed = 7

[design]
kind = "morris"
samples = 3
levels = 4

[design.parameters."clouds.gcp.withholding.share"]
low = 0.0
high = 1.0

[design.parameters."labs.openai.switching_cost"]
low = 0.25
high = 2.0

[design.parameters."vendors.google.packaging_share"]
low = 0.10
high = 0.28
"""


def assert_user_error(result, *mentions: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for m in mentions:
        assert m in err, (m, err)


def synthetic_means(kind: str, samples: int, f, seed: int = 5, **extra) -> pl.DataFrame:
    """A points table of the design (in point order) with outcome ``y = f(x1, x2, x3)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Saltelli warns for samples not a power of two
        points = DESIGNS[kind](RANGES, samples, **extra).points(seed)
    return pl.DataFrame([{"point": i, **p, "y": f(p["x1"], p["x2"], p["x3"])} for i, p in enumerate(points)])


# -- the design ----------------------------------------------------------------------------------


@pytest.mark.parametrize("samples, levels", [(3, 4), (10, 4), (5, 6)])
def test_morris_points_count_bounds_grid_and_trajectories(samples: int, levels: int) -> None:
    d = len(RANGES)
    points = Morris(RANGES, samples, levels=levels).points(seed=11)
    assert len(points) == samples * (d + 1)
    assert points == Morris(RANGES, samples, levels=levels).points(seed=11)
    assert points != Morris(RANGES, samples, levels=levels).points(seed=12)
    unit = np.array([[(p[n] - RANGES[n].low) / (RANGES[n].high - RANGES[n].low) for n in RANGES] for p in points])
    assert unit.min() >= -1e-12 and unit.max() <= 1 + 1e-12
    grid = np.arange(levels) / (levels - 1)  # the values sit on the levels' grid
    assert np.abs(unit[..., None] - grid).min(axis=-1).max() < 1e-9
    steps = np.diff(unit.reshape(samples, d + 1, d), axis=1)  # one parameter moves per step, by delta
    assert ((np.abs(steps) > 1e-12).sum(axis=2) == 1).all()
    delta = levels / (2 * (levels - 1))
    assert np.allclose(np.abs(steps).sum(axis=2), delta)


def test_morris_in_an_experiment_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    exp = load_experiment(path)
    assert exp.design.kind == "morris" and exp.design_obj().levels == 4
    assert len(exp.runs()) == 3 * 4 * 1
    for bad, why in (('levels = 4', 'levels = 3'), ('levels = 4', 'levels = 5')):
        path.write_text(TINY.replace(bad, why))
        with pytest.raises(ExperimentError, match="even number of levels"):
            load_experiment(path)
    path.write_text(TINY.replace('kind = "morris"', 'kind = "lhs"'))
    with pytest.raises(ExperimentError, match="morris design only"):
        load_experiment(path)
    path.write_text(TINY.replace("samples = 3\n", ""))
    with pytest.raises(ExperimentError, match="needs samples"):
        load_experiment(path)


# -- the analysis on known functions -------------------------------------------------------------


def test_morris_known_answer_ranks_and_values() -> None:
    # linear: every elementary effect is coefficient x range, so mu* = 5 x 1, 0.1 x 10, 0 exactly
    means = synthetic_means("morris", 8, lambda x1, x2, x3: 5 * x1 + 0.1 * x2 + 0 * x3)
    table, skipped = analyse(means, {"kind": "morris", "samples": 8, "levels": 4, **DESIGN_RECORD}, ["y"], seed=5)
    assert not skipped
    assert table["parameter"].to_list() == ["x1", "x2", "x3"]
    assert table["rank"].to_list() == [1, 2, 3]
    assert np.allclose(table["mu_star"].to_numpy(), [5.0, 1.0, 0.0])
    assert np.allclose(table["mu"].to_numpy(), [5.0, 1.0, 0.0])
    assert np.allclose(table["sigma"].to_numpy(), 0.0, atol=1e-9)


def test_morris_known_answer_with_a_sign_and_an_interaction() -> None:
    # y = -3 x1 + x1 * x3: mu < 0 for x1, and x3's effect depends on x1 (sigma > 0)
    means = synthetic_means("morris", 20, lambda x1, x2, x3: -3 * x1 + 2 * x1 * x3)
    table, _ = analyse(means, {"kind": "morris", "samples": 20, "levels": 4, **DESIGN_RECORD}, ["y"], seed=5)
    row = {r["parameter"]: r for r in table.iter_rows(named=True)}
    assert table["parameter"][0] == "x1" and row["x1"]["mu"] < 0
    assert row["x3"]["sigma"] > 0.1 and row["x2"]["mu_star"] == 0.0


def test_sobol_known_answer() -> None:
    # y = 5 x1 + 0.1 x2: variances (5 x 1)^2 : (0.1 x 10)^2 = 25 : 1, so S1 ~ 0.96, 0.04, 0
    means = synthetic_means("saltelli", 256, lambda x1, x2, x3: 5 * x1 + 0.1 * x2)
    table, _ = analyse(means, {"kind": "saltelli", "samples": 256, **DESIGN_RECORD}, ["y"], seed=5)
    assert table["parameter"].to_list() == ["x1", "x2", "x3"]
    s1 = dict(zip(table["parameter"], table["S1"], strict=True))
    assert s1["x1"] == pytest.approx(25 / 26, abs=0.05) and s1["x2"] == pytest.approx(1 / 26, abs=0.03)
    assert abs(s1["x3"]) < 0.02


@pytest.mark.parametrize("kind, samples, scenarios", [("saltelli", 16, [None]), ("morris", 4, ["baseline", "x"])])
def test_figure_of_sobol_indices_and_of_several_scenarios(tmp_path: Path, kind: str, samples: int,
                                                           scenarios: list) -> None:
    base = synthetic_means(kind, samples, lambda x1, x2, x3: (5 * x1 + 0.1 * x2) / 100)
    means = pl.concat([base.with_columns(pl.lit(s or "openai_google_tpu").alias("scenario"),
                                         pl.col("y").alias("nvidia_compute_share"),
                                         pl.lit(0.0).alias("withheld_top_tier_chips")) for s in scenarios])
    record = {"kind": kind, "samples": samples, "levels": 4 if kind == "morris" else None, **DESIGN_RECORD}
    table, skipped = analyse(means, record, ["nvidia_compute_share", "withheld_top_tier_chips"], seed=5)
    names = [s or "openai_google_tpu" for s in scenarios]
    if kind == "morris":  # a constant outcome is analysed (mu* = 0); Sobol' has no variance to attribute
        assert not skipped and table.height == 2 * 3 * len(scenarios)
        assert (table.filter(pl.col("outcome") == "withheld_top_tier_chips")["mu_star"] == 0).all()
        table = table.with_columns(pl.lit(0.004).alias("noise_mu_star"))
    else:
        assert "withheld_top_tier_chips" in skipped and table.height == 3
    report = SensitivityReport("morris" if kind == "morris" else "sobol", table, names, list(RANGES),
                               means.height // len(scenarios), 2, means.height * 2, 12)
    fig = plot_sensitivity(report)
    assert len([ax for ax in fig.axes if ax.axison]) == table["outcome"].n_unique()
    fig.savefig(tmp_path / "f.png")


def test_points_not_of_the_design_are_refused() -> None:
    means = synthetic_means("morris", 4, lambda x1, x2, x3: x1)
    record = {"kind": "morris", "samples": 4, "levels": 4, **DESIGN_RECORD}
    with pytest.raises(ValueError, match="not the morris design"):
        analyse(means, record, ["y"], seed=6)  # another seed: other points
    with pytest.raises(ValueError, match="not the morris design"):
        analyse(means.with_columns(pl.col("point").reverse()), record, ["y"], seed=5)  # points in another order
    with pytest.raises(ValueError, match="not the morris design"):
        analyse(means.head(8), record, ["y"], seed=5)


def test_noise_floor_matches_its_formula() -> None:
    # two points, each with two replications sqrt(2) apart: within-point variance 1; delta 2/3
    per_run = pl.DataFrame({"scenario": ["s"] * 4, "point": [0, 0, 1, 1],
                            "y": [0.0, math.sqrt(2), 5.0, 5.0 + math.sqrt(2)]})
    noise = _noise(per_run, ["y"], replications=2, levels=4)["noise_mu_star"][0]
    assert noise == pytest.approx(2 * 1.0 / ((2 / 3) * math.sqrt(math.pi * 2)))
    assert _noise(per_run, ["y"], replications=1, levels=4)["noise_mu_star"][0] is None


# -- a real sweep end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sensitivity")
    (root / "tiny.toml").write_text(TINY)
    report = sweep(root / "tiny.toml", root / "out", workers=1, progress=False)
    assert report.completed == 12 and report.failed == 0
    return report.out


def test_sensitivity_of_a_real_morris_sweep(tiny_sweep: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    shutil.copytree(tiny_sweep, folder)
    report = sensitivity(folder)
    params = ["clouds.gcp.withholding.share", "labs.openai.switching_cost", "vendors.google.packaging_share"]
    assert report.method == "morris" and report.parameters == params
    assert (report.points, report.replications, report.runs, report.steps) == (12, 1, 12, 4)
    analysed = [o for o in OUTCOMES if o not in report.skipped]
    assert analysed, report.skipped
    table = report.table
    assert table.height == len(analysed) * len(params)
    assert table.select("outcome", "parameter").n_unique() == table.height
    assert set(table["outcome"]) == set(analysed) and set(table["parameter"]) == set(params)
    assert np.isfinite(table["mu_star"].to_numpy()).all() and (table["mu_star"] >= 0).all()
    for _, group in table.group_by("outcome"):  # sorted by importance within each outcome
        assert group["rank"].to_list() == [1, 2, 3]
        assert group["mu_star"].to_list() == sorted(group["mu_star"].to_list(), reverse=True)
    assert table["noise_mu_star"].is_null().all()  # one replication: no noise estimate
    assert report.csv == folder / "sensitivity.csv" and report.csv.stat().st_size > 0
    assert pl.read_csv(report.csv).height == table.height
    assert {p.name for p in report.figures} == {"sensitivity.png", "sensitivity.svg"}
    assert all(p.stat().st_size > 1000 for p in report.figures)
    one = sensitivity(folder, ["nvidia_compute_share"], write=False)
    assert set(one.table["outcome"]) <= {"nvidia_compute_share"}
    with pytest.raises(ValueError, match="unknown outcome 'nope'"):
        sensitivity(folder, ["nope"], write=False)


def test_missing_runs_are_named(tiny_sweep: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    shutil.copytree(tiny_sweep, folder)
    next((folder / "runs").glob("scenario=*/*p0005-r000.parquet")).unlink()
    with pytest.raises(ValueError, match=r"not finished: 1 of 12 runs .*p0005-r000.*--resume"):
        sensitivity(folder, write=False)


def _fake_sweep(tmp_path: Path, design: dict | None) -> Path:
    folder = tmp_path / "fake"
    folder.mkdir()
    exp = {"name": "fake", "scenarios": ["baseline"], "replications": 1, "design": design}
    (folder / "experiment.json").write_text(json.dumps({"fingerprint": "x", "experiment": exp}))
    return folder


@pytest.mark.parametrize("design, why", [
    ({"kind": "grid", "samples": None, "parameters": {"x": {"values": [1, 2]}}}, "has a 'grid' design"),
    (None, "has no design"),
])
def test_not_a_morris_or_saltelli_sweep(tmp_path: Path, design, why: str) -> None:
    folder = _fake_sweep(tmp_path, design)
    with pytest.raises(ValueError, match=why):
        sensitivity(folder)
    assert_user_error(runner.invoke(app, ["sensitivity", str(folder)]), why)
    with pytest.raises(ValueError, match="no experiment.json"):
        sensitivity(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        sensitivity(tmp_path / "nowhere")


def test_cli(tiny_sweep: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    shutil.copytree(tiny_sweep, folder)
    result = runner.invoke(app, ["sensitivity", str(folder), "--top", "2"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Morris screening, 3 trajectories × 4 points" in result.stdout
    assert "Nvidia compute share" in result.stdout and "mu*" in result.stdout
    assert (folder / "sensitivity.csv").is_file() and (folder / "figures" / "sensitivity.png").is_file()
    assert_user_error(runner.invoke(app, ["sensitivity", str(tmp_path / "nowhere")]), "is not a folder")
    assert_user_error(runner.invoke(app, ["sensitivity", str(tmp_path)]), "no experiment.json")
    assert_user_error(runner.invoke(app, ["sensitivity", str(folder), "--outcome", "nope"]), "unknown outcome")
    next((folder / "runs").glob("scenario=*/*p0000-r000.parquet")).unlink()
    assert_user_error(runner.invoke(app, ["sensitivity", str(folder)]), "not finished", "--resume")

