"""Loading scenarios: built-in names and files, ``extends`` chains, dotted overrides, and the one
paragraph a user sees for a mistake. The TOML reading and the error messages are shared by the
other files a user writes (experiments, games)."""

from __future__ import annotations

import copy
import math
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from market.scenario.schema import Scenario

__all__ = ["BUILTIN_DIR", "ScenarioError", "builtin_scenarios", "load_scenario", "parse_override", "read_toml",
           "read_toml_file", "resolve_scenario", "shorten", "validate_model",
           "validate_scenario"]

BUILTIN_DIR = resources.files("market") / "scenarios"
M = TypeVar("M", bound=BaseModel)


class ScenarioError(ValueError):
    """A scenario (or override) a user wrote is invalid; the message says where and why."""


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names mapped to their one-line description."""
    out = {}
    for f in sorted(BUILTIN_DIR.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml") and not f.name.startswith("_"):
            data = tomllib.loads(f.read_text())
            out[f.name[:-5]] = str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""
    return out


def read_toml(text: str, where: str, error: type[ScenarioError] = ScenarioError) -> dict[str, Any]:
    """TOML text as a dict; ``error`` naming ``where`` (and the line and column) if it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where} is not valid TOML: {exc}. Fix the syntax at that line and column.") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise error(f"{where} nests arrays or tables too deeply to read; no file needs more than a few "
                    "levels.") from None


def read_toml_file(path: Path, what: str, error: type[ScenarioError] = ScenarioError) -> dict[str, Any]:
    """A user's TOML file (``what``: scenario, experiment, game) as a dict; ``error`` with one
    paragraph if it is missing, not UTF-8 text, or not TOML."""
    if not _is_file(path):
        raise error(f"{what} file {shorten(str(path), 200)} does not exist (or is not a file).")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} file {shorten(str(path), 200)} cannot be read as UTF-8 text: {exc}.") from None
    return read_toml(text, f"{what} file {shorten(str(path), 200)}", error)


def validate_model(model: type[M], data: Any, where: str, error: type[ScenarioError] = ScenarioError) -> M:
    """``model.model_validate(data)``; a mistake becomes ``error`` with one paragraph naming each
    field's dotted path and what is allowed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(_describe(exc, where)) from None


def _resolve(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw dict of a scenario with its ``extends`` chain merged in."""
    key = str(name_or_path)
    if key in seen:
        raise ScenarioError(f"extends: scenarios extend each other in a loop: {' -> '.join(seen + (key,))}")
    path = Path(name_or_path)
    builtin = BUILTIN_DIR / f"{key}.toml"
    if path.suffix == ".toml" or _exists(path):
        if not _is_file(path):
            raise ScenarioError(f"scenario file {shorten(str(path), 200)} does not exist (or is not a file). "
                                f"Give a path to a .toml file or one of the built-ins: {', '.join(builtin_scenarios())}.")
        base_dir = path.parent
        data = read_toml_file(path, "scenario")
        data.setdefault("name", path.stem)
    elif re.fullmatch(r"\w[\w-]*", key) and _is_file(builtin):  # a plain name only: nothing outside BUILTIN_DIR
        data = read_toml(builtin.read_text(), f"built-in scenario {key!r}")
        data.setdefault("name", key)
        base_dir = None
    else:
        raise ScenarioError(f"unknown scenario {shorten(key, 200)}; allowed: a path to a .toml file or one of the "
                            f"built-ins: {', '.join(builtin_scenarios())}.")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(f"extends: must be a scenario name or path (text), got {parent!r}")
    candidate = (base_dir / parent) if base_dir is not None and parent.endswith(".toml") else parent
    base = _resolve(candidate, seen + (key,))
    base.pop("description", None)
    return _merge(base, data)


def _exists(path: Path | Any) -> bool:
    """``path.exists()``, false for a name the OS cannot even look up (too long, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _is_file(path: Path | Any) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else in ``top`` replaces ``base``."""
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` from the command line; VALUE is read as TOML, else kept as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(f"--set {text!r}: expected KEY=VALUE with a dotted KEY, e.g. clouds.gcp.withholding.share=0.5")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except RecursionError:
        raise ScenarioError(f"--set {key}=...: the value nests lists or tables too deeply to read.") from None
    except tomllib.TOMLDecodeError:
        if raw.startswith(("[", "{")):
            raise ScenarioError(f"--set {text!r}: {raw} is not a valid TOML list or table; text inside it needs "
                                f'quotes, e.g. {key}=["openai"]') from None
        value = raw
    return key, value


_COLLECTIONS = {"products": "product", "vendors": "vendor", "clouds": "cloud", "labs": "lab"}


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c = value`` in the raw scenario; missing sub-tables are created, but an agent or
    product id that does not exist is an error (a typo must not add a new agent)."""
    parts = dotted.split(".")
    if not all(parts):
        raise ScenarioError(f"override {dotted!r}: empty part in the dotted path")
    if len(parts) >= 3 and parts[0] in _COLLECTIONS and parts[1] not in data.get(parts[0], {}):
        known = ", ".join(sorted(data.get(parts[0], {}))) or "none"
        raise ScenarioError(f"override {dotted!r}: no {_COLLECTIONS[parts[0]]} {parts[1]!r}; allowed: {known}")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part) if isinstance(node, dict) else None
        if nxt is None:
            nxt = node[part] = {}
        elif not isinstance(nxt, dict):
            raise ScenarioError(f"override {dotted!r}: {'.'.join(parts[: i + 1])} is a value, not a table, "
                                f"so it has no field {parts[i + 1]!r}")
        node = nxt
    node[parts[-1]] = value


def shorten(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message echoes a value, not a whole file."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: ValidationError, where: str) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/ODD.md for the fields)"
        got = err.get("input")
        shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {shorten(got)})"
        problems.append(f"{loc}: {msg}{shown}" if loc else f"{msg}{shown}")
    more = f"; and {len(exc.errors()) - 5} more" if len(exc.errors()) > 5 else ""
    return f"{where} is invalid: " + "; ".join(problems) + more + "."


def resolve_scenario(name_or_path: str | Path) -> dict[str, Any]:
    """The raw (unvalidated) dict of a scenario with its ``extends`` chain merged in."""
    data = _resolve(name_or_path)
    if not data.keys() - {"name"}:
        raise ScenarioError(f"scenario {str(name_or_path)!r} is empty; start it with extends = \"baseline\" "
                            "and set only what differs, or see the built-in files for every field.")
    return data


def validate_scenario(data: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> Scenario:
    """Apply dotted ``overrides`` to a copy of a raw scenario dict and validate it."""
    data = copy.deepcopy(dict(data))
    for key, value in overrides.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(f"override {key!r}: {value!r} is not a finite number")
        _set_path(data, key, value)
    return validate_model(Scenario, data, where)


def load_scenario(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None, /,
                  **kw_overrides: Any) -> Scenario:
    """Load a built-in scenario by name, or a TOML file by path, apply dotted overrides, validate.

    ``load_scenario("baseline", steps=24)``;
    ``load_scenario("baseline", {"clouds.gcp.withholding.share": 0.5})``.
    Raises :class:`ScenarioError` naming the field and what is allowed.
    """
    return validate_scenario(resolve_scenario(name_or_path), {**(overrides or {}), **kw_overrides},
                             f"scenario {str(name_or_path)!r}")
