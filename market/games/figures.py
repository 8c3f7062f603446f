"""The game figure: the payoff matrix coloured by regret, with the best-response graph drawn on it
and the equilibria marked.

Rows are the first player's strategies, columns the other players' profiles. Each cell shows
every player's mean payoff; its colour is the profile's regret (the most any player gains by
deviating alone: white is an equilibrium). Arrows are the best-response graph: from a profile to
the one where a player plays its best reply, coloured by player (the first player's arrows run
along a column, the others' along a row). A thick black frame marks a pure equilibrium that holds
at 95 % confidence, a dashed one a pure equilibrium of the means that does not; mixed equilibria
are written under the matrix.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from market.analysis.report import compact  # noqa: E402
from market.games.estimate import GameResult  # noqa: E402
from market.games.payoffs import PAYOFFS  # noqa: E402

__all__ = ["plot_game"]


def plot_game(result: GameResult, folder: Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Draw the game figure into ``folder`` (``game.<format>``); returns the files written."""
    g = result.game
    names = g.player_names
    rows = g.strategy_names(names[0])
    others = list(itertools.product(*(g.strategy_names(n) for n in names[1:])))
    col_label = ["\n".join(f"{n}: {s}" for n, s in zip(names[1:], combo, strict=True)) or "-" for combo in others]
    regret = np.full((len(rows), len(others)), np.nan)
    text = np.full((len(rows), len(others)), "", dtype=object)
    where: dict[int, tuple[int, int]] = {}
    means = (result.payoffs.with_columns(key=pl.lit("mean_") + pl.col("player"))
             .pivot(on="key", index=["point", *names], values="mean"))
    prof = {r["point"]: r for r in result.profiles.iter_rows(named=True)}
    for row in means.iter_rows(named=True):
        i = rows.index(row[names[0]])
        j = others.index(tuple(row[n] for n in names[1:]))
        where[row["point"]] = (i, j)
        regret[i, j] = prof[row["point"]]["regret"]
        text[i, j] = "\n".join(f"{n} {compact(row[f'mean_{n}'])}" for n in names)
    width = max(8.0, 1.9 * len(others) + 2.5)
    height = max(3.5, 1.1 * len(rows) + 2.8)
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    sns.heatmap(regret, ax=ax, cmap="Reds", annot=text, fmt="", annot_kws={"fontsize": 7.5}, linewidths=0.5,
                linecolor="white", cbar_kws={"label": "regret (most a player gains by deviating alone)"},
                xticklabels=col_label, yticklabels=rows, mask=np.isnan(regret), vmin=0.0)
    ax.set_ylabel(names[0])
    ax.set_xlabel(" x ".join(names[1:]) if len(names) > 1 else "")
    ax.tick_params(axis="x", labelrotation=0, labelsize=7.5)
    ax.tick_params(axis="y", labelrotation=0, labelsize=8.5)
    palette = dict(zip(names, sns.color_palette("deep", len(names)), strict=True))
    for edge in result.best_responses.iter_rows(named=True):
        (i0, j0), (i1, j1) = where[edge["from_point"]], where[edge["to_point"]]
        ax.add_patch(FancyArrowPatch((j0 + 0.5, i0 + 0.5), (j1 + 0.5, i1 + 0.5), arrowstyle="-|>", mutation_scale=9,
                                     color=palette[edge["player"]], alpha=0.7, lw=1.0, shrinkA=16, shrinkB=16,
                                     connectionstyle="arc3,rad=0.15"))
    for point, r in prof.items():
        if r["regret"] == 0.0 and r["all_deviations_run"]:
            i, j = where[point]
            ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, lw=2.5, color="black",
                                   linestyle="-" if r["holds_95"] else "--"))
    handles = [plt.Line2D([], [], color=c, marker=">", lw=1.2, label=f"{n}'s best reply") for n, c in palette.items()]
    handles += [Rectangle((0, 0), 1, 1, fill=False, lw=2, color="black", label="equilibrium, holds at 95 %"),
                Rectangle((0, 0), 1, 1, fill=False, lw=2, color="black", linestyle="--",
                          label="equilibrium of the means, not at 95 %")]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    mixed = result.equilibria.filter(pl.col("kind") == "mixed") if result.equilibria.height else result.equilibria
    title = f"{g.name}: mean payoffs by profile ({g.replications} replications each), best replies, equilibria"
    title += "\n" + "; ".join(f"{n}: {g.players[n].payoff} ({PAYOFFS[g.players[n].payoff].unit}, "
                              f"discounted {g.players[n].discount:.0%} a year)" for n in names)
    if mixed.height:
        title += "\nmixed: " + "; ".join(f"{r['profile']} ({'holds' if r['holds_95'] else 'not'} at 95 %)"
                                        for r in mixed.iter_rows(named=True))
    ax.set_title(title, fontsize=10)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"game.{fmt}"
        fig.savefig(path, dpi=130)
        paths.append(path)
    plt.close(fig)
    return paths
