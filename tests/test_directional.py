"""Directional (metamorphic) validation: move one lever, check the outcome moves the expected way.

Each check runs the model at two settings of one lever over the same 20 seeds (0-19), so the two
runs of a pair share their random numbers (lab demand shocks) and the paired difference isolates
the lever. The test is a one-sided Wilcoxon signed-rank test on the 20 paired differences
(``scipy.stats.wilcoxon``, ``alternative`` in the expected direction, ``zero_method="zsplit"``:
pairs with no difference count half for each side, the conservative choice), required at
p < 0.01, plus the sign of the mean paired difference. A lever that does not move the outcome is
reported as such: the check is marked ``xfail`` with what was measured, never
loosened (see the falsification tests at the end: identical settings give p = 0.5).

Runs go to a pool of two spawned processes; each returns only the numbers the checks need.
``pytest -s tests/test_directional.py`` prints, per check, the measure, n, both means, the mean
paired difference, how many pairs moved each way and the p-value (set
``MARKET_VALIDATION_JSON=path`` to also write them as JSON, e.g. for docs/VALIDATION.md).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy.stats import wilcoxon

import market
from market.analysis.outcomes import lab_vendor_share

SEEDS = tuple(range(20))  # paired replications: seed s at both settings of a lever
ALPHA = 0.01
WORKERS = 2
PARTNERS = ("anthropic", "apple", "ssi")  # Google Cloud's TPU partners besides OpenAI (baseline.toml)

RESULTS: dict[str, dict[str, Any]] = {}  # check -> statistics, printed at the end of the module
_CACHE: dict[tuple, dict[str, Any]] = {}  # (scenario, overrides, steps, seed) -> measures


# -- one run, in a worker process ----------------------------------------------------------------


def _measure(scenario: str, overrides_json: str, steps: int, seed: int) -> dict[str, Any]:
    """Run one simulation and return only the numbers the checks use (no tables)."""
    sc = market.load_scenario(scenario, json.loads(overrides_json))
    r = market.run(sc, steps=steps, seed=seed)
    last = steps - 1

    # Google top-tier TPU (tier at signing) PFLOP-months under contract during the run, by lab:
    # each contract counts its peak PFLOP/s for every month it is active before the run ends.
    top = r.contracts.filter(pl.col("vendor") == "google", pl.col("tier") == "top").with_columns(
        (pl.col("pflops") * pl.min_horizontal(pl.col("months"), steps - pl.col("step"))).alias("pflop_months"))
    by_lab = dict(top.group_by("lab").agg(pl.col("pflop_months").sum()).iter_rows())
    top_total = sum(by_lab.values())

    last12 = r.shares.filter(pl.col("step") > last - 12)
    prices = r.prices
    chip_top = {f"{p}@{t}": v for t, p, v in prices.filter(pl.col("tier") == "top")
                .select("step", "product", "chip_price_usd").iter_rows()}
    rent = {f"{p}@{t}": v for t, p, v in prices.filter(pl.col("rental_price_usd_per_pflop_hour").is_not_null())
            .select("step", "product", "rental_price_usd_per_pflop_hour").iter_rows()}
    return {
        "openai_tpu_share_mean": lab_vendor_share(r.tables, "openai", "google")["share"].mean(),
        "openai_google_top_pflops_signed": r.contracts.filter(
            pl.col("lab") == "openai", pl.col("vendor") == "google", pl.col("tier") == "top")["pflops"].sum(),
        "deepmind_share_of_google_top": by_lab.get("deepmind", 0.0) / top_total if top_total > 0 else math.nan,
        "deepmind_google_top_pflop_months": by_lab.get("deepmind", 0.0),
        "openai_google_top_pflop_months": by_lab.get("openai", 0.0),
        "partners_google_top_pflop_months": sum(by_lab.get(lab, 0.0) for lab in PARTNERS),
        "nvidia_share_last12": last12.filter(pl.col("vendor") == "nvidia")["compute_share"].mean(),
        "amd_share_last12": last12.filter(pl.col("vendor") == "amd")["compute_share"].mean(),
        "openai_nvidia_last12": lab_vendor_share(r.tables, "openai", "nvidia").filter(pl.col("step") > last - 12)[
            "share"].mean(),
        "openai_nvidia_mean": lab_vendor_share(r.tables, "openai", "nvidia")["share"].mean(),
        "openai_nvidia_training_last12": _purpose_share(r, "openai", "nvidia", "training", last - 12),
        "openai_nvidia_training_after12": _purpose_share(r, "openai", "nvidia", "training", 12),
        "openai_nvidia_inference_last12": _purpose_share(r, "openai", "nvidia", "inference", last - 12),
        "deal_price_after6": _deal_price(r.contracts.filter(pl.col("step") >= 6)),
        "b200_ask_28_39": float(prices.filter(pl.col("product") == "b200", pl.col("step").is_between(28, 39))[
            "rental_price_usd_per_chip_hour"].mean()) if steps >= 40 else math.nan,
        "on_demand_share": _on_demand_share(r),
        "anchor_share": _kind_share(r, "anchor_pflops"),
        "capex_spent": float(r.tables["clouds"]["capex_spent_usd"].sum()),
        "unmet_share_last12": float(r.steps.filter(pl.col("step") > last - 12).select(
            pl.col("unmet_pflops").sum() / pl.col("demand_pflops").sum()).item()),
        "chip_top": chip_top,  # {product@step: list price USD}, top-tier products, every month
        "rent": rent,  # {product@step: rental USD per PFLOP-hour}, products held at public clouds
    }


def _purpose_share(r: market.RunResult, lab: str, vendor: str, purpose: str, after: int) -> float:
    """``vendor``'s share of ``lab``'s contracted peak compute for ``purpose``, mean over the months
    after ``after`` (in which it holds any compute for that purpose)."""
    mine = r.tables["lab_mix"].filter(pl.col("lab") == lab, pl.col("purpose") == purpose, pl.col("step") > after)
    per_month = mine.group_by("step").agg((pl.col("pflops").filter(pl.col("vendor") == vendor).sum()
                                           / pl.col("pflops").sum()).alias("share"))
    return float(per_month["share"].mean()) if per_month.height else math.nan


def _on_demand_share(r: market.RunResult) -> float:
    """Share of the labs' contracted peak PFLOP/s held on demand, all labs, months 6 on (after the
    book signed before the run has begun to turn over)."""
    return _kind_share(r, "on_demand_pflops")


def _kind_share(r: market.RunResult, column: str) -> float:
    """Share of the labs' contracted peak PFLOP/s under one kind of contract (a ``labs`` column),
    all labs, months 6 on."""
    labs = r.tables["labs"].filter(pl.col("step") >= 6)
    total = labs["contracted_pflops"].sum()
    return float(labs[column].sum() / total) if total > 0 else math.nan


def _deal_price(contracts: pl.DataFrame) -> float:
    """Chip-weighted mean contract price, USD per chip-hour."""
    chips = contracts["chips"].sum()
    return float((contracts["price_usd_per_chip_hour"] * contracts["chips"]).sum() / chips) if chips > 0 else math.nan


# -- runs, cached, in a process pool -------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[Executor]:
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as ex:
        yield ex
    RESULTS["_wall_seconds_module"] = round(time.perf_counter() - started, 1)
    _report()


def _runs(pool: Executor, scenario: str, overrides: dict[str, Any] | None, steps: int,
          seeds: tuple[int, ...] = SEEDS, *, fresh: bool = False) -> list[dict[str, Any]]:
    """The measures of ``scenario`` with ``overrides`` for each seed (cached unless ``fresh``)."""
    ov = json.dumps(overrides or {}, sort_keys=True)
    keys = [(scenario, ov, steps, s) for s in seeds]
    todo = [k for k in keys if fresh or k not in _CACHE]
    done = dict(zip(todo, pool.map(_measure, *zip(*todo)))) if todo else {}
    if not fresh:
        _CACHE.update(done)
    return [done[k] if k in done else _CACHE[k] for k in keys]


def _scalar(runs: list[dict[str, Any]], name: str) -> np.ndarray:
    return np.array([r[name] for r in runs], dtype=float)


def _log_price_index(a: list[dict[str, Any]], b: list[dict[str, Any]], table: str,
                     steps: range) -> np.ndarray:
    """Per seed: mean over (product, month) cells present in both runs of log(price_b / price_a).

    A fixed, equally weighted basket of the same products and months on both sides, so a change
    in the mix of chips installed (e.g. fewer new chips during a shock) cannot pass for a price
    change. 0.01 is about a 1 % higher price at setting b.
    """
    out = []
    for ra, rb in zip(a, b, strict=True):
        cells = [k for k in ra[table] if int(k.rsplit("@", 1)[1]) in steps and k in rb[table]]
        out.append(float(np.mean([math.log(rb[table][k] / ra[table][k]) for k in cells])))
    return np.array(out)


# -- statistics ----------------------------------------------------------------------------------


def _paired(check: str, measure: str, lever: str, diff: np.ndarray, expect: int,
            a: np.ndarray | None = None, b: np.ndarray | None = None, **extra: Any) -> dict[str, Any]:
    """One-sided Wilcoxon signed-rank test of paired differences (b - a) in direction ``expect``."""
    diff = np.asarray(diff, dtype=float)
    assert diff.size >= 20 and np.all(np.isfinite(diff)), f"{check}: need >= 20 finite paired differences"
    alternative = "greater" if expect > 0 else "less"
    p = float(wilcoxon(diff, zero_method="zsplit", alternative=alternative).pvalue)
    stats = {
        "measure": measure, "lever": lever, "n": int(diff.size), "expected_sign": "+" if expect > 0 else "-",
        "mean_a": None if a is None else float(np.mean(a)), "mean_b": None if b is None else float(np.mean(b)),
        "mean_diff": float(np.mean(diff)), "n_pos": int(np.sum(diff > 0)), "n_neg": int(np.sum(diff < 0)),
        "p_value": p, **extra,
    }
    RESULTS[check] = stats
    return stats


def _info(name: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """A second measure of the same pairs, printed with a check as information: its means at a and
    b, and in how many pairs b is higher."""
    return {f"info_{name}_a": round(float(a.mean()), 4), f"info_{name}_b": round(float(b.mean()), 4),
            f"info_{name}_up_in": f"{int(np.sum(b > a))} of {a.size} pairs"}


def _significant(stats: dict[str, Any]) -> bool:
    """The pass rule of every check: p < ALPHA and the mean difference has the expected sign."""
    sign = 1 if stats["expected_sign"] == "+" else -1
    return stats["p_value"] < ALPHA and np.sign(stats["mean_diff"]) == sign


def _check(stats: dict[str, Any]) -> None:
    sign = 1 if stats["expected_sign"] == "+" else -1
    assert np.sign(stats["mean_diff"]) == sign, f"mean paired difference has the wrong sign: {stats}"
    assert stats["p_value"] < ALPHA, f"not significant at {ALPHA}: {stats}"


def _report() -> None:
    print("\n\nDirectional validation (paired by seed; one-sided Wilcoxon signed-rank, zsplit):")
    for check, s in RESULTS.items():
        if check.startswith("_"):
            continue
        means = "" if s["mean_a"] is None else f"  mean a={s['mean_a']:.6g} b={s['mean_b']:.6g}"
        print(f"  {check}\n      lever: {s['lever']}\n      measure: {s['measure']}\n"
              f"      n={s['n']}{means}  mean diff (b-a)={s['mean_diff']:+.6g} (expected {s['expected_sign']})"
              f"  +{s['n_pos']}/-{s['n_neg']}  p={s['p_value']:.3g}")
        for k, v in s.items():
            if k.startswith("info_"):
                print(f"      {k[5:]}: {v}")
    print(f"  module wall time (pool open to close): {RESULTS.get('_wall_seconds_module')} s")
    out = os.environ.get("MARKET_VALIDATION_JSON")
    if out:
        with open(out, "w") as fh:
            json.dump(RESULTS, fh, indent=2)


# -- 1. withholding ------------------------------------------------------------------------------

WITHHOLDING_STEPS = 60  # the scenario's full horizon; GCP's TPU7x is sold out before OpenAI's turn until ~month 18
_W = "clouds.gcp.withholding.share"


def test_withholding_lowers_excluded_labs_tpu_access(pool) -> None:
    """Withholding the top tier from OpenAI (share 0 -> 1 in ``openai_google_tpu``) lowers its TPU access.

    Measure: OpenAI's TPU share (Google's share of its contracted peak compute, from ``lab_mix``),
    averaged over the 60 months. Not the top-tier contracts alone: those are zero under full
    withholding by construction of the rule; the TPU share also counts what OpenAI substitutes
    with previous-tier TPUs, so it tests whether withholding lowers its TPU access overall.
    Second assertion: PFLOP/s of Google top-tier contracts signed by OpenAI.
    """
    a = _runs(pool, "openai_google_tpu", {_W: 0.0}, WITHHOLDING_STEPS)
    b = _runs(pool, "openai_google_tpu", {_W: 1.0}, WITHHOLDING_STEPS)
    lever = f"openai_google_tpu, {_W} 0.0 (a) vs 1.0 (b), {WITHHOLDING_STEPS} months"
    xa, xb = _scalar(a, "openai_tpu_share_mean"), _scalar(b, "openai_tpu_share_mean")
    s1 = _paired("1a withholding -> OpenAI TPU share", "OpenAI's TPU share, mean over all months",
                 lever, xb - xa, -1, xa, xb)
    ya, yb = _scalar(a, "openai_google_top_pflops_signed"), _scalar(b, "openai_google_top_pflops_signed")
    s2 = _paired("1a' withholding -> OpenAI top-tier TPU contracts",
                 "PFLOP/s of Google top-tier contracts signed by OpenAI over the run", lever, yb - ya, -1, ya, yb)
    _check(s1)
    _check(s2)


def test_withholding_from_one_lab_sends_the_top_tier_to_the_vendors_other_partners(pool) -> None:
    """What Google Cloud refuses OpenAI goes to its other TPU partners, not back to its own lab.

    Measure: PFLOP-months of Google top-tier TPU contracts held by Google Cloud's other partners
    (Anthropic, Apple, SSI) during the run. This is the model's answer to "does withholding from
    one lab raise the vendor's internal share?": DeepMind, the affiliate, is served at internal
    prices before any outside lab, so its top-tier use does not depend on what OpenAI gets; what
    OpenAI is refused stays free for the next outside lab in line. DeepMind's share of the top tier
    and its own PFLOP-months are reported (``info_``) but not tested: they barely move (about
    +1 pp, p 0.01-0.03 depending on the numpy version; docs/VALIDATION.md §3). Raising the internal
    share takes withholding from outside buyers in general: the next test.
    """
    a = _runs(pool, "openai_google_tpu", {_W: 0.0}, WITHHOLDING_STEPS)
    b = _runs(pool, "openai_google_tpu", {_W: 1.0}, WITHHOLDING_STEPS)
    xa, xb = _scalar(a, "partners_google_top_pflop_months"), _scalar(b, "partners_google_top_pflop_months")
    info = {}
    for who in ("deepmind", "openai"):
        pa, pb = _scalar(a, f"{who}_google_top_pflop_months"), _scalar(b, f"{who}_google_top_pflop_months")
        info[f"info_{who}_top_tier_pflop_months_a_b"] = f"{pa.mean():.4g} -> {pb.mean():.4g}"
    da, db = _scalar(a, "deepmind_share_of_google_top"), _scalar(b, "deepmind_share_of_google_top")
    d = db - da
    info["info_deepmind_share_of_google_top_a_b"] = (
        f"{da.mean():.4f} -> {db.mean():.4f} (mean paired diff {d.mean():+.4f}, +{int((d > 0).sum())}/"
        f"-{int((d < 0).sum())}, one-sided p "
        f"{wilcoxon(d, zero_method='zsplit', alternative='greater').pvalue:.2g}; not tested)")
    stats = _paired("1b withholding from OpenAI -> Google top tier goes to its other partners",
                    "Google top-tier TPU PFLOP-months under contract to Anthropic, Apple and SSI",
                    f"openai_google_tpu, {_W} 0.0 (a) vs 1.0 (b), {WITHHOLDING_STEPS} months",
                    xb - xa, +1, xa, xb, **info)
    _check(stats)


def test_withholding_from_outside_buyers_raises_the_vendors_internal_share(pool) -> None:
    """Google Cloud keeping part of its top tier from every outside lab raises its own lab's share.

    Lever: the seed scenario's rule widened to every buyer not affiliated with Google Cloud
    (``buyers = ["*"]``: "reserve for internal use"), with 80 % (b) or none (a) of the free top
    tier kept back. Measure: DeepMind's share of Google top-tier TPU PFLOP-months under contract
    (contracts for the vendor's newest TPU, each counted for every month it is active).
    """
    wide = {"clouds.gcp.withholding.buyers": ["*"]}
    a = _runs(pool, "openai_google_tpu", {**wide, _W: 0.0}, WITHHOLDING_STEPS)
    b = _runs(pool, "openai_google_tpu", {**wide, _W: 0.8}, WITHHOLDING_STEPS)
    xa, xb = _scalar(a, "deepmind_share_of_google_top"), _scalar(b, "deepmind_share_of_google_top")
    info = {}
    for who in ("deepmind", "partners", "openai"):
        pa, pb = _scalar(a, f"{who}_google_top_pflop_months"), _scalar(b, f"{who}_google_top_pflop_months")
        info[f"info_{who}_top_tier_pflop_months_a_b"] = f"{pa.mean():.4g} -> {pb.mean():.4g}"
    stats = _paired("1c withholding from all outside buyers -> Google's internal (DeepMind) share of its top tier",
                    "DeepMind's share of Google top-tier TPU PFLOP-months under contract",
                    f"openai_google_tpu with clouds.gcp.withholding.buyers = ['*'], {_W} 0.0 (a) vs 0.8 (b), "
                    f"{WITHHOLDING_STEPS} months", xb - xa, +1, xa, xb, **info)
    _check(stats)


# -- 2. switching cost ---------------------------------------------------------------------------

SWITCH_STEPS = 36


def _switching(cost: float) -> dict[str, float]:
    labs = market.load_scenario("openai_google_tpu").labs
    return {**{f"labs.{lab}.switching_cost": cost for lab in labs}, "long_tail.switching_cost": cost}


def test_higher_switching_cost_keeps_labs_on_nvidia(pool) -> None:
    """Every lab's switching cost 0.2 -> 3.0 (``openai_google_tpu``) keeps OpenAI on Nvidia.

    Measure: OpenAI's Nvidia dependency (Nvidia's share of its contracted peak compute), averaged
    over the 36 months. The switching penalty acts when a lab chooses among offers: in the book it
    starts with (month 0, the contracts signed before the simulation, chosen under the same
    frictions from the ecosystems it already runs, ``in_use``) and at each renewal. Cheap
    switching puts OpenAI's first book partly on AMD's MI300X; as that book turns over and MI300X
    falls below the frontier class for training, the difference fades, so the last year's share
    is reported as information (docs/VALIDATION.md §3). The seed-event scenario is used because
    there OpenAI may also switch to TPUs, the decision the lever is about.

    Nvidia's and AMD's shares of the whole market's compute are reported too, as information:
    vendors' compute shares follow their supply more than labs' preferences, and the lever moves
    Nvidia's by about a point, down: dearer switching makes AMD's chips cheaper for the clouds to
    buy, through its list price after the first month's book, and AMD's fleet grows.
    :func:`test_dearer_switching_shrinks_amd_once_its_list_price_is_held` checks that mechanism.
    """
    a = _runs(pool, "openai_google_tpu", _switching(0.2), SWITCH_STEPS)
    b = _runs(pool, "openai_google_tpu", _switching(3.0), SWITCH_STEPS)
    lever = (f"openai_google_tpu, labs.*.switching_cost and long_tail.switching_cost 0.2 (a) vs 3.0 (b), "
             f"{SWITCH_STEPS} months")
    xa, xb = _scalar(a, "nvidia_share_last12"), _scalar(b, "nvidia_share_last12")
    ma, mb = _scalar(a, "amd_share_last12"), _scalar(b, "amd_share_last12")
    market_share = _paired("2' switching cost -> Nvidia share (information)", "Nvidia compute_share, mean of months 24-35",
                           lever, xb - xa, +1, xa, xb, **_info("amd_share", ma, mb))
    la, lb = _scalar(a, "openai_nvidia_last12"), _scalar(b, "openai_nvidia_last12")
    last = _paired("2 (last year, information) switching cost -> OpenAI on Nvidia",
                   "OpenAI's Nvidia share, mean of months 24-35", lever, lb - la, +1, la, lb)
    ya, yb = _scalar(a, "openai_nvidia_mean"), _scalar(b, "openai_nvidia_mean")
    _check(_paired("2 switching cost -> OpenAI on Nvidia", "OpenAI's Nvidia share, mean of months 0-35",
                   lever, yb - ya, +1, ya, yb, info_market_share_p=round(market_share["p_value"], 4),
                   info_last_year_p=round(last["p_value"], 4)))


def test_dearer_switching_shrinks_amd_once_its_list_price_is_held(pool) -> None:
    """Check 2's lever with AMD's list price held (``vendors.amd.pricing.speed = 0``): dearer
    switching now lowers AMD's share of the market's compute in months 24-35, as the labs'
    frictions alone would, where with its price free it raises it (2', information). This tests
    the mechanism docs/VALIDATION.md §3 gives for 2': AMD's fleet grows with dearer switching
    because its list price follows a thinner first-month order book down, and the clouds buy more
    of its chips."""
    held = {"vendors.amd.pricing.speed": 0.0}
    a = _runs(pool, "openai_google_tpu", {**_switching(0.2), **held}, SWITCH_STEPS)
    b = _runs(pool, "openai_google_tpu", {**_switching(3.0), **held}, SWITCH_STEPS)
    xa, xb = _scalar(a, "amd_share_last12"), _scalar(b, "amd_share_last12")
    na, nb = _scalar(a, "nvidia_share_last12"), _scalar(b, "nvidia_share_last12")
    _check(_paired("2' held AMD list price: switching cost -> AMD share", "AMD compute_share, mean of months 24-35",
                   f"openai_google_tpu, vendors.amd.pricing.speed = 0, labs.*.switching_cost and "
                   f"long_tail.switching_cost 0.2 (a) vs 3.0 (b), {SWITCH_STEPS} months",
                   xb - xa, -1, xa, xb, **_info("nvidia_share", na, nb)))


def _purpose_switching(training: float, inference: float) -> dict[str, float]:
    """Every lab's (and the long tail's) switching costs for training and for inference."""
    labs = market.load_scenario("openai_google_tpu").labs
    out = {}
    for prefix in [*(f"labs.{lab}" for lab in labs), "long_tail"]:
        out[f"{prefix}.switching_cost"] = training
        out[f"{prefix}.inference_switching_share"] = inference / training
    return out


def test_each_purposes_switching_cost_keeps_that_purpose_on_nvidia(pool) -> None:
    """Training and inference choose chips by their own frictions (OpenAI, 36 months): a higher
    training switching cost for OpenAI, inference's held at 0.4, keeps more of its training on
    Nvidia (3.0 vs 0.4) where TPUs fit for training are on offer to it (``tpu_merchant``), in
    months 13-35, while it learns the stack (by the last year its readiness has caught up and the
    effect is a third as large); a higher inference switching cost for every lab, training's held
    at 1.5, keeps more of OpenAI's inference on Nvidia in months 24-35 (1.5 vs 0.1;
    ``openai_google_tpu``).

    In ``openai_google_tpu`` OpenAI trains on Nvidia whatever the training switching cost (98% at
    0.5 and at 2.0, 8 seeds; docs/VALIDATION.md): the frontier-class TPUs are withheld from it and
    the older ones carry the below-frontier penalty for training, so the lever has nothing to act
    on there.

    Measure: Nvidia's share of OpenAI's contracted peak compute for that purpose (``lab_mix``)."""
    own = {"labs.openai.inference_switching_share": 1.0}
    a = _runs(pool, "tpu_merchant", {**own, "labs.openai.switching_cost": 0.4}, SWITCH_STEPS)
    b = _runs(pool, "tpu_merchant", {"labs.openai.inference_switching_share": 0.4 / 3.0,
                                     "labs.openai.switching_cost": 3.0}, SWITCH_STEPS)
    xa, xb = _scalar(a, "openai_nvidia_training_after12"), _scalar(b, "openai_nvidia_training_after12")
    training = _paired("2b training switching cost -> OpenAI training on Nvidia",
                       "Nvidia's share of OpenAI's training compute, mean of months 13-35",
                       "tpu_merchant, OpenAI's training switching cost 0.4 (a) vs 3.0 (b), its inference's 0.4",
                       xb - xa, +1, xa, xb)
    c = _runs(pool, "openai_google_tpu", _purpose_switching(1.5, 0.1), SWITCH_STEPS)
    d = _runs(pool, "openai_google_tpu", _purpose_switching(1.5, 1.5), SWITCH_STEPS)
    ya, yb = _scalar(c, "openai_nvidia_inference_last12"), _scalar(d, "openai_nvidia_inference_last12")
    inference = _paired("2c inference switching cost -> OpenAI inference on Nvidia",
                        "Nvidia's share of OpenAI's inference compute, mean of months 24-35",
                        "openai_google_tpu, every lab's inference switching cost 0.1 (a) vs 1.5 (b), training's 1.5",
                        yb - ya, +1, ya, yb)
    _check(training)
    _check(inference)


# -- 3. supply shock -----------------------------------------------------------------------------

SHOCK_STEPS = 24


def _shock_months() -> range:
    shocks = market.load_scenario("supply_shock").packaging.shocks
    assert len(shocks) == 1 and shocks[0].factor < 1
    return range(shocks[0].start_step, shocks[0].end_step)  # end_step is the first month after the shock


@pytest.fixture(scope="module")
def shock_runs(pool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return _runs(pool, "openai_google_tpu", None, SHOCK_STEPS), _runs(pool, "supply_shock", None, SHOCK_STEPS)


def test_supply_shock_raises_chip_list_prices(shock_runs) -> None:
    """``supply_shock`` vs ``openai_google_tpu`` (packaging capacity x0.5 in months 6-17).

    Measure: vendors' list prices of their top-tier chips over the shock months, as the mean log
    ratio shock / no shock over the same (product, month) cells: each vendor's newest chip
    counts equally (a plain mean of USD prices would be Nvidia's price alone) and the basket is
    the same on both sides. List prices answer orders relative to packaging-based capacity.
    """
    months = _shock_months()
    a, b = shock_runs
    _check(_paired("3a supply shock -> top-tier chip list price", "mean log(list price shock / no shock), "
                   f"top-tier products, months {months.start}-{months.stop - 1}",
                   "openai_google_tpu (a) vs supply_shock (b), same seeds", _log_price_index(a, b, "chip_top", months),
                   +1))


def test_supply_shock_raises_rental_prices(shock_runs) -> None:
    """``supply_shock`` vs ``openai_google_tpu``: rental prices per PFLOP-hour over the shock months.

    Measure: mean log ratio of the posted rental price per PFLOP-hour (installed-weighted over
    public clouds, per product) over the (product, month) cells present in both runs, months
    6-17. A fixed basket, because the shock changes which chips are installed: an
    installed-weighted average over products would move with the mix (fewer new chips) even at
    unchanged prices.
    """
    months = _shock_months()
    a, b = shock_runs
    _check(_paired("3b supply shock -> rental price per PFLOP-hour", "mean log(rental price shock / no shock), "
                   f"all rented products, months {months.start}-{months.stop - 1}",
                   "openai_google_tpu (a) vs supply_shock (b), same seeds", _log_price_index(a, b, "rent", months), +1))


# -- 4. more packaging capacity ------------------------------------------------------------------

CAPACITY_STEPS = 36
CAPACITY_FACTOR = 1.5


@pytest.fixture(scope="module")
def capacity_runs(pool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    points = market.load_scenario("baseline").packaging.capacity_wafers_per_month
    more = {"packaging.capacity_wafers_per_month": [[s, w * CAPACITY_FACTOR] for s, w in points]}
    return _runs(pool, "baseline", None, CAPACITY_STEPS), _runs(pool, "baseline", more, CAPACITY_STEPS)


def test_more_packaging_capacity_lowers_chip_list_prices(capacity_runs) -> None:
    """Every point of ``packaging.capacity_wafers_per_month`` x1.5 (``baseline``) lowers list prices.

    Measure: mean log ratio of top-tier chip list prices (more capacity / baseline) over all 36
    months and the same (product, month) cells; each vendor's newest chip counts equally.
    Packaging capacity is the only "more capacity" lever that acts on every vendor at once; the
    vendors' shares of it add up to 0.9, so raising them would be a smaller, uneven change.
    In ``baseline`` packaging never rations (wafers allocated = wafers requested), so the effect
    runs through the list-price rule, which compares orders with capacity from reserved wafers.
    """
    a, b = capacity_runs
    _check(_paired("4a more capacity -> top-tier chip list price",
                   "mean log(list price x1.5 / x1.0), top-tier products, all months",
                   f"baseline, packaging.capacity_wafers_per_month x1.0 (a) vs x{CAPACITY_FACTOR} (b), "
                   f"{CAPACITY_STEPS} months", _log_price_index(a, b, "chip_top", range(CAPACITY_STEPS)), -1))


def test_more_packaging_capacity_lowers_rental_prices(capacity_runs) -> None:
    """Packaging capacity x1.5 (``baseline``) lowers rental prices per PFLOP-hour.

    Measure: mean log ratio of the posted rental price per PFLOP-hour over the (product, month)
    cells present in both runs, all 36 months (fixed basket, as for the supply shock).
    """
    a, b = capacity_runs
    _check(_paired("4b more capacity -> rental price per PFLOP-hour",
                   "mean log(rental price x1.5 / x1.0), all rented products, all months",
                   f"baseline, packaging.capacity_wafers_per_month x1.0 (a) vs x{CAPACITY_FACTOR} (b), "
                   f"{CAPACITY_STEPS} months", _log_price_index(a, b, "rent", range(CAPACITY_STEPS)), -1))


# -- 5. TPUs for every buyer ---------------------------------------------------------------------

MERCHANT_STEPS = 36


def test_tpu_merchant_lowers_nvidia_share(pool) -> None:
    """``baseline`` vs ``tpu_merchant`` (Google sells TPUs to every cloud and lab) lowers Nvidia's share.

    Measure: Nvidia's share of contracted peak compute, averaged over the last 12 of 36 months
    (new buyers' TPU contracts replace Nvidia ones as 12-month contracts expire; averaging 12
    months smooths month-to-month noise).
    """
    a = _runs(pool, "baseline", None, MERCHANT_STEPS)
    b = _runs(pool, "tpu_merchant", None, MERCHANT_STEPS)
    xa, xb = _scalar(a, "nvidia_share_last12"), _scalar(b, "nvidia_share_last12")
    _check(_paired("5 TPU merchant -> Nvidia share", "Nvidia compute_share, mean of months 24-35",
                   f"baseline (a) vs tpu_merchant (b), {MERCHANT_STEPS} months", xb - xa, -1, xa, xb))


# -- 7. the next generation ---------------------------------------------------------------------

GENERATION_STEPS = 40


def test_the_next_generation_lowers_the_previous_ones_rental_price(pool) -> None:
    """Pattern P2 (docs/ODD.md): Rubin released as scheduled (month 16) rather than never lowers
    B200's posted rental price one to two years later (``baseline``).

    Measure: B200's mean posted ask across the public clouds holding it, months 28-39. Until
    issue 15 this was checked in every one of six seeds (tests/test_model.py); with contract kinds
    and the anchor deals one seed in six went the other way (seed 3: $7.14 with Rubin, $6.68
    without, while Rubin at $2.44 per PFLOP-hour undercut both), so the claim is now tested as the
    other directional ones are, over 20 paired seeds (docs/VALIDATION.md §3). At the joint clearing
    it holds again in each of seeds 0-5.
    """
    a = _runs(pool, "baseline", {"products.rubin.release_step": 600}, GENERATION_STEPS)
    b = _runs(pool, "baseline", None, GENERATION_STEPS)
    xa, xb = _scalar(a, "b200_ask_28_39"), _scalar(b, "b200_ask_28_39")
    _check(_paired("7 next generation ships -> older generation's price", "B200 posted ask, USD per chip-hour, months 28-39",
                   f"baseline, Rubin never released (a) vs released at month 16 (b), {GENERATION_STEPS} months",
                   xb - xa, -1, xa, xb))


# -- 8. contract kinds ---------------------------------------------------------------------------

KIND_STEPS = MERCHANT_STEPS  # so that the baseline runs are shared with check 5


def _every_lab(field: str, value: float) -> dict[str, float]:
    labs = market.load_scenario("baseline").labs
    return {**{f"labs.{lab}.{field}": value for lab in labs}, f"long_tail.{field}": value}


def test_more_volatile_demand_buys_more_on_demand(pool) -> None:
    """Every lab's monthly demand volatility from the baseline's (0.03, the long tail's 0.05) to
    0.10: labs reserve less of what they need (a newsvendor reserves up to a quantile of its
    uncertain need, docs/ODD.md 7.19) and buy more on demand.

    Measure: on-demand share of the labs' contracted peak PFLOP/s, months 6-35.
    """
    a = _runs(pool, "baseline", None, KIND_STEPS)
    b = _runs(pool, "baseline", _every_lab("demand_volatility", 0.10), KIND_STEPS)
    xa, xb = _scalar(a, "on_demand_share"), _scalar(b, "on_demand_share")
    _check(_paired("8 demand volatility -> on-demand share", "on-demand share of labs' contracted PFLOP/s, months 6-35",
                   f"baseline (a) vs labs.*.demand_volatility and long_tail's 0.10 (b), {KIND_STEPS} months",
                   xb - xa, +1, xa, xb))


def test_a_wish_for_secured_supply_buys_less_on_demand(pool) -> None:
    """Every lab's ``supply_security`` 0 -> 1 (``baseline``): on-demand capacity weighs as if it cost
    twice its price, so labs reserve more and buy less on demand.

    Measure: on-demand share of the labs' contracted peak PFLOP/s, months 6-35.
    """
    a = _runs(pool, "baseline", None, KIND_STEPS)
    b = _runs(pool, "baseline", _every_lab("supply_security", 1.0), KIND_STEPS)
    xa, xb = _scalar(a, "on_demand_share"), _scalar(b, "on_demand_share")
    _check(_paired("8' supply security -> on-demand share", "on-demand share of labs' contracted PFLOP/s, months 6-35",
                   f"baseline, labs.*.supply_security and long_tail's 0 (a) vs 1 (b), {KIND_STEPS} months",
                   xb - xa, -1, xa, xb))


FRONTIER_SECURITY = {f"labs.{lab}.supply_security": 0.5 for lab in ("openai", "anthropic", "meta", "xai")}


def _secured(pool) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    a = _runs(pool, "baseline", None, KIND_STEPS)
    b = _runs(pool, "baseline", FRONTIER_SECURITY, KIND_STEPS)
    return a, b, f"baseline (a) vs supply_security 0.5 for OpenAI, Anthropic, Meta, xAI (b), {KIND_STEPS} months"


def test_labs_that_secure_supply_sign_anchor_deals(pool) -> None:
    """OpenAI's, Anthropic's, Meta's and xAI's ``supply_security`` 0 -> 0.5 (``baseline``, as in
    experiments/secured_supply.toml): short of compute, they sign anchor deals of their own
    (docs/ODD.md 7.19).

    Measure: the anchor share of the labs' contracted peak PFLOP/s, months 6-35. Unmet demand in
    months 24-35 is reported as information.
    """
    a, b, lever = _secured(pool)
    ua, ub = _scalar(a, "unmet_share_last12"), _scalar(b, "unmet_share_last12")
    unmet = _paired("9'' secured supply -> unmet demand (information)", "unmet share of demand, months 24-35", lever,
                    ub - ua, -1, ua, ub)
    xa, xb = _scalar(a, "anchor_share"), _scalar(b, "anchor_share")
    _check(_paired("9 secured supply -> anchor deals", "anchor share of labs' contracted PFLOP/s, months 6-35",
                   lever, xb - xa, +1, xa, xb, info_unmet_p=round(unmet["p_value"], 4)))


def test_anchor_deals_raise_the_clouds_chip_purchases(pool) -> None:
    """The same lever as check 9: a cloud's investment counts the anchor deals it signs, so the
    clouds should buy more chips. Until the products' markets were cleared together this failed
    (+1.6%, 13 of 20 pairs, p = 0.07: with capacity idle, the deals' chips took the place of the
    clouds' own orders) and was an xfail; with no idle capacity to draw on, the deals finance new
    chips (docs/VALIDATION.md §3).

    Measure: the clouds' spending on chips over the 36 months.
    """
    a, b, lever = _secured(pool)
    ya, yb = _scalar(a, "capex_spent"), _scalar(b, "capex_spent")
    _check(_paired("9' secured supply -> clouds' chip purchases", "clouds' spending on chips, USD, months 0-35",
                   lever, yb - ya, +1, ya, yb))


# -- falsification: the statistics can fail ------------------------------------------------------


# -- 6. competition -------------------------------------------------------------------------------

COMPETITION = str(Path(__file__).parent / "scenarios" / "competition.toml")
ONE_SELLER = {"clouds.a.fleet.gpu": 8000.0, "clouds.b.fleet.gpu": 0.0, "clouds.c.fleet.gpu": 0.0,
              "clouds.d.fleet.gpu": 0.0}


def test_more_sellers_with_the_same_capacity_lower_prices(pool) -> None:
    """Four clouds instead of one, with the same 8,000 chips in all (tests/scenarios/competition.toml):
    contract prices fall (one seller keeps the Lerner markup over its avoidable cost; four compete
    the price down to where demand takes the capacity).

    Measure: chip-weighted mean contract price, months 6-23 (after the first contracts turn over).
    """
    a = _runs(pool, COMPETITION, ONE_SELLER, 24)
    b = _runs(pool, COMPETITION, None, 24)
    xa, xb = _scalar(a, "deal_price_after6"), _scalar(b, "deal_price_after6")
    _check(_paired("6 more sellers, same capacity -> prices", "mean contract price, USD per chip-hour, months 6-23",
                   "tests/scenarios/competition.toml, one cloud with 8,000 chips (a) vs four with 2,000 (b), 24 months",
                   xb - xa, -1, xa, xb))


def test_identical_settings_give_zero_differences_and_no_significance(pool, shock_runs) -> None:
    """The same lever setting on both sides (``openai_google_tpu``, same seeds, run again in fresh
    processes) gives exactly zero differences, and the same test then reports p = 0.5 in either
    direction, far from significance: a check passes only if the lever moves the outcome."""
    a, _ = shock_runs
    b = _runs(pool, "openai_google_tpu", None, SHOCK_STEPS, fresh=True)
    xa, xb = _scalar(a, "nvidia_share_last12"), _scalar(b, "nvidia_share_last12")
    assert np.array_equal(xa, xb)
    price = _log_price_index(a, b, "chip_top", _shock_months())
    assert np.all(price == 0.0)
    for expect in (+1, -1):
        for name, diff in (("Nvidia compute_share, mean of months 12-23", xb - xa),
                           ("mean log(list price b / a), top-tier products, months 6-17", price)):
            stats = _paired(f"F1 identical settings ({name}, expected {'+' if expect > 0 else '-'})",
                            name, "openai_google_tpu (a) vs the same (b), same seeds, 24 months", diff, expect)
            assert stats["p_value"] >= ALPHA and not _significant(stats)


PLACEBO_PAIRS = 3  # disjoint pairs of seed blocks: s vs s + 20, s + 40 vs s + 60, ...


def test_unrelated_seeds_show_no_effect(pool) -> None:
    """A placebo with noise: the same setting (``baseline``) with seed s vs seed s + 20, on
    ``PLACEBO_PAIRS`` disjoint blocks of seeds (0-19 vs 20-39, 40-59 vs 60-79, ...). The differences
    are pure noise between replications, so each one-sided test reaches p < 0.01 by chance 1% of
    the time: at most one of the 2 x ``PLACEBO_PAIRS`` tests may (all six fail to by chance with
    probability 0.94, two or more succeed with 0.0015), while a difference the seeds' values made
    would show in several. One fixed pair alone would fail one model version in fifty by chance."""
    n = len(SEEDS)
    significant = []
    for k in range(PLACEBO_PAIRS):
        a = _runs(pool, "baseline", None, MERCHANT_STEPS, seeds=tuple(s + 2 * k * n for s in SEEDS))
        b = _runs(pool, "baseline", None, MERCHANT_STEPS, seeds=tuple(s + (2 * k + 1) * n for s in SEEDS))
        xa, xb = _scalar(a, "nvidia_share_last12"), _scalar(b, "nvidia_share_last12")
        assert np.any(xa != xb)
        for expect in (+1, -1):
            stats = _paired(f"F2 placebo, seeds {2 * k * n}+s vs {(2 * k + 1) * n}+s (expected {'+' if expect > 0 else '-'})",
                            "Nvidia compute_share, mean of months 24-35", "baseline (a) vs baseline (b), unrelated seeds",
                            xb - xa, expect, xa, xb)
            if _significant(stats):
                significant.append((k, expect, stats["p_value"]))
    assert len(significant) <= 1, f"the placebo reaches significance in {len(significant)} tests: {significant}"
