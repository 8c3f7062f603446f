"""The levers of a scenario: its numeric fields, with the ranges the scenario schema allows, and its
choices (fields that take one of a few names), with the names the schema allows.

    >>> from market.explorer.levers import levers_of, scenario_with
    >>> [lever.path for lever in levers_of("openai_google_tpu")][:2]
    ['clouds.gcp.withholding.share', 'labs.openai.switching_cost']
    >>> lever = levers_of("openai_google_tpu")[0]
    >>> lever.low, lever.high, lever.allowed
    (0.0, 1.0, '0 to 1')
    >>> scenario_with("openai_google_tpu", {"clouds.gcp.withholding.share": 0.5}).clouds["gcp"].withholding.share
    0.5
    >>> rule = next(lever for lever in levers_of("baseline") if lever.path == "negotiation.substitutes")
    >>> rule.value, rule.names, rule.allowed
    ('joint', ('joint', 'netted', 'ignored'), "'joint', 'netted' or 'ignored'")

Ranges are read from the pydantic model of :class:`market.scenario.Scenario` (its ``ge``/``gt``/
``le``/``lt`` constraints), never written here, and so are a choice's names (its ``Literal`` values)
and what each means (given by :func:`market.scenario.schema.choice`); a value is checked by
validating the whole scenario (:func:`scenario_with`), so cross-field rules (packaging shares adding
up to at most 1, a shock ending after it starts) are checked too, and a mistake is a
:class:`ScenarioError` naming the field.

A lever is a dotted path as ``market run --set`` takes it; an item of a list of tables is written
``packaging.shocks[0].factor``. The levers shown first for a scenario are the headline ones it has
(:data:`HEADLINE_LEVERS`) and the fields in which it differs from the built-in ``baseline``;
every other numeric field or choice can be added (:func:`all_levers`).
"""

from __future__ import annotations

import copy
import math
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from market.scenario import Scenario, ScenarioError, resolve_scenario, validate_scenario
from market.scenario.schema import names_in_words

__all__ = ["HEADLINE_LEVERS", "Lever", "all_levers", "levers_of", "parse_value", "scenario_with"]

# The levers the question is about, shown first when a scenario has them: path -> what it means.
HEADLINE_LEVERS: dict[str, str] = {
    "clouds.gcp.withholding.share": "Google Cloud: share of its top-tier TPUs withheld",
    "labs.openai.switching_cost": "OpenAI: price penalty for an ecosystem it does not use yet",
    "labs.openai.diversification": "OpenAI: penalty per unit of one vendor's share of its compute",
    "packaging.shocks[0].factor": "Supply shock: packaging capacity multiplied by",
    "packaging.shocks[0].start_step": "Supply shock: first month (step)",
    "packaging.shocks[0].end_step": "Supply shock: month it ends (step)",
    "negotiation.substitutes": "Compute market: clearing rule across substitute products",
}
SKIPPED = ("faults.", "steps", "hours_per_month")  # run settings and test hooks, not levers
_INDEX = r"^(\w+)\[(\d+)\]$"  # name[i]: an item of a list of tables


@dataclass(frozen=True)
class Lever:
    """A numeric field of a scenario: its dotted ``path``, current ``value``, type (``integer``) and
    the range the schema allows (``low``/``high``, ``None`` when unbounded; ``low_open`` means
    strictly greater than ``low``). Or a choice: ``choices`` holds the names the schema allows, each
    with what it means ("" when the schema does not say), and ``value`` is one of the names."""

    path: str
    label: str
    value: float | str
    integer: bool
    low: float | None
    high: float | None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """A choice's allowed names, in the schema's order (empty for a numeric lever)."""
        return tuple(name for name, _ in self.choices)

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def allowed(self) -> str:
        """The range in words: "0 to 1", "at least 0", "more than 0", "any number"; a choice's names:
        "'joint', 'netted' or 'ignored'"."""
        def num(x: float) -> str:
            return f"{x:g}"

        if self.choices:
            return names_in_words(self.names)

        if self.bounded and not self.low_open and not self.high_open:
            return f"{num(self.low)} to {num(self.high)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'more than' if self.low_open else 'at least'} {num(self.low)}")
        if self.high is not None:
            parts.append(f"{'less than' if self.high_open else 'at most'} {num(self.high)}")
        what = "a whole number" if self.integer else "a number"
        return " and ".join(parts) if parts else f"any {what[2:]}"

    @property
    def step(self) -> float:
        """A slider's step: 1 for whole numbers, else a hundredth of the range."""
        if self.integer:
            return 1
        if self.bounded:
            return 10 ** math.floor(math.log10((self.high - self.low) / 100)) if self.high > self.low else 0.01
        return 0.01


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _is_choice(info: FieldInfo) -> bool:
    return typing.get_origin(_unwrap(info.annotation)) is typing.Literal


def _field(path: str) -> FieldInfo:
    """The schema's field at a dotted path (dict keys and list indices stepped over)."""
    model: Any = Scenario
    info: FieldInfo | None = None
    parts = path.split(".")
    i = 0
    while i < len(parts):
        part = parts[i]
        m = re.match(_INDEX, part)
        name = m.group(1) if m else part
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or name not in model.model_fields:
            raise KeyError(path)
        info = model.model_fields[name]
        model = _unwrap(info.annotation)
        if m:  # list[X] -> X
            model = _unwrap(typing.get_args(model)[0])
        elif typing.get_origin(model) is dict:  # dict[str, X]: the next part is a key
            model = _unwrap(typing.get_args(model)[1])
            i += 1
        i += 1
    assert info is not None
    return info


