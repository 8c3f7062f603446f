"""Market economics as pure functions, each rule registered by name.

* :mod:`.bargaining`: bilateral price bargaining (``BARGAINING``: nash,
  rubinstein, concession).
* :mod:`.competition`: price competition with capacity limits (best replies on
  residual demand: Bertrand, Lerner, Kreps-Scheinkman).
* :mod:`.clearing`: the month's joint clearing of substitute products (a
  Walrasian equilibrium solved by semismooth Newton).
* :mod:`.withholding`: which withholding rule matches a buyer, and the split.
* :mod:`.rationing`: sharing scarce capacity among requests (``RATIONING``:
  pro_rata, priority, uniform).
* :mod:`.pricing`: vendors' list-price rules (``PRICE_RULES``: excess_demand,
  cost_plus, monopoly) and Cournot/monopoly benchmarks.

Each family is a :class:`market.registry.Registry` and a scenario picks a rule
by its name: ``RATIONING["priority"]``; an unknown name raises
:class:`market.registry.UnknownName` (a KeyError) listing the allowed ones.
"""

from market.economics.bargaining import (
    BARGAINING,
    BargainingParams,
    BargainingProtocol,
    BargainOutcome,
    Protocol,
    concession,
    nash,
    rubinstein,
    split_prices,
    with_outside_options,
)
from market.economics.competition import (
    BestResponse,
    Replies,
    ReplyBlock,
    SellOut,
    best_response,
    best_responses,
    candidate_prices,
    clearing_bracket,
    clearing_price,
    lerner_price,
    reply_block,
    residual_demand,
    sell_out_prices,
    sorted_unique,
)
from market.economics.pricing import (
    PRICE_RULES,
    PriceRule,
    PriceRuleParams,
    PriceSignal,
    cost_plus,
    cournot_price,
    excess_demand,
    monopoly,
    monopoly_quantity,
    price_band,
    withheld_by_monopolist,
)
from market.economics.rationing import (
    RATIONING,
    RationingRule,
    priority,
    pro_rata,
    uniform,
)

__all__ = [
    # bargaining
    "BargainingParams",
    "BargainOutcome",
    "Protocol",
    "BargainingProtocol",
    "nash",
    "rubinstein",
    "concession",
    "BARGAINING",
    "split_prices",
    "with_outside_options",
    # competition
    "BestResponse",
    "best_response",
    "best_responses",
    "candidate_prices",
    "clearing_price",
    "clearing_bracket",
    "Replies",
    "ReplyBlock",
    "reply_block",
    "SellOut",
    "sell_out_prices",
    "sorted_unique",
    "lerner_price",
    "residual_demand",
    # rationing
    "RationingRule",
    "pro_rata",
    "priority",
    "uniform",
    "RATIONING",
    # pricing
    "PriceSignal",
    "PriceRuleParams",
    "PriceRule",
    "price_band",
    "excess_demand",
    "cost_plus",
    "monopoly",
    "PRICE_RULES",
    "cournot_price",
    "monopoly_quantity",
    "withheld_by_monopolist",
]
