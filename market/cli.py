"""The ``market`` command line: list, check and run scenarios.

    market scenarios
    market check my.toml --set clouds.gcp.withholding.share=0.5
    market run openai_google_tpu --steps 24 --seed 3 --set labs.openai.demand_growth=0.08 --out outputs/x
    python -m market --version

User mistakes (unknown scenario or key, wrong type, out-of-range value, bad TOML, missing file,
bad ``--set``/``--steps``, an output folder that cannot be created) exit with code 2 and one
``error: ...`` paragraph on stderr. A valid scenario whose values overflow the model's arithmetic
(:class:`market.ModelError`) exits with code 1 and one ``error: ...`` line naming the step and the
quantity. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

import market
from market.analysis.report import comparison_table, count, print_run_summary, sensitivity_table, summary_table
from market.batch.experiment import safe_label
from market.run import MAX_SEED
from market.scenario import Scenario, ScenarioError, builtin_scenarios, load_scenario, parse_override, shorten

try:  # typer >= 0.2x vendors click; older typer sits on click itself
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError

__all__ = ["app", "main"]

USER_ERROR = 2


class UserError(ClickException):
    """A mistake in the command line or its inputs: exit 2 with one ``error:`` paragraph."""

    exit_code = USER_ERROR


def _say_error(message: str) -> None:
    # one line, of a readable length even when it echoes a huge argument or value
    text = re.sub(r"\S{200,}", lambda m: m.group()[:197] + "...", " ".join(message.split()))
    typer.echo(f"error: {text}", err=True)


class _Group(TyperGroup):
    """Typer's group, with every user mistake reported as one ``error: ...`` paragraph (exit 2)
    instead of a usage block or a traceback. Internal errors propagate with their traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ScenarioError as exc:
            _say_error(str(exc))
            sys.exit(USER_ERROR)
        except market.ModelError as exc:  # the run failed on valid input: not a usage error
            _say_error(f"the run failed: {exc}")
            sys.exit(1)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments: the help is the message
                if exc.format_message().strip():  # (rich help has already printed itself)
                    typer.echo(exc.format_message(), err=True)
                sys.exit(exc.exit_code)
            message = exc.format_message().strip()
            if exc.ctx is not None:
                message += ("" if message.endswith((".", "?", "!")) else ".") + f" See '{exc.ctx.command_path} --help'."
            _say_error(message)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            _say_error(exc.format_message())
            sys.exit(exc.exit_code)
        except OSError as exc:  # the file system refused: a name too long, no space, no permission ...
            where = f" ({shorten(str(exc.filename), 200)})" if exc.filename else ""
            _say_error(f"{exc.strerror or exc}{where}. Check the path, the free space and the permissions, "
                       "then try again (a sweep: with --resume).")
            sys.exit(USER_ERROR)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # non-standalone click returns the command's value, or the code of an explicit Exit
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_Group,
    name="market",
    help="Agent-based simulation of the AI-compute market: labs, chip vendors and clouds "
         "negotiate supply and price every month.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"market {market.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Agent-based simulation of the AI-compute market."""


# -- shared options -------------------------------------------------------------------------

ScenarioArg = Annotated[str, typer.Argument(
    metavar="SCENARIO_OR_FILE", show_default=False,
    help="A built-in scenario name (see 'market scenarios') or a path to a .toml file.")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE", show_default=False,
    help="Override a field by dotted path, e.g. --set clouds.gcp.withholding.share=0.5 "
         "(VALUE is read as TOML, else as text). Repeatable.")]


WorkersOption = Annotated[int | None, typer.Option(
    "--workers", min=1, show_default=False,
    help="Local worker processes (default: the number of cores; 1 runs in this process).")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", metavar="ADDRESS", show_default=False,
    help="Run on a Dask distributed cluster instead, e.g. tcp://127.0.0.1:8786.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Finish the runs not yet complete in DIR.")]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Delete DIR's results and start again.")]


def _load(scenario: str, sets: list[str] | None, **extra: Any) -> Scenario:
    overrides: dict[str, Any] = dict(parse_override(s) for s in sets or ())
    overrides.update(extra)
    return load_scenario(scenario, overrides)


# -- commands -------------------------------------------------------------------------------


@app.command("scenarios")
def scenarios_cmd() -> None:
    """List the built-in scenarios: name and one-line description."""
    found = builtin_scenarios()
    width = max((len(n) for n in found), default=0)
    for name, description in found.items():
        typer.echo(f"{name:<{width}}  {description}".rstrip())


@app.command("check")
def check_cmd(scenario: ScenarioArg, sets: SetOption = None) -> None:
    """Validate a scenario (file or built-in name), with any --set overrides, without running it."""
    sc = _load(scenario, sets)
    dcs = sum(1 for lab in sc.labs.values() if lab.own_datacenter)
    clouds = count(len(sc.clouds), "cloud") + (f" (+ {dcs} lab data centres)" if dcs else "")
    typer.echo(f"OK: {sc.name} — {count(len(sc.vendors), 'vendor')}, {clouds}, "
               f"{count(len(sc.labs), 'lab')} (+ {sc.long_tail.count:,} long-tail), "
               f"{count(len(sc.products), 'product')}, {count(sc.steps, 'step')}, "
               f"config hash {sc.config_hash}")


@app.command("run")
def run_cmd(
    scenario: ScenarioArg,
    steps: Annotated[int | None, typer.Option(
        "--steps", min=1, show_default=False,
        help="Monthly steps to simulate (default: the scenario's).")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Random seed (0 to 2**63 - 1).")] = 0,
    sets: SetOption = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", show_default=False,
        help="Folder for the tables, one <table>.parquet each (default: outputs/run-<scenario>-s<seed>).")] = None,
) -> None:
    """Run one simulation, write its tables as parquet and print a summary of the final month."""
    # --steps goes in as an override so the scenario validates it (upper bound, shocks within the run)
    sc = _load(scenario, sets, **({"steps": steps} if steps is not None else {}))
    folder = out if out is not None else Path("outputs") / f"run-{safe_label(sc.name)}-s{seed}"
    _make_folder(folder)

    err = Console(stderr=True)
    label = f"Running {sc.name}, {count(sc.steps, 'monthly step')}, seed {seed}…"
    if err.is_terminal:
        with err.status(Text(label)):
            result = market.run(sc, steps=sc.steps, seed=seed)
    else:
        err.print(label, markup=False, highlight=False)
        result = market.run(sc, steps=sc.steps, seed=seed)

    try:
        paths = result.write_parquet(folder)
    except OSError as exc:
        raise UserError(f"--out {str(folder)!r}: cannot write the tables there ({exc.strerror or exc}).") from None

    console = Console()
    console.print(f"Wrote {len(paths)} tables to {folder}{'' if str(folder).endswith('/') else '/'} "
                  f"({', '.join(paths)})", markup=False, highlight=False, soft_wrap=True)
    print_run_summary(console, result)


@app.command("sweep")
def sweep_cmd(
    experiment: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                               help="An experiment file (TOML), e.g. experiments/seed_scenarios.toml.")],
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", show_default=False, help="Output folder (default: outputs/<experiment name>).")] = None,
    resume: ResumeOption = False,
    overwrite: OverwriteOption = False,
    figures: Annotated[bool, typer.Option("--figures/--no-figures",
                                          help="Write the figure set to DIR/figures at the end.")] = True,
    batch: Annotated[int | None, typer.Option(
        "--batch", min=1, metavar="N", show_default=False,
        help="At most N runs a worker writes together, as one file per table (default: 10 in experiments "
             "of 100 runs or more, else 1). Results do not depend on it.")] = None,
) -> None:
    """Run an experiment: scenarios x design points x replications, each run written to DIR as it
    finishes (one Parquet file per table per run, or per batch of runs in large experiments). Ends
    by writing the figures and printing the key outcomes per scenario, compared with the baseline
    scenario."""
    from market.analysis.headline import Headline
    from market.analysis.outcomes import run_outcomes, scenario_summary
    from market.batch import load_experiment, scan, sweep

    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; give one of them.")
    exp = load_experiment(experiment)
    report = sweep(exp, out, workers=workers, scheduler=scheduler, resume=resume, overwrite=overwrite, batch=batch)
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(f"{exp.name}: {report.completed} runs done, {report.skipped} already complete, "
                  f"{report.failed} failed, in {report.wall_seconds:.1f} s -> {report.out}/",
                  markup=False, highlight=False)
    if report.interrupted:
        typer.echo(f"interrupted: {report.completed + report.skipped} of {report.total} runs are complete; "
                   f"run again with --resume to finish.", err=True)
        raise typer.Exit(130)
    tables = scan(report.out)
    if "runs" in tables and "steps" in tables:
        if figures:
            for name, why in _plot(report.out, None, ("png", "svg")).skipped.items():
                typer.echo(f"skipped figure {name}: {why}", err=True)
        headline = Headline().resolved(tables)
        per_run = run_outcomes(tables, headline)
        if per_run["scenario"].n_unique() > 1:
            from market.analysis.compare import compare

            table = compare(report.out)
            table.write_csv(report.out / "comparison.csv")
            console.print(comparison_table(table))
            console.print(f"Comparison saved to {report.out / 'comparison.csv'}", markup=False, highlight=False)
        else:
            console.print(summary_table(scenario_summary(per_run), headline.outcomes()))
    if report.failed:
        first = next(iter(report.failures.items()))
        typer.echo(f"{report.failed} of {report.total} runs failed (first: {first[0]}: {first[1]}); "
                   f"see the runs table (status, error) in {report.out}/runs/.", err=True)
        raise typer.Exit(1)


LabOption = Annotated[str | None, typer.Option(
    "--lab", metavar="LAB", show_default=False,
    help="The lab whose dependency the outcomes and figures report (default: openai, or the lab with the most "
         "compute if the runs have none of that name).")]
VendorOption = Annotated[str | None, typer.Option(
    "--vendor", metavar="VENDOR", show_default=False,
    help="The vendor it depends on (default: nvidia, or the vendor with the largest share).")]
ChallengerOption = Annotated[str | None, typer.Option(
    "--challenger", metavar="VENDOR", show_default=False,
    help="The vendor it may turn to (default: google, or the runner-up).")]


def _headline(folder: Path, lab: str | None, vendor: str | None, challenger: str | None):
    """The headline entities for a finished experiment: the defaults, with those given on the
    command line, each checked against the runs (a name they do not hold is a user error)."""
    from market.analysis.headline import Headline
    from market.batch import scan

    given = {"lab": lab, "vendor": vendor, "challenger": challenger}
    if all(v is None for v in given.values()):
        return None
    with _reading(folder):
        tables = scan(folder)
    known = {"lab": ("labs", "lab"), "vendor": ("shares", "vendor"), "challenger": ("shares", "vendor")}
    for option, value in given.items():
        if value is None:
            continue
        table, column = known[option]
        if table not in tables:
            raise UserError(f"{str(folder)!r} holds no {table} table; give the output folder of a finished sweep.")
        with _reading(folder):
            names = sorted(tables[table].select(pl.col(column).unique()).collect()[column].to_list())
        if value not in names:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise UserError(f"--{option} {value!r}: the runs in {str(folder)!r} have no such {column}; allowed: {shown}.")
    return Headline(**{k: v for k, v in given.items() if v is not None})


@app.command("plot")
def plot_cmd(
    folder: Annotated[Path, typer.Argument(metavar="DIR", show_default=False, help="A finished experiment's folder.")],
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FIGDIR", show_default=False, help="Where to write the figures (default DIR/figures).")] = None,
    formats: Annotated[list[str] | None, typer.Option(
        "--format", metavar="EXT", show_default=False,
        help="File formats, repeatable: png, svg, pdf (default: png and svg).")] = None,
    lab: LabOption = None,
    vendor: VendorOption = None,
    challenger: ChallengerOption = None,
) -> None:
    """Write the figure set of a finished experiment: shares, prices, withholding, concentration,
    scenario comparison, who gains, and outcomes along swept parameters."""
    if not folder.is_dir():
        raise UserError(f"{str(folder)!r} is not a folder; give the output folder of a finished sweep.")
    report = _plot(folder, out, tuple(formats or ("png", "svg")), _headline(folder, lab, vendor, challenger))
    for name, why in report.skipped.items():
        typer.echo(f"skipped {name}: {why}", err=True)


def _plot(folder: Path, out: Path | None, formats: tuple[str, ...], headline=None):
    from market.analysis.figures import plot_experiment

    allowed = {"png", "svg", "pdf"}
    if bad := sorted(set(formats) - allowed):
        raise UserError(f"--format: {', '.join(bad)} not supported; allowed: {', '.join(sorted(allowed))}.")
    try:
        with _reading(folder):
            report = plot_experiment(folder, out, formats=formats, headline=headline)
    except FileNotFoundError as exc:
        raise UserError(f"{exc}; give the output folder of a finished sweep.") from None
    shown = sorted({p.parent for p in report.written})
    typer.echo(f"Wrote {len(report.written)} figure files to {', '.join(map(str, shown)) or '(none)'}")
    return report


@app.command("compare")
def compare_cmd(
    folder: Annotated[Path, typer.Argument(metavar="DIR", show_default=False, help="A finished experiment's folder.")],
    baseline: Annotated[str | None, typer.Option(
        "--baseline", metavar="NAME", show_default=False,
        help="Scenario to compare against (default: 'baseline' if present, else the first).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", show_default=False, help="Where to save the table (.csv; default DIR/comparison.csv).")] = None,
    lab: LabOption = None,
    vendor: VendorOption = None,
    challenger: ChallengerOption = None,
) -> None:
    """Each key outcome per scenario: mean, 90% interval across replications, and the difference to
    the baseline scenario with a bootstrap 95% confidence interval (paired by seed)."""
    from market.analysis.compare import compare

    if not folder.is_dir():
        raise UserError(f"{str(folder)!r} is not a folder; give the output folder of a finished sweep.")
    headline = _headline(folder, lab, vendor, challenger)
    try:
        with _reading(folder):
            table = compare(folder, baseline, headline=headline)
    except FileNotFoundError as exc:
        raise UserError(f"{exc}; give the output folder of a finished sweep.") from None
    except ValueError as exc:
        raise UserError(f"--baseline: {exc}") from None
    target = out if out is not None else folder / "comparison.csv"
    try:
        table.write_csv(target)
    except OSError as exc:
        raise UserError(f"--out {str(target)!r}: cannot write there ({exc.strerror or exc}).") from None
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(comparison_table(table))
    console.print(f"Saved to {target}", markup=False, highlight=False)


@contextmanager
def _reading(folder: Path) -> Iterator[None]:
    """Report a result file that cannot be read (damaged by hand, a full disk, another program)
    as a user error naming the folder, not as a traceback."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        # polars raises PolarsError for a damaged file, or panics (PanicException, a BaseException)
        if not isinstance(exc, pl.exceptions.PolarsError) and type(exc).__name__ != "PanicException":
            raise
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{str(folder)!r} holds a result file that cannot be read ({why}). If it is a sweep's "
                        "folder, run the sweep again with --resume: it re-runs every run whose files are "
                        "damaged.") from None


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is an existing file" if folder.is_file() else (exc.strerror or str(exc))
        raise UserError(f"--out {str(folder)!r}: cannot create the output folder ({why}); "
                        f"give a folder path that can be created or already exists.") from None


