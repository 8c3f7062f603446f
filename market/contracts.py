"""Messages of the markets: rental contracts and refusals (small immutable records).

Units: chips are counted as real numbers (the model is a continuous-quantity market), prices in
US dollars, time in monthly steps.

Both are named tuples rather than frozen dataclasses: a run signs thousands of contracts, a named
tuple is made about seven times as fast as a frozen dataclass (which sets each field through
``object.__setattr__``), and its fields, in the order of the recorded table's columns, are the
table's row as they stand (see :mod:`market.recording`).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["KINDS", "PURPOSES", "Contract", "Refusal", "monthly_cost"]

PURPOSES = ("training", "inference")  # what compute is for; each has its own demand, readiness and frictions
# The kinds of contract (docs/ODD.md 7.19): "on_demand" for a month at the posted on-demand price;
# "reserved" for the lab's term at the bargained price (term discount beyond a year); "anchor": a
# multi-year take-or-pay deal of the scenario that finances new capacity.
KINDS = ("on_demand", "reserved", "anchor")


def monthly_cost(chips: float, price_usd_per_chip_hour: float, hours_per_month: float) -> float:
    """US dollars a month for ``chips`` rented at a price per chip-hour: what a lab pays a cloud
    each month of a contract (labs keep their contracts as plain tuples and call this on the fields)."""
    return chips * price_usd_per_chip_hour * hours_per_month


class Contract(NamedTuple):
    """A rental agreement: ``chips`` of ``product`` reserved at ``cloud`` for ``lab``.

    Fields in the order of the ``contracts`` table's columns (``start_step`` is its ``step``).

    Attributes:
        start_step, months: term; the contract ends before step ``start_step + months``.
        contract_id: sequence number within the run.
        lab, cloud, vendor, product: who rents what from whom; ``lab`` is None for a lease.
        lessee: for a lease between clouds (an anchor deal whose buyer is a cloud), the cloud that
            rents the capacity to serve its own customers; None for a lab's contract.
        tier: its vendor's tier when signed: "top" (the vendor's newest product) or "previous".
        performance_class: its market-wide class when signed: "frontier" or "mainstream".
        purpose: "training" (which prefers the frontier class) or "inference".
        kind: "on_demand", "reserved" or "anchor" (:data:`KINDS`); every kind is paid each month
            of its term whether or not the lab uses the capacity (take-or-pay).
        chips: chips reserved for the whole term.
        pflops: chips × PFLOP/s per chip.
        price_usd_per_chip_hour: agreed price.
        list_price_usd_per_chip_hour: the cloud's posted price when signed.
        rounds: offers exchanged in the negotiation.
    """

    start_step: int
    contract_id: int
    lab: str | None
    lessee: str | None
    cloud: str
    vendor: str
    product: str
    tier: str
    performance_class: str
    purpose: str
    kind: str
    chips: float
    pflops: float
    price_usd_per_chip_hour: float
    list_price_usd_per_chip_hour: float
    months: int
    rounds: int

    @property
    def end_step(self) -> int:
        """First step at which the capacity is free again."""
        return self.start_step + self.months

    def monthly_cost(self, hours_per_month: float) -> float:
        """US dollars the lab pays the cloud each month."""
        return monthly_cost(self.chips, self.price_usd_per_chip_hour, hours_per_month)


class Refusal(NamedTuple):
    """Chips a holder (vendor or cloud) kept from a buyer under a withholding rule.

    ``level`` is "vendor" (chip sales to a cloud) or "cloud" (rentals to a lab); ``lab`` is the lab
    concerned (the owner, for a lab's own data centres), empty when the buyer is a cloud.
    ``reason`` is "named" (the rule names the buyer) or "internal" (a ``buyers = ["*"]`` rule
    reserving capacity for the holder's affiliates). One refusal per holder, product and lab each
    month: the same chips refused again next month appear again. Fields in the order of the
    ``withholding`` table's columns after ``step``.
    """

    holder: str
    level: str
    buyer: str
    lab: str
    product: str
    vendor: str
    tier: str
    chips_withheld: float
    reason: str
