"""Estimate a game's payoffs on the sweep runner and find its equilibria.

    >>> import market
    >>> result = market.game("experiments/withholding_game.toml", workers=2)   # doctest: +SKIP
    >>> result.equilibria                                                       # doctest: +SKIP

The game runs as an experiment (:meth:`market.games.spec.Game.experiment`): every profile is a
design point, replication r of every profile has the same seed, and the runs are written, resumed
and distributed exactly as a sweep's (``workers``, ``scheduler``, ``resume``). Then, from the runs'
tables, each player's payoff per run (:mod:`market.games.payoffs`), the payoff table, every
profile's regret, the equilibria with their confidence (:mod:`market.games.equilibrium`), and the
best-response graph, all written under ``OUT/game/``.

Search: ``full`` runs every profile (profiles x replications runs). ``double_oracle`` starts from
each player's first strategy and alternates: run the restricted game (every profile of the
strategies admitted so far), solve it, run each player's strategies against the others'
equilibrium mix, and admit a player's best response when it gains more than ``search.tolerance``;
it stops when none does, so the restricted game's equilibrium is an equilibrium of the whole game
(McMahan, Gordon and Blum 2003), having run only the profiles it needed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from market._io import write_text_atomic
from market.batch.runner import SweepReport, sweep
from market.batch.storage import scan, write_atomic
from market.games.equilibrium import (
    MIXED_TOLERANCE,
    best_response_graph,
    bootstrap_deviations,
    deviation_gains,
    embed,
    mixed_equilibria,
    one_hot,
    profile_regrets,
    strategy_values,
)
from market.games.payoffs import PAYOFFS, run_payoffs
from market.games.spec import Game, GameError, check_game, load_game
from market.scenario import Scenario

__all__ = ["GameResult", "analyse", "game"]


@dataclass
class GameResult:
    """What :func:`game` found; every table is also written under ``out/game/``."""

    game: Game
    out: Path
    payoffs: pl.DataFrame  # profile x player: mean payoff, 95 % CI, replications
    profiles: pl.DataFrame  # every profile run: its regret with CI, whether it holds as an equilibrium
    equilibria: pl.DataFrame  # one row per equilibrium: kind, strategies, payoffs, regret with CI, holds_95
    strategies: pl.DataFrame  # equilibrium x player x strategy: probability
    deviations: pl.DataFrame  # equilibrium x deviation: gain with its simultaneous CI
    best_responses: pl.DataFrame  # the best-response graph's edges
    runs: int = 0  # runs the game's profiles needed
    completed: int = 0  # runs done by this call
    skipped: int = 0  # runs found complete (resumed)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    def summary(self) -> str:
        """The equilibria in words, one line each."""
        lines = []
        for row in self.equilibria.iter_rows(named=True):
            verdict = "holds at 95 % confidence" if row["holds_95"] else "does not hold at 95 % confidence"
            lines.append(f"{row['kind']} equilibrium {row['profile']}: regret {row['regret']:.3g} "
                         f"(95 % CI {row['regret_low']:.3g}-{row['regret_high']:.3g}), {verdict}")
        return "\n".join(lines) if lines else "no equilibrium found"


def game(file: Game | str | os.PathLike, out: str | os.PathLike | None = None, *, workers: int | None = None,
         scheduler: str | None = None, executor: Executor | None = None, resume: bool = False,
         overwrite: bool = False, progress: bool | None = None) -> GameResult:
    """Run a game's profiles (all, or as a double-oracle search asks), then analyse them.

    Raises :class:`GameError` for a bad file, a game needing more than ``max_runs`` runs (before
    any run starts), or runs that failed (after the others are kept: ``resume=True`` retries them).
    """
    g = file if isinstance(file, Game) else load_game(file, check=False)
    base = check_game(g)  # once: the analysis reads the base scenario from here
    folder = Path(out) if out is not None else Path("outputs") / g.name
    exp = g.experiment()
    opts = {"workers": workers, "scheduler": scheduler, "executor": executor, "progress": progress}
    if g.search.method == "full":
        needed = g.n_profiles * g.replications
        if needed > g.max_runs:
            raise GameError(f"game {g.name!r} needs {g.n_profiles} profiles x {g.replications} replications = "
                            f"{needed} runs, more than max_runs = {g.max_runs}; use fewer replications or strategies, "
                            "set [search] method = \"double_oracle\" (runs only the profiles it needs), or raise max_runs.")
        report = sweep(exp, folder, resume=resume, overwrite=overwrite, **opts)
        counts = {"runs": report.total, "completed": report.completed, "skipped": report.skipped}
        interrupted = report.interrupted
        _no_failures(g, report)
    else:
        counts, interrupted = _double_oracle(g, base, folder, resume=resume, overwrite=overwrite, **opts)
    if interrupted:
        return GameResult(g, folder, *(pl.DataFrame() for _ in range(6)), interrupted=True, **counts)
    result = _analyse(g, base, folder)
    result.runs, result.completed, result.skipped = counts["runs"], counts["completed"], counts["skipped"]
    return result


def _no_failures(g: Game, report: SweepReport) -> None:
    """Stop on failed runs (the others are kept in the folder)."""
    if report.failures:
        first_id, error = next(iter(report.failures.items()))
        raise GameError(f"game {g.name!r}: {report.failed} runs failed (first: {first_id}: {error}); the others are "
                        "kept: run again with --resume to retry them.")


def _double_oracle(g: Game, base: Scenario, folder: Path, *, resume: bool, overwrite: bool,
                   **opts: Any) -> tuple[dict, bool]:
    exp = g.experiment()
    admitted = [[0] for _ in g.players]
    ran: set[int] = set()
    counts = {"runs": 0, "completed": 0, "skipped": 0}
    first = True
    for _ in range(g.search.max_iterations):
        wanted = {g.profile_point(p) for p in itertools.product(*admitted)}
        if not _run_points(g, exp, folder, wanted, ran, first, resume, overwrite, opts, counts):
            return counts, True
        first = False
        U = _per_rep(g, _per_run(g, base, folder)).mean(axis=0)  # NaN where a profile has not run
        sigma = _restricted_equilibrium(U, admitted, g.base_seed)
        # every strategy of every player against the others' equilibrium mix
        against = set()
        for i in range(len(g.players)):
            support = [[s for s, p in enumerate(sigma[j]) if p > 0] if j != i else range(g.shape[i])
                       for j in range(len(g.players))]
            against |= {g.profile_point(p) for p in itertools.product(*support)}
        if not _run_points(g, exp, folder, against, ran, False, True, False, opts, counts):
            return counts, True
        U = _per_rep(g, _per_run(g, base, folder)).mean(axis=0)
        grew = False
        for i, gains in enumerate(deviation_gains(U, sigma)):  # every one was just run
            best = int(np.nanargmax(gains))
            if gains[best] > g.search.tolerance and best not in admitted[i]:
                admitted[i] = sorted({*admitted[i], best})
                grew = True
        _write_admitted(folder, g, admitted)
        if not grew:
            break
    else:
        raise GameError(f"game {g.name!r}: the double-oracle search did not settle in {g.search.max_iterations} "
                        "iterations (search.max_iterations); the runs so far are kept: raise it and run with --resume.")
    return counts, False


def _run_points(g: Game, exp: Any, folder: Path, points: set[int], ran: set[int], first: bool, resume: bool,
                overwrite: bool, opts: dict, counts: dict) -> bool:
    """Run the profiles in ``points`` not yet run in this search; False if interrupted."""
    todo = points - ran
    if not todo:
        return True
    if (len(ran) + len(todo)) * g.replications > g.max_runs:
        raise GameError(f"game {g.name!r}: the double-oracle search needs more than max_runs = {g.max_runs} runs "
                        f"({len(ran) + len(todo)} profiles x {g.replications} replications); the runs so far are "
                        "kept in the output folder: raise max_runs and run again with --resume.")
    report = sweep(exp, folder, points=sorted(todo), resume=resume or not first, overwrite=overwrite and first,
                   compact=False, **opts)
    ran |= todo
    counts["runs"] += report.total
    counts["completed"] += report.completed
    counts["skipped"] += report.skipped
    _no_failures(g, report)
    return not report.interrupted


def _restricted_equilibrium(U: np.ndarray, admitted: list[list[int]], seed: int) -> list[np.ndarray]:
    """An equilibrium of the game restricted to the admitted strategies, as full-length vectors."""
    return embed(mixed_equilibria(U[np.ix_(range(U.shape[0]), *admitted)], seed=seed)[0], admitted, U.shape[1:])


# -- analysis ---------------------------------------------------------------------------------------


def _per_run(g: Game, base: Scenario, folder: Path) -> pl.DataFrame:
    """Each complete run's point, replication and every player's payoff (``base``: the game's base
    scenario, as :func:`check_game` returns it)."""
    tables = scan(folder)
    if "runs" not in tables or "vendors" not in tables:
        raise GameError(f"{str(folder)!r} holds no complete runs of game {g.name!r}; run `market game` first.")
    steps = g.steps if g.steps is not None else base.steps
    runs = tables["runs"].filter(pl.col("status") == "complete").select("run_id", "point", "replication").collect()
    out = runs
    for name, player in g.players.items():
        payoff = run_payoffs(tables, player.payoff, player.agents, horizon=g.horizon(name, steps),
                             discount=player.discount, hours=base.hours_per_month,
                             diversification={lab: cfg.diversification for lab, cfg in base.labs.items()})
        out = out.join(payoff.rename({"payoff": name}), on="run_id", how="left")
    return out.sort("point", "replication")


def _per_rep(g: Game, per_run: pl.DataFrame) -> np.ndarray:
    """Payoffs per replication, shape (R, n_players, *shape); NaN for profiles not (fully) run."""
    out = np.full((g.replications, len(g.players), *g.shape), np.nan)
    counts = per_run.group_by("point").len()
    complete = set(counts.filter(pl.col("len") == g.replications)["point"].to_list())
    for row in per_run.filter(pl.col("point").is_in(complete)).iter_rows(named=True):
        profile = np.unravel_index(row["point"], g.shape)
        for i, name in enumerate(g.players):
            out[(row["replication"], i, *profile)] = row[name]
    return out


def analyse(file: Game | str | os.PathLike, out: str | os.PathLike | None = None) -> GameResult:
    """Analyse the runs of a game in ``out``: payoffs, regrets, equilibria, best responses.
    Writes them under ``out/game/`` and returns them."""
    g = file if isinstance(file, Game) else load_game(file, check=False)
    folder = Path(out) if out is not None else Path("outputs") / g.name
    return _analyse(g, check_game(g), folder)


def _complete(U: np.ndarray, admitted: Sequence[Sequence[int]]) -> bool:
    """Has every profile of the sub-game of the ``admitted`` strategies been run?"""
    return all(not np.isnan(U[(0, *p)]) for p in itertools.product(*admitted))


def _analyse(g: Game, base: Scenario, folder: Path) -> GameResult:
    per_run = _per_run(g, base, folder)
    per_rep = _per_rep(g, per_run)
    U = per_rep.mean(axis=0)  # NaN where a profile was not run
    R, names, shape = g.replications, g.player_names, g.shape
    ran = [p for p in g.profiles() if not np.isnan(U[(0, *p)])]
    if not ran:
        raise GameError(f"{str(folder)!r} holds no profile of game {g.name!r} with all {R} replications complete; "
                        "run `market game` (with --resume) first.")

    def labels(p: Sequence[int]) -> dict[str, str]:
        return g.profile_label(tuple(p))

    # payoff table: profile x player
    t = stats.t.ppf(0.975, R - 1)
    rows = []
    for p in ran:
        for i, name in enumerate(names):
            x = per_rep[(slice(None), i, *p)]
            half = t * x.std(ddof=1) / math.sqrt(R)
            player = g.players[name]
            rows.append({"point": g.profile_point(p), **labels(p), "player": name, "payoff": player.payoff,
                         "unit": PAYOFFS[player.payoff].unit, "mean": float(x.mean()), "ci_low": float(x.mean() - half),
                         "ci_high": float(x.mean() + half), "replications": R})
    payoffs = pl.DataFrame(rows)

    # every profile's regret, with its simultaneous CI
    regrets = profile_regrets(U)
    devs = bootstrap_deviations(per_rep, [one_hot(p, shape) for p in ran], resamples=g.bootstrap, seed=g.base_seed)
    complete = [all(not np.isnan(U[(0, *p[:i], s, *p[i + 1:])]) for i in range(len(shape)) for s in range(shape[i]))
                for p in ran]
    profiles = pl.DataFrame([{"point": g.profile_point(p), **labels(p), "regret": float(regrets[p]),
                              "regret_low": d.regret_low, "regret_high": d.regret_high,
                              "holds_95": d.holds and c, "all_deviations_run": c}
                             for p, d, c in zip(ran, devs, complete, strict=True)])

    # equilibria: of the whole game when every profile ran; else of the sub-game a double-oracle
    # search admitted (game/search.json), or of the strategies run so far if those form one
    admitted = [sorted({p[i] for p in ran}) for i in range(len(shape))]
    if not _complete(U, admitted):
        admitted = _read_admitted(folder, g)
    if admitted is None or not _complete(U, admitted):
        raise GameError(f"game {g.name!r}: the profiles run in {str(folder)!r} do not form a complete sub-game; "
                        "run `market game` with --resume to finish them.")
    equilibria = [embed(sigma, admitted, shape)
                  for sigma in mixed_equilibria(U[np.ix_(range(len(names)), *admitted)], seed=g.base_seed)]
    eq_devs = bootstrap_deviations(per_rep, equilibria, resamples=g.bootstrap, seed=g.base_seed) if equilibria else []
    eq_rows, strat_rows, dev_rows = [], [], []
    for e, (sigma, d) in enumerate(zip(equilibria, eq_devs, strict=True)):
        pure = all(np.count_nonzero(s) == 1 for s in sigma)
        checked = all(not np.isnan(x) for x in d.gain)  # every deviation's profiles were run
        values = [float(strategy_values(U, sigma, i) @ sigma[i]) for i in range(len(names))]
        eq_rows.append({"equilibrium": e, "kind": "pure" if pure else "mixed", "profile": _describe(g, sigma),
                        **{f"payoff_{n}": v for n, v in zip(names, values, strict=True)},
                        "regret": d.regret, "regret_low": d.regret_low, "regret_high": d.regret_high,
                        "holds_95": d.holds and checked, "all_deviations_run": checked})
        for i, name in enumerate(names):
            for s, prob in enumerate(sigma[i]):
                if prob > 0:
                    strat_rows.append({"equilibrium": e, "player": name, "strategy": g.strategy_names(name)[s],
                                       "probability": float(prob)})
        for i, s, gain, lo, hi in zip(d.player, d.strategy, d.gain, d.low, d.high, strict=True):
            dev_rows.append({"equilibrium": e, "player": names[i], "strategy": g.strategy_names(names[i])[s],
                             "gain": float(gain), "ci_low": float(lo), "ci_high": float(hi)})
    edges = best_response_graph(U)
    best = pl.DataFrame([{"from_point": g.profile_point(e.source), "to_point": g.profile_point(e.target),
                          "player": names[e.player], "from_strategy": g.strategy_names(names[e.player])[e.source[e.player]],
                          "to_strategy": g.strategy_names(names[e.player])[e.target[e.player]], "gain": e.gain}
                         for e in edges], schema={"from_point": pl.Int64, "to_point": pl.Int64, "player": pl.String,
                                                  "from_strategy": pl.String, "to_strategy": pl.String, "gain": pl.Float64})
    result = GameResult(g, folder, payoffs, profiles, pl.DataFrame(eq_rows), pl.DataFrame(strat_rows),
                        pl.DataFrame(dev_rows), best, runs=len(ran) * R)
    _write(result, per_run)
    return result


def _write_admitted(folder: Path, g: Game, admitted: list[list[int]]) -> None:
    """The double-oracle search's admitted strategies (its restricted game), by name."""
    (folder / "game").mkdir(parents=True, exist_ok=True)
    names = {p: [g.strategy_names(p)[i] for i in idx] for p, idx in zip(g.players, admitted, strict=True)}
    write_text_atomic(json.dumps({"method": "double_oracle", "admitted": names}, indent=2), folder / "game" / "search.json")


