"""The model as a PettingZoo ``ParallelEnv``, to train strategies with any multi-agent RL library.

    pip install -e ".[rl]"          # pettingzoo and gymnasium

    >>> from market.games.env import MarketEnv
    >>> env = MarketEnv("openai_google_tpu", period=3)                     # doctest: +SKIP
    >>> observations, infos = env.reset(seed=1)                             # doctest: +SKIP
    >>> actions = {a: env.action_space(a).sample() for a in env.agents}     # doctest: +SKIP
    >>> observations, rewards, terminations, truncations, infos = env.step(actions)  # doctest: +SKIP

Agents are players (:class:`EnvPlayer`), each moving one lever (:data:`market.games.adaptive.LEVERS`)
of one agent of the model every ``period`` months. An **action** is an index into the player's
grid of lever values (``Discrete(len(values))``). A **reward** is the player's flow over the period
(:func:`market.games.adaptive.agent_flow`: profit, surplus or utility, billion USD). An
**observation** (``Box``, float32) is, in order: the share of the run elapsed; each vendor's share
of the compute labs hold (vendors in name order); the player's reward over the last period; the
lever value it last played. Episodes end by truncation at the scenario's last month (the market has
no terminal state). ``reset(seed=...)`` is reproducible: the same seed and actions give the same
rewards. The default players are Google (Google Cloud's withholding share, profit of its TPU
vendor, Google Cloud and DeepMind) and OpenAI (its diversification, utility).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

try:
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError as exc:  # pragma: no cover - depends on the extra
    raise ImportError('market.games.env needs PettingZoo and Gymnasium: pip install -e ".[rl]"') from exc

from market.games.adaptive import LEVERS, agent_flow
from market.model import MarketModel
from market.scenario import Scenario, load_scenario

__all__ = ["DEFAULT_PLAYERS", "EnvPlayer", "MarketEnv"]


@dataclass(frozen=True)
class EnvPlayer:
    """A learning agent of the environment: the model agents whose flows are its reward, and the
    lever it moves among ``values``."""

    name: str
    agents: tuple[str, ...]
    lever: str
    agent: str
    values: tuple[float, ...]
    payoff: str = "profit"


DEFAULT_PLAYERS = (
    EnvPlayer("google", ("google", "gcp", "deepmind"), "withholding_share", "gcp", (0.0, 0.25, 0.5, 0.75, 1.0)),
    EnvPlayer("openai", ("openai",), "diversification", "openai", (0.0, 0.5, 1.0, 1.5, 2.0), "utility"),
)


class MarketEnv(ParallelEnv):
    """The market as a parallel multi-agent environment (see the module docstring)."""

    metadata = {"name": "market_v0", "render_modes": []}  # noqa: RUF012 - PettingZoo's convention

    def __init__(self, scenario: Scenario | str | os.PathLike = "openai_google_tpu",
                 players: Sequence[EnvPlayer] = DEFAULT_PLAYERS, *, period: int = 3, steps: int | None = None,
                 seed: int = 0) -> None:
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if steps is not None:
            sc = Scenario.model_validate({**sc.model_dump(), "steps": steps})
        if not isinstance(period, int) or period < 1:
            raise ValueError(f"period: {period!r} is not allowed; give a whole number of months, 1 or more")
        self.scenario, self.period, self.seed = sc, period, seed
        self.players = {p.name: p for p in players}
        if len(self.players) != len(players) or not players:
            raise ValueError("players: give at least one, each with its own name")
        probe = MarketModel(sc, seed=seed, record=False)
        for p in players:
            try:
                LEVERS[p.lever]
            except KeyError as exc:  # UnknownName: lists the levers allowed
                raise ValueError(f"player {p.name!r}: {exc}") from None
            if not p.values:
                raise ValueError(f"player {p.name!r}: give at least one lever value")
            for v in p.values:
                LEVERS[p.lever].check(probe, p.agent, v)
        self.vendor_ids = sorted(probe.vendors)
        probe.release()
        self.possible_agents = [p.name for p in players]
        self.agents: list[str] = []
        self._obs_size = 3 + len(self.vendor_ids)
        self._action_spaces = {p.name: spaces.Discrete(len(p.values)) for p in players}
        self._observation_spaces = {p.name: spaces.Box(-np.inf, np.inf, shape=(self._obs_size,), dtype=np.float32)
                                    for p in players}
        self.model: MarketModel | None = None

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[agent]

    def observation_space(self, agent: str) -> spaces.Box:
        return self._observation_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.seed = seed
        if self.model is not None:
            self.model.release()
        self.model = MarketModel(self.scenario, seed=self.seed, record=False)
        self.month = 0
        self.agents = list(self.possible_agents)
        self._last = {a: (0.0, float(self.players[a].values[0])) for a in self.agents}
        return {a: self._observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        assert self.model is not None, "call reset() first"
        for a in self.agents:
            p = self.players[a]
            LEVERS[p.lever].apply(self.model, p.agent, float(p.values[int(actions[a])]))
        rewards = dict.fromkeys(self.agents, 0.0)
        for _ in range(min(self.period, self.scenario.steps - self.month)):
            self.model.step()
            self.month += 1
            for a in self.agents:
                rewards[a] += sum(agent_flow(self.model, x, self.players[a].payoff) for x in self.players[a].agents)
        self._last = {a: (rewards[a], float(self.players[a].values[int(actions[a])])) for a in self.agents}
        done = self.month >= self.scenario.steps
        observations = {a: self._observe(a) for a in self.agents}
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, done)
        infos = {a: {"month": self.month} for a in self.agents}
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def _observe(self, agent: str) -> np.ndarray:
        held = dict.fromkeys(self.vendor_ids, 0.0)
        for lab in self.model.lab_list:
            peak = lab.peak_contracted()
            for v, share in lab.vendor_shares().items():
                held[v] += share * peak
        total = sum(held.values())
        shares = [held[v] / total if total > 0 else 0.0 for v in self.vendor_ids]
        reward, value = self._last[agent]
        return np.array([self.month / self.scenario.steps, *shares, reward, value], dtype=np.float32)

    def render(self) -> None:  # no rendering: the tables and figures are the view
        return None

    def close(self) -> None:
        if self.model is not None:
            self.model.release()
            self.model = None
