"""Writing files so that they appear whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

__all__ = ["replace_atomically", "write_atomic", "write_text_atomic"]


def replace_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp)`` on a hidden temporary file in ``path``'s folder, then ``os.replace`` it
    onto ``path``: a reader never sees a half-written file, and a killed writer leaves only a
    ``.*.tmp`` file behind (removed by a sweep's ``--resume``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet to ``path``, whole or not at all."""
    replace_atomically(path, df.write_parquet)


def write_text_atomic(text: str, path: Path) -> None:
    """Write ``text`` to ``path``, whole or not at all."""
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text))
