"""The explorer's figures as the page shows them: ``market plot``'s figure functions
(:data:`market.analysis.figures.FIGURES`), drawn as PNG at screen resolution.

    >>> from market.explorer.render import figure_png
    >>> png, why = figure_png("vendor_shares", market.scan("outputs/seed_scenarios"))   # doctest: +SKIP
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from market.analysis.figures import FIGURES, Skip
from market.analysis.headline import Headline

__all__ = ["SCREEN_DPI", "figure_png", "png"]

SCREEN_DPI = 90  # the page's figures; `market plot` writes its files at 150 dpi


def png(fig: Figure, dpi: float = SCREEN_DPI) -> bytes:
    """``fig`` as PNG at ``dpi``. Drawn once on its Agg canvas, which lays the figure out within
    that draw: ``savefig`` draws a figure with a layout engine twice (a pass to lay it out, then the
    drawing), for the same pixels. (The figure is not registered with pyplot: dropping it frees it;
    ``fig.clear()`` would cost a tenth of the drawing.)"""
    fig.set_dpi(dpi)
    fig.canvas.draw()
    out = BytesIO()
    mpl.image.imsave(out, np.asarray(fig.canvas.buffer_rgba()), format="png", dpi=dpi)
    return out.getvalue()


def figure_png(name: str, tables: dict[str, Any], headline: Headline | None = None) -> tuple[bytes | None, str | None]:
    """The figure ``name`` drawn from ``tables`` as PNG, or (None, why) when the tables lack what it
    needs (:class:`~market.analysis.figures.Skip`). Other errors propagate."""
    try:
        fig = FIGURES[name](tables, headline)
    except Skip as why:
        return None, str(why)
    return png(fig), None
