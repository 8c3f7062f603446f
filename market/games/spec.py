"""Game files: players, their strategies as dotted overrides of a base scenario, their payoffs.

    # experiments/withholding_game.toml (abridged)
    name = "withholding_game"
    scenario = "openai_google_tpu"
    replications = 10
    steps = 60
    base_seed = 20250601

    [players.google]
    agents = ["google", "gcp"]          # its TPU vendor and Google Cloud: their profits add up
    payoff = "profit"                   # a name from market.games.payoffs.PAYOFFS
    discount = 0.10                     # a year
    [players.google.strategies]
    open = { "clouds.gcp.withholding.share" = 0.0 }
    withhold_top_from_openai = {}       # the base scenario as it is

    [players.openai]
    agents = ["openai"]
    payoff = "surplus"
    [players.openai.strategies]
    diversify_tpu = {}
    nvidia_only = { "labs.openai.uses_vendors" = ["nvidia"] }

A profile picks one strategy per player; its scenario is the base scenario with the game's
``overrides`` and every chosen strategy's overrides applied. A game becomes an experiment whose
design points are the profiles (see :meth:`Game.experiment`), run by the sweep runner with common
random numbers: replication r of every profile has the same seed, so payoff differences between
profiles are paired.

The whole file is checked before any run: names, agents (each an agent of the base scenario, in one
player at most), payoffs (and the kinds of agent each applies to), that no two players' strategies
set the same field, and every profile's scenario (up to ``MAX_CHECKED_PROFILES``).
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from market.batch.experiment import Experiment, ExperimentError, FolderName, check_experiment, read_user_file
from market.games.payoffs import PAYOFFS
from market.scenario import MAX_STEP, Scenario, StrictModel, between, validate_model

__all__ = ["MAX_CHECKED_PROFILES", "Game", "GameError", "Player", "load_game"]

MAX_CHECKED_PROFILES = 2000  # every profile's scenario is validated up to this many


class GameError(ExperimentError):
    """A game file a user wrote is invalid, or the game cannot be run as asked; the message says why."""


_NAME = r"[A-Za-z][A-Za-z0-9_-]{0,63}"  # a player's or a strategy's name


class Player(StrictModel):
    """One player: the agents whose outcomes make its payoff, and its strategies."""

    agents: Annotated[list[str], Field(min_length=1)]
    payoff: Annotated[str, AfterValidator(PAYOFFS.check)] = "profit"
    horizon: between(1, MAX_STEP, int) | None = None  # months counted (default: the game's steps)
    discount: between(0.0, 1.0) = 0.10  # a year
    strategies: Annotated[dict[str, dict[str, Any]], Field(min_length=1)]

    @field_validator("strategies")
    @classmethod
    def _names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in v:
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"strategy name {name!r}: use a letter, then letters, digits, '_' or '-' (at most 64)")
        return v


class Search(StrictModel):
    """How profiles are chosen: ``full`` runs every profile; ``double_oracle`` grows each player's
    strategy set from its first strategy by best responses to the equilibrium of the game so far
    (McMahan, Gordon and Blum 2003), and stops when no strategy outside gains against it."""

    method: Literal["full", "double_oracle"] = "full"
    tolerance: between(0.0, 1e15) = 0.0  # least gain (payoff units) that adds a strategy
    max_iterations: between(1, 1000, int) = 50


class Game(StrictModel):
    """A validated game file."""

    name: FolderName
    description: str = ""
    scenario: str
    replications: between(2, 10_000, int) = 10
    steps: between(1, MAX_STEP, int) | None = None
    base_seed: between(0, 2**63 - 1, int) = 0
    overrides: dict[str, Any] = {}
    max_runs: between(1, 10_000_000, int) = 5000  # refuse a game needing more runs than this
    bootstrap: between(200, 100_000, int) = 2000  # resamples for the confidence intervals
    search: Search = Search()
    players: Annotated[dict[str, Player], Field(min_length=1)]
    source_dir: str = "."

    @field_validator("players")
    @classmethod
    def _players(cls, v: dict[str, Player]) -> dict[str, Player]:
        for name in v:
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"player name {name!r}: use a letter, then letters, digits, '_' or '-' (at most 64)")
        if all(len(p.strategies) == 1 for p in v.values()):
            raise ValueError("no player has a choice: give at least one player two strategies or more")
        owner: dict[str, str] = {}
        for name, p in v.items():
            for agent in p.agents:
                if agent in owner and owner[agent] != name:
                    raise ValueError(f"agent {agent!r} is in players {owner[agent]!r} and {name!r}; "
                                     "an agent's outcomes count for one player only")
                owner[agent] = name
        return v

    @model_validator(mode="after")
    def _disjoint_strategies(self) -> Game:
        """Two players' strategies must not set the same field (a profile could not say whose value wins)."""
        setter: dict[str, str] = {}
        for name, p in self.players.items():
            for path in {path for s in p.strategies.values() for path in s}:
                if path in setter and setter[path] != name:
                    raise ValueError(f"players {setter[path]!r} and {name!r} both set {path!r} in their strategies; "
                                     "a field belongs to one player's choices (move it to one of them, or into "
                                     "the game's overrides)")
                setter[path] = name
                if path in self.overrides:
                    raise ValueError(f"{path!r} is set by player {name!r}'s strategies and by the game's overrides; "
                                     "keep one")
        return self

    # -- derived ---------------------------------------------------------------------------------
    @property
    def player_names(self) -> list[str]:
        return list(self.players)

    @property
    def shape(self) -> tuple[int, ...]:
        """Strategies per player, in file order."""
        return tuple(len(p.strategies) for p in self.players.values())

    @property
    def n_profiles(self) -> int:
        return math.prod(self.shape)

    def strategy_names(self, player: str) -> list[str]:
        return list(self.players[player].strategies)

    def profiles(self) -> list[tuple[int, ...]]:
        """Every profile as strategy indices, in the order of the design points (last player fastest)."""
        return list(itertools.product(*(range(k) for k in self.shape)))

    def profile_point(self, profile: tuple[int, ...]) -> int:
        """The design point (index in :meth:`profiles`) of a profile."""
        point = 0
        for k, i in zip(self.shape, profile, strict=True):
            point = point * k + i
        return point

    def profile_overrides(self, profile: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (name, player), i in zip(self.players.items(), profile, strict=True):
            out.update(player.strategies[self.strategy_names(name)[i]])
        return out

    def profile_label(self, profile: tuple[int, ...]) -> dict[str, str]:
        return {name: self.strategy_names(name)[i] for name, i in zip(self.players, profile, strict=True)}

    def horizon(self, player: str, steps: int) -> int:
        h = self.players[player].horizon
        return steps if h is None else h

    def experiment(self) -> Experiment:
        """The game as an experiment: one design point per profile, common seeds across profiles."""
        return Experiment(name=self.name, description=self.description or f"game {self.name}",
                          scenarios=[self.scenario], replications=self.replications, steps=self.steps,
                          base_seed=self.base_seed, overrides=dict(self.overrides),
                          points=[self.profile_overrides(p) for p in self.profiles()], common_seeds=True,
                          source_dir=self.source_dir)


def load_game(path: str | Path, *, check: bool = True, overrides: dict[str, Any] | None = None) -> Game:
    """Read and validate a game file; with ``check``, also its agents and every profile's scenario
    (:func:`check_game`). ``overrides``: dotted scenario overrides added to the game's own for every
    profile (``market game --set``; a sensitivity). Raises :class:`GameError` with a one-paragraph
    message."""
    path = Path(path)
    data = read_user_file(path, "game", "scenario and [players.<name>] tables", GameError)
    if overrides:
        data["overrides"] = {**data.get("overrides", {}), **overrides}
    game = validate_model(Game, data, f"game {str(path)!r}", GameError)
    if check:
        check_game(game)
    return game


def check_game(game: Game) -> Scenario:
    """Check what the file alone cannot: every agent is an agent of the base scenario and fits its
    player's payoff, horizons fit the run, and every profile's scenario is valid. Returns the base
    scenario (with the game's overrides)."""
    exp = game.experiment()
    if game.n_profiles > MAX_CHECKED_PROFILES:  # check each strategy on its own, not every profile
        exp = exp.model_copy(update={"points": [dict(s) for p in game.players.values() for s in p.strategies.values()]})
    try:
        base = check_experiment(exp)[game.scenario]
    except ExperimentError as exc:
        raise GameError(str(exc).replace("experiment ", "game ", 1).replace("design point", "profile")) from None
    kinds = {**{v: "vendor" for v in base.vendors}, **{c: "cloud" for c in base.clouds}, **{lab: "lab" for lab in base.labs}}
    for name, player in game.players.items():
        payoff = PAYOFFS[player.payoff]
        for agent in player.agents:
            if agent not in kinds:
                raise GameError(f"game {game.name!r}, players.{name}.agents: {agent!r} is not an agent of scenario "
                                f"{game.scenario!r}; allowed: vendors {sorted(base.vendors)}, clouds "
                                f"{sorted(base.clouds)}, labs {sorted(base.labs)}.")
            if kinds[agent] not in payoff.kinds:
                raise GameError(f"game {game.name!r}, players.{name}: payoff {player.payoff!r} applies to "
                                f"{' and '.join(sorted(payoff.kinds))} agents, and {agent!r} is a {kinds[agent]}; "
                                "choose another payoff (see docs/GAMES.md) or other agents.")
        steps = game.steps if game.steps is not None else base.steps
        if game.horizon(name, steps) > steps:
            raise GameError(f"game {game.name!r}, players.{name}.horizon: {player.horizon} months is longer than "
                            f"the runs ({steps} steps); give at most {steps}.")
    return base

