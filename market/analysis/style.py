"""Fixed colours and the plot theme: the same vendor, scenario and tier colour in every figure.

    >>> from market.analysis.style import vendor_colours, scenario_colours
    >>> vendor_colours(["nvidia", "cerebras"])["nvidia"]
    '#76b900'
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib as mpl
import seaborn as sns

__all__ = ["FALLBACK_PALETTE", "SCENARIO_COLOURS", "SCENARIO_LABELS", "TIER_COLOURS", "VENDOR_COLOURS",
           "VENDOR_LABELS", "apply_style", "ordered_vendors", "scenario_colours", "shade", "tier_colours",
           "vendor_colours"]

# Brand-like colours for the four built-in vendors, in their fixed order.
VENDOR_COLOURS: dict[str, str] = {
    "nvidia": "#76b900",   # Nvidia green
    "google": "#4285f4",   # Google blue
    "amd": "#d6262e",      # AMD red
    "amazon": "#ff9900",   # AWS orange
}
VENDOR_LABELS: dict[str, str] = {"nvidia": "Nvidia", "google": "Google (TPU)", "amd": "AMD",
                                 "amazon": "Amazon (Trainium)"}

# The five built-in scenarios: baseline neutral, the seed event and its variants distinct.
SCENARIO_COLOURS: dict[str, str] = {
    "baseline": "#4d4d4d",            # dark grey: the world before the deal
    "openai_google_tpu": "#6a3d9a",   # purple: the seed event (deal + withholding)
    "open_tpu_access": "#1f9e89",     # teal: the deal without withholding
    "tpu_merchant": "#2b6cb0",        # blue: Google sells TPUs broadly
    "supply_shock": "#c0392b",        # red: packaging shock
}
SCENARIO_LABELS: dict[str, str] = {
    "baseline": "baseline",
    "openai_google_tpu": "OpenAI–Google TPU deal",
    "open_tpu_access": "open TPU access",
    "tpu_merchant": "TPU merchant",
    "supply_shock": "supply shock",
}

TIER_COLOURS: dict[str, str] = {"top": "#08306b", "previous": "#6baed6",  # a vendor's newest chip, and older ones
                                "frontier": "#08306b", "mainstream": "#6baed6"}  # market-wide performance classes

# Colours for names without a fixed colour, handed out in sorted order of those names.
FALLBACK_PALETTE = "Dark2"


def _with_fallback(fixed: dict[str, str], names: Iterable[str]) -> dict[str, str]:
    names = list(dict.fromkeys(names))
    unknown = sorted(n for n in names if n not in fixed)
    spare = sns.color_palette(FALLBACK_PALETTE, max(len(unknown), 1)).as_hex()
    extra = {n: spare[i % len(spare)] for i, n in enumerate(unknown)}
    return {n: fixed.get(n) or extra[n] for n in names}


def vendor_colours(vendors: Iterable[str]) -> dict[str, str]:
    """Vendor -> colour: the fixed ones, then a fallback palette for others (in sorted order)."""
    return _with_fallback(VENDOR_COLOURS, vendors)


def scenario_colours(scenarios: Iterable[str]) -> dict[str, str]:
    """Scenario -> colour: the five built-ins fixed, a fallback palette for others (sorted order)."""
    return _with_fallback(SCENARIO_COLOURS, scenarios)


def tier_colours(tiers: Iterable[str]) -> dict[str, str]:
    return _with_fallback(TIER_COLOURS, tiers)


def ordered_vendors(vendors: Iterable[str]) -> list[str]:
    """The built-in vendors in their fixed order, then any others sorted."""
    present = set(vendors)
    return [v for v in VENDOR_COLOURS if v in present] + sorted(present - set(VENDOR_COLOURS))


def shade(colour: str, amount: float) -> tuple[float, float, float]:
    """``colour`` mixed with white: 0 = unchanged, 1 = white."""
    r, g, b = mpl.colors.to_rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def apply_style() -> None:
    """The package's plot theme: seaborn "whitegrid" with readable font sizes.

    It changes matplotlib's global rcParams; wrap it in ``matplotlib.rc_context()`` to undo.
    """
    sns.set_theme(style="whitegrid", context="notebook", font_scale=1.0, rc={
        "axes.titlesize": 12, "axes.titleweight": "bold", "axes.labelsize": 11,
        "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10, "legend.title_fontsize": 10,
        "figure.titlesize": 14, "figure.titleweight": "bold", "axes.spines.top": False,
        "axes.spines.right": False, "grid.linewidth": 0.6, "lines.linewidth": 2.0, "savefig.dpi": 150,
        "svg.fonttype": "none", "font.family": "sans-serif",
        # titles at the top of their axes (the default moves them above ticks and offset texts on
        # top, which no figure here has): the same pixels, without a tick-box pass per panel on draw
        "axes.titley": 1.0,
    })
