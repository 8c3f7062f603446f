"""Batch experiments: designs, seeds, the runner, storage and reading back.

    market sweep experiments/seed_scenarios.toml --workers 2
    >>> tables = market.scan("outputs/seed_scenarios")   # doctest: +SKIP
"""

from market.batch.designs import DESIGNS, Design, Grid, LatinHypercube, Parameter, Saltelli, SobolSequence
from market.batch.experiment import Experiment, ExperimentError, RunSpec, load_experiment, run_seed
from market.batch.runner import SweepReport, sweep
from market.batch.storage import scan

__all__ = [
    "DESIGNS",
    "Design",
    "Experiment",
    "ExperimentError",
    "Grid",
    "LatinHypercube",
    "Parameter",
    "RunSpec",
    "Saltelli",
    "SobolSequence",
    "SweepReport",
    "load_experiment",
    "run_seed",
    "scan",
    "sweep",
]
