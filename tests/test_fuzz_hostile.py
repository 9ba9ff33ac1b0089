"""Hostile input never crashes dl, never runs away (issue 19): a seeded generator of deep, huge and strange input.

Where tests/test_fuzz_cli.py feeds dl small random text in this process, this file feeds it what a
fuzzing round found dangerous, each input in a child process bounded in memory (2 GB of address
space, of which dl reserves 1 GiB for its stack) and time (see tests/limited.py):

- deep nesting, 10^4 to 10^5 levels, of one construct (lists, lets, lambdas, parens, ifs, tuples,
  operator chains, applications, definitions) or of a random mix of them, under check, run and transform;
- huge literals and counts (a million digits; build, replicate, range, take of 10^12 and 10^20);
- special files, as the program or as an import: a FIFO, /dev/zero, /dev/null, a symlink loop, a directory.

Every input must end within its time bound with exit code 0, 1 or 2, no Python traceback and no
"internal error" on stderr, and a bounded peak resident memory: deep input 30 s and 1.5 GB; a literal,
a count or a special file 15 s and 500 MB (refused, or computed, without allocating first).

Inputs per default run (seed DL_FUZZ_SEED, default 19): 5 deep (3*10^3 to 2*10^4 levels), 3 mixed-deep
(3*10^3 to 10^4), 8 literals and counts, 6 special files, and 9 moderate ones (depth 100-500, literals of
10^4 digits): 31 in all. The deep inputs at the issue's full size (10^4 to 10^5 levels) are marked `slow`
and left out of the default run (pyproject.toml): `pytest -m slow tests/test_fuzz_hostile.py`.
DL_FUZZ_SCALE=k multiplies the number of inputs (for a longer local run); DL_FUZZ_SEED=s explores other
inputs.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import pytest

from limited import GB, assert_clean, dl_limited, frontend_generators

FRONTEND = frontend_generators()
SEED = int(os.environ.get("DL_FUZZ_SEED", "19"))
SCALE = max(1, int(os.environ.get("DL_FUZZ_SCALE", "1")))
MAX_BYTES = 2 * GB
# per category: (seconds, peak MB) per input. Deep input: a fixed dl needs a few seconds, today's front end
# minutes at 10^5. A literal, a count or a special file must be refused (or computed) at once, without
# allocating first: today's builds of 10^12 elements reach 750-850 MB before `out of memory`.
DEEP_BOUNDS = (30, 1500)
SMALL_BOUNDS = (15, 500)


@dataclass
class Case:
    what: str                            # for the failure message
    args: list[str]                      # dl arguments; "{file}" is the program's path
    files: dict = field(default_factory=dict)   # name -> text (the program is "prog.dl")
    special: str | None = None           # a special file to create as "special.dl": fifo, loop, dir


def _commands(rng: random.Random) -> list[str]:
    return rng.choice([["check", "{file}"], ["run", "{file}", "--budget", "10"],
                       ["transform", "{file}", "--def", "main"]])


def _depth(rng: random.Random, low: int, high: int) -> int:
    """Log-uniform in [low, high]."""
    return int(round(low * (high / low) ** rng.random()))


def deep_cases(rng: random.Random, n: int, low: int = 10_000, high: int = 100_000) -> list[Case]:
    out = []
    for _ in range(n):
        construct = rng.choice(sorted(FRONTEND.ALL_CONSTRUCTS))
        depth = _depth(rng, low, high)
        args = _commands(rng)
        out.append(Case(f"{construct} {depth} deep, dl {args[0]}", args,
                        {"prog.dl": FRONTEND.ALL_CONSTRUCTS[construct](depth)}))
    return out


# one level of a mixed nesting: (before, after), the hole in between has type Real and so has the level
LEVELS = [("(", ")"), ("(fun x -> ", ") 1.0"), ("if true then ", " else 0.0"), ("let y = 1.0 in ", ""),
          ("-(", ")"), ("id2 (", ")"), ("1.0 + ", ""), ("(", " : Real)"), ("sin (", ")"), ("fst (", ", 2)"),
          ("(fun (a, b) -> a) (", ", 1)"), ("head [", "]"), ("sum [1.0, ", "]"), ("snd (1.0, ", ")"),
          ("(", " |> id2)"), ("(fun (x : Real) -> x * x) (", ")")]
# levels that change the type: one of them somewhere makes a type error deep inside
ILL_TYPED = [("[", "]"), ("(1.0, ", ")"), ("(fun x -> ", ")"), ("true && ", "")]


def mixed_program(rng: random.Random, depth: int) -> str:
    """A random nesting of many constructs: well-typed (main : Real), or, one time in four, with one
    ill-typed level somewhere (a type error deep inside is as fine an answer as a value)."""
    levels = [rng.choice(LEVELS) for _ in range(depth)]
    if rng.random() < 0.25:
        levels[rng.randrange(depth)] = rng.choice(ILL_TYPED)
    return ("def id2 x = x\ndef main = " + "".join(b for b, _ in levels) + "1.0" +
            "".join(a for _, a in reversed(levels)) + "\n")


def mixed_cases(rng: random.Random, n: int, low: int = 10_000, high: int = 30_000) -> list[Case]:
    out = []
    for _ in range(n):
        depth = _depth(rng, low, high)
        args = _commands(rng)
        out.append(Case(f"mixed nesting {depth} deep, dl {args[0]}", args, {"prog.dl": mixed_program(rng, depth)}))
    return out


def _huge_literals(digits: int) -> list[str]:
    big = "9" * digits
    return [
        f"def main = {big}",
        f"def main = ({big} : Int) + 1",
        f"def main = 1.{'0' * digits}1",
        f"def main = 1e{big[:7]}",
        f"def main = length (build {big} (fun i -> i))",
        f"def main = length (replicate {big} 1.5)",
        f"def main = length (range {big})",
        f"def main = length (take {big} (range 3))",
        f"def main = get [1, 2] {big}",
        f"def main = (2 : Int) ^ {big}",
    ]


COUNTS = ["1000000000000", "99999999999999999999", "-99999999999999999999"]
COUNTED = ["length (build {n} (fun i -> i))", "length (replicate {n} 1.5)", "length (range {n})",
           "length (take {n} (range 3))", "sum (build {n} (fun i -> float i))"]


def literal_cases(rng: random.Random, n: int, digits: int = 1_000_000) -> list[Case]:
    pool = [(f"literal {s[:40]}... ({digits} digits)", s) for s in _huge_literals(digits)]
    pool += [(f"count {c.format(n=k)}", "def main = " + c.format(n=k)) for c in COUNTED for k in COUNTS]
    out = []
    for what, text in rng.sample(pool, min(n, len(pool))):
        command = rng.choice([["run", "{file}", "--budget", "2"], ["check", "{file}"]])
        out.append(Case(f"{what}, dl {command[0]}", command, {"prog.dl": text + "\n"}))
    return out


SPECIALS = ["fifo", "/dev/zero", "/dev/null", "loop", "dir", "/dev/full"]


def special_cases(rng: random.Random, n: int) -> list[Case]:
    out = []
    for special in rng.sample(SPECIALS, min(n, len(SPECIALS))):
        target = special if special.startswith("/") else "{special}"
        how = rng.choice(["import", "file", "repl"])
        if how == "import":
            out.append(Case(f'import "{special}"', ["run", "{file}"],
                            {"prog.dl": f'import "{target}"\ndef main = 1\n'}, special=special))
        elif how == "file":
            out.append(Case(f"dl check {special}", ["check", target], special=special))
        else:
            out.append(Case(f"repl :load {special}", ["repl", "--stdin", f":load {target}\n"], special=special))
    return out


def moderate_cases(rng: random.Random, n: int) -> list[Case]:
    """What passes today: depth 100-500, literals of 10^4 digits, impossible counts that are checked."""
    cases = deep_cases(rng, n // 3, 100, 500) + mixed_cases(rng, n // 3, 100, 500)
    pool = [(f"literal {s[:30]}... (10^4 digits)", s) for s in _huge_literals(10_000)
            if "build" not in s and "replicate" not in s and "range" not in s]  # (counts of 10^10000: item 8)
    pool += [("count range 10^20", "def main = length (range 99999999999999999999)"),
             ("count range -10^20", "def main = range (-99999999999999999999)"),
             ("count take 10^20", "def main = take 99999999999999999999 [1]")]
    for what, text in rng.sample(pool, min(n - len(cases), len(pool))):
        cases.append(Case(what, ["run", "{file}", "--budget", "5"], {"prog.dl": text + "\n"}))
    return cases


def _make_special(tmp_path, special: str) -> str:
    p = tmp_path / "special.dl"
    if special == "fifo":
        os.mkfifo(p)
    elif special == "loop":
        os.symlink(tmp_path / "loop2.dl", p)
        os.symlink(p, tmp_path / "loop2.dl")
    elif special == "dir":
        p.mkdir()
    return str(p)


def run_case(tmp_path, case: Case, bounds: tuple[float, float]) -> None:
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    special = _make_special(tmp_path, case.special) if case.special else ""
    program = str(tmp_path / "prog.dl")
    args = [a.replace("{file}", program).replace("{special}", special) for a in case.args]
    stdin = None
    if args[0] == "repl":
        stdin, args = args[2], ["repl"]
    seconds, peak_mb = bounds
    r = dl_limited(*args, timeout=seconds, max_bytes=MAX_BYTES, stdin=stdin, cwd=str(tmp_path))
    try:
        assert_clean(r)
        assert r.peak_mb < peak_mb, f"peak {r.peak_mb:.0f} MB (bound {peak_mb} MB)"
    except AssertionError as e:
        raise AssertionError(f"seed {SEED}: {case.what}: {e}\n{r}") from None


def run_all(tmp_path_factory, cases: list[Case], bounds: tuple[float, float]) -> None:
    for k, case in enumerate(cases):
        run_case(tmp_path_factory.mktemp(f"case{k}"), case, bounds)


@pytest.mark.xfail(strict=False, reason="issue 19 items 1 and 9: `dl transform` of chained lets 13,299 deep takes ~12 s "
                   "of CPU (0.85 ms per let: front end 2.5 s, transform 1.8 s, target check 3.6 s, printing 2.5 s; "
                   "22.7 s before the printer, specialiser and bind_arguments fixes), near the 30 s bound: on a 2-core "
                   "machine at load 6-7 it passed once and failed once (timeout), so the marker stays until it has room; "
                   "a generated nodes.replace cut the target check by ~8% (in-process A/B at load ~4: 3.8-4.3 s "
                   "against 4.1-4.8 s); it passed at load 3.5")
def test_deep_nesting_of_one_construct(tmp_path_factory):
    run_all(tmp_path_factory, deep_cases(random.Random(SEED), 5 * SCALE, 3_000, 20_000), DEEP_BOUNDS)


def test_deep_nesting_of_mixed_constructs(tmp_path_factory):
    run_all(tmp_path_factory, mixed_cases(random.Random(SEED + 1), 3 * SCALE, 3_000, 10_000), DEEP_BOUNDS)


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="issue 19 items 1 and 9: runs past the time bound (2026-11-30, load 1-2: the "
                   "first case, `dl transform` of 60,941 chained lets, timed out at 30 s: linear at ~0.9 ms per let; "
                   "no internal error)")
def test_deep_nesting_of_one_construct_at_full_size(tmp_path_factory):
    run_all(tmp_path_factory, deep_cases(random.Random(SEED), 5 * SCALE), DEEP_BOUNDS)


@pytest.mark.slow
def test_deep_nesting_of_mixed_constructs_at_full_size(tmp_path_factory):
    run_all(tmp_path_factory, mixed_cases(random.Random(SEED + 1), 3 * SCALE), DEEP_BOUNDS)


def test_huge_literals_and_counts(tmp_path_factory):
    run_all(tmp_path_factory, literal_cases(random.Random(SEED + 2), 8 * SCALE), SMALL_BOUNDS)


def test_special_files(tmp_path_factory):
    run_all(tmp_path_factory, special_cases(random.Random(SEED + 3), 6 * SCALE), SMALL_BOUNDS)


def test_moderately_hostile_input(tmp_path_factory):
    run_all(tmp_path_factory, moderate_cases(random.Random(SEED + 4), 9 * SCALE), DEEP_BOUNDS)
