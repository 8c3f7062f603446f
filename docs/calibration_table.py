"""Write the parameter table of docs/CALIBRATION.md from the built-in baseline scenario.

    python docs/calibration_table.py          # rewrites the table between the markers
    python docs/calibration_table.py --check  # exit 1 if the committed table is out of date

Every leaf value of the resolved baseline gets its source: the comment on the line that sets it
in market/scenarios/baseline.toml, else the first matching pattern of its [sources] table, else
"assumption (code default)" for values the file does not set, else "assumption".
"""

from __future__ import annotations

import fnmatch
import re
import sys
import tomllib
from pathlib import Path

import market
from market.scenario import BUILTIN_DIR

DOC = Path(__file__).parent / "CALIBRATION.md"
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


def _comments(text: str) -> dict[str, str]:
    """Dotted path -> inline comment, for every `key = value  # comment` line (inline tables give
    their comment to each of their keys)."""
    out: dict[str, str] = {}
    table = ""
    for line in text.splitlines():
        stripped = line.strip()
        if m := re.match(r"^\[([^\]]+)\]", stripped):
            table = m.group(1).replace('"', "")
            continue
        if "=" not in stripped or stripped.startswith("#"):
            continue
        key, _, rest = stripped.partition("=")
        key = key.strip().strip('"')
        comment = rest.split("#", 1)[1].strip() if "#" in rest else ""
        path = f"{table}.{key}" if table else key
        if comment:
            out[path] = comment
    return out


def _leaves(x: object, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(x, dict):
        return [leaf for k, v in x.items() for leaf in _leaves(v, f"{prefix}.{k}" if prefix else k)]
    return [(prefix, x)]


def _set_in_file(data: dict, path: str) -> bool:
    node: object = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def table() -> str:
    text = (BUILTIN_DIR / "baseline.toml").read_text()
    raw = tomllib.loads(text)
    comments = _comments(text)
    patterns = raw.get("sources", {})
    sc = market.load_scenario("baseline")
    rows = ["| parameter | baseline value | source |", "|---|---|---|"]
    for path, value in _leaves(sc.model_dump(mode="json")):
        if path.startswith(("sources.", "description", "name")):
            continue
        source = ""
        for p in (path, path.rsplit(".", 1)[0]):  # a comment on an inline table covers its keys
            if p in comments:
                source = comments[p]
                break
        if not source:  # a pattern may name the value or any table above it
            ancestors = [path.rsplit(".", k)[0] for k in range(path.count(".") + 1)]
            source = next((s for pat, s in patterns.items() if any(fnmatch.fnmatch(a, pat) for a in ancestors)), "")
        if not source:
            source = "assumption" if _set_in_file(raw, path) else "assumption (code default)"
        shown = f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
        rows.append(f"| `{path}` | {shown.replace('|', '/')} | {source.replace('|', '/')} |")
    return "\n".join(rows)


def main() -> None:
    doc = DOC.read_text()
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    if "--check" in sys.argv:
        sys.exit(0 if new == doc else 1)
    DOC.write_text(new)


if __name__ == "__main__":
    main()
