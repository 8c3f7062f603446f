"""Experiment designs over dotted parameter paths: each design is one small class.

    >>> from market.batch.designs import Grid, Parameter
    >>> Grid({"clouds.gcp.withholding.share": Parameter(values=[0.0, 1.0])}).points(seed=0)
    [{'clouds.gcp.withholding.share': 0.0}, {'clouds.gcp.withholding.share': 1.0}]

Continuous designs draw from well-kept samplers: Latin hypercube and Sobol from
``scipy.stats.qmc``, Saltelli (for Sobol sensitivity indices) from SALib. Every design takes a
seed, so a design's points are reproducible; adding a design is adding one class to ``DESIGNS``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from market.registry import Registry

__all__ = ["DESIGNS", "Design", "Grid", "LatinHypercube", "Morris", "Parameter", "Saltelli", "SobolSequence"]


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: a list of ``values`` (grid), or a range ``low``..``high``
    (sampled designs), rounded to whole numbers when ``integer``."""

    values: tuple[Any, ...] | list[Any] | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False

    def cast(self, value: Any) -> Any:
        """A value as the scenario will receive it: rounded to a whole number when ``integer``."""
        return int(round(value)) if self.integer and isinstance(value, int | float) else value

    def scale(self, unit: np.ndarray) -> list[Any]:
        """Map points in [0, 1) onto the range."""
        assert self.low is not None and self.high is not None
        x = self.low + unit * (self.high - self.low)
        return [int(round(v)) for v in x] if self.integer else [float(v) for v in x]


class Design:
    """A set of points in parameter space: ``points(seed)`` -> list of {dotted path: value}."""

    kind: ClassVar[str]
    needs: ClassVar[str]  # "values" or "range"
    analysis: ClassVar[str | None] = None  # the SALib analysis its points are made for (``market sensitivity``)

    def __init__(self, parameters: dict[str, Parameter], samples: int | None = None) -> None:
        self.parameters = parameters
        self.samples = samples

    def points(self, seed: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _from_unit(self, unit: np.ndarray) -> list[dict[str, Any]]:
        names = list(self.parameters)
        columns = [self.parameters[n].scale(unit[:, j]) for j, n in enumerate(names)]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class Grid(Design):
    """Full factorial: every combination of every parameter's values, last parameter fastest."""

    kind = "grid"
    needs = "values"

    def points(self, seed: int) -> list[dict[str, Any]]:
        names = list(self.parameters)
        combos = itertools.product(*([self.parameters[n].cast(v) for v in self.parameters[n].values or ()]
                                     for n in names))
        return [dict(zip(names, combo, strict=True)) for combo in combos]


class LatinHypercube(Design):
    """``samples`` points, one per row and column stratum (scipy.stats.qmc.LatinHypercube)."""

    kind = "lhs"
    needs = "range"

    def points(self, seed: int) -> list[dict[str, Any]]:
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(self.parameters), seed=np.random.default_rng(seed)).random(self.samples)
        return self._from_unit(unit)


class SobolSequence(Design):
    """``samples`` points of a scrambled Sobol' sequence (scipy.stats.qmc.Sobol); a power of two
    keeps its balance properties."""

    kind = "sobol"
    needs = "range"

    def points(self, seed: int) -> list[dict[str, Any]]:
        from scipy.stats import qmc

        sampler = qmc.Sobol(d=len(self.parameters), scramble=True, seed=np.random.default_rng(seed))
        m = math.log2(self.samples)
        unit = sampler.random_base2(int(m)) if m.is_integer() else sampler.random(self.samples)
        return self._from_unit(unit)


class Saltelli(Design):
    """Saltelli's extension of the Sobol' sequence, ``samples × (2d + 2)`` points, for Sobol'
    sensitivity indices with ``SALib.analyze.sobol`` (SALib.sample.sobol)."""

    kind = "saltelli"
    needs = "range"
    analysis = "sobol"

    def points(self, seed: int) -> list[dict[str, Any]]:
        from SALib.sample import sobol as salib_sobol

        names = list(self.parameters)
        problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
        unit = salib_sobol.sample(problem, self.samples, calc_second_order=True, scramble=True, seed=seed)
        return self._from_unit(np.asarray(unit))


class Morris(Design):
    """Morris elementary-effects screening: ``samples`` trajectories of ``d + 1`` points each on a
    grid of ``levels`` levels per parameter, ``samples × (d + 1)`` points in all; consecutive points
    of a trajectory differ in one parameter (SALib.sample.morris). For ``SALib.analyze.morris``
    (``market sensitivity``)."""

    kind = "morris"
    needs = "range"
    analysis = "morris"

    def __init__(self, parameters: dict[str, Parameter], samples: int | None = None, levels: int = 4) -> None:
        super().__init__(parameters, samples)
        self.levels = levels

    def points(self, seed: int) -> list[dict[str, Any]]:
        from SALib.sample import morris as salib_morris

        names = list(self.parameters)
        problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
        unit = salib_morris.sample(problem, N=self.samples, num_levels=self.levels, seed=seed)
        return self._from_unit(np.asarray(unit))


DESIGNS: Registry[type[Design]] = Registry("design", {d.kind: d for d in (Grid, LatinHypercube, SobolSequence, Saltelli,
                                                                            Morris)})
