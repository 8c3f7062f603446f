"""The figure set (market.analysis.figures): every figure an experiment supports is written as PNG
and SVG; figures the data lack are skipped with a reason, never raised.

Two tiny experiments, built once per session: two scenarios without a design (18 months, so that
Google's withholding starts in one run), and a one-scenario grid sweep over the withholding share.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure

import market
from market.analysis.figures import (
    FIGURES,
    SERIES,
    SERIES_OF,
    FigureReport,
    Skip,
    plot_experiment,
    plot_scenario_comparison,
    plot_sweep_outcomes,
    plot_vendor_shares,
    plot_withholding_payoff,
)
from market.analysis.style import SCENARIO_COLOURS, VENDOR_COLOURS, scenario_colours, vendor_colours

FORMATS = ("png", "svg")
ALWAYS = ["vendor_shares", "prices", "chip_prices", "lab_vendor_mix", "lab_compute", "hhi", "who_gains"]
DESIGN_ONLY = ["sweep_outcomes", "withholding_payoff"]


def _sweep(tmp: Path, text: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "experiment.toml").write_text(text)
    report = market.sweep(tmp / "experiment.toml", out=tmp / "out", workers=1, progress=False)
    assert report.failed == 0, report.failures
    return tmp / "out"


@pytest.fixture(scope="session")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FigureReport]:
    out = _sweep(tmp_path_factory.mktemp("figures-scenarios"), """
name = "two_scenarios"
scenarios = ["baseline", "openai_google_tpu"]
replications = 2
steps = 18
base_seed = 2
""")
    return out, plot_experiment(out)


@pytest.fixture(scope="session")
def withholding_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FigureReport]:
    out = _sweep(tmp_path_factory.mktemp("figures-sweep"), """
name = "withholding_grid"
scenarios = ["openai_google_tpu"]
replications = 2
steps = 16
base_seed = 3

[design]
kind = "grid"
[design.parameters."clouds.gcp.withholding.share"]
values = [0.0, 1.0]
""")
    return out, plot_experiment(out, out=out.parent / "figs", formats=FORMATS)


def _assert_written(report: FigureReport, folder: Path, names: list[str]) -> None:
    for name in names:
        assert name not in report.skipped, f"{name} skipped: {report.skipped.get(name)}"
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert png in report.written and svg in report.written, name
        assert png.stat().st_size > 5_000, f"{png} is only {png.stat().st_size} bytes"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert svg.stat().st_size > 0 and b"<svg" in svg.read_bytes()[:2_000]


def test_scenario_experiment_writes_every_figure_it_supports(scenarios):
    out, report = scenarios
    withheld = market.scan(out)["steps"].select(pl.col("withheld_top_tier_chips").sum()).collect().item()
    assert withheld > 0, "the fixture should withhold top-tier chips at least once; pick another base_seed"
    folder = out / "figures"  # the default
    _assert_written(report, folder, [*ALWAYS, "withholding", "scenario_comparison"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(str(p.name) for p in report.written)
    assert set(report.written) | {folder / f"{n}.{f}" for n in report.skipped for f in FORMATS} == {
        folder / f"{n}.{f}" for n in FIGURES for f in FORMATS}


def test_scenario_experiment_skips_sweep_figures_with_a_reason(scenarios):
    _, report = scenarios
    assert set(report.skipped) == set(DESIGN_ONLY)
    assert "design parameters" in report.skipped["sweep_outcomes"]
    assert "withholding" in report.skipped["withholding_payoff"]


def test_sweep_writes_sweep_figures_and_skips_the_comparison(withholding_sweep):
    out, report = withholding_sweep
    folder = out.parent / "figs"
    _assert_written(report, folder, [*ALWAYS, *DESIGN_ONLY])
    assert "one scenario" in report.skipped["scenario_comparison"]
    # OpenAI asks for the top tier once it rents TPUs at scale: within 16 months withholding shows
    assert folder / "withholding.png" in report.written
    assert set(report.skipped) == {"scenario_comparison"}


def test_figure_functions_return_figures_or_raise_skip(scenarios, withholding_sweep):
    tables, sweep_tables = market.scan(scenarios[0]), market.scan(withholding_sweep[0])
    assert isinstance(plot_vendor_shares(tables), Figure)
    assert isinstance(plot_sweep_outcomes(sweep_tables), Figure)
    for draw, data in ((plot_sweep_outcomes, tables), (plot_withholding_payoff, tables),
                       (plot_scenario_comparison, sweep_tables)):
        with pytest.raises(Skip, match=r"\w+"):
            draw(data)
    assert plt.get_fignums() == []  # figures never go through pyplot, so nothing is left open


def _pixels(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def test_a_figure_is_the_same_pixels_every_time_and_leaves_numpys_generator_alone(scenarios, withholding_sweep):
    """The strip plot's jitter is seeded and the design's dots are drawn in a fixed order: a figure
    of the same tables is the same image (they differed from draw to draw), and the caller's global
    numpy state is as it was."""
    tables, sweep_tables = market.scan(scenarios[0]), market.scan(withholding_sweep[0])
    np.random.seed(7)  # the state a caller might rely on
    expected = np.random.random()
    np.random.seed(7)
    first = _pixels(plot_scenario_comparison(tables))
    assert np.random.random() == expected
    assert np.array_equal(first, _pixels(plot_scenario_comparison(tables)))
    assert np.array_equal(_pixels(plot_sweep_outcomes(sweep_tables)), _pixels(plot_sweep_outcomes(sweep_tables)))


def test_figures_over_time_draw_the_same_from_series_handed_in(scenarios):
    """A caller may hand in the per-run series a figure draws bands of (``SERIES``), computed once
    for many selections (the sweep browser): the figure is then the same, pixel for pixel."""
    tables = market.scan(scenarios[0])
    for name, make in SERIES_OF.items():
        given = {**tables, SERIES.format(name): make(tables).collect().lazy()}
        assert np.array_equal(_pixels(FIGURES[name](given)), _pixels(FIGURES[name](tables))), name


def test_only_the_requested_formats_are_written(scenarios, tmp_path):
    report = plot_experiment(scenarios[0], out=tmp_path, formats=("png",))
    assert report.written and all(p.suffix == ".png" and p.parent == tmp_path for p in report.written)


def test_an_experiment_without_complete_runs_skips_everything(tmp_path):
    (tmp_path / "empty").mkdir()
    report = plot_experiment(tmp_path / "empty")
    assert report.written == [] and set(report.skipped) == set(FIGURES)
    assert all(report.skipped.values())


def test_colours_are_fixed_with_a_sorted_fallback():
    assert vendor_colours(["google", "nvidia"]) == {"google": VENDOR_COLOURS["google"], "nvidia": "#76b900"}
    a = vendor_colours(["zeta", "alpha", "nvidia"])
    b = vendor_colours(["alpha", "nvidia", "zeta"])
    assert a == b and len({a["alpha"], a["zeta"], a["nvidia"]}) == 3
    assert scenario_colours(["mine", *SCENARIO_COLOURS])["baseline"] == SCENARIO_COLOURS["baseline"]
