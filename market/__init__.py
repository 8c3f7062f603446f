"""market: an agent-based simulation of the AI-compute market.

AI labs, chip vendors and cloud providers (Mesa agents) negotiate supply and price every month;
a vendor may withhold its top-tier chips from some buyers. The public API:

    >>> import market
    >>> sc = market.load_scenario("openai_google_tpu", steps=24)
    >>> result = market.run(sc, seed=0)
    >>> sorted(result.tables)        # doctest: +NORMALIZE_WHITESPACE
    ['clouds', 'contracts', 'fleet', 'lab_mix', 'labs', 'prices', 'readiness', 'runs', 'shares', 'steps',
     'vendors', 'withholding']
"""

from market.batch import ExperimentError, SweepReport, load_experiment, scan, sweep
from market.model import MarketModel, ModelError
from market.recording import SCHEMAS, TABLES
from market.run import RunResult, run
from market.scenario import Scenario, ScenarioError, builtin_scenarios, load_scenario

__all__ = [
    "SCHEMAS",
    "explore",
    "game",
    "ExperimentError",
    "SweepReport",
    "load_experiment",
    "scan",
    "sweep",
    "TABLES",
    "MarketModel",
    "ModelError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "builtin_scenarios",
    "load_scenario",
    "run",
]
__version__ = "0.1.0"


def game(file, out=None, **options):  # noqa: ANN001, ANN003, ANN201 - see market.games.game
    """Play a game file: :func:`market.games.game` (its libraries are imported only when called)."""
    from market.games import game as _game  # noqa: PLC0415

    return _game(file, out, **options)


def explore(target=None, *, workers=None):  # noqa: ANN001, ANN201 - see market.explorer.explore
    """The interactive explorer in a notebook: :func:`market.explorer.explore` (solara is
    imported only when it is called)."""
    from market.explorer import explore as _explore  # noqa: PLC0415

    return _explore(target, workers=workers)
