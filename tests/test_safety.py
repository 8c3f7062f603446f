"""Safety of outputs and inputs: names cannot escape the output folder, nothing read from disk is
unpickled or executed, and the documented Dask commands bind to 127.0.0.1."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from market.batch.experiment import safe_label
from market.batch.storage import checksum_path, run_path
from market.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def everything_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


ESCAPING_NAMES = ["../escape", "../../escape", "/tmp/escape", "..", ".", ".hidden", "a/b", "a\\\\b", "x" * 101, "",
                  "with space", "-leading-dash", "tab\\there", "~", "~/x", "C:\\\\x", "name\\u0000"]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_experiment_names_that_could_escape_are_refused(name: str, tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    exp = work / "exp.toml"
    exp.write_text(f'name = "{name}"\nscenarios = ["baseline"]\nsteps = 1\n')
    result = runner.invoke(app, ["sweep", str(exp), "--no-figures"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and "name" in result.stderr, result.stderr
    assert everything_under(tmp_path) == {"work", "work/exp.toml"}, "something was written"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(name=st.text(min_size=0, max_size=60) | st.sampled_from(["../../x.toml", "/etc/passwd.toml", "..", ".",
                                                                  "a/../../b", "..\\..\\x", "~/x.toml"]))
def test_scenario_labels_stay_inside_the_output_folder(name: str) -> None:
    label = safe_label(name)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", label), label
    out = Path("/data/out")
    for path in (run_path(out, "steps", label, f"{label}-p0000-r000"), checksum_path(out, label, f"{label}-p0000-r000")):
        assert path.resolve().is_relative_to(out), path
        assert path.parent.name == f"scenario={label}"


def test_a_scenario_named_like_a_path_runs_into_the_default_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.toml").write_text('extends = "baseline"\nname = "../../../escaped"\nsteps = 1\n'
                                        "[long_tail]\ncount = 2\n")
    result = runner.invoke(app, ["run", "evil.toml", "--steps", "1"])
    assert result.exit_code == 0, result.output
    written = everything_under(tmp_path)
    assert {p.split("/")[0] for p in written} == {"evil.toml", "outputs"}, written
    assert (tmp_path / "outputs" / "run-escaped-s0" / "steps.parquet").is_file(), written


def test_experiment_scenario_files_anywhere_write_only_inside_the_output_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "deep"
    elsewhere.mkdir(parents=True)
    (elsewhere / "..odd name!.toml").write_text('extends = "baseline"\n[long_tail]\ncount = 2\n')
    exp = tmp_path / "exp" / "e.toml"
    exp.parent.mkdir()
    exp.write_text('name = "e"\nscenarios = ["../elsewhere/deep/..odd name!.toml"]\nsteps = 1\n')
    out = tmp_path / "exp" / "out"
    result = runner.invoke(app, ["sweep", str(exp), "--out", str(out), "--no-figures", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert everything_under(tmp_path / "elsewhere") == {"deep", "deep/..odd name!.toml"}
    assert {p.parent.name for p in out.rglob("*.parquet") if p.parent != out} == {"scenario=odd_name"}


# -- nothing read from disk is unpickled or executed ------------------------------------------------

UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_MODULES = {"pickle", "cloudpickle", "dill", "marshal", "shelve", "yaml", "joblib"}


def test_the_package_never_unpickles_or_executes_what_it_reads() -> None:
    """Scenario and experiment files are TOML (tomllib), results Parquet (polars), records JSON:
    no module imports a deserialiser that runs code, calls eval/exec, or loads numpy pickles."""
    problems = []
    for path in sorted((ROOT / "market").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [f"{path.name}:{node.lineno} imports {n}" for n in names
                             if n.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if name in UNSAFE_CALLS:
                    problems.append(f"{path.name}:{node.lineno} calls {name}")
                if name in ("load", "loads") and any(k.arg == "allow_pickle" for k in node.keywords):
                    problems.append(f"{path.name}:{node.lineno} loads with allow_pickle")
                if any(k.arg == "shell" for k in node.keywords):
                    problems.append(f"{path.name}:{node.lineno} runs a shell")
    assert not problems, problems


# -- the documented Dask commands bind to 127.0.0.1 ----------------------------------------------------


def dask_commands() -> list[tuple[str, str]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "experiments").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            if re.match(r"^\s*(\$ )?dask[ -](scheduler|worker)\b", line):  # a command line, not prose
                found.append((doc.name, line.strip()))
    return found


def test_documented_dask_commands_bind_to_localhost() -> None:
    commands = dask_commands()
    assert any("scheduler" in c for _, c in commands) and any("worker" in c for _, c in commands), commands
    for doc, command in commands:
        assert "--host 127.0.0.1" in command, (doc, command)
        dashboard = re.search(r"--dashboard-address\s+(\S+)", command)
        assert dashboard and dashboard.group(1).startswith("127.0.0.1:"), (doc, command)
        assert "0.0.0.0" not in command, (doc, command)
    hint = (ROOT / "market" / "batch" / "runner.py").read_text()
    assert "dask scheduler --host 127.0.0.1" in hint  # what the error message for a bad --scheduler suggests
