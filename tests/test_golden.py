"""Results pinned by a golden file: the tables of a fixed seed, compared exactly (floats too).

Optimisations must leave them bit-identical. After an intended change of model behaviour,
regenerate them with

    MARKET_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

and say in the commit which change of behaviour was intended and why.

The comparison is exact, and made where the files were written: the same Python minor version
and numpy minor version (golden/python.txt). Elsewhere floats differ in the last bits (``sum()``
is compensated from Python 3.12 on; numpy's math functions change between versions) and a run
drifts from them over 24 months, so the test is skipped there, saying so; regenerate the files
to pin that environment's results.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
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
        (GOLDEN / "python.txt").write_text(_environment() + "\n")
    return tables


def _environment() -> str:
    """Python and numpy minor versions, e.g. ``3.11 numpy-2.4``."""
    return f"{'.'.join(platform.python_version_tuple()[:2])} numpy-{'.'.join(np.__version__.split('.')[:2])}"


def test_golden_files_cover_every_table(tables: dict[str, pl.DataFrame]) -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.parquet")) == sorted(tables)


@pytest.mark.parametrize("table", market.TABLES)
def test_tables_of_a_fixed_seed_are_unchanged(tables: dict[str, pl.DataFrame], table: str) -> None:
    written = (GOLDEN / "python.txt").read_text().strip()
    if written != _environment():
        pytest.skip(f"golden tables written with Python {written}, this is {_environment()}: floats differ in the "
                    "last bits across versions; MARKET_UPDATE_GOLDEN=1 pins this environment's results")
    expected = pl.read_parquet(GOLDEN / f"{table}.parquet")
    assert_frame_equal(tables[table], expected, check_exact=True)
