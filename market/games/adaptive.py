"""Adaptive strategies inside a run: levers that players revise as they go, by a learning rule.

A game file fixes each player's strategy for the whole run; here a player moves a **lever** every
``period`` months, choosing among a grid of values by a **learning rule** on the reward it has
realised, so several players' strategies co-evolve in one simulation:

    >>> from market.games.adaptive import Learner, run_adaptive
    >>> result = run_adaptive("openai_google_tpu", [
    ...     Learner("google", ["google", "gcp", "deepmind"], "withholding_share", "gcp", [0.0, 0.5, 1.0], "ucb1"),
    ...     Learner("openai", ["openai"], "diversification", "openai", [0.0, 0.5, 1.0], "epsilon_greedy"),
    ... ], seed=1, period=3)                                                   # doctest: +SKIP
    >>> result.tables["levers"]     # step, player, lever, value, reward        # doctest: +SKIP

**Levers** (:data:`LEVERS`), each a field of the scenario changed on the running model, from the
next month on:

* ``withholding_share`` (cloud; 0-1): the share of its free top-tier capacity a cloud keeps from
  the buyers its withholding rule names (``clouds.<id>.withholding.share``; the cloud needs a rule);
* ``diversification`` (lab; 0-5): the penalty per unit of a vendor's share the lab weighs in its
  choices (``labs.<id>.diversification``): how hard it diversifies;
* ``markup`` (cloud on the ``cost_plus`` rule; 0-10): its posted prices as a markup over avoidable
  cost, ``opex x (1 + markup)`` for every product it holds.

**Rewards** are the player's flows over the period, as the payoffs define them
(:mod:`market.games.payoffs`, undiscounted within the period): ``profit`` (vendors' and clouds'
profit plus labs' surplus, billion USD), ``surplus`` or ``utility`` (labs). They carry the market's
lags: labs size their orders on last month's prices, so a month's reward holds a little of the
previous value's effect; a period of a few months attributes most of each reward to its own value.
The environment also moves (demand grows, chips age), so the rules see a changing bandit.

**Learning rules** (:data:`RULES`), each choosing an index into the lever's grid:

* ``epsilon_greedy``: each value once, then the best average reward so far, and with probability
  ``epsilon`` (0.1) a value at random (Sutton and Barto 2018, ch. 2);
* ``ucb1``: each value once, then the best average plus ``c * scale * sqrt(2 ln n / n_k)``, scale the
  range of the average rewards seen (UCB1 wants rewards in [0, 1]; Auer, Cesa-Bianchi and Fischer
  2002);
* ``exp3``: exponential weights on rewards scaled to [0, 1] by the range seen so far, mixed with
  ``gamma`` (0.1) uniform exploration: for opponents that adapt too (Exp3, Auer et al. 2002);
* ``hill_climb``: a local best reply by compass search (Kolda, Lewis and Torczon 2003): from the
  first value, alternately the incumbent and its neighbour, moving when the neighbour pays more.

Each learner draws from its own generator, seeded from the run's seed and its position, so a run
is reproducible and adding a learner does not change the model's own draws.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import polars as pl

from market.model import MarketModel
from market.registry import Registry
from market.run import RunResult, run_model
from market.scenario import Scenario, load_scenario

__all__ = ["LEVERS", "RULES", "Learner", "Lever", "agent_flow", "run_adaptive"]


# -- levers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lever:
    """A strategic lever: the agent kind it belongs to, its allowed range, the scenario field it
    stands for, and how it changes a running model."""

    name: str
    kind: str  # "cloud" or "lab"
    low: float
    high: float
    path: str  # the scenario field, with {agent}
    apply: Callable[[MarketModel, str, float], None]

    def check(self, model: MarketModel, agent: str, value: float) -> None:
        agents = model.clouds if self.kind == "cloud" else model.labs
        if agent not in agents:
            raise ValueError(f"lever {self.name!r}: {agent!r} is not a {self.kind} of the scenario; "
                             f"allowed: {', '.join(sorted(agents))}")
        if not (isinstance(value, int | float) and math.isfinite(value) and self.low <= value <= self.high):
            raise ValueError(f"lever {self.name!r} ({self.path.format(agent=agent)}): {value!r} is not allowed; "
                             f"give a number from {self.low} to {self.high}")


def _withholding_share(model: MarketModel, cloud_id: str, value: float) -> None:
    cloud = model.clouds[cloud_id]
    rule = cloud.cfg.withholding
    if rule is None:
        raise ValueError(f"lever 'withholding_share': cloud {cloud_id!r} has no withholding rule; give it one "
                         f"(clouds.{cloud_id}.withholding) in the scenario")
    cloud.cfg = cloud.cfg.model_copy(update={"withholding": rule.model_copy(update={"share": float(value)})})


def _diversification(model: MarketModel, lab_id: str, value: float) -> None:
    lab = model.labs[lab_id]
    lab.cfg = lab.cfg.model_copy(update={"diversification": float(value)})
    market = model.compute_market
    market._diversification[market.lab_index[lab_id]] = float(value)  # the market's copy, for all labs at once


def _markup(model: MarketModel, cloud_id: str, value: float) -> None:
    cloud = model.clouds[cloud_id]
    if cloud.cfg.pricing.rule != "cost_plus":
        raise ValueError(f"lever 'markup': cloud {cloud_id!r} reprices by itself (pricing.rule = "
                         f"{cloud.cfg.pricing.rule!r}); the lever needs clouds.{cloud_id}.pricing.rule = \"cost_plus\"")
    for product in cloud.rental_price:
        cloud.rental_price[product] = cloud.avoidable_cost(product) * (1.0 + value)


LEVERS: Registry[Lever] = Registry("lever", {lever.name: lever for lever in (
    Lever("withholding_share", "cloud", 0.0, 1.0, "clouds.{agent}.withholding.share", _withholding_share),
    Lever("diversification", "lab", 0.0, 5.0, "labs.{agent}.diversification", _diversification),
    Lever("markup", "cloud", 0.0, 10.0, "clouds.{agent}.rental_price_usd_per_chip_hour (opex x (1 + markup))", _markup),
)})


def agent_flow(model: MarketModel, agent: str, payoff: str = "profit") -> float:
    """This month's flow of one agent, in billion USD, as :mod:`market.games.payoffs` defines it:
    a vendor's or cloud's profit; a lab's surplus (value of the compute used less spend), less its
    stated cost of dependence for ``utility``."""
    if agent in model.vendors:
        return model.vendors[agent].profit / 1e9
    if agent in model.clouds:
        return model.clouds[agent].profit / 1e9
    lab = model.labs[agent]
    served = min(lab.useful_contracted(), lab.notional())
    spend = lab.committed_spend()
    surplus = served * lab.cfg.value_usd_per_pflop_hour * model.hours - spend
    if payoff == "utility":  # the diversification the scenario states, not a lever's current value
        stated = model.config.labs[agent].diversification if agent in model.config.labs else lab.cfg.diversification
        shares = lab.vendor_shares()
        surplus -= stated * (max(shares.values()) if shares else 0.0) * spend
    return surplus / 1e9


# -- learning rules ------------------------------------------------------------------------------


class Rule:
    """A learning rule over ``k`` arms: :meth:`choose` an arm, then :meth:`update` with its reward."""

    name: ClassVar[str]

    def __init__(self, k: int, rng: np.random.Generator, **params: float) -> None:
        self.k = k
        self.rng = rng
        self.counts = np.zeros(k)
        self.means = np.zeros(k)
        unknown = set(params) - set(self.defaults())
        if unknown:
            raise ValueError(f"rule {self.name!r}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(self.defaults())}")
        self.params = {**self.defaults(), **params}

    @classmethod
    def defaults(cls) -> dict[str, float]:
        return {}

    def choose(self) -> int:
        raise NotImplementedError

    def update(self, arm: int, reward: float) -> None:
        self.counts[arm] += 1
        self.means[arm] += (reward - self.means[arm]) / self.counts[arm]

    def _untried(self) -> int | None:
        untried = np.flatnonzero(self.counts == 0)
        return int(untried[0]) if untried.size else None


class EpsilonGreedy(Rule):
    name = "epsilon_greedy"

    @classmethod
    def defaults(cls) -> dict[str, float]:
        return {"epsilon": 0.1}

    def choose(self) -> int:
        first = self._untried()
        if first is not None:
            return first
        if self.rng.random() < self.params["epsilon"]:
            return int(self.rng.integers(self.k))
        return int(np.argmax(self.means))


class UCB1(Rule):
    name = "ucb1"

    @classmethod
    def defaults(cls) -> dict[str, float]:
        return {"c": 1.0}

    def choose(self) -> int:
        first = self._untried()
        if first is not None:
            return first
        scale = max(float(np.ptp(self.means)), 1e-12)  # rewards scaled to their observed range, as UCB1 wants [0, 1]
        bonus = self.params["c"] * scale * np.sqrt(2.0 * math.log(self.counts.sum()) / self.counts)
        return int(np.argmax(self.means + bonus))


class Exp3(Rule):
    name = "exp3"

    @classmethod
    def defaults(cls) -> dict[str, float]:
        return {"gamma": 0.1}

    def __init__(self, k: int, rng: np.random.Generator, **params: float) -> None:
        super().__init__(k, rng, **params)
        self.log_weights = np.zeros(k)
        self.low, self.high = math.inf, -math.inf
        self.probabilities = np.full(k, 1.0 / k)

    def choose(self) -> int:
        gamma = self.params["gamma"]
        w = np.exp(self.log_weights - self.log_weights.max())
        self.probabilities = (1.0 - gamma) * w / w.sum() + gamma / self.k
        return int(self.rng.choice(self.k, p=self.probabilities))

    def update(self, arm: int, reward: float) -> None:
        super().update(arm, reward)
        self.low, self.high = min(self.low, reward), max(self.high, reward)
        scaled = (reward - self.low) / (self.high - self.low) if self.high > self.low else 0.5
        self.log_weights[arm] += self.params["gamma"] * scaled / (self.probabilities[arm] * self.k)


class HillClimb(Rule):
    """Compass search on the grid (Kolda, Lewis and Torczon 2003): alternately its incumbent value
    and the neighbour in its direction, one period each; it moves if the neighbour paid more, else
    turns round. A local best reply to what the others do now, starting from the first value."""

    name = "hill_climb"

    def __init__(self, k: int, rng: np.random.Generator, **params: float) -> None:
        super().__init__(k, rng, **params)
        self.incumbent, self.direction, self.probing, self.incumbent_reward = 0, 1, False, 0.0

    def choose(self) -> int:
        return self.incumbent + self.direction if self.probing and self.k > 1 else self.incumbent

    def update(self, arm: int, reward: float) -> None:
        super().update(arm, reward)
        if self.probing:
            if reward > self.incumbent_reward:
                self.incumbent, self.incumbent_reward = arm, reward
            else:
                self.direction = -self.direction
        else:
            self.incumbent_reward = reward
        if not 0 <= self.incumbent + self.direction < self.k:  # at an end of the grid: turn round
            self.direction = -self.direction
        self.probing = not self.probing and self.k > 1


RULES: Registry[type[Rule]] = Registry("learning rule", {rule.name: rule for rule in (EpsilonGreedy, UCB1, Exp3,
                                                                                       HillClimb)})


# -- the runner ------------------------------------------------------------------------------------


@dataclass
class Learner:
    """A player that moves one lever of one agent among ``values`` by ``rule``, on the reward of
    its ``agents`` (``payoff``: profit, surplus or utility)."""

    player: str
    agents: list[str]
    lever: str
    agent: str
    values: Sequence[float]
    rule: str = "ucb1"
    payoff: str = "profit"
    params: dict[str, float] = field(default_factory=dict)


def run_adaptive(scenario: Scenario | str | os.PathLike, learners: Sequence[Learner], *, seed: int = 0,
                 period: int = 3, steps: int | None = None) -> RunResult:
    """Run a scenario while each learner revises its lever every ``period`` months. Returns the run's
    tables plus ``levers``: per period and learner, the value played and the reward it earned."""
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if steps is not None:
        sc = Scenario.model_validate({**sc.model_dump(), "steps": steps})
    if not isinstance(period, int) or period < 1:
        raise ValueError(f"period: {period!r} is not allowed; give a whole number of months, 1 or more")
    model = MarketModel(sc, seed=seed)
    rules, levers = [], []
    for k, learner in enumerate(learners):
        lever = LEVERS[learner.lever]  # UnknownName (a ValueError) lists the levers allowed
        if learner.payoff not in ("profit", "surplus", "utility"):
            raise ValueError(f"learner {learner.player!r}: payoff {learner.payoff!r} is not allowed; "
                             "give profit, surplus or utility")
        if not learner.values:
            raise ValueError(f"learner {learner.player!r}: give at least one value for lever {learner.lever!r}")
        for v in learner.values:
            lever.check(model, learner.agent, v)
        for a in learner.agents:
            if a not in model.vendors and a not in model.clouds and a not in model.labs:
                raise ValueError(f"learner {learner.player!r}: {a!r} is not an agent of the scenario")
        rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0xADA, k)))
        rules.append(RULES[learner.rule](len(learner.values), rng, **learner.params))
        levers.append(lever)
    rows: list[dict] = []
    state = {"arms": [0] * len(learners), "rewards": [0.0] * len(learners), "start": 0}

    def before(m: MarketModel, month: int) -> None:
        if month % period:
            return
        for k, (learner, rule, lever) in enumerate(zip(learners, rules, levers, strict=True)):
            arm = rule.choose()
            lever.apply(m, learner.agent, float(learner.values[arm]))
            state["arms"][k] = arm
            state["rewards"][k] = 0.0
        state["start"] = month

    def after(m: MarketModel, month: int) -> None:
        for k, learner in enumerate(learners):
            state["rewards"][k] += sum(agent_flow(m, a, learner.payoff) for a in learner.agents)
        if (month + 1) % period and month + 1 < sc.steps:
            return
        for k, (learner, rule) in enumerate(zip(learners, rules, strict=True)):
            rule.update(state["arms"][k], state["rewards"][k])
            rows.append({"step": state["start"], "player": learner.player, "lever": learner.lever,
                         "agent": learner.agent, "value": float(learner.values[state["arms"][k]]),
                         "reward": state["rewards"][k], "months": month + 1 - state["start"]})

    result = run_model(model, sc, seed, before=before, after=after)
    result.tables["levers"] = pl.DataFrame(rows, schema={"step": pl.Int64, "player": pl.String, "lever": pl.String,
                                                         "agent": pl.String, "value": pl.Float64,
                                                         "reward": pl.Float64, "months": pl.Int64})
    return result
