"""docs/VALIDATION.md §3: what a 12-month halving of packaging should do to rental prices, derived
from what the model states about demand, against what the model does
(experiments/supply_shock_check.py, on 3 paired seeds here; the page quotes 10)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import experiment_script


@pytest.fixture(scope="module")
def check():
    return experiment_script("supply_shock_check").derive(seeds=3, workers=1)


def test_the_shock_leaves_the_stock_short_and_prices_rise(check) -> None:
    w = check.window
    assert w.sum() >= 6  # months with the stock 2 % or more below its path
    assert check.stock[w].mean() < -0.03
    assert check.rented[w].mean() < -0.03  # idle capacity does not absorb the cut
    assert check.posted[w].mean() > 0.01
    assert check.unmet[w].mean() > 0.0


def test_each_stated_mechanism_narrows_the_gap_to_the_model(check) -> None:
    """The back of the envelope (short-run elasticity on the stock's shortfall) overstates the
    model's price response; adding the long-run adjustment of demand and the labs whose budgets
    bind (both stated in the model) brings the prediction to within half of the model's figure."""
    w = check.window
    naive = check.predicted(check.stock, long_run=False, budgets=False)[w].mean()
    long_run = check.predicted(check.rented, long_run=True, budgets=False)[w].mean()
    full = check.predicted(check.rented, long_run=True, budgets=True)[w].mean()
    model = check.posted[w].mean()
    assert naive > long_run > full > 0.0
    assert naive > 1.5 * model
    assert abs(full - model) < 0.5 * abs(naive - model)
    assert 0.5 < model / full < 1.5


def test_prediction_is_the_demand_curve_inverted(check) -> None:
    """Without the long run or budgets, the prediction is -dlnQ / e month by month."""
    predicted = check.predicted(check.stock, long_run=False, budgets=False)
    np.testing.assert_allclose(np.log1p(predicted), check.stock / check.elasticity, rtol=1e-12, atol=1e-15)
