"""Helpers shared by the test modules (no test module imports another; they all import from here)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

# Extreme magnitudes float64 and int64 barely hold or cannot hold, as TOML writes them: the fuzz and
# property tests give them to every numeric field.
EXTREMES = ["1e300", "-1e300", "1e-300", "-1e-300", "5e-324", "-5e-324", "2.2250738585072014e-308",
            "1.7976931348623157e308", "1e309", "9223372036854775807", "-9223372036854775808",
            "18446744073709551616", "1e12", "1e13", "inf", "-inf", "nan", "-nan"]


def numeric_leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, int | float]]:
    """(path, value) of every number in a scenario's data (``Scenario.model_dump(mode="json")``),
    inside tables and lists alike; a path is a tuple of keys and list positions."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from numeric_leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from numeric_leaves(v, (*path, i))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


def with_value(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the value at ``path`` (from :func:`numeric_leaves`) replaced."""
    out = copy.deepcopy(data)
    node: Any = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out
