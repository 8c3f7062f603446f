"""Two small effects of the Morris screening, explained (docs/VALIDATION.md §4, the screening's
paragraph on OpenAI's diversification and DeepMind's growth).

    python experiments/screening_effects_check.py [diversification|deepmind] [--seeds N]

``diversification``: in ``openai_google_tpu`` (36 months), OpenAI's ``diversification`` 0 -> 1, paired
by seed, as the scenario is and with the public clouds' investment switched off (``response`` 0):
the frontier-class posted price and each frontier product's posted ask (USD per PFLOP-hour) in the
last month, the B200 installed and idle (installed less contracted, all clouds), and OpenAI's
compute by vendor. ``deepmind``: DeepMind made an arm's-length buyer of Google Cloud (no
affiliation), its demand growth 0.04 against 0.06: Google Cloud's TPU7x posted ask, its market
power (its best reply were its rivals at the competitive price, not moved halfway at reviews as the
ask is), the competitive price, and DeepMind's notional demand, compute held and spend over budget,
every third month. Defaults: both, 10 seeds (6 for ``deepmind``).
"""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ProcessPoolExecutor

import polars as pl

import market
from market.model import MarketModel
from market.run import run_model

PUBLIC_CLOUDS = ("azure", "aws", "gcp", "oracle", "coreweave", "neoclouds")
MONTHS = 36


def diversification_run(diversification: float, seed: int, invest: bool = True) -> dict[str, float]:
    """One run's last-month figures for question ``diversification``."""
    overrides = {"labs.openai.diversification": diversification}
    if not invest:
        overrides |= {f"clouds.{c}.investment.response": 0.0 for c in PUBLIC_CLOUDS}
    tables = market.run(market.load_scenario("openai_google_tpu", overrides, steps=MONTHS), seed=seed).tables
    last = MONTHS - 1
    frontier = tables["prices"].filter(pl.col("step") == last, pl.col("performance_class") == "frontier",
                                       pl.col("rental_price_usd_per_pflop_hour").is_not_null())
    out = {"frontier-class posted price": float((frontier["rental_price_usd_per_pflop_hour"] * frontier["installed_chips"]).sum()
                                                / frontier["installed_chips"].sum())}
    out |= {f"{p} posted ask": x for p, x in frontier.select("product", "rental_price_usd_per_pflop_hour").iter_rows()}
    b200 = tables["fleet"].filter(pl.col("step") == last, pl.col("product") == "b200")
    out["B200 installed (chips)"] = float(b200["installed_chips"].sum())
    out["B200 idle (chips)"] = float((b200["installed_chips"] - b200["contracted_chips"]).sum())
    mix = tables["lab_mix"].filter(pl.col("step") == last, pl.col("lab") == "openai")
    for vendor in ("nvidia", "google", "amd"):
        out[f"OpenAI's {vendor} PFLOP/s"] = float(mix.filter(pl.col("vendor") == vendor)["pflops"].sum())
    return out


def _diversification_pair(args: tuple[int, bool]) -> tuple[dict[str, float], dict[str, float]]:
    seed, invest = args
    return diversification_run(0.0, seed, invest), diversification_run(1.0, seed, invest)


def deepmind_run(growth: float, seed: int) -> list[tuple[int, dict[str, float]]]:
    """Every third month from 12: Google Cloud's TPU7x offer and DeepMind's state."""
    sc = market.load_scenario("openai_google_tpu", {"labs.deepmind.demand_growth": growth,
                                                    "labs.deepmind.affiliation": None}, steps=MONTHS)
    rows: list[tuple[int, dict[str, float]]] = []

    def after(model: MarketModel, month: int) -> None:
        if month < 12 or (month % 3 and month != MONTHS - 1):
            return
        offer = next((o for o in model.compute_market.offers if o.cloud.cloud_id == "gcp" and o.product == "tpu7x"), None)
        lab = next(x for x in model.lab_list if x.lab_id == "deepmind")
        if offer is not None:
            rows.append((month, {"ask": offer.ask, "market power": offer.power, "competitive price": offer.reservation,
                                 "notional (M PFLOP/s)": lab.notional() / 1e6,
                                 "held (M PFLOP/s)": lab.useful_contracted() / 1e6,
                                 "spend / budget": lab.committed_spend() / lab.budget}))

    run_model(MarketModel(sc, seed=seed, record=False), sc, seed, after=after)
    return rows


def _deepmind(args: tuple[float, int]) -> tuple[float, list[tuple[int, dict[str, float]]]]:
    return args[0], deepmind_run(*args)


def _show(rows: list[dict]) -> None:
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3, tbl_width_chars=140,
                   fmt_str_lengths=40):
        print(pl.DataFrame(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("question", nargs="?", choices=["diversification", "deepmind"])
    parser.add_argument("--seeds", type=int)
    args = parser.parse_args()
    with ProcessPoolExecutor(2) as pool:
        if args.question in (None, "diversification"):
            seeds = args.seeds or 10
            for invest in (True, False):
                pairs = list(pool.map(_diversification_pair, [(s, invest) for s in range(seeds)]))
                print(f"\nOpenAI's diversification 0 -> 1, openai_google_tpu, month {MONTHS - 1}, seeds 0-{seeds - 1}"
                      + ("" if invest else ", public clouds' investment off"))
                rows = []
                for key in pairs[0][0]:
                    diffs = [b[key] - a[key] for a, b in pairs if key in a and key in b]
                    rows.append({"figure": key, "at 0": statistics.mean(a[key] for a, _ in pairs if key in a),
                                 "difference": statistics.mean(diffs),
                                 "standard error": statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0,
                                 "seeds up": f"{sum(d > 0 for d in diffs)}/{len(diffs)}"})
                _show(rows)
        if args.question in (None, "deepmind"):
            seeds = args.seeds or 6
            runs = list(pool.map(_deepmind, [(g, s) for s in range(seeds) for g in (0.04, 0.06)]))
            print(f"\nDeepMind unaffiliated, growth 0.04 against 0.06: Google Cloud's TPU7x (USD per chip-hour), "
                  f"means over seeds 0-{seeds - 1}")
            by: dict[tuple[int, float], list[dict[str, float]]] = {}
            for growth, rows in runs:
                for month, row in rows:
                    by.setdefault((month, growth), []).append(row)
            _show([{"month": month, "growth": growth, **{k: statistics.mean(r[k] for r in rs) for k in rs[0]}}
                   for (month, growth), rs in sorted(by.items())])


if __name__ == "__main__":
    main()
