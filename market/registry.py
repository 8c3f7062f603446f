"""Registries: the rules of one family (price rules, rationing rules, bargaining protocols, payoffs,
learning rules, sampling designs ...) by name, so that a scenario or experiment file picks one with
a string and a wrong name is reported with the names allowed.

    >>> from market.registry import Registry
    >>> SHAPES = Registry("shape")
    >>> @SHAPES.register("square")
    ... def square(x: float) -> float:
    ...     "Area of a square of side x."
    ...     return x * x
    >>> SHAPES["square"](3.0)
    9.0
    >>> SHAPES["circle"]
    Traceback (most recent call last):
    ...
    market.registry.UnknownName: unknown shape 'circle'; allowed: square
    >>> SHAPES.meanings()
    {'square': 'Area of a square of side x.'}

A registry is a read-only :class:`~collections.abc.Mapping`; lists of names (a pydantic field's
allowed values, a CLI choice) are derived from it, never written a second time, and so is what each
name means (:meth:`Registry.meanings`, which a scenario field's drop-down in the explorer shows).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

__all__ = ["Registry", "UnknownName"]

T = TypeVar("T")


class UnknownName(KeyError, ValueError):
    """A name no registry entry has; the message lists the names allowed. A ``KeyError`` (a failed
    lookup) and a ``ValueError`` (pydantic reports it as a validation error of the field)."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Mapping[str, T]):
    """Entries of one ``kind`` by name: ``registry[name]``, ``name in registry``, iteration in
    registration order; :meth:`register` adds one (as a decorator or a call)."""

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = dict(entries or {})

    def register(self, name: str) -> Callable[[T], T]:
        """Add an entry under ``name`` (a decorator); a name registered twice is an error."""
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered already")
            self._entries[name] = entry
            return entry

        return add

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable "name" (a list from a file)
            raise UnknownName(f"unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self._entries))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"

    def meanings(self) -> dict[str, str]:
        """Each name with what its entry does, in registration order: the first paragraph of the
        entry's docstring on one line ("" without one). A scenario field that takes one of the names
        is a :func:`market.scenario.schema.choice` of these."""
        def summary(entry: T) -> str:
            return " ".join((inspect.getdoc(entry) or "").split("\n\n")[0].split())

        return {name: summary(entry) for name, entry in self._entries.items()}

    def check(self, name: str) -> str:
        """``name`` if it is registered, else :class:`UnknownName`: a pydantic ``AfterValidator``."""
        self[name]
        return name
