"""Fuzzed bad input: mutated scenario and experiment files, and bad command lines.

Every built-in scenario file and every experiment file in ``experiments/`` is mutated many times
(wrong types, out-of-range values, NaN/inf, extreme magnitudes, unknown keys, deleted keys, truncated
TOML, binary garbage, bad encodings, empty files, deep nesting, broken ``extends``); random command
lines are built around at least one bad argument; and every numeric field of the built-in scenarios
is given each extreme magnitude (1e±300, subnormals, the float64 and int64 limits and beyond, inf,
NaN). Each input must either be accepted (exit 0) or
be refused with exit code 2 and one ``error: ...`` line — never a traceback or another exit code.
Inputs are counted once each (by content); the counts are printed and asserted.

Mutations come from a numpy Generator with a fixed seed, so CI always tries the same inputs;
``pytest -m slow tests/test_fuzz.py`` runs the larger campaign (figures in docs/RELIABILITY.md).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import EXTREMES, numeric_leaves, with_value
from typer.testing import CliRunner

import market
import market.batch
from market.cli import app
from market.scenario import BUILTIN_DIR, ScenarioError, builtin_scenarios, load_scenario, validate_scenario

ROOT = Path(__file__).resolve().parents[1]
SEED = 20251126
CI_SCENARIO_INPUTS = 1_300  # with the others, 2,000 command lines (issue 17: 2,000 fuzzed inputs, extremes included)
CI_EXPERIMENT_INPUTS = 400
CI_COMMAND_LINES = 300
SLOW_FACTOR = 10  # the campaign behind -m slow tries ten times as many of each

runner = CliRunner()

SCENARIO_FILES = sorted(BUILTIN_DIR.iterdir(), key=lambda p: p.name)
EXPERIMENT_FILES = sorted((ROOT / "experiments").glob("*.toml"))

# values that are wrong somewhere: wrong types, out of range, non-finite, huge, odd TOML
BAD_VALUES = [
    '"text"', '""', '"\\u0000"', "-1", "-1e-300", "0", "-0.0", "1e400", "-1e400", "nan", "+nan", "inf", "-inf",
    "1e308", "1.7976931348623157e308", "9223372036854775807", "-9223372036854775808", "99999999999999999999",
    "0x7fffffffffffffff", "0b1", "1_000_000_000_000", "true", "false", "[]", "[1, 2]", '["a", 1]', "{}",
    "{ a = 1 }", "[[1]]", "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", '"../../../etc/passwd"', '"/etc/passwd"',
    '"' + "x" * 5000 + '"', "[" * 60 + "]" * 60, "0.5", "2", "1200", "1201", "100000", "'literal'",
]
GARBAGE = [b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\x80\x81\x82", b"PAR1", b"\r", b"\x1b[31m", b"=", b"[", b"]]",
           b'"', b"'''", b"\\", b"\t\n", "é".encode(), "\u2028".encode(), b"\x00" * 64]
UNKNOWN_KEYS = ["bogus = 1", "stpes = 12", "[bogus]", "[labs.openai.nonsense]\nx = 1", "faults.raise_at = 1",
                "[[products]]", "extends = 3", 'extends = "no_such_scenario"', 'extends = "/dev/null"',
                'extends = "missing.toml"', 'extends = "../../../../etc/passwd"', 'extends = "/proc/self/environ"',
                "name = 1", "scenarios = []", "scenarios = [1]", 'scenarios = ["no_such_scenario"]',
                "replications = 0", "base_seed = -1", "[design]\nkind = \"grid\"\nparameters = {}",
                '[design.parameters."labs.nobody.x"]\nvalues = [1]', '[design.parameters."steps"]\nvalues = [0]']


# -- mutations ---------------------------------------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _value_lines(data: bytes) -> list[int]:
    return [i for i, line in enumerate(_lines(data)) if re.match(rb"^\s*[\w.\"-]+\s*=", line)]


def replace_value(data: bytes, rng: np.random.Generator) -> bytes:
    """A value in a ``key = value`` line becomes a bad one."""
    lines, candidates = _lines(data), _value_lines(data)
    if not candidates:
        return data + b"\nx = 1\n"
    i = int(rng.choice(candidates))
    key = lines[i].split(b"=", 1)[0]
    lines[i] = key + b"= " + BAD_VALUES[int(rng.integers(len(BAD_VALUES)))].encode()
    return b"\n".join(lines)


def _swap_number(data: bytes, rng: np.random.Generator, choices: list[bytes]) -> bytes:
    numbers = list(re.finditer(rb"(?<![\w.\"])-?\d[\d_.eE+-]*", data))
    if not numbers:
        return replace_value(data, rng)
    m = numbers[int(rng.integers(len(numbers)))]
    return data[: m.start()] + choices[int(rng.integers(len(choices)))] + data[m.end():]


def replace_number(data: bytes, rng: np.random.Generator) -> bytes:
    """One number anywhere (also inside arrays and inline tables) becomes a bad one."""
    return _swap_number(data, rng, [b"-1", b"1e400", b"nan", b"-inf", b"99999999999999999999", b'"7"', b"true",
                                    b"0", b"[]", b"1e-320"])


def extreme_number(data: bytes, rng: np.random.Generator) -> bytes:
    """One number anywhere becomes an extreme magnitude."""
    return _swap_number(data, rng, [x.encode() for x in EXTREMES])


def delete_line(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    del lines[int(rng.integers(len(lines)))]
    return b"\n".join(lines)


def insert_unknown(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    lines.insert(int(rng.integers(len(lines) + 1)), UNKNOWN_KEYS[int(rng.integers(len(UNKNOWN_KEYS)))].encode())
    return b"\n".join(lines)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(len(data) + 1))]


def flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 8))):
        i = int(rng.integers(len(b))) if b else 0
        if b:
            b[i] = int(rng.integers(256))
    return bytes(b)


def insert_garbage(data: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(len(data) + 1))
    return data[:i] + GARBAGE[int(rng.integers(len(GARBAGE)))] + data[i:]


def random_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    return rng.bytes(int(rng.integers(0, 2048)))


def duplicate_line(data: bytes, rng: np.random.Generator) -> bytes:
    lines = _lines(data)
    i = int(rng.integers(len(lines)))
    lines.insert(i, lines[i])
    return b"\n".join(lines)


def reencode(data: bytes, rng: np.random.Generator) -> bytes:
    text = data.decode("utf-8", errors="replace")
    return text.encode(["utf-16", "utf-32", "latin-1", "cp1252"][int(rng.integers(4))], errors="replace")


def swap_type_of_table(data: bytes, rng: np.random.Generator) -> bytes:
    """A table header becomes a key with a scalar value, or an array of tables."""
    lines = _lines(data)
    headers = [i for i, line in enumerate(lines) if line.startswith(b"[") and not line.startswith(b"[[")]
    if not headers:
        return insert_unknown(data, rng)
    i = int(rng.choice(headers))
    name = lines[i].strip(b"[] ")
    lines[i] = [b"[[" + name + b"]]", name + b" = 1", name + b' = "x"', b"[" + name + b".[]"][int(rng.integers(4))]
    return b"\n".join(lines)


MUTATIONS: list[Callable[[bytes, np.random.Generator], bytes]] = [
    replace_value, replace_value, replace_number, replace_number, extreme_number, extreme_number, delete_line,
    insert_unknown, truncate, flip_bytes,
    insert_garbage, random_bytes, duplicate_line, reencode, swap_type_of_table,
]
FIXED_INPUTS = [b"", b" ", b"\n\n", b"# only a comment\n", b"\x00", b"\xef\xbb\xbf", b"\xef\xbb\xbfsteps = 3\n",
                b"=", b"[", b"a = [" * 5000, b"a = {" * 5000, b"a = " + b"[" * 100_000, b"x = 1\n" * 20_000,
                b"extends = 'baseline'\n", b"extends = 'baseline'\nextends = 'baseline'\n", b"\xff" * 100,
                b"PAR1\x00\x00PAR1", b"{}", b"[]", b"[[x]]\n[x]\n", b"name = '../../escape'\nscenarios = ['baseline']\n",
                b"name = '/abs'\nscenarios = ['baseline']\n", b"name = '..'\nscenarios = ['baseline']\n",
                b"name = 'ok'\nscenarios = ['../../../../etc/passwd.toml']\n", b"name = 'ok'\nscenarios = ['/dev/null.toml']\n"]


def mutants(seeds: list[bytes], n: int, rng: np.random.Generator) -> list[bytes]:
    """``n`` distinct inputs: the fixed ones, then one to three random mutations of a seed file."""
    out: dict[str, bytes] = {}
    for data in FIXED_INPUTS:
        out.setdefault(hashlib.sha256(data).hexdigest(), data)
    tries = 0
    while len(out) < n and tries < 20 * n:
        tries += 1
        data = seeds[int(rng.integers(len(seeds)))]
        for _ in range(int(rng.integers(1, 4))):
            data = MUTATIONS[int(rng.integers(len(MUTATIONS)))](data, rng)
        out.setdefault(hashlib.sha256(data).hexdigest(), data)
    return list(out.values())


# -- checking one input --------------------------------------------------------------------------


def outcome(result) -> str:
    """'accepted' (exit 0) or 'refused' (exit 2, one error line); anything else fails the test."""
    text = result.output + result.stderr
    assert "Traceback" not in text, text[-3000:]
    if result.exit_code == 0:
        return "accepted"
    assert result.exit_code == 2, (result.exit_code, text[-3000:], result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    err = result.stderr.strip()
    assert err.startswith("error: "), err[:3000]
    assert len(err.splitlines()) == 1, err[:3000]
    assert len(err) < 3000, err[:3000]
    return "refused"


class Valid(Exception):
    """Raised by the stand-in for ``sweep``: the experiment passed validation."""


def fuzz_scenarios(tmp_path: Path, n: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    seeds = [p.read_bytes() for p in SCENARIO_FILES]
    seeds += [b'extends = "openai_google_tpu"\n[clouds.gcp.withholding]\nshare = 0.5\n',
              b'extends = "baseline"\n[packaging]\nshocks = [{ start_step = 6, end_step = 18, factor = 0.5 }]\n',
              b'extends = "parent.toml"\nsteps = 12\n']
    (tmp_path / "parent.toml").write_bytes(b'extends = "baseline"\n[labs.openai]\nswitching_cost = 2.0\n')
    counts = {"accepted": 0, "refused": 0}
    for i, data in enumerate(mutants(seeds, n, rng)):
        path = tmp_path / f"s{i}.toml"
        path.write_bytes(data)
        counts[outcome(runner.invoke(app, ["check", str(path)]))] += 1
        path.unlink()
    return counts


def fuzz_experiments(tmp_path: Path, n: int, seed: int) -> dict[str, int]:
    """``market sweep FILE`` on each input, with ``sweep`` itself replaced by a stand-in: a valid
    file is counted as accepted instead of being run."""
    def stand_in(*args, **kwargs):
        raise Valid

    rng = np.random.default_rng(seed)
    seeds = [p.read_bytes() for p in EXPERIMENT_FILES]
    counts = {"accepted": 0, "refused": 0}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(market.batch, "sweep", stand_in)
        for i, data in enumerate(mutants(seeds, n, rng)):
            path = tmp_path / f"e{i}.toml"
            path.write_bytes(data)
            result = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--no-figures"])
            if isinstance(result.exception, Valid):
                counts["accepted"] += 1
            else:
                assert outcome(result) == "refused", (data[:500], result.output)
                counts["refused"] += 1
            path.unlink()
    return counts


# -- every numeric field, every extreme ------------------------------------------------------------

COLLECTIONS = {"products", "vendors", "clouds", "labs", "partnerships", "deals"}


def numeric_fields() -> dict[tuple, tuple[str, dict]]:
    """One instance of every numeric field of the built-in scenarios (defaults included), keyed by
    the field as the schema knows it (agent ids and list positions as ``*``): its path in the
    scenario's data, the scenario's name and its data."""
    out: dict[tuple, tuple[str, dict]] = {}
    for name in builtin_scenarios():
        data = load_scenario(name).model_dump(mode="json")
        for path, _ in numeric_leaves(data):
            field = tuple("*" if isinstance(p, int) or (i == 1 and path[0] in COLLECTIONS) else p
                          for i, p in enumerate(path))
            out.setdefault(field, (path, name, data))
    return out


def test_every_numeric_field_takes_every_extreme_magnitude_or_refuses_it_by_name(tmp_path: Path) -> None:
    """Each numeric field of the schema (every one the built-in scenarios have, defaults included)
    with each extreme magnitude: validation accepts it (it is inside the field's range) or refuses it
    with a message naming the field; never another exception. A sample goes through ``market check
    --set`` too (exit 0 or 2, one line)."""
    fields = numeric_fields()
    assert len(fields) > 100, len(fields)  # the schema's numeric fields, not a handful
    counts = {"accepted": 0, "refused": 0}
    rng = np.random.default_rng(SEED + 3)
    for field, (path, name, data) in fields.items():
        for text in EXTREMES:
            value = tomllib.loads(f"v = {text}")["v"]
            try:
                validate_scenario(with_value(data, path, value), {}, f"scenario {name!r}")
                counts["accepted"] += 1
            except ScenarioError as exc:
                counts["refused"] += 1
                key = next(str(p) for p in reversed(path) if not isinstance(p, int))  # the field (or table) named
                assert key in str(exc), (path, text, str(exc))
        if not any(isinstance(p, int) for p in path):  # --set reaches tables, not list items
            dotted = ".".join(path)
            text = EXTREMES[int(rng.integers(len(EXTREMES)))]
            outcome(runner.invoke(app, ["check", name, "--set", f"{dotted}={text}"]))
    report(f"extreme magnitudes in {len(fields)} numeric fields", counts)
    assert counts["refused"] > counts["accepted"], counts  # most extremes are out of every plausible range


# -- bad command lines ---------------------------------------------------------------------------


def command_lines(tmp_path: Path, n: int, seed: int) -> list[list[str]]:
    """Random command lines, each with at least one bad argument for its command."""
    rng = np.random.default_rng(seed)
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder")
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00 garbage")
    full = tmp_path / "full"
    (full / "something").mkdir(parents=True, exist_ok=True)
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    exp = ROOT / "experiments" / "seed_scenarios.toml"
    pick = lambda xs: xs[int(rng.integers(len(xs)))]

    bad_sets = ["noequals", "=1", "steps", "labs.nobody.demand_pflops=1", "steps=abc", "steps=-5", "steps=0",
                "steps=nan", "steps=inf", "steps=1e400", "x..y=1", "labs=[", "steps=99999999999999999999999",
                "clouds.gcp.withholding.share=2", "clouds.gcp.withholding.share=-0.1", "labs.openai=1",
                "packaging.shocks=[{start_step=5,end_step=1,factor=1}]", "vendors.nvidia.packaging_share=0.99",
                "negotiation.protocol=haggle", "bogus_key=1", ".=1", "labs.openai.readiness.cobol=1",
                "start_date=2025-13", "clouds.gcp.fleet.h100=-1", "labs.openai.demand_pflops=0",
                "long_tail.count=-1", "long_tail.total_demand_pflops=1e-9", "x=" + "[" * 3000]
    long_name = "x" * 5000
    bad_scenarios = ["no_such_scenario", "", "missing.toml", str(garbage), str(empty), str(a_file), "../../etc/passwd",
                     "/dev/null", "\x00", "-", long_name, long_name + ".toml", "../scenarios/baseline", "a\x01b"]
    bad_run = [["--steps", "0"], ["--steps", "-1"], ["--steps", "abc"], ["--steps", "99999999999999999999"],
               ["--steps", "1e3"], ["--steps", "1201"], ["--seed", "-1"], ["--seed", "x"], ["--seed", "1.5"],
               ["--seed", str(2**63)], ["--out", str(a_file)], ["--out", str(a_file / "below")], ["--steps"],
               ["--workers", "2"], ["--bogus"], ["-x"], ["--out", long_name]]
    bad_sweep = [[str(tmp_path / "missing.toml")], [str(garbage)], [str(empty)], [str(exp), "--workers", "0"],
                 [str(exp), "--workers", "-3"], [str(exp), "--workers", "abc"], [str(exp), "--resume", "--overwrite"],
                 [str(exp), "--out", str(a_file)], [str(exp), "--out", str(full)],
                 [str(exp), "--out", str(full), "--resume"], [str(exp), "--out", str(full), "--overwrite"],
                 [str(exp), "--scheduler", "garbage"], [str(exp), "--scheduler", "foo://bar:1"],
                 [str(exp), "--steps", "3"], [str(exp), "--format"], [], [long_name], [str(exp), "--out", long_name]]
    bad_folders = [[str(tmp_path / "missing")], [str(a_file)], [str(garbage)], [], [long_name]]
    lines: dict[tuple[str, ...], None] = {}
    tries = 0
    while len(lines) < n and tries < 50 * n:
        tries += 1
        command = pick(["run", "check", "sweep", "plot", "compare", "sensitivity", "scenarios", "nonsense", ""])
        good_run = ["--steps", "1", "--seed", str(int(rng.integers(100))), "--out", str(tmp_path / "ok")]
        if command in ("run", "check"):
            kind = pick(["scenario", "set", "option"] if command == "run" else ["scenario", "set"])
            scenario = pick(bad_scenarios) if kind == "scenario" else pick(["baseline", "openai_google_tpu"])
            args = [command, scenario]
            if rng.random() < 0.3:  # a good override first (a later --set of the same key wins)
                args += ["--set", "clouds.gcp.withholding.share=0.5"]
            if kind == "set":
                args += ["--set", pick(bad_sets)]
            elif command == "run":
                args += good_run[: 2 * int(rng.integers(4))]
            if kind == "option":
                args += pick(bad_run)
        elif command == "sweep":
            args = ["sweep", *pick(bad_sweep)]
        elif command in ("plot", "compare", "sensitivity"):
            args = [command, *pick(bad_folders)]
            extra = {"plot": [["--format", "xyz"], ["--format", "gif", "--format", "png"]],
                     "compare": [["--baseline", "nope"], ["--out", str(a_file / "x.csv")]],
                     "sensitivity": [["--top", "0"], ["--outcome", "bogus"], ["--top", "x"]]}[command]
            if rng.random() < 0.5 or len(args) == 1:
                args += pick(extra)
        elif command == "scenarios":
            args = ["scenarios", pick(["--steps", "extra_arg", "--bogus", "-h1"])]
        else:
            args = [c for c in (command, pick(["--bogus", "--version=3", "-z", "runn", "chek", "--set"])) if c]
        lines.setdefault(tuple(args), None)
    return [list(args) for args in lines]


def fuzz_command_lines(tmp_path: Path, n: int, seed: int) -> int:
    for args in command_lines(tmp_path, n, seed):
        result = runner.invoke(app, args)
        assert outcome(result) == "refused", (args, result.output)
        shutil.rmtree(tmp_path / "ok", ignore_errors=True)
    return n


# -- the tests -----------------------------------------------------------------------------------


def report(what: str, counts: dict[str, int]) -> None:
    print(f"\nfuzz {what}: {sum(counts.values())} distinct inputs, " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def test_mutated_scenario_files_are_accepted_or_refused_with_one_line(tmp_path: Path) -> None:
    counts = fuzz_scenarios(tmp_path, CI_SCENARIO_INPUTS, SEED)
    report("scenario files", counts)
    assert sum(counts.values()) >= CI_SCENARIO_INPUTS
    assert counts["refused"] > 0.5 * CI_SCENARIO_INPUTS, counts  # the mutations mostly break the file


def test_mutated_experiment_files_are_accepted_or_refused_with_one_line(tmp_path: Path) -> None:
    counts = fuzz_experiments(tmp_path, CI_EXPERIMENT_INPUTS, SEED + 1)
    report("experiment files", counts)
    assert sum(counts.values()) >= CI_EXPERIMENT_INPUTS
    assert counts["refused"] > 0.5 * CI_EXPERIMENT_INPUTS, counts


def test_bad_command_lines_exit_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    n = fuzz_command_lines(tmp_path, CI_COMMAND_LINES, SEED + 2)
    report("command lines", {"refused": n})
    assert n >= CI_COMMAND_LINES


@pytest.mark.slow
def test_fuzz_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    scenarios = fuzz_scenarios(tmp_path, SLOW_FACTOR * CI_SCENARIO_INPUTS, SEED + 10)
    experiments = fuzz_experiments(tmp_path, SLOW_FACTOR * CI_EXPERIMENT_INPUTS, SEED + 11)
    lines = fuzz_command_lines(tmp_path, SLOW_FACTOR * CI_COMMAND_LINES, SEED + 12)
    report("campaign, scenario files", scenarios)
    report("campaign, experiment files", experiments)
    report("campaign, command lines", {"refused": lines})


@pytest.mark.parametrize("seed", [-1, 2**63, 10**30])
def test_the_api_refuses_a_seed_out_of_range(seed: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        market.run("baseline", steps=1, seed=seed)
