"""The ``market`` command line: scenarios, check, run, and how user mistakes are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from helpers import assert_user_error, overflowing_scenario
from typer.testing import CliRunner

import market
from market.cli import app

BUILTINS = ["baseline", "openai_google_tpu", "open_tpu_access", "tpu_merchant", "supply_shock"]
REQUIRED = ["runs", "steps", "shares", "prices", "contracts", "withholding", "vendors", "clouds", "labs"]
TABLES = list(market.TABLES)
assert set(REQUIRED) <= set(TABLES)

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# -- scenarios, version ------------------------------------------------------------------------


def test_scenarios_lists_the_builtins():
    result = invoke("scenarios")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert sorted(names) == sorted(BUILTINS)
    descriptions = market.builtin_scenarios()
    for line, name in zip(lines, names, strict=True):
        assert descriptions[name] in line


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"market {market.__version__}"


def test_no_arguments_shows_help_not_an_error():
    result = invoke()
    assert "run" in result.output and "check" in result.output
    assert "error:" not in result.output


# -- run -------------------------------------------------------------------------------------


def test_run_writes_every_table_and_a_summary(tmp_path):
    out = tmp_path / "out"
    result = invoke("run", "baseline", "--steps", "3", "--seed", "1", "--out", out)
    assert result.exit_code == 0, result.output
    for table in TABLES:
        df = pl.read_parquet(out / f"{table}.parquet")
        assert set(market.SCHEMAS[table]) <= set(df.columns), table
    runs = pl.read_parquet(out / "runs.parquet").row(0, named=True)
    assert (runs["scenario"], runs["seed"], runs["steps"], runs["status"]) == ("baseline", 1, 3, "complete")
    assert pl.read_parquet(out / "steps.parquet")["step"].to_list() == [0, 1, 2]
    assert str(out) in result.stdout
    assert "nvidia" in result.stdout
    assert "%" in result.stdout and "$" in result.stdout  # shares and prices are formatted
    assert "Running baseline, 3 monthly steps, seed 1" in result.stderr


def test_run_default_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "openai_google_tpu", "--steps", "2", "--seed", "4")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "outputs" / "run-openai_google_tpu-s4"
    assert sorted(p.stem for p in folder.glob("*.parquet")) == sorted(TABLES)
    assert not list(folder.glob(".*"))  # no temporary files left behind


def test_set_changes_the_resolved_config(tmp_path):
    out = tmp_path / "o"
    result = invoke("run", "openai_google_tpu", "--steps", "2", "--out", out,
                    "--set", "clouds.gcp.withholding.share=0.5", "--set", "labs.openai.demand_growth=0.08")
    assert result.exit_code == 0, result.output
    runs = pl.read_parquet(out / "runs.parquet").row(0, named=True)
    config = json.loads(runs["config"])
    assert config["clouds"]["gcp"]["withholding"]["share"] == 0.5
    assert config["labs"]["openai"]["demand_growth"] == 0.08
    assert config["steps"] == 2
    plain = market.load_scenario("openai_google_tpu", steps=2)
    assert runs["config_hash"] != plain.config_hash


def test_run_a_scenario_file(tmp_path):
    path = write(tmp_path, "mine.toml", 'extends = "baseline"\nsteps = 2\n[labs.openai]\ndemand_growth = 0.1\n')
    out = tmp_path / "o"
    result = invoke("run", path, "--out", out)
    assert result.exit_code == 0, result.output
    runs = pl.read_parquet(out / "runs.parquet").row(0, named=True)
    assert (runs["scenario"], runs["steps"]) == ("mine", 2)
    assert json.loads(runs["config"])["labs"]["openai"]["demand_growth"] == 0.1


# -- check -----------------------------------------------------------------------------------


def test_check_builtin():
    result = invoke("check", "baseline")
    assert result.exit_code == 0, result.output
    sc = market.load_scenario("baseline")
    line = result.stdout.strip()
    assert line.startswith("OK: baseline — ")
    assert f"{len(sc.vendors)} vendors" in line and f"{len(sc.labs)} labs" in line
    assert f"{len(sc.products)} products" in line and f"{sc.steps} steps" in line
    assert sc.config_hash in line


def test_check_file_with_overrides(tmp_path):
    path = write(tmp_path, "mine.toml", 'extends = "baseline"\nsteps = 12\n')
    result = invoke("check", path, "--set", "steps=24", "--set", "clouds.gcp.withholding.share=0.25")
    assert result.exit_code == 0, result.output
    expected = market.load_scenario(path, {"steps": 24, "clouds.gcp.withholding.share": 0.25})
    assert result.stdout.startswith("OK: mine — ")
    assert "24 steps" in result.stdout and expected.config_hash in result.stdout


# -- user mistakes: exit 2, one "error:" paragraph naming the problem -------------------------

FILES = {
    "unknown_key.toml": 'extends = "baseline"\n[labs.openai]\nfoo = 1\n',
    "wrong_type.toml": 'extends = "baseline"\nsteps = "many"\n',
    "malformed.toml": 'extends = "baseline"\n[labs.openai\n',
    "empty.toml": "",
    "garbage.toml": bytes(range(256))[::-1] * 4,
}

CASES = {
    "unknown scenario": (["nope"], ["'nope'", "baseline"]),
    "missing file": (["x.toml"], ["x.toml", "does not exist"]),
    "unknown key": (["@unknown_key.toml"], ["labs.openai.foo", "unknown key"]),
    "wrong type in file": (["@wrong_type.toml"], ["steps", "many"]),
    "wrong type in --set": (["baseline", "--set", "steps=abc"], ["steps", "abc"]),
    "out of range": (["baseline", "--set", "clouds.gcp.withholding.share=1.5"],
                     ["clouds.gcp.withholding.share", "1.5"]),
    "malformed TOML": (["@malformed.toml"], ["malformed.toml", "not valid TOML", "line 2"]),
    "--set without =": (["baseline", "--set", "steps"], ["--set 'steps'", "KEY=VALUE"]),
    "empty file": (["@empty.toml"], ["empty.toml", "is empty", "extends"]),
    "binary garbage": (["@garbage.toml"], ["garbage.toml", "UTF-8"]),
}


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("case", list(CASES))
def test_user_mistakes_exit_2_with_one_message(tmp_path, monkeypatch, command, case):
    monkeypatch.chdir(tmp_path)  # "x.toml" must not exist; nothing may be written elsewhere
    files = {name: str(write(tmp_path, name, text)) for name, text in FILES.items()}
    args, mentions = CASES[case]
    args = [files[a[1:]] if a.startswith("@") else a for a in args]  # "@name": a file from FILES
    result = invoke(command, *args)
    assert_user_error(result, *mentions)
    assert not (tmp_path / "outputs").exists()  # failed before any output folder was made


@pytest.mark.parametrize(("args", "mentions"), [
    (["--steps", "0"], ["--steps", "1"]),
    (["--steps", "many"], ["--steps"]),
    (["--seed", "-1"], ["--seed", "0"]),
    (["--set", "steps=5000"], ["steps", "1200"]),
    (["--bogus"], ["--bogus"]),
])
def test_bad_run_options(tmp_path, args, mentions):
    result = invoke("run", "baseline", "--out", tmp_path / "o", *args)
    assert_user_error(result, *mentions)


def test_missing_argument_and_unknown_command():
    assert_user_error(invoke("check"), "SCENARIO_OR_FILE")
    assert_user_error(invoke("runn"), "runn")


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_output_folder_that_cannot_be_created(tmp_path, where):
    blocker = write(tmp_path, "taken", "not a folder")
    out = blocker if where == "file" else blocker / "sub"
    result = invoke("run", "baseline", "--steps", "2", "--out", out)
    assert_user_error(result, "--out", str(out))


def test_scenario_error_raised_inside_the_run_is_a_user_error(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise market.ScenarioError("labs.openai.demand_pflops: too big; allowed: at most 1e9")

    monkeypatch.setattr(market, "run", boom)
    result = invoke("run", "baseline", "--steps", "2", "--out", tmp_path / "o")
    assert_user_error(result, "labs.openai.demand_pflops", after_start=True)


def test_internal_errors_are_not_disguised_as_user_errors(tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(market, "run", bug)
    result = invoke("run", "baseline", "--steps", "2", "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert isinstance(result.exception, ZeroDivisionError)  # propagates: the runner (or Python) shows the traceback
    assert "error:" not in result.stderr


# -- the installed script and python -m market -------------------------------------------------

SCRIPT = Path(sys.executable).parent / "market"


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}


@pytest.mark.skipif(not SCRIPT.exists(), reason="the market console script is not installed")
def test_installed_script_end_to_end(tmp_path):
    out = tmp_path / "o"
    proc = subprocess.run([str(SCRIPT), "run", "baseline", "--steps", "2", "--out", str(out)],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.stem for p in out.glob("*.parquet")) == sorted(TABLES)
    assert "nvidia" in proc.stdout

    bad = write(tmp_path, "bad.toml", 'extends = "baseline"\n[labs.openai]\nfoo = 1\n')
    proc = subprocess.run([str(SCRIPT), "check", str(bad)], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "labs.openai.foo" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_python_dash_m_market(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "market", "check", "baseline"],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK: baseline — ")

    proc = subprocess.run([sys.executable, "-m", "market", "run", "baseline", "--steps", "0"],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "--steps" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("x", "shown"), [
    (1_723_456, "1.72M"), (999_999, "1M"), (408_123, "408k"), (9_999, "10k"), (9_500, "9,500"), (950.3, "950"),
    (0.45, "0.45"), (-1_500_000, "-1.5M"), (2e9, "2B"), (1.5e14, "1.5e+14"), (float("inf"), "inf"), (None, "n/a")])
def test_one_compact_format_for_every_report(x, shown):
    """Tables, figures and the explorer write numbers with one formatter; it rounds before it
    picks the suffix (999,999 is 1M, not 1e+03k) and writes huge or non-finite values plainly."""
    from market.analysis.report import compact

    assert compact(x) == shown


def test_differences_carry_their_sign_and_unit():
    from market.analysis.report import difference, fmt

    assert fmt("share", 0.1234) == "12.3%" and fmt("usd", 1234.5) == "$1,234.50" and fmt("chips", 2e6) == "2M"
    assert fmt("usd", -0.0123, signed=True) == "-$0.012" and fmt("chips", 2.5e6, signed=True) == "+2.5M"
    assert fmt("share", -0.0123, signed=True) == "-1.2 pp"
    assert difference("share", 0.0123, signed=False, pp_digits=2) == "1.23 pp"


def test_a_run_whose_numbers_overflow_exits_1_with_one_line_naming_step_and_quantity(tmp_path: Path) -> None:
    """A valid scenario whose arithmetic overflows is not a usage error (exit 2) but a failed run:
    exit 1, one ``error:`` line naming the step and the quantity, no traceback."""
    result = invoke("run", overflowing_scenario(tmp_path), "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output + result.stderr
    progress, _, err = result.stderr.strip().partition("\n")
    assert progress.startswith("Running "), progress
    assert len(err.splitlines()) == 1 and err.startswith("error: the run failed: step "), err
    assert "demand (PFLOP/s)" in err and "not a finite number" in err, err


def test_a_fleet_too_large_for_the_arithmetic_is_refused_naming_the_field_and_range(tmp_path: Path) -> None:
    path = write(tmp_path, "big.toml", 'extends = "baseline"\n[clouds.aws.fleet]\nh100 = 1e308\n')
    assert_user_error(invoke("run", path, "--steps", "1", "--out", tmp_path / "out"),
                      "clouds.aws.fleet.h100", "allowed: a number from 0 to 1e9 chips")
