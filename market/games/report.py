"""A game's results as rich tables on the terminal (``market game``)."""

from __future__ import annotations

import polars as pl
from rich.console import Console
from rich.table import Table

from market.analysis.report import compact
from market.games.estimate import GameResult

__all__ = ["print_game"]


def _num(x: float) -> str:
    return compact(x, digits=4)  # a payoff's CI in billions still shows how wide it is


def print_game(console: Console, result: GameResult) -> None:
    """The payoff table (profile x player, mean and 95 % CI), then the equilibria with regret."""
    g = result.game
    names = g.player_names
    wide = result.payoffs.pivot(on="player", index=["point", *names], values=["mean", "ci_low", "ci_high"])
    regret = result.profiles.select("point", "regret", "regret_low", "regret_high", "holds_95")
    table = Table(title=f"{g.name}: payoffs by profile (mean [95 % CI] over {g.replications} replications)")
    for name in names:
        table.add_column(name)
    for name in names:
        unit = result.payoffs.filter(pl.col("player") == name)["unit"][0]
        table.add_column(f"{name} {g.players[name].payoff} ({unit})", justify="right")
    table.add_column("regret [95 % CI]", justify="right")
    for row in wide.join(regret, on="point").sort("point").iter_rows(named=True):
        cells = [row[n] for n in names]
        cells += [f"{_num(row[f'mean_{n}'])} [{_num(row[f'ci_low_{n}'])}, {_num(row[f'ci_high_{n}'])}]" for n in names]
        mark = " *" if row["holds_95"] else ""
        cells.append(f"{_num(row['regret'])} [{_num(row['regret_low'])}, {_num(row['regret_high'])}]{mark}")
        table.add_row(*cells)
    console.print(table)
    console.print("* a pure equilibrium at 95 % confidence: no player's deviation gains significantly "
                  "(simultaneous bootstrap intervals; docs/GAMES.md).", markup=False, highlight=False)
    method = g.search.method.replace("_", " ")
    console.print(f"Ran {result.profiles.height} of {g.n_profiles} profiles x {g.replications} replications "
                  f"({method} search; {result.completed} runs done now, {result.skipped} found complete).",
                  markup=False, highlight=False)
    console.print("Equilibria:", markup=False, highlight=False)
    console.print(result.summary(), markup=False, highlight=False)
    console.print(f"Tables saved to {result.out / 'game'}/", markup=False, highlight=False)