@app.command("sensitivity")
def sensitivity_cmd(
    folder: Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                           help="A finished sweep with a morris or saltelli design.")],
    outcomes: Annotated[list[str] | None, typer.Option(
        "--outcome", metavar="NAME", show_default=False,
        help="Outcome to analyse, repeatable (default: all key outcomes).")] = None,
    top: Annotated[int | None, typer.Option(
        "--top", min=1, show_default=False, help="Print only the N most important parameters per outcome.")] = None,
) -> None:
    """Global sensitivity of the final-month outcomes to the swept parameters: Morris screening
    (mu*, its 95% CI, mu, sigma) for a morris design, Sobol' indices (S1, ST) for a saltelli
    design. Writes DIR/sensitivity.csv and DIR/figures/sensitivity.png and .svg."""
    from market.analysis.sensitivity import sensitivity

    try:
        with _reading(folder):
            report = sensitivity(folder, outcomes)
    except ValueError as exc:
        raise UserError(f"{exc}.") from None
    except OSError as exc:
        raise UserError(f"{str(folder)!r}: cannot write the table or figure there ({exc.strerror or exc}).") from None
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(sensitivity_table(report, top))
    for outcome, why in report.skipped.items():
        typer.echo(f"skipped {outcome}: {why}", err=True)
    if report.method == "morris" and report.replications >= 2:
        console.print("seed noise: the mu* a parameter without any effect gets from the replications' seed noise "
                      "alone; 'within' marks a parameter not distinguishable from it.", markup=False, highlight=False)
    wrote = [report.csv, *report.figures]
    console.print(f"Wrote {', '.join(str(p) for p in wrote if p is not None)}", markup=False, highlight=False,
                  soft_wrap=True)