def _read_admitted(folder: Path, g: Game) -> list[list[int]] | None:
    try:
        names = json.loads((folder / "game" / "search.json").read_text())["admitted"]
        return [sorted(g.strategy_names(p).index(s) for s in names[p]) for p in g.players]
    except (OSError, ValueError, KeyError):
        return None


def _describe(g: Game, sigma: list[np.ndarray]) -> str:
    parts = []
    for name, s in zip(g.players, sigma, strict=True):
        names = g.strategy_names(name)
        support = [(names[k], p) for k, p in enumerate(s) if p > 0]
        parts.append(f"{name}={support[0][0]}" if len(support) == 1
                     else f"{name}=" + "|".join(f"{n}:{p:.2f}" for n, p in support))
    return ", ".join(parts)


def _write(result: GameResult, per_run: pl.DataFrame) -> None:
    folder = result.out / "game"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("payoffs", "profiles", "equilibria", "strategies", "deviations", "best_responses"):
        write_atomic(getattr(result, name), folder / f"{name}.parquet")
    write_atomic(per_run, folder / "payoffs_by_run.parquet")
    write_text_atomic(json.dumps({"game": json.loads(result.game.model_dump_json(exclude={"source_dir"})),
                                  "summary": result.summary(), "mixed_tolerance": MIXED_TOLERANCE}, indent=2),
                      folder / "game.json")
