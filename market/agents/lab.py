"""AI labs: growing demand for compute, budgets, software readiness, and which offers to take."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import TYPE_CHECKING

import mesa

from market.contracts import PURPOSES, Contract, monthly_cost
from market.scenario import Lab

if TYPE_CHECKING:
    from market.model import MarketModel

# positions of a Contract's fields (labs keep their contracts as plain tuples)
_CLOUD, _VENDOR, _PRODUCT, _PURPOSE, _KIND, _CHIPS, _PFLOPS, _PRICE = (
    Contract._fields.index(name) for name in ("cloud", "vendor", "product", "purpose", "kind", "chips", "pflops",
                                              "price_usd_per_chip_hour"))

__all__ = ["DEFAULT_READINESS", "AILab"]

DEFAULT_READINESS = 0.2  # share of peak a lab gets from an ecosystem it has not listed (assumption)
_STANDARD_NORMAL = NormalDist()
# statistics' inverse normal CDF is pure Python; the long tail's labs ask it the same quantiles
# (the same offers at the same prices) thousands of times a month
_quantile = functools.lru_cache(maxsize=1 << 14)(_STANDARD_NORMAL.inv_cdf)


class AILab(mesa.Agent):
    """An AI lab.

    Attributes:
        lab_id, cfg: id and validated configuration (preferences).
        demand: useful PFLOP/s (peak PFLOP/s × readiness) it would want under contract at the
            reference price (``demand.reference_price_usd_per_pflop_hour``): its exogenous path.
        price_level: USD per useful PFLOP-hour it has been paying (moving average of new contracts);
            long-run demand follows it, short-run demand answers to this month's price against it.
        budget: US dollars per month it may commit to rentals (a financing limit).
        readiness: (purpose, ecosystem) -> share of a chip's peak it can use for that purpose (rises
            with use for that purpose; inference's faster, ``cfg.inference_learning_rate``).
        contracts: active rental contracts.
    """

    model: MarketModel

    def __init__(self, model: MarketModel, lab_id: str, cfg: Lab) -> None:
        super().__init__(model)
        self.lab_id = lab_id
        self.cfg = cfg
        self.demand = cfg.demand_pflops
        self.burst = 1.0  # this month's passing swing of its demand (mean 1; cfg.demand_burst)
        self.budget = cfg.budget_usd_per_month
        self.readiness = {(u, e): cfg.readiness.get(e, DEFAULT_READINESS) for u in PURPOSES for e in model.ecosystems}
        # its active contracts by the step they end, each in signing order, as plain tuples of a
        # Contract's fields: the collector untracks tuples of plain values (a NamedTuple it tracks
        # for good), and a 10,000-lab market holds some 400,000 contracts (docs/PERFORMANCE.md)
        self._by_end: dict[int, tuple[tuple, ...]] = {}
        self.n_contracts = 0
        half = cfg.contract_months / 2.0  # the newsvendor's constants (commitment): mid-term decline, premium, spread
        self._newsvendor = ((1.0 - model.config.demand.expected_price_decline) ** (half / 12.0),
                            1.0 + cfg.supply_security,
                            math.sqrt(cfg.demand_volatility ** 2 * half + cfg.demand_burst ** 2))
        self._peak: dict[tuple[str, str], float] = {}  # (purpose, ecosystem) -> peak PFLOP/s under contract
        self._peak_vendor: dict[str, float] = {}  # vendor -> peak PFLOP/s under contract
        self._peak_mix: dict[tuple[str, str], float] = {}  # (vendor, purpose) -> peak PFLOP/s under contract
        self._peak_kind: dict[str, float] = {}  # contract kind -> peak PFLOP/s under contract
        self._term: dict[tuple[str, str], float] = {}  # (purpose, ecosystem) -> peak PFLOP/s under term contracts
        self._spend = 0.0  # USD per month under contract
        self._by_cloud: dict[str, list] = {}  # cloud -> [USD per month under contract there, contracts]
        demand = model.config.demand
        self.price_level = demand.reference_price_usd_per_pflop_hour
        self._elasticity = {"training": demand.training_elasticity, "inference": demand.inference_elasticity}
        self._month_paid = [0.0, 0.0]  # this month's new contracts: USD per hour, useful PFLOP/s
        self._learning_rates = {"training": cfg.learning_rate, "inference": cfg.inference_learning_rate}

    # -- exogenous -------------------------------------------------------------------------
    def grow(self, z: float) -> None:
        """Demand follows a log random walk with drift (``z`` a standard normal draw from the
        model's Generator); budgets grow at a fixed rate."""
        cfg = self.cfg
        self.demand *= math.exp(cfg.demand_growth + cfg.demand_volatility * z)
        self.budget *= 1.0 + cfg.budget_growth

    @property
    def contracts(self) -> list[Contract]:
        """Its active contracts (grouped by the step they end)."""
        return [Contract._make(c) for ending in self._by_end.values() for c in ending]

    def expire_contracts(self) -> None:
        """End the contracts whose term is over (``end_step`` = now: every month is visited, and a
        contract ends at least a month after it is signed), freeing their chips, in the order
        they were signed."""
        due = self._by_end.pop(self.model.t, None)
        if due is None:
            return
        clouds = self.model.clouds
        for c in due:
            cloud = clouds[c[_CLOUD]]
            cloud.contracted[c[_PRODUCT]] = max(0.0, cloud.contracted[c[_PRODUCT]] - c[_CHIPS])
            self._book(c, -1.0)
        self.n_contracts -= len(due)
        if not self.n_contracts:  # start again from exact zeros
            self._peak.clear()
            self._peak_vendor.clear()
            self._peak_mix.clear()
            self._peak_kind.clear()
            self._term.clear()
            self._by_cloud.clear()
            self._spend = 0.0

    def add_contract(self, c: Contract) -> None:
        end = c.start_step + c.months
        if end <= self.model.t:
            raise ValueError(f"contract {c.contract_id} ends at step {end}, not after the current step {self.model.t}")
        self._by_end[end] = self._by_end.get(end, ()) + (tuple(c),)
        self.n_contracts += 1
        self._book(c, 1.0)

    def _book(self, c: tuple, sign: float) -> None:
        """Keep running totals of the contracts (a Contract, or the tuple of its fields), so the
        monthly decisions need not re-add them."""
        vendor, purpose, kind = c[_VENDOR], c[_PURPOSE], c[_KIND]
        pf = sign * c[_PFLOPS]
        key = (purpose, self.model.ecosystem_of[vendor])
        self._peak[key] = self._peak.get(key, 0.0) + pf
        self._peak_vendor[vendor] = self._peak_vendor.get(vendor, 0.0) + pf
        self._peak_mix[vendor, purpose] = self._peak_mix.get((vendor, purpose), 0.0) + pf
        self._peak_kind[kind] = self._peak_kind.get(kind, 0.0) + pf
        if kind != "on_demand":
            self._term[key] = self._term.get(key, 0.0) + pf
        cost = sign * monthly_cost(c[_CHIPS], c[_PRICE], self.model.hours)
        self._spend += cost
        at = self._by_cloud.get(c[_CLOUD])
        if at is None:
            at = self._by_cloud[c[_CLOUD]] = [0.0, 0]
        at[1] += 1 if sign > 0 else -1
        at[0] = at[0] + cost if at[1] else 0.0  # exact zero once none is left there

    # -- state the decisions use -----------------------------------------------------------
    def useful_contracted(self, purpose: str | None = None) -> float:
        """Useful PFLOP/s under contract: peak PFLOP/s times readiness for its purpose in each
        chip's ecosystem."""
        return self._useful(self._peak, purpose)

    def useful_by_purpose(self) -> tuple[float, float]:
        """:meth:`useful_contracted` of each purpose (in :data:`PURPOSES` order), in one pass."""
        return self._by_purpose(self._peak)

    def _useful(self, peak: dict[tuple[str, str], float], purpose: str | None) -> float:
        """Useful PFLOP/s of a table of peak PFLOP/s by (purpose, ecosystem), of one purpose or all."""
        if purpose is None:
            return sum(max(0.0, pf) * self.readiness[key] for key, pf in peak.items())
        total = 0  # the terms of :meth:`_by_purpose` for this purpose, in the same order
        readiness = self.readiness
        for key, pf in peak.items():
            if key[0] == purpose:
                total = total + max(0.0, pf) * readiness[key]
        return total

    def _by_purpose(self, peak: dict[tuple[str, str], float]) -> tuple[float, float]:
        """Useful PFLOP/s of a table of peak PFLOP/s, per purpose (:data:`PURPOSES` order): each
        purpose's terms summed in the table's order."""
        sums = [0, 0]
        for key, pf in peak.items():
            u = 0 if key[0] == PURPOSES[0] else 1
            sums[u] = sums[u] + max(0.0, pf) * self.readiness[key]
        return sums[0], sums[1]

    def spend_by_cloud(self) -> list[tuple[str, float]]:
        """US dollars a month owed to each cloud under its active contracts (clouds it owes
        nothing left out), in the order it first contracted with them."""
        return [(cloud, usd) for cloud, (usd, n) in self._by_cloud.items() if n > 0]

    def useful_committed(self, purpose: str) -> float:
        """Useful PFLOP/s of ``purpose`` under term contracts (reserved and anchor: all but on-demand)."""
        return self._useful(self._term, purpose)

    def kind_pflops(self, kind: str) -> float:
        """Peak PFLOP/s under contracts of one kind (:data:`market.contracts.KINDS`)."""
        return max(0.0, self._peak_kind.get(kind, 0.0))

    def commitment(self, wanted_now: float, reserved_price: float, on_demand_price: float) -> float:
        """Useful PFLOP/s it would hold under a reservation of its term (``cfg.contract_months``),
        given that it wants ``wanted_now`` at ``reserved_price`` today (docs/ODD.md 7.19).

        A newsvendor's choice: a unit reserved at price ``r`` is paid all term; bought on demand
        instead it costs the on-demand price, expected to fall by ``demand.expected_price_decline``
        a year (taken at mid-term), raised by its ``supply_security`` premium (capacity on demand
        may not be there), and only in months it needs it. It reserves up to the quantile ``1 -
        r / o`` of its need at mid-term, whose log is normal around today's need with its
        ``demand_volatility`` (no drift: growth it has not seen is not committed to). Nothing when
        reserving costs more than buying on demand. The month's passing swing of its demand
        (``demand_burst``) is taken out of ``wanted_now`` and added to the spread: on demand is what
        covers it."""
        wanted_now /= self.burst
        decline, security, spread = self._newsvendor
        critical = 1.0 - reserved_price / (on_demand_price * decline * security)
        if critical <= 0.0:
            return 0.0
        if critical >= 1.0 or spread <= 0.0:
            return math.inf if critical >= 1.0 else wanted_now
        return wanted_now * math.exp(spread * _quantile(critical))

    def peak_contracted(self) -> float:
        return sum(max(0.0, pf) for pf in self._peak_vendor.values())

    def committed_spend(self) -> float:
        """US dollars a month owed under active contracts."""
        return max(0.0, self._spend)

    def purposes_in_use(self) -> dict[str, set[str]]:
        """Per purpose it holds compute for: the ecosystems it holds it on."""
        out: dict[str, set[str]] = {}
        for purpose, e in self.holdings():
            out.setdefault(purpose, set()).add(e)
        return out

    def holdings(self) -> list[tuple[str, str]]:
        """(purpose, ecosystem) pairs it holds compute on."""
        return [key for key, pf in self._peak.items() if pf > 1e-9]

    def vendor_shares(self) -> dict[str, float]:
        """Share of its contracted peak compute by vendor."""
        total = self.peak_contracted()
        if total <= 0:
            return {}
        return {v: max(0.0, pf) / total for v, pf in self._peak_vendor.items() if pf > 1e-9}

    def compute_mix(self) -> dict[tuple[str, str], float]:
        """Peak PFLOP/s under contract by (vendor, purpose), sorted, those above float dust."""
        return {k: pf for k, pf in sorted(self._peak_mix.items()) if pf > 1e-9}

    def largest_vendor(self) -> tuple[str | None, float]:
        """The vendor of the largest part of its contracted peak compute, and that share (None, 0
        without contracts); ties go to the vendor first in name order."""
        shares = self.vendor_shares()
        if not shares:
            return None, 0.0
        vendor = min(shares, key=lambda v: (-shares[v], v))
        return vendor, shares[vendor]

    def notional(self, purpose: str | None = None) -> float:
        """Useful PFLOP/s it wants at its own price level: the exogenous path times the long-run
        response ``(price_level / reference)^long_run_elasticity``; of one purpose, or in all."""
        demand = self.model.config.demand
        level = self.burst * self.demand * (self.price_level / demand.reference_price_usd_per_pflop_hour) ** demand.long_run_elasticity
        if purpose is None:
            return level
        train = level * self.cfg.training_share
        return train if purpose == "training" else level - train

    def wanted(self, purpose: str, price_per_useful_pflop_hour: float) -> float:
        """Useful PFLOP/s of ``purpose`` it wants under contract at this price (USD per useful
        PFLOP-hour): ``notional × (price / price_level)^short_run_elasticity``."""
        return self.demand_curve(purpose)(price_per_useful_pflop_hour)

    def demand_curve(self, purpose: str, notional: float | None = None) -> Callable[[float], float]:
        """:meth:`wanted` of ``purpose`` as a function of the price, its notional demand, price
        level and elasticity read once (the negotiation evaluates it many times a month);
        ``notional``: :meth:`notional` of the purpose, if the caller has it already."""
        if notional is None:
            notional = self.notional(purpose)
        level, elasticity = self.price_level, self._elasticity[purpose]
        return lambda price: notional * (price / level) ** elasticity

    def paid(self, usd_per_hour: float, useful_pflops: float) -> None:
        """Note a contract signed this month: its cost per hour and the useful PFLOP/s it buys."""
        self._month_paid[0] += usd_per_hour
        self._month_paid[1] += useful_pflops

    def update_price_level(self) -> None:
        """The price level moves toward this month's price per useful PFLOP-hour (an exponential
        moving average with time constant ``demand.adjustment_months``)."""
        usd, useful = self._month_paid
        if useful > 0:
            self.price_level += (usd / useful - self.price_level) / self.model.config.demand.adjustment_months
        self._month_paid = [0.0, 0.0]

    # -- settlement ------------------------------------------------------------------------
    def learn(self) -> None:
        """Learning by doing, purpose by purpose: readiness for a purpose moves toward the
        ecosystem's software maturity, faster the larger the share of the lab's compute for that
        purpose that runs on it, at the purpose's learning rate (inference code is ported sooner:
        ``inference_learning_rate``)."""
        peak = self._peak
        if not peak:
            return
        total = dict.fromkeys(PURPOSES, 0.0)
        for (u, _), pf in peak.items():
            total[u] += max(0.0, pf)
        rate = self._learning_rates
        for (u, eco), pf in peak.items():
            if total[u] <= 0 or rate[u] <= 0:
                continue
            share = max(0.0, pf) / total[u]
            r = self.readiness[u, eco]
            ceiling = self.model.maturity[eco]
            if r < ceiling and share > 0:
                self.readiness[u, eco] = r + rate[u] * share * (ceiling - r)
