"""Results pinned by a golden file: the tables of a fixed seed, compared exactly (floats too).

Optimisations must leave them bit-identical. After an intended change of model behaviour,
regenerate them with

    MARKET_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

and say in the commit which change of behaviour was intended and why.

The comparison is exact on the Python minor version that wrote the files (golden/python.txt).
Other versions sum floats differently (``sum()`` is compensated from Python 3.12 on), so there
the floats are compared to a relative 1e-9.
"""

from __future__ import annotations

import os
import platform
from inspect import signature
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import market

GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = ("baseline", "openai_google_tpu")
STEPS = 24
SEED = 7
VOLATILE = ("wall_seconds", "package_version", "mesa_version", "polars_version", "python_version")


def golden_tables() -> dict[str, pl.DataFrame]:
    """Every table of each scenario's run, stacked (``run_id`` tells the runs apart); the ``runs``
    table without wall-clock time and library versions."""
    stacked: dict[str, list[pl.DataFrame]] = {}
    for name in SCENARIOS:
        result = market.run(name, steps=STEPS, seed=SEED)
        for table, df in result.tables.items():
            stacked.setdefault(table, []).append(df.drop(VOLATILE, strict=False))
    return {table: pl.concat(dfs) for table, dfs in stacked.items()}


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    tables = golden_tables()
    if os.environ.get("MARKET_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for old in GOLDEN.glob("*.parquet"):
            old.unlink()
        for name, df in tables.items():
            df.write_parquet(GOLDEN / f"{name}.parquet", compression="zstd", compression_level=19, statistics=False)
        (GOLDEN / "python.txt").write_text(_minor() + "\n")
    return tables


def _minor() -> str:
    return ".".join(platform.python_version_tuple()[:2])


def test_golden_files_cover_every_table(tables: dict[str, pl.DataFrame]) -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.parquet")) == sorted(tables)


@pytest.mark.parametrize("table", market.TABLES)
def test_tables_of_a_fixed_seed_are_unchanged(tables: dict[str, pl.DataFrame], table: str) -> None:
    expected = pl.read_parquet(GOLDEN / f"{table}.parquet")
    exact = (GOLDEN / "python.txt").read_text().strip() == _minor()
    tolerance = {} if exact else {"rel_tol" if "rel_tol" in signature(assert_frame_equal).parameters else "rtol": 1e-9}
    assert_frame_equal(tables[table], expected, check_exact=exact, **tolerance)
