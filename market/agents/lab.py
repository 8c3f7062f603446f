"""AI labs: growing demand for compute, budgets, software readiness, and which offers to take."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa

from market.contracts import Contract
from market.scenario import Lab

if TYPE_CHECKING:
    from market.model import MarketModel

__all__ = ["AILab", "DEFAULT_READINESS"]

DEFAULT_READINESS = 0.2  # share of peak a lab gets from an ecosystem it has not listed (assumption)


class AILab(mesa.Agent):
    """An AI lab.

    Attributes:
        lab_id, cfg: id and validated configuration (preferences).
        demand: useful PFLOP/s it wants under contract (peak PFLOP/s × readiness).
        budget: US dollars per month it may commit to rentals.
        readiness: ecosystem -> share of a chip's peak it can use (rises with use).
        contracts: active rental contracts.
    """

    model: MarketModel

    def __init__(self, model: MarketModel, lab_id: str, cfg: Lab) -> None:
        super().__init__(model)
        self.lab_id = lab_id
        self.cfg = cfg
        self.demand = cfg.demand_pflops
        self.budget = cfg.budget_usd_per_month
        self.readiness = {e: cfg.readiness.get(e, DEFAULT_READINESS) for e in model.ecosystems}
        self.contracts: list[Contract] = []

    # -- exogenous -------------------------------------------------------------------------
    def grow(self, z: float) -> None:
        """Demand follows a log random walk with drift (``z`` a standard normal draw from the
        model's Generator); budgets grow at a fixed rate."""
        cfg = self.cfg
        self.demand *= math.exp(cfg.demand_growth + cfg.demand_volatility * z)
        self.budget *= 1.0 + cfg.budget_growth

    def expire_contracts(self) -> None:
        t = self.model.t
        live = []
        for c in self.contracts:
            if c.end_step > t:
                live.append(c)
            else:
                cloud = self.model.clouds[c.cloud]
                cloud.contracted[c.product] = max(0.0, cloud.contracted[c.product] - c.chips)
        self.contracts = live

    # -- state the decisions use -----------------------------------------------------------
    def useful(self, c: Contract) -> float:
        return c.pflops * self.readiness[self.model.vendors[c.vendor].ecosystem]

    def useful_contracted(self, purpose: str | None = None) -> float:
        return sum(self.useful(c) for c in self.contracts if purpose is None or c.purpose == purpose)

    def committed_spend(self) -> float:
        hours = self.model.hours
        return sum(c.monthly_cost(hours) for c in self.contracts)

    def vendor_shares(self) -> dict[str, float]:
        """Share of its contracted peak compute by vendor."""
        total = sum(c.pflops for c in self.contracts)
        out: dict[str, float] = {}
        if total <= 0:
            return out
        for c in self.contracts:
            out[c.vendor] = out.get(c.vendor, 0.0) + c.pflops / total
        return out

    def needs(self) -> list[tuple[str, float]]:
        """Useful PFLOP/s still to contract: training (which wants the top tier) first, then inference."""
        train = self.demand * self.cfg.training_share
        infer = self.demand - train
        return [("training", max(0.0, train - self.useful_contracted("training"))),
                ("inference", max(0.0, infer - self.useful_contracted("inference")))]

    def penalty(self, vendor: str, tier: str, purpose: str, ecosystems_in_use: set[str],
                shares: dict[str, float]) -> float:
        """Multiplier on the price per useful PFLOP-hour of an offer, >= 1.

        Three frictions: switching into an ecosystem it has no contracts in costs
        ``switching_cost × (1 - readiness)`` (the porting work left); concentration costs
        ``diversification × (vendor's share of its compute)``; training on a previous-tier
        product costs ``previous_tier_penalty`` (slower interconnect, less memory).
        """
        eco = self.model.vendors[vendor].ecosystem
        cfg = self.cfg
        switching = 1.0 if eco in ecosystems_in_use else 1.0 + cfg.switching_cost * (1.0 - self.readiness[eco])
        tier_penalty = 1.0 + cfg.previous_tier_penalty if purpose == "training" and tier != "top" else 1.0
        return switching * tier_penalty * (1.0 + cfg.diversification * shares.get(vendor, 0.0))

    def willingness_to_pay(self, pflops: float, ecosystem: str, penalty: float) -> float:
        """Most it would pay per chip-hour: value of the useful compute, net of the penalties."""
        return self.cfg.value_usd_per_pflop_hour * pflops * self.readiness[ecosystem] / penalty

    # -- settlement ------------------------------------------------------------------------
    def learn(self) -> None:
        """Learning by doing: readiness moves toward the ecosystem's software maturity, faster the
        larger the share of the lab's compute that runs on it."""
        total = sum(c.pflops for c in self.contracts)
        if total <= 0 or self.cfg.learning_rate <= 0:
            return
        use: dict[str, float] = {}
        for c in self.contracts:
            eco = self.model.vendors[c.vendor].ecosystem
            use[eco] = use.get(eco, 0.0) + c.pflops / total
        for eco, share in use.items():
            r = self.readiness[eco]
            ceiling = self.model.maturity[eco]
            if r < ceiling:
                self.readiness[eco] = r + self.cfg.learning_rate * share * (ceiling - r)

    def nvidia_dependency(self) -> float:
        return self.vendor_shares().get("nvidia", 0.0)