@app.command("compact")
def compact_cmd(
    folder: Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                           help="The output folder of a sweep.")],
) -> None:
    """Merge a sweep's run files into a few larger files per table (quicker to scan); a sweep of
    100 runs or more does this itself when it finishes. Safe to interrupt."""
    from market.batch.runner import sweep_lock
    from market.batch.storage import compact

    if not (folder / "experiment.json").is_file():
        raise UserError(f"{str(folder)!r} holds no sweep (no experiment.json).")
    with sweep_lock(folder):
        n = compact(folder)
    typer.echo(f"compacted {n} runs in {folder}")


@app.command("explore")
def explore_cmd(
    target: Annotated[str | None, typer.Argument(
        metavar="[SCENARIO_OR_FILE | SWEEP_DIR]", show_default=False,
        help="A built-in scenario or a .toml file (opened in What-if), or a finished sweep's folder "
             "(opened in the Sweep browser).")] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1.")] = 8765,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open it in the web browser.")] = True,
    workers: Annotated[int | None, typer.Option("--workers", min=1, show_default=False,
                                                help="Processes for what-if runs (default 2).")] = None,
) -> None:
    """The interactive explorer in the browser: what-if runs of a scenario against its baseline,
    and a finished sweep's figures and outcomes, filtered by scenario and design parameters."""
    from market import explorer
    from market.explorer.sweeps import SweepError

    try:
        explorer.check_target(target)
    except SweepError as exc:
        raise UserError(str(exc)) from None
    if not explorer.port_free(port):
        raise UserError(f"--port {port}: the port is in use on 127.0.0.1; give another, e.g. --port {port + 1}.")
    typer.echo(f"market explorer on http://127.0.0.1:{port} (Ctrl-C to stop)", err=True)
    explorer.serve(target, port, open_browser=open_browser, workers=workers)


