"""The explorer's page (Solara): a What-if tab and a Sweep browser tab.

    market explore openai_google_tpu            # the web app on http://127.0.0.1:8765
    >>> import market
    >>> market.explore("outputs/seed_scenarios")   # in Jupyter: the same page in the notebook  # doctest: +SKIP

The levers are drawn by Mesa's :func:`mesa.visualization.solara_viz.UserInputs` (sliders where the
schema bounds a field on both sides, a text field otherwise, a drop-down for a choice such as the
market's clearing rule, with what each name means below it), the figures are those of
``market plot`` (:data:`market.analysis.figures.FIGURES`) and the outcome table holds the numbers of
``market compare``. A mistake (a bad lever value, a folder that cannot be read, a failed run) is a
message in the page; the page stays usable.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import reacton.ipywidgets as rw
import solara
import solara.lab

with warnings.catch_warnings():  # Solara's hook check about Mesa's own ComponentsView, which we do not use
    warnings.filterwarnings("ignore", message=".*found despite early return", category=UserWarning)
    from mesa.visualization.solara_viz import UserInputs
from mesa.visualization.user_param import Slider

from market.analysis.report import fmt as _fmt  # market compare's formats
from market.explorer.levers import Lever, all_levers, levers_of, parse_value
from market.explorer.render import drawn
from market.explorer.sweeps import FIGURES, Selection, Sweep, SweepError, open_sweep
from market.explorer.whatif import DEFAULT_REPLICATIONS, WhatIf, WhatIfResult, command_line, run_whatif
from market.scenario import ScenarioError, builtin_scenarios

__all__ = ["Explorer", "Page", "WHATIF_FIGURES"]

ENV_TARGET = "MARKET_EXPLORE_TARGET"  # what `market explore` opens (a scenario, a file or a sweep folder)
ENV_WORKERS = "MARKET_EXPLORE_WORKERS"
WHATIF_FIGURES = FIGURES  # the sweep browser's, without the design figure
AS_WRITTEN = "(the scenario as written)"


# -- formatting --------------------------------------------------------------------------------------


def comparison_markdown(table: Any) -> str:
    """``market compare``'s table (:func:`compare_runs`) as a Markdown table, formatted as the CLI prints it."""
    from market.analysis.outcomes import OUTCOMES  # noqa: PLC0415

    base = table["baseline"][0]
    lines = [f"| outcome (final month) | scenario | runs | mean | 90% of runs | vs {base} | 95% CI |",
             "|:--|:--|--:|--:|--:|--:|--:|"]
    for r in table.iter_rows(named=True):
        unit = r.get("unit") or OUTCOMES.get(r["outcome"], (r["outcome"], "share"))[1]
        is_base = r["scenario"] == base
        diff = "–" if is_base else _fmt(unit, r["diff"], True)
        ci = "–" if is_base else f"{_fmt(unit, r['diff_low'], True)} to {_fmt(unit, r['diff_high'], True)}"
        lines.append(f"| {r['label']} | {r['scenario']} | {r['runs']} | {_fmt(unit, r['mean'])} | "
                     f"{_fmt(unit, r['p05'])} – {_fmt(unit, r['p95'])} | {diff} | {ci} |")
    return "\n".join(lines)


def summary_markdown(summary: Any) -> str:
    """:func:`scenario_summary` (one scenario) as a Markdown table: mean and 90% interval per outcome."""
    from market.analysis.outcomes import OUTCOMES  # noqa: PLC0415

    lines = ["| outcome (final month) | scenario | runs | mean | 90% of runs |", "|:--|:--|--:|--:|--:|"]
    columns = [c.removesuffix("_mean") for c in summary.columns if c.endswith("_mean")]
    for r in summary.iter_rows(named=True):
        for col in columns:
            label, unit = OUTCOMES[col][:2] if col in OUTCOMES else (col.replace("_", " "), "share")
            lines.append(f"| {label} | {r['scenario']} | {r['runs']} | {_fmt(unit, r[f'{col}_mean'])} | "
                         f"{_fmt(unit, r[f'{col}_p05'])} – {_fmt(unit, r[f'{col}_p95'])} |")
    return "\n".join(lines)


# -- shared pieces -----------------------------------------------------------------------------------


def _show(name: str, image: bytes | None, why: str | None) -> None:
    if image is None:
        solara.Info(f"{name.replace('_', ' ')}: {why}", dense=True)
    else:
        with solara.Div(classes=[f"figure-{name}"]):
            rw.Image(value=image, format="png")


@solara.component
def FigureView(name: str, tables: Any, key: Any) -> None:
    """One figure of ``market plot`` drawn from ``tables`` (again only when ``key`` changes)."""
    image, why = solara.use_memo(lambda: drawn(name, tables), dependencies=[name, key])
    _show(name, image, why)


