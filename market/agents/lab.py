"""AI labs: growing demand for compute, budgets, software readiness, and which offers to take."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa

from market.contracts import Contract
from market.scenario import Lab

if TYPE_CHECKING:
    from market.model import MarketModel

__all__ = ["DEFAULT_READINESS", "AILab"]

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
        self._peak: dict[tuple[str, str], float] = {}  # (purpose, ecosystem) -> peak PFLOP/s under contract
        self._peak_vendor: dict[str, float] = {}  # vendor -> peak PFLOP/s under contract
        self._spend = 0.0  # USD per month under contract

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
                self._book(c, -1.0)
        self.contracts = live
        if not live:  # start again from exact zeros
            self._peak.clear()
            self._peak_vendor.clear()
            self._spend = 0.0

    def add_contract(self, c: Contract) -> None:
        self.contracts.append(c)
        self._book(c, 1.0)

    def _book(self, c: Contract, sign: float) -> None:
        """Keep running totals of the contracts, so the monthly decisions need not re-add them."""
        key = (c.purpose, self.model.ecosystem_of[c.vendor])
        self._peak[key] = self._peak.get(key, 0.0) + sign * c.pflops
        self._peak_vendor[c.vendor] = self._peak_vendor.get(c.vendor, 0.0) + sign * c.pflops
        self._spend += sign * c.monthly_cost(self.model.hours)

    # -- state the decisions use -----------------------------------------------------------
    def useful_contracted(self, purpose: str | None = None) -> float:
        """Useful PFLOP/s under contract: peak PFLOP/s times readiness in each chip's ecosystem."""
        return sum(max(0.0, pf) * self.readiness[eco] for (p, eco), pf in self._peak.items()
                   if purpose is None or p == purpose)

    def peak_contracted(self) -> float:
        return sum(max(0.0, pf) for pf in self._peak_vendor.values())

    def committed_spend(self) -> float:
        """US dollars a month owed under active contracts."""
        return max(0.0, self._spend)

    def ecosystems_in_use(self) -> set[str]:
        return {eco for (_, eco), pf in self._peak.items() if pf > 1e-9}

    def vendor_shares(self) -> dict[str, float]:
        """Share of its contracted peak compute by vendor."""
        total = self.peak_contracted()
        if total <= 0:
            return {}
        return {v: max(0.0, pf) / total for v, pf in self._peak_vendor.items() if pf > 1e-9}

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
        total = self.peak_contracted()
        if total <= 0 or self.cfg.learning_rate <= 0:
            return
        use: dict[str, float] = {}
        for (_, eco), pf in self._peak.items():
            use[eco] = use.get(eco, 0.0) + max(0.0, pf) / total
        for eco, share in use.items():
            r = self.readiness[eco]
            ceiling = self.model.maturity[eco]
            if r < ceiling and share > 0:
                self.readiness[eco] = r + self.cfg.learning_rate * share * (ceiling - r)