@app.command("game")
def game_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                         help="A game file (TOML), e.g. experiments/withholding_game.toml.")],
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", show_default=False, help="Output folder (default: outputs/<game name>).")] = None,
    resume: ResumeOption = False,
    overwrite: OverwriteOption = False,
    figures: Annotated[bool, typer.Option("--figures/--no-figures",
                                          help="Write the game figure to DIR/game/figures at the end.")] = True,
    sets: SetOption = None,
) -> None:
    """Play a game: run every strategy profile (or those a double-oracle search needs) x
    replications with common random numbers, then print each profile's payoffs and the equilibria
    with their regret and 95 % confidence. Tables go to DIR/game/ (docs/GAMES.md)."""
    from market.games import game, load_game
    from market.games.report import print_game

    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; give one of them.")
    spec = load_game(file, overrides=dict(parse_override(s) for s in sets or ()))
    result = game(spec, out, workers=workers, scheduler=scheduler, resume=resume, overwrite=overwrite)
    if result.interrupted:
        typer.echo(f"interrupted: run again with --resume to finish {result.out}.", err=True)
        raise typer.Exit(130)
    console = Console(width=None if sys.stdout.isatty() else 140)
    print_game(console, result)
    if figures:
        from market.games.figures import plot_game

        for path in plot_game(result, result.out / "game" / "figures"):
            console.print(f"Figure saved to {path}", markup=False, highlight=False)