def choices_markdown(lever: Lever) -> str:
    """What each of a choice lever's names means (from the schema), one line each, the chosen one marked."""
    return "\n".join(f"- **{name}**{' (chosen)' if name == lever.value else ''}" + (f": {meaning}" if meaning else "")
                      for name, meaning in lever.choices)


def _controls(levers: list[Lever]) -> dict[str, Any]:
    """Mesa's user-parameter specs for the levers: a drop-down for a choice, a slider where the
    schema bounds both ends, a text field (its range in the label) otherwise."""
    params: dict[str, Any] = {}
    for lever in levers:
        if lever.choices:
            params[lever.path] = {"type": "Select", "label": lever.path.rsplit(".", 1)[-1], "value": lever.value,
                                  "values": list(lever.names)}
        elif lever.bounded and not (lever.low_open or lever.high_open):
            name = lever.path.rsplit(".", 1)[-1]
            params[lever.path] = Slider(f"{name} [{lever.allowed}]", value=lever.value, min=lever.low, max=lever.high,
                                        step=lever.step, dtype=int if lever.integer else float)
        else:
            params[lever.path] = {"type": "InputText", "label": f"{lever.path} [{lever.allowed}]",
                                  "value": f"{lever.value:g}" if isinstance(lever.value, float) else str(lever.value)}
    return params


# -- What-if -----------------------------------------------------------------------------------------


@solara.component
def WhatIfView(initial: str | None = None, workers: int | None = None) -> None:
    builtins = list(builtin_scenarios())
    start = initial if initial else ("openai_google_tpu" if "openai_google_tpu" in builtins else builtins[0])
    scenario, set_scenario = solara.use_state(start)
    file_text, set_file_text = solara.use_state(initial if initial and initial not in builtins else "")
    values, set_values = solara.use_state({})  # lever path -> value typed or slid
    extra, set_extra = solara.use_state([])  # lever paths added by hand
    baseline, set_baseline = solara.use_state("baseline")
    reps_text, set_reps_text = solara.use_state(str(DEFAULT_REPLICATIONS))
    steps_text, set_steps_text = solara.use_state("")
    load_error, set_load_error = solara.use_state(None)
    run_error, set_run_error = solara.use_state(None)
    result, set_result = solara.use_state(None)
    progress, set_progress = solara.use_state((0, 0))
    requested, set_requested = solara.use_state(None)  # the WhatIf last run (None: none yet)

    def load_levers() -> tuple[list[Lever], dict[str, Lever], str | None]:
        try:
            return levers_of(scenario), {lev.path: lev for lev in all_levers(scenario)}, None
        except ScenarioError as exc:
            return [], {}, str(exc)

    shown, every, scenario_error = solara.use_memo(load_levers, dependencies=[scenario])
    levers = shown + [every[p] for p in extra if p in every and p not in {lev.path for lev in shown}]

    def request() -> tuple[WhatIf | None, str | None]:
        """The what-if the controls describe, validated; or the message saying what is wrong."""
        if scenario_error:
            return None, scenario_error
        try:
            changes = {}
            for lever in levers:
                if lever.path in values:
                    v = parse_value(lever, values[lever.path])
                    if v != lever.value:
                        changes[lever.path] = v
            reps = _whole(reps_text, "replications", "2 to 1000")
            steps = _whole(steps_text, "months", "1 to 1200") if steps_text.strip() else None
            w = WhatIf(scenario, changes, None if baseline == AS_WRITTEN else baseline, reps, steps)
            w.scenarios()  # validates both sides
            return w, None
        except ScenarioError as exc:
            return None, str(exc)

    whatif, invalid = request()
    running = requested is not None and (result is None or not result.done) and run_error is None

    def work(job: WhatIf) -> None:
        try:
            run_whatif(job, workers=workers, on_update=set_result,
                       on_progress=lambda done, total: set_progress((done, total)))
        except ScenarioError as exc:
            set_run_error(str(exc))
        except Exception as exc:  # noqa: BLE001 - a message in the page, never a traceback
            set_run_error(f"the run failed ({type(exc).__name__}: {exc}); change the settings or try again.")

    def on_run() -> None:
        if whatif is None:
            return
        set_run_error(None)
        set_result(None)
        set_progress((0, 2 * whatif.replications))
        set_requested(whatif)
        # A plain thread (Solara passes the page's context to it): solara.use_thread traces every
        # line it runs so that it can be cancelled, which makes drawing the figures ten times slower.
        threading.Thread(target=work, args=(whatif,), daemon=True).start()

    def change_scenario(name: str) -> None:
        set_scenario(name)
        set_values({})
        set_extra([])
        set_load_error(None)

    def load_file() -> None:
        path = file_text.strip()
        try:
            levers_of(path)
        except ScenarioError as exc:
            set_load_error(str(exc))
            return
        change_scenario(path)

    def on_lever(path: str, value: Any) -> None:
        set_values({**values, path: value})

    with solara.Columns([1, 3]):
        with solara.Column(classes=["whatif-controls"]):
            choices = builtins + ([scenario] if scenario not in builtins else [])
            solara.Select("Scenario", value=scenario, values=choices, on_value=change_scenario)
            with solara.Row():
                solara.InputText("…or a scenario file (.toml)", value=file_text, on_value=set_file_text,
                                 continuous_update=True)
                solara.Button("Load", on_click=load_file, outlined=True)
            if load_error:
                solara.Error(load_error, classes=["load-error"])
            solara.Markdown("**Levers** (ranges from the scenario schema)")
            for lever in levers:  # one of Mesa's UserInputs per lever, under its description and value
                now = _with_value(lever, values)
                shown_value = f"{now.value:g}" if isinstance(now.value, (int, float)) else str(now.value)
                solara.Text(f"{lever.label if lever.label != lever.path else lever.path}: {shown_value}",
                            style={"font-size": "0.85em", "color": "#555"})
                UserInputs(_controls([now]), on_change=on_lever)
                if any(meaning for _, meaning in now.choices):
                    with solara.Div(classes=["choice-meanings"], style={"font-size": "0.85em"}):
                        solara.Markdown(choices_markdown(now))
            addable = sorted(p for p in every if p not in {lev.path for lev in levers})
            solara.Select("Add a lever", value=None, values=addable,
                          on_value=lambda p: set_extra([*extra, p]) if p else None)
            solara.Select("Compare with", value=baseline, values=[*builtins, AS_WRITTEN], on_value=set_baseline)
            with solara.Row():
                solara.InputText("Replications", value=reps_text, on_value=set_reps_text, continuous_update=True)
                solara.InputText("Months (empty: the scenario's)", value=steps_text, on_value=set_steps_text,
                                 continuous_update=True)
            if invalid:
                solara.Error(invalid, classes=["lever-error"])
            solara.Button("Run", on_click=on_run, disabled=whatif is None or running, color="primary",
                          classes=["run-button"])
            done, total = progress
            if requested is not None and total:
                solara.ProgressLinear(100 * done / total)
                solara.Text(f"{done} of {total} runs done" + (f" · {result.seconds:.1f} s" if result else ""),
                            classes=["run-progress"])
            if run_error:
                solara.Error(run_error, classes=["run-error"])
        with solara.Column():
            WhatIfResults(result)


