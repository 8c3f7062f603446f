"""Experiment files: base scenarios × a design over dotted parameter paths × replications.

    # experiments/withholding_sweep.toml
    name = "withholding_sweep"
    scenarios = ["openai_google_tpu"]
    replications = 20
    steps = 60
    base_seed = 20250601

    [design]
    kind = "grid"                     # grid | lhs | sobol | saltelli | morris
    [design.parameters."clouds.gcp.withholding.share"]
    values = [0.0, 0.25, 0.5, 0.75, 1.0]

An experiment is validated completely before any run starts: every parameter path must be a
field of every base scenario, and every value (each grid value, each range's ends) must be
allowed there. Every run's seed comes from ``numpy.random.SeedSequence(base_seed)`` keyed by
(design point, replication) only, so it never depends on execution order or worker count, and the
scenarios of one experiment share seeds point by point (common random numbers, for paired
comparisons).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, field_validator, model_validator

from market.batch.designs import DESIGNS, Design, Parameter
from market.scenario import (
    MAX_STEP,
    Scenario,
    ScenarioError,
    StrictModel,
    between,
    read_toml_file,
    resolve_scenario,
    validate_model,
    validate_scenario,
)

__all__ = ["Experiment", "ExperimentError", "RunSpec", "check_experiment", "fingerprint", "load_experiment",
           "run_seed"]


class ExperimentError(ScenarioError):
    """An experiment file a user wrote is invalid; the message says where and why."""


class ParameterSpec(StrictModel):
    values: list[Any] | None = None
    low: between(-1e15, 1e15) | None = None  # a sampled range's ends (each also checked as the field's value)
    high: between(-1e15, 1e15) | None = None
    integer: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> ParameterSpec:
        ranged = self.low is not None or self.high is not None
        if self.values is not None and ranged:
            raise ValueError("give either values = [...] or low and high, not both")
        if self.values is None and not ranged:
            raise ValueError("give values = [...] (grid) or low = ... and high = ... (sampled designs)")
        if self.values is not None and not self.values:
            raise ValueError("values is empty; give at least one value")
        if ranged and (self.low is None or self.high is None or not self.low < self.high):
            raise ValueError("needs low < high")
        return self


class DesignSpec(StrictModel):
    kind: Annotated[str, AfterValidator(DESIGNS.check)] = "grid"  # a name in market.batch.designs.DESIGNS
    samples: between(1, 1_000_000, int) | None = None
    parameters: dict[str, ParameterSpec]
    levels: between(2, 20, int) | None = None  # morris: grid levels per parameter (default 4)

    @model_validator(mode="after")
    def _levels_for_morris(self) -> DesignSpec:
        if self.levels is not None and self.kind != "morris":
            raise ValueError(f"levels applies to a morris design only, not to {self.kind}; remove it")
        if self.levels is not None and self.levels % 2:
            raise ValueError(f"levels = {self.levels}: a morris design needs an even number of levels "
                             "(odd ones bias the sample), e.g. 4")
        return self

    def build(self, order: list[str] | None = None) -> Design:
        """The design as its class in :data:`DESIGNS`, its parameters in ``order`` (default: the
        file's; the points' columns follow it)."""
        spec = {path: self.parameters[path] for path in order or self.parameters}
        params = {path: Parameter(values=p.values, low=p.low, high=p.high, integer=p.integer) for path, p in spec.items()}
        extra = {"levels": self.levels} if self.levels is not None else {}
        return DESIGNS[self.kind](params, self.samples, **extra)

    @model_validator(mode="after")
    def _fits_kind(self) -> DesignSpec:
        if not self.parameters:
            raise ValueError("the design has no parameters; add [design.parameters.\"<dotted.path>\"] tables "
                             "or leave [design] out to run each scenario as it is")
        needs = DESIGNS[self.kind].needs
        for path, p in self.parameters.items():
            if needs == "values" and p.values is None:
                raise ValueError(f"parameters.{path}: a {self.kind} design needs values = [...]")
            if needs == "range" and p.values is not None:
                raise ValueError(f"parameters.{path}: a {self.kind} design needs low and high, not values")
        if needs == "range" and self.samples is None:
            raise ValueError(f"a {self.kind} design needs samples = <number of points>")
        return self


def _folder_name(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", v):
        raise ValueError("use letters, digits, '.', '_' or '-' (it names the output folder), at most 100")
    return v


FolderName = Annotated[str, AfterValidator(_folder_name)]  # an experiment's or a game's name


class Experiment(StrictModel):
    """A validated experiment file."""

    name: FolderName
    description: str = ""
    scenarios: list[str]
    replications: between(1, 100_000, int) = 1
    steps: between(1, MAX_STEP, int) | None = None
    base_seed: between(0, 2**63 - 1, int) = 0
    overrides: dict[str, Any] = {}
    design: DesignSpec | None = None
    points: list[dict[str, Any]] | None = None  # explicit design points, instead of a design (a game's profiles)
    common_seeds: bool = False  # replication r has the same seed at every design point, not only in every scenario
    source_dir: str = "."  # folder of the file, for scenario paths relative to it

    @field_validator("scenarios")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one base scenario (a built-in name or a .toml path)")
        labels: dict[str, str] = {}
        for name in v:
            label = safe_label(name)
            if label in labels:
                raise ValueError(f"{labels[label]!r} and {name!r} would share the label {label!r} in run ids and "
                                 "output folders; list each scenario once and give scenario files distinct names")
            labels[label] = name
        return v

    @model_validator(mode="after")
    def _design_or_points(self) -> Experiment:
        if self.design is not None and self.points is not None:
            raise ValueError("give either a [design] or a list of [[points]], not both")
        if self.points is not None and not self.points:
            raise ValueError("points is empty; give at least one [[points]] table (it may be empty: {})")
        return self

    # -- derived ---------------------------------------------------------------------------
    def design_obj(self) -> Design | None:
        return None if self.design is None else self.design.build()

    def design_points(self) -> list[dict[str, Any]]:
        """The design's points (the explicit ``points`` if given; one empty point when there is
        neither)."""
        if self.points is not None:
            return [dict(point) for point in self.points]
        design = self.design_obj()
        return [{}] if design is None else design.points(self.base_seed)

    def scenario_source(self, name: str) -> str | Path:
        return Path(self.source_dir) / name if name.endswith(".toml") else name

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude={"source_dir"}), sort_keys=True, separators=(",", ":"))

    @property
    def experiment_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def runs(self) -> list[RunSpec]:
        """Every run of the experiment, in a fixed order: scenario, design point, replication.
        With ``common_seeds`` replication r has one seed at every point (common random numbers
        across points, as a game's profiles need); otherwise each point has its own seeds."""
        points = self.design_points()
        out = []
        for scenario in self.scenarios:
            label = safe_label(scenario)
            for p, point in enumerate(points):
                for r in range(self.replications):
                    out.append(RunSpec(f"{label}-p{p:04d}-r{r:03d}", scenario, label, p, r,
                                       run_seed(self.base_seed, 0 if self.common_seeds else p, r), point))
        return out


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: which scenario, design point and replication, with what seed."""

    run_id: str
    scenario: str  # as written in the experiment (name or path)
    scenario_label: str  # safe name used in run ids and partition folders
    point: int
    replication: int
    seed: int
    parameters: dict[str, Any]


def safe_label(scenario: str) -> str:
    """A scenario name or file as a safe name for run ids and folders."""
    stem = Path(scenario).stem if scenario.endswith(".toml") else scenario
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "scenario"  # never ".", ".." or "-x"


def run_seed(base_seed: int, point: int, replication: int) -> int:
    """A run's seed: a function of (base seed, design point, replication) only, in [0, 2**63)
    (63 bits, so collisions are negligible even over millions of runs)."""
    seq = np.random.SeedSequence(entropy=base_seed, spawn_key=(point, replication))
    return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def read_user_file(path: Path, what: str, needs: str, error: type[ScenarioError]) -> dict[str, Any]:
    """A user's TOML file (an experiment or a game) as a dict, with ``name`` defaulting to the file's
    stem and ``source_dir`` its folder; ``error`` with one paragraph if it cannot be read or is empty."""
    data = read_toml_file(path, what, error)
    if not data:
        raise error(f"{what} file {str(path)!r} is empty; it needs at least {needs}.")
    data.setdefault("name", path.stem)
    data["source_dir"] = str(path.parent)
    return data


def load_experiment(path: str | Path, *, check: bool = True) -> Experiment:
    """Read and validate an experiment file, and (``check``) every base scenario and design point."""
    path = Path(path)
    data = read_user_file(path, "experiment", "name and scenarios", ExperimentError)
    exp = validate_model(Experiment, data, f"experiment {str(path)!r}", ExperimentError)
    if check:
        check_experiment(exp)
    return exp


def fingerprint(exp: Experiment, bases: dict[str, Scenario]) -> str:
    """Identifies an experiment *and* the resolved contents of its base scenarios, so that
    ``--resume`` notices a scenario file edited since the sweep started."""
    parts = [exp.to_json()] + [f"{name}={bases[name].config_hash}" for name in sorted(bases)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


MAX_CHECKED_POINTS = 2000  # every design point is validated up to this many per scenario


def check_experiment(exp: Experiment) -> dict[str, Scenario]:
    """Validate every base scenario with the fixed overrides, each parameter's values (or range
    ends) on their own, and every design point (up to ``MAX_CHECKED_POINTS`` points).
    Returns the base scenarios by name; raises :class:`ExperimentError` naming the problem."""
    bases: dict[str, Scenario] = {}
    fixed = dict(exp.overrides) | ({"steps": exp.steps} if exp.steps is not None else {})
    points = exp.design_points()
    design = exp.design_obj()
    if design is not None:
        # each parameter's values or range ends on their own, then the points themselves
        singles = [{path: p.cast(v)} for path, p in design.parameters.items()
                   for v in (p.values if p.values is not None else (p.low, p.high))]
        points = singles + (points if len(points) <= MAX_CHECKED_POINTS else [])
    for name in exp.scenarios:
        where = f"experiment {exp.name!r}, scenario {name!r}"
        try:
            raw = resolve_scenario(exp.scenario_source(name))
            bases[name] = validate_scenario(raw, fixed, where)
        except ScenarioError as exc:
            raise ExperimentError(str(exc) if str(exc).startswith("experiment") else f"{where}: {exc}") from None
        for point in points:
            if not point:
                continue
            try:
                validate_scenario(raw, {**fixed, **point}, f"{where}, design point {point}")
            except ScenarioError as exc:
                raise ExperimentError(str(exc)) from None
    return bases
