"""The explorer's figures as the page shows them: ``market plot``'s figure functions
(:data:`market.analysis.figures.FIGURES`), drawn as PNG at screen resolution.

    >>> from market.explorer.render import figure_png
    >>> png, why = figure_png("vendor_shares", market.scan("outputs/seed_scenarios"))   # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from io import BytesIO
from typing import Any

import matplotlib as mpl
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from market.analysis.figures import FIGURES, Skip
from market.analysis.headline import Headline

__all__ = ["SCREEN_DPI", "drawn", "figure_png", "figure_png_elsewhere", "png", "result", "warm_up"]

SCREEN_DPI = 90  # the page's figures; `market plot` writes its files at 150 dpi


def png(fig: Figure, dpi: float = SCREEN_DPI) -> bytes:
    """``fig`` as PNG at ``dpi``. Drawn once on its Agg canvas, which lays the figure out within
    that draw: ``savefig`` draws a figure with a layout engine twice (a pass to lay it out, then the
    drawing), for the same pixels. (The figure is not registered with pyplot: dropping it frees it;
    ``fig.clear()`` would cost a tenth of the drawing.)"""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    out = BytesIO()
    # zlib's fastest level: a third of the encoding time, for files a page on this machine reads
    mpl.image.imsave(out, np.asarray(fig.canvas.buffer_rgba()), format="png", dpi=dpi,
                     pil_kwargs={"compress_level": 1})
    return out.getvalue()


def figure_png(name: str, tables: dict[str, Any], headline: Headline | None = None) -> tuple[bytes | None, str | None]:
    """The figure ``name`` drawn from ``tables`` as PNG, or (None, why) when the tables lack what it
    needs (:class:`~market.analysis.figures.Skip`). Other errors propagate."""
    try:
        fig = FIGURES[name](tables, headline)
    except Skip as why:
        return None, str(why)
    return png(fig), None


def drawn(name: str, tables: dict[str, Any], headline: Headline | None = None) -> tuple[bytes | None, str | None]:
    """:func:`figure_png`, an error included in the reasons (for the page: a message, never a traceback)."""
    return _or_why(figure_png, name, tables, headline)


def _or_why(draw, *args) -> tuple[bytes | None, str | None]:
    try:
        return draw(*args)
    except Exception as exc:  # noqa: BLE001
        return None, f"could not be drawn ({type(exc).__name__}: {exc})"


# One worker process that draws a figure while this process draws the others (matplotlib holds
# the GIL, so a thread would not draw in parallel): started once, when a sweep is opened.
_DRAWER: ProcessPoolExecutor | None = None
_DRAWER_LOCK = threading.Lock()


def _drawer() -> ProcessPoolExecutor:
    global _DRAWER
    from market.batch.runner import pool_context  # noqa: PLC0415 - the sweep runner's fork server

    with _DRAWER_LOCK:
        if _DRAWER is None or getattr(_DRAWER, "_broken", False):
            _DRAWER = ProcessPoolExecutor(max_workers=1, mp_context=pool_context())
            atexit.register(_DRAWER.shutdown, wait=False, cancel_futures=True)
        return _DRAWER


def warm_up() -> Future:
    """Start the drawing process and import the figures there (a second or two, once)."""
    return _drawer().submit(_imported)


def _imported() -> bool:
    import market.analysis.figures  # noqa: F401, PLC0415

    return True


def _draw_frames(name: str, frames: dict[str, pl.DataFrame], headline: Headline | None) -> tuple:
    return figure_png(name, {t: f.lazy() for t, f in frames.items()}, headline)


def figure_png_elsewhere(name: str, tables: dict[str, Any], headline: Headline | None = None) -> Future:
    """:func:`figure_png` in the drawing process; ``tables`` are sent whole, so keep them small."""
    frames = dict(zip(tables, pl.collect_all([lf.lazy() for lf in tables.values()])))
    return _drawer().submit(_draw_frames, name, frames, headline)


def result(pending: Future) -> tuple[bytes | None, str | None]:
    """A :func:`figure_png_elsewhere`'s PNG or why not, as :func:`drawn` gives it."""
    return _or_why(pending.result)
