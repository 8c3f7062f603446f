"""Scenarios: typed configuration, TOML loading, inheritance and dotted-path overrides.

A scenario is a TOML file validated into a :class:`Scenario` before any run starts::

    >>> import market
    >>> sc = market.load_scenario("openai_google_tpu", **{"clouds.gcp.withholding.share": 0.5})
    >>> sc.clouds["gcp"].withholding.share
    0.5

Files may start from another scenario with ``extends = "baseline"`` (a built-in name or a
path relative to the file); tables are merged key by key, the extending file winning.
Every problem is reported as a :class:`ScenarioError` whose message names the dotted path of
the offending field and what is allowed.

The package has three parts: :mod:`.schema` (the typed tables, their units and ranges),
:mod:`.references` (cross-field checks: every id named must exist) and :mod:`.loading` (files,
``extends``, overrides, and the messages a user sees).

Units: compute in dense bf16 PFLOP/s, money in US dollars, time in monthly steps.
"""

from market.scenario import loading, schema
from market.scenario.loading import (
    BUILTIN_DIR,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    parse_override,
    read_toml,
    read_toml_file,
    resolve_scenario,
    shorten,
    validate_model,
    validate_scenario,
)
from market.scenario.schema import (
    MAX_STEP,
    Cloud,
    Deal,
    Demand,
    DemandJump,
    Faults,
    Investment,
    Lab,
    LongTail,
    Negotiation,
    OwnDatacenter,
    Packaging,
    Partnership,
    PerformanceClasses,
    PricingConfig,
    Product,
    RentalPricing,
    Scenario,
    Shock,
    StrictModel,
    Vendor,
    WithholdingRule,
    between,
    choice,
)

__all__ = sorted([*loading.__all__, *schema.__all__])