@solara.component
def WhatIfResults(result: WhatIfResult | None) -> None:
    if result is None:
        solara.Info("Set the levers and press Run: the scenario and the one it is compared with run "
                    "replication by replication with the same seeds, and the figures appear after the first pairs.")
        return
    what, base = result.request.labels()
    state = "all" if result.done else "so far:"
    solara.Markdown(f"### {what} vs {base}: {state} {result.pairs} of {result.total} pairs "
                    f"({result.seconds:.1f} s)")
    for label, error in result.failures.items():
        solara.Warning(f"{label} failed: {error}", classes=["run-failure"])
    if (line := command_line(result.request)) is not None:
        solara.Markdown(f"Replication 0 of the what-if side at the command line: `{line}`")
    key = (id(result), result.pairs)
    if result.comparison is not None:
        solara.Markdown("Final month: mean, 90% of runs, and the difference to the baseline with its bootstrap "
                        "95% confidence interval (paired by seed), as `market compare` gives it.")
        with solara.Div(classes=["comparison"]):
            solara.Markdown(comparison_markdown(result.comparison))
    for name in WHATIF_FIGURES:
        FigureView(name, result.tables, key)


def _with_value(lever: Lever, values: dict[str, Any]) -> Lever:
    if lever.path not in values:
        return lever
    try:
        v = parse_value(lever, values[lever.path])
    except ScenarioError:
        return Lever(**{**lever.__dict__, "value": values[lever.path]}) if not lever.bounded else lever
    return Lever(**{**lever.__dict__, "value": v})