def _bounds(info: FieldInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"low": None, "high": None, "low_open": False, "high_open": False}
    for c in info.metadata:
        if isinstance(c, annotated_types.Ge):
            out["low"] = float(c.ge)
        elif isinstance(c, annotated_types.Gt):
            out["low"], out["low_open"] = float(c.gt), True
        elif isinstance(c, annotated_types.Le):
            out["high"] = float(c.le)
        elif isinstance(c, annotated_types.Lt):
            out["high"], out["high_open"] = float(c.lt), True
    return out


def _lever(path: str, value: float | str) -> Lever:
    info = _field(path)
    label = HEADLINE_LEVERS.get(path, path)
    if _is_choice(info):
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        meanings = extra.get("choices", {})
        choices = tuple((name, meanings.get(name, "")) for name in typing.get_args(_unwrap(info.annotation)))
        return Lever(path, label, value, False, None, None, choices=choices)
    integer = _unwrap(info.annotation) is int
    return Lever(path, label, value, integer, **_bounds(info))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _settable(node: Any, prefix: str = "") -> Iterator[tuple[str, float | str]]:
    """(dotted path, value) of every int or float field, and every choice (a ``Literal`` field)
    that is set, below ``node`` of a validated scenario."""
    if isinstance(node, BaseModel):
        for name, info in type(node).model_fields.items():
            value = getattr(node, name)
            if _is_choice(info):
                if isinstance(value, str):
                    yield _join(prefix, name), value
            else:
                yield from _settable(value, _join(prefix, name))
    elif isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(value, BaseModel):
                yield from _settable(value, _join(prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, BaseModel):
                yield from _settable(value, f"{prefix}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix, node


def _load(source: str | Path) -> Scenario:
    return validate_scenario(resolve_scenario(source), {}, f"scenario {str(source)!r}")


def all_levers(source: str | Path | Scenario) -> list[Lever]:
    """Every numeric field and every choice of a scenario as a lever, in the schema's order."""
    sc = source if isinstance(source, Scenario) else _load(source)
    return [_lever(path, value) for path, value in _settable(sc) if not path.startswith(SKIPPED)]


def levers_of(source: str | Path) -> list[Lever]:
    """The levers shown first for a scenario: the headline levers it has, then the fields in which
    it differs from the built-in ``baseline`` (the ones its file turns)."""
    sc = _load(source)
    mine = {lever.path: lever for lever in all_levers(sc)}
    base = {lever.path: lever.value for lever in all_levers("baseline")}
    first = [mine[p] for p in HEADLINE_LEVERS if p in mine]
    turned = [lev for p, lev in mine.items() if p not in HEADLINE_LEVERS and base.get(p) != lev.value]
    return first + turned


def parse_value(lever: Lever, text: str | float | int | None) -> float | int | str:
    """A value typed or picked for ``lever``: a number, or one of a choice's names; a
    :class:`ScenarioError` naming the lever and what is allowed if it is neither."""
    if lever.choices:
        name = "" if text is None else str(text).strip()
        if name not in lever.names:
            raise ScenarioError(f"{lever.path}: {name!r} is not one of its choices; allowed: {lever.allowed}.")
        return name
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = text
    else:
        raw = "" if text is None else str(text).strip()
        try:
            value = int(raw) if lever.integer and re.fullmatch(r"[+-]?\d+", raw) else float(raw)
        except ValueError:
            raise ScenarioError(f"{lever.path}: {raw!r} is not a number; allowed: {lever.allowed}.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(f"{lever.path}: {value!r} is not a finite number; allowed: {lever.allowed}.")
    if lever.integer:
        if float(value) != int(value):
            raise ScenarioError(f"{lever.path}: {value!r} is not a whole number; allowed: {lever.allowed}.")
        value = int(value)
    return value


def scenario_with(source: str | Path, changes: Mapping[str, Any], steps: int | None = None) -> Scenario:
    """The scenario with its levers set to ``changes`` (path -> value) and, if given, ``steps``;
    validated whole. Raises :class:`ScenarioError` naming the field and what is allowed."""
    raw = copy.deepcopy(resolve_scenario(source))
    plain: dict[str, Any] = {}
    for path, value in changes.items():
        if "[" in path:
            _set_indexed(raw, path, value)
        else:
            plain[path] = value
    if steps is not None:
        plain["steps"] = steps
    return validate_scenario(raw, plain, f"scenario {str(source)!r}")


def _set_indexed(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set a path with list indices (``packaging.shocks[0].factor``) in a raw scenario dict; the
    item must exist (a lever changes a field, it does not add a shock)."""
    node: Any = raw
    parts = path.split(".")
    for i, part in enumerate(parts):
        m = re.match(_INDEX, part)
        last = i == len(parts) - 1
        if m:
            items = node.get(m.group(1)) if isinstance(node, dict) else None
            k = int(m.group(2))
            if not isinstance(items, list) or k >= len(items):
                raise ScenarioError(f"{path}: the scenario has no {m.group(1)}[{k}]")
            if last:
                items[k] = value
                return
            node = items[k]
        elif last:
            node[part] = value
        else:
            if not isinstance(node.get(part), dict):
                raise ScenarioError(f"{path}: the scenario has no {'.'.join(parts[: i + 1])}")
            node = node[part]