@app.command("bench")
def bench_cmd(
    quick: Annotated[bool, typer.Option("--quick", help="Tiny sizes: proves every benchmark works; "
                                                        "the figures mean nothing.")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", metavar="FILE", show_default=False,
                                                  help="Also write the table as JSON.")] = None,
    only: Annotated[list[str] | None, typer.Option("--only", metavar="NAME", show_default=False,
                                                   help="Run only this benchmark (repeatable).")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", min=1, show_default=False,
                                                help="Repeats of each measurement (default 5; 1 with --quick).")] = None,
    against: Annotated[Path | None, typer.Option("--against", metavar="DIR", show_default=False,
                                                 help="Also time this checkout against another (e.g. a git worktree "
                                                      "of an earlier commit), run for run; '--only against' for "
                                                      "just that.")] = None,
) -> None:
    """Benchmarks side by side with Mesa's own tools (DataCollector, batch_run): one table of
    ratios, each the median of several repeats. See docs/PERFORMANCE.md."""
    from market import bench

    try:
        bench.check_request(only, against)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    result = bench.run_benchmarks(quick=quick, only=only, repeats=repeats, against=against,
                                  progress=lambda n: typer.echo(f"running {n} ...", err=True))
    bench.emit(result, json_out)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``market`` console script and ``python -m market``."""
    app(args=argv)


if __name__ == "__main__":  # pragma: no cover
    main()
