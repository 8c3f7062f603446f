"""experiments/analysis.ipynb runs top to bottom on a small experiment, and is committed clean."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import market

NOTEBOOK = Path(__file__).parent.parent / "experiments" / "analysis.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch) -> None:
    exp = tmp_path / "e.toml"
    exp.write_text('name = "nb"\nscenarios = ["baseline", "openai_google_tpu", "tpu_merchant"]\n'
                   "replications = 2\nsteps = 8\nbase_seed = 5\n")
    out = tmp_path / "out"
    report = market.sweep(exp, out, workers=1, progress=False)
    assert report.failed == 0
    monkeypatch.setenv("MARKET_EXPERIMENT", str(out))
    game_file = Path(__file__).parent / "games" / "monopoly_game.toml"
    played = market.game(game_file, tmp_path / "game", workers=1, progress=False)
    monkeypatch.setenv("MARKET_GAME_FILE", str(game_file))
    monkeypatch.setenv("MARKET_GAME", str(played.out))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5, "the figures should render (the game's too)"
    assert any("pure equilibrium cloud=price_040" in o.get("text", "") for c in nb.cells if c.cell_type == "code"
               for o in c.outputs), "the game section prints the equilibrium"
    # market.explore(...) shows the explorer in the notebook: a widget view (Solara's element)
    widgets = [o for c in nb.cells if c.cell_type == "code" and "market.explore(" in c.source for o in c.outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 1
