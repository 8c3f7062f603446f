"""``market bench``'s table on the terminal, and its JSON."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["emit", "table"]


def table(result: dict[str, Any]) -> Table:
    """One line per figure: value, target, whether it is met, and the details behind it."""
    m = result["machine"]
    title = (f"market bench ({result['mode']}, repeats {result['repeats']}): {m['cores']} cores, Python {m['python']}, "
             f"mesa {m['mesa']}, polars {m['polars']}, numpy {m['numpy']}, dask {m['dask']}")
    t = Table(title=title, title_justify="left")
    for col in ("benchmark", "figure", "value", "target", "met", "details"):
        t.add_column(col, overflow="fold", justify="right" if col == "value" else "left")
    for f in result["figures"]:
        value = "-" if f["value"] is None or (isinstance(f["value"], float) and math.isnan(f["value"])) else (
            f"{f['value']:.3g} {f['unit']}".strip())
        met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
        load = f["data"].get("load_average")
        details = f["details"] + (f"; load average {load[0]} -> {load[1]}" if load and None not in load else "")
        t.add_row(f["benchmark"], f["figure"], value, f["target"], met, details)
    return t


def emit(result: dict[str, Any], json_path: str | os.PathLike | None) -> None:
    """Print the table; with ``json_path``, also write the whole result there as JSON."""
    Console(width=None if sys.stdout.isatty() else 200).print(table(result))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2, default=str))