def _whole(text: str, what: str, allowed: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ScenarioError(f"{what}: {text!r} is not a whole number; allowed: {allowed}.") from None


# -- Sweep browser -----------------------------------------------------------------------------------


@solara.component
def SweepView(initial: str | None = None) -> None:
    folder_text, set_folder_text = solara.use_state(initial or "outputs/seed_scenarios")
    sweep, set_sweep = solara.use_state(None)
    error, set_error = solara.use_state(None)
    chosen, set_chosen = solara.use_state([])
    filters, set_filters = solara.use_state({})
    baseline, set_baseline = solara.use_state("baseline")

    def open_folder(path: str | None = None) -> None:
        try:
            opened = open_sweep((path or folder_text).strip())
        except SweepError as exc:
            set_error(str(exc))
            return
        set_error(None)
        set_sweep(opened)
        set_chosen(list(opened.scenarios))
        set_filters({})

    solara.use_effect(lambda: open_folder(initial) if initial else None, [])

    with solara.Columns([1, 3]):
        with solara.Column(classes=["sweep-controls"]):
            solara.InputText("Experiment folder", value=folder_text, on_value=set_folder_text, continuous_update=True)
            solara.Button("Open", on_click=lambda: open_folder(), outlined=True, classes=["open-button"])
            if error:
                solara.Error(error, classes=["sweep-error"])
            if sweep is not None:
                solara.SelectMultiple("Scenarios", values=chosen, all_values=sweep.scenarios, on_value=set_chosen,
                                      classes=["scenario-filter"])
                for p, vals in sweep.parameters.items():
                    if sweep.ranged(p):
                        low, high = filters.get(p, (vals[0], vals[-1]))
                        solara.SliderRangeFloat(p, value=(low, high), min=float(vals[0]), max=float(vals[-1]),
                                                step=(vals[-1] - vals[0]) / 100,
                                                on_value=lambda v, p=p: set_filters({**filters, p: tuple(v)}))
                    else:
                        labels = [_tick(v) for v in vals]
                        picked = [_tick(v) for v in filters.get(p, vals)]
                        solara.SelectMultiple(p, values=picked, all_values=labels,
                                              on_value=lambda v, p=p, vals=vals: set_filters(
                                                  {**filters, p: [x for x in vals if _tick(x) in v]}))
                solara.Select("Compare with", value=baseline, values=chosen or sweep.scenarios,
                              on_value=set_baseline)
        with solara.Column():
            if sweep is not None:
                SweepResults(sweep, tuple(chosen), tuple((k, tuple(v)) for k, v in filters.items()), baseline)
            elif not error:
                solara.Info("Open the output folder of a finished sweep (market sweep FILE).")


@solara.component
def SweepResults(sweep: Sweep, chosen: tuple, filters: tuple, baseline: str) -> None:
    key = (id(sweep), chosen, filters)  # what the figures draw: a new baseline redraws only the table

    def select() -> tuple[Selection | None, str | None]:
        if not chosen:
            return None, "pick at least one scenario."
        try:
            return sweep.select(list(chosen), dict(filters)), None
        except SweepError as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a message in the page, never a traceback
            return None, f"the selection could not be read ({type(exc).__name__}: {exc})."

    selection, why = solara.use_memo(select, dependencies=[key])
    # the table is computed in a background thread while the figures draw (on two cores, in parallel)
    pending = solara.use_memo(lambda: sweep.outcomes_later(selection, baseline) if selection else None,
                              dependencies=[key, baseline])
    images = solara.use_memo(lambda: sweep.draw(selection) if selection else {}, dependencies=[key])
    outcomes = None
    if pending is not None:
        try:
            outcomes = pending.result()
        except SweepError as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - a message in the page, never a traceback
            why = f"the outcomes could not be computed ({type(exc).__name__}: {exc})."
    if selection is None or outcomes is None:
        solara.Warning(why or "nothing selected", classes=["selection-warning"])
        return
    drawn = f"; figures drawn from {selection.drawn:,} of them" if selection.sampled else ""
    with solara.Div(classes=["selection-count"]):
        solara.Markdown(f"### {sweep.folder.name}: {selection.runs:,} runs selected{drawn}")
    table = comparison_markdown(outcomes) if "baseline" in outcomes.columns else summary_markdown(outcomes)
    with solara.Div(classes=["comparison"]):
        solara.Markdown(table)
    for name, (image, reason) in images.items():
        _show(name, image, reason)


def _tick(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# -- the page ------------------------------------------------------------------------------------------


@solara.component
def Explorer(target: str | None = None, workers: int | None = None) -> None:
    """The explorer: What-if and Sweep browser tabs; ``target`` (a scenario, a scenario file or a
    sweep folder) opens in its tab."""
    is_sweep = bool(target) and Path(target).is_dir()
    solara.Title("market explorer")
    with solara.Column(style={"padding": "12px 24px"}), solara.lab.Tabs(value=1 if is_sweep else 0):
        with solara.lab.Tab("What-if"):
            WhatIfView(None if is_sweep else target, workers)
        with solara.lab.Tab("Sweep browser"):
            SweepView(target if is_sweep else None)


@solara.component
def Page() -> None:
    """The page ``solara run market.explorer.app`` (and ``market explore``) serves."""
    workers = os.environ.get(ENV_WORKERS)
    Explorer(os.environ.get(ENV_TARGET) or None, int(workers) if workers else None)

