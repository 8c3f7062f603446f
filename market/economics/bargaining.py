"""Bilateral bargaining over one price between a seller and a buyer.

Every protocol has the signature ``f(s, b, params) -> BargainOutcome | None``
where ``s`` is the seller's reservation price (the least it accepts) and ``b``
the buyer's reservation price (the most it pays), both in the same currency
units (e.g. USD per chip or USD per chip-hour). The surplus is ``S = b - s``;
with ``S < 0`` there is no zone of agreement and every protocol returns None.

* ``nash``: asymmetric Nash bargaining solution,
  ``argmax_p (p - s)^a (b - p)^(1 - a)  =>  p = s + a*S``, with ``a`` the
  seller's bargaining power.
* ``rubinstein``: subgame-perfect equilibrium of infinite-horizon alternating
  offers with per-round discount factors ``d_first`` (proposer) and
  ``d_other``; the proposer gets the share
  ``(1 - d_other) / (1 - d_first*d_other)`` of ``S`` and the first offer is
  accepted. Seller first: ``p = s + share*S``; buyer first: ``p = b - share*S``.
* ``with_outside_options``: the outside-option principle (Binmore, Shaked and
  Sutton 1989; Osborne and Rubinstein 1990, ch. 3) applied to any protocol's
  outcome: the split of the surplus between the parties' impasse points stands
  unless it gives a party less than its best alternative elsewhere; then the
  price is that alternative.
* ``concession``: deterministic exchanges of offers in which each side concedes
  a share of its remaining room per exchange, faster the more impatient it is;
  agreement at the midpoint once ask and bid meet, see :func:`concession`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from market.registry import Registry

__all__ = [
    "BARGAINING",
    "BargainOutcome",
    "BargainingParams",
    "BargainingProtocol",
    "Protocol",
    "concession",
    "nash",
    "rubinstein",
    "split_prices",
    "with_outside_options",
]

_FIRST_MOVERS = ("buyer", "seller")


@dataclass(frozen=True)
class BargainingParams:
    """Parameters shared by all bargaining protocols (dimensionless)."""

    seller_power: float = 0.5  # asymmetric Nash: seller's bargaining power in [0,1]
    seller_discount: float = 0.95  # per-round discount factor of the seller, in (0,1)
    buyer_discount: float = 0.95  # per-round discount factor of the buyer, in (0,1)
    first_mover: str = "buyer"  # "buyer" or "seller": who makes the first offer
    concession_rate: float = 0.3  # concession: share of own remaining room conceded per exchange, (0,1]
    max_rounds: int = 50  # concession: give up (no deal) after this many offers

    def __post_init__(self) -> None:
        if not 0.0 <= self.seller_power <= 1.0:
            raise ValueError(f"seller_power must be in [0, 1], got {self.seller_power}")
        for name in ("seller_discount", "buyer_discount"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.first_mover not in _FIRST_MOVERS:
            raise ValueError(f"first_mover must be one of {_FIRST_MOVERS}, got {self.first_mover!r}")
        if not 0.0 < self.concession_rate <= 1.0:
            raise ValueError(f"concession_rate must be in (0, 1], got {self.concession_rate}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {self.max_rounds}")


@dataclass(frozen=True)
class BargainOutcome:
    """Result of a successful negotiation."""

    price: float  # agreed price, same units as the reservation values
    rounds: int  # offers made until agreement (1 = first offer accepted)


Protocol = Callable[[float, float, BargainingParams], BargainOutcome | None]
BargainingProtocol = Protocol  # alias that does not shadow typing.Protocol


def _surplus(seller_reservation: float, buyer_reservation: float) -> float | None:
    """Surplus ``b - s`` (currency units), or None when there is no zone of agreement."""
    if not (math.isfinite(seller_reservation) and math.isfinite(buyer_reservation)):
        raise ValueError(
            f"reservation values must be finite, got s={seller_reservation}, b={buyer_reservation}"
        )
    surplus = buyer_reservation - seller_reservation
    return surplus if surplus >= 0.0 else None


def nash(
    seller_reservation: float, buyer_reservation: float, params: BargainingParams
) -> BargainOutcome | None:
    """Asymmetric Nash bargaining: price ``s + seller_power * S``, agreed in one round."""
    surplus = _surplus(seller_reservation, buyer_reservation)
    if surplus is None:
        return None
    return BargainOutcome(price=seller_reservation + params.seller_power * surplus, rounds=1)


def rubinstein(
    seller_reservation: float, buyer_reservation: float, params: BargainingParams
) -> BargainOutcome | None:
    """Rubinstein alternating offers (infinite horizon), SPE price; immediate agreement."""
    surplus = _surplus(seller_reservation, buyer_reservation)
    if surplus is None:
        return None
    share = _rubinstein_share(params)
    if params.first_mover == "seller":
        price = seller_reservation + share * surplus
    else:
        price = buyer_reservation - share * surplus
    return BargainOutcome(price=price, rounds=1)


def concession(
    seller_reservation: float, buyer_reservation: float, params: BargainingParams
) -> BargainOutcome | None:
    """Exchanges of alternating concessions until the ask and the bid meet.

    Offers come in exchanges of two, the first mover's offer then the other
    side's. The first exchange states the openings: the seller asks ``b``, the
    buyer bids ``s``. In each later exchange each side concedes the share
    ``c_i`` of the room left between its standing offer and its own
    reservation (seller: ``ask -= c_s*(ask - s)``; buyer:
    ``bid += c_b*(b - bid)``), with

        c_i = concession_rate * (1 - d_i) / max(1 - d_s, 1 - d_b),

    so the more impatient side concedes at ``concession_rate`` and the more
    patient one proportionally slower. After every exchange the sides agree
    if ``ask - bid <= max(1e-9 * max(|s|, |b|, 1), 0.01 * S)`` (offers met or
    crossed, or the gap is under 1% of the surplus), at the price
    ``(ask + bid) / 2`` in currency units. ``rounds`` is the number of offers
    made (even, >= 2); None if there is no agreement within ``max_rounds``
    offers.

    Checking only after complete exchanges gives both sides the same number
    of concessions, so who opens does not move the price (unlike
    ``rubinstein``), equal patience splits ``S`` exactly in half, and the
    more patient side always gets at least half.
    """
    surplus = _surplus(seller_reservation, buyer_reservation)
    if surplus is None:
        return None
    impatience_s = 1.0 - params.seller_discount
    impatience_b = 1.0 - params.buyer_discount
    most_impatient = max(impatience_s, impatience_b)
    rate_s = params.concession_rate * impatience_s / most_impatient
    rate_b = params.concession_rate * impatience_b / most_impatient
    tolerance = max(
        1e-9 * max(abs(seller_reservation), abs(buyer_reservation), 1.0), 0.01 * surplus
    )

    ask, bid = buyer_reservation, seller_reservation
    for offers in range(2, params.max_rounds + 1, 2):
        # The first exchange only states the openings already held in ask and bid.
        if offers > 2:
            ask -= rate_s * (ask - seller_reservation)
            bid += rate_b * (buyer_reservation - bid)
        if ask - bid <= tolerance:
            return BargainOutcome(price=0.5 * (ask + bid), rounds=offers)
    return None


def with_outside_options(outcome: BargainOutcome | None, seller_option: float,
                         buyer_option: float) -> BargainOutcome | None:
    """The outside-option principle: ``outcome`` (a protocol's split between the impasse points)
    unless an outside option binds.

    ``seller_option``: the least price the seller can get elsewhere (its next-best buyer); the
    ``buyer_option``: the most the buyer needs to pay (its next-best seller). The price is
    ``clip(p, seller_option, buyer_option)``; None when there is no inside agreement or the
    options leave no room (``seller_option > buyer_option``): each party is better off elsewhere.
    """
    if outcome is None or seller_option > buyer_option:
        return None
    if outcome.price < seller_option:
        return BargainOutcome(seller_option, outcome.rounds)
    if outcome.price > buyer_option:
        return BargainOutcome(buyer_option, outcome.rounds)
    return outcome


def _rubinstein_share(params: BargainingParams) -> float:
    if params.first_mover == "seller":
        d_first, d_other = params.seller_discount, params.buyer_discount
    else:
        d_first, d_other = params.buyer_discount, params.seller_discount
    return (1.0 - d_other) / (1.0 - d_first * d_other)


def split_prices(protocol: Protocol, seller_reservation: np.ndarray, buyer_reservation: np.ndarray,
                 params: BargainingParams) -> np.ndarray | None:
    """The prices a closed-form protocol agrees at for arrays of impasse points, computed as the
    protocol computes one (so equal to it up to rounding); where there is no zone of agreement
    the formula's value, which the protocol itself would not return. None for a protocol without a
    closed form (``concession``), or one not registered here."""
    s = np.asarray(seller_reservation, dtype=np.float64)
    b = np.asarray(buyer_reservation, dtype=np.float64)
    if protocol is nash:
        return s + params.seller_power * (b - s)
    if protocol is rubinstein:
        share = _rubinstein_share(params)
        return s + share * (b - s) if params.first_mover == "seller" else b - share * (b - s)
    return None


BARGAINING: Registry[Protocol] = Registry("bargaining protocol", {
    "nash": nash,
    "rubinstein": rubinstein,
    "concession": concession,
})
