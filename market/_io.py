"""Writing files so that they appear whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

__all__ = ["write_atomic"]


def write_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet to ``path`` via a hidden temporary file in the same folder and
    ``os.replace``, so a reader never sees a half-written file and a killed writer leaves only a
    ``.*.tmp`` file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.write_parquet(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
