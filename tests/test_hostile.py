"""Hostile input (issue 19): no internal error, no traceback, no runaway memory.

Every test runs `dl` in a child process bounded in memory (RLIMIT_AS) and time (a timeout after which
it is killed): see tests/limited.py. A test that fails on today's code is marked

    @pytest.mark.xfail(strict=True, reason="issue 19 item N: what happens today")

so the suite stays green until the fix lands; then the test passes, strict xfail turns that into a
failure, and the marker has to be removed. Where the failure is a time limit (a check or a run past
its allowance), the marker is strict=False: a faster machine passes it, and that must not fail CI. Tests without a marker pass today and guard what already
works (the `range` count check, the diagnostics for a directory, ...).

Cost. The default run (the README's `pytest`) takes well under two minutes on an idle 2-core machine:
item 1 runs its programs DEPTH_FAST = 10^4 nodes deep (ten times Python's recursion limit: every phase
that recursed on the tree fails there), and the budgets, counts and special files stop in seconds.
What is inherently slow is marked `slow` and left out of the default run (pyproject.toml's addopts):
the same programs DEPTH = 10^5 deep (what the issue asks; tens of seconds per command on a loaded
machine), the 10^5 matrix of constructs under check and run, and the two tests that fill memory up to
its limit. Run them with `pytest -m slow tests/test_hostile.py` (several minutes).

dl reserves 1 GiB of address space for the stack of its evaluation thread, so a 2 GB limit leaves it
about 1 GB of heap; tests that need more say so.
"""
from __future__ import annotations

import math
import os
import re
import unicodedata

import pytest

from conftest import cli, diagnostic, run
from limited import GB, Outcome, assert_clean, dl_limited, frontend_generators, startup_seconds

FRONTEND = frontend_generators()
DEPTH = 100_000      # the depth: `slow`
DEPTH_FAST = 10_000  # the default run's
DEPTHS = [DEPTH_FAST, pytest.param(DEPTH, marks=pytest.mark.slow)]
MODES = ["backprop", "backprop-naive", "forward", "tape", "symbolic", "numeric"]
EXACT_MODES = ["backprop", "backprop-naive", "forward", "tape", "symbolic"]


def write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def first_line(r: Outcome) -> str:
    return r.err.split("\n")[0]


# ==== item 1: deep source ===============================================================================
#
# Every phase (parse, desugar, inference, specialisation, transforms, compiler, printers) must cope with
# 10^5 nested nodes: the answer or a diagnostic, never `internal error: RecursionError`, and never
# "stack overflow: ... make it tail-recursive" for a program that has no recursion at all.

def _steps(steps, timeout=90, max_bytes=3 * GB):
    """Run each (args, expected stdout or a predicate) in turn; the first that fails fails the test."""
    for args, expected in steps:
        r = dl_limited(*args, timeout=timeout, max_bytes=max_bytes)
        assert_clean(r, codes=(0,))
        assert "stack overflow" not in r.err, f"dl {' '.join(args)}: {r}"
        if callable(expected):
            assert expected(r.out), f"dl {' '.join(args)}: {r}"
        else:
            assert r.out == expected, f"dl {' '.join(args)}: {r}"


@pytest.mark.parametrize("depth", DEPTHS)
def test_deep_application_in_every_command(tmp_path, depth):
    path = write(tmp_path, "deep.dl", FRONTEND.deep_application(depth))
    _steps([
        (["check", path], lambda out: "main : Real" in out.splitlines()),
        (["run", path], "1.0\n"),
        (["transform", path, "--def", "main"], lambda out: out.startswith("--")),
        (["transform", path, "--def", "main", "--mode", "forward"], lambda out: out.startswith("--")),
    ])


@pytest.mark.parametrize("n", DEPTHS)
def test_deep_lambdas(tmp_path, n):
    path = write(tmp_path, "lambdas.dl", "def main = " + "(fun x -> " * n + "x" + ") x" * (n - 1) + ") 1\n")
    _steps([(["check", path], "main : Real\n"), (["run", path], "1.0\n")])


@pytest.mark.xfail(strict=False, reason="issue 19 item 1: `grad f 1.0` of `def f x = x + x + ...` (10^4 terms) "
                   "passes the 30 s bound in every mode at load ~3 on 2 cores, but backprop and backprop-naive only "
                   "just (`dl run`, wall / user CPU: backprop 26 s / 14.3 s, backprop-naive 25 s / 13.8 s, forward "
                   "16 s / 9.2 s, tape 7.2 s, symbolic 5.9 s, numeric 3.2 s; before the collector was paused during "
                   "transforms, backprop 40 s / 17 s and forward 38 s / 11.5 s). Simplification is linear in CPU time "
                   "(let floating 0.28 s at 10^3 terms, 1.2 s at 4x10^3, 5.1 s at 1.6x10^4; tidy 0.24, 1.25, 4.9 s), "
                   "its wall time grows faster only under load; what is left is its constant factor")
@pytest.mark.parametrize("depth", DEPTHS)
def test_a_deep_sum_and_its_gradient_in_every_mode(tmp_path, depth):
    body = " + ".join(["x"] * depth)
    value = write(tmp_path, "sum.dl", f"def f x = {body}\ndef main = f 1.0\n")
    gradient = write(tmp_path, "grad.dl", f"def f x = {body}\ndef main = grad f 1.0\n")

    def about(n):
        return lambda out: math.isclose(float(out), n, rel_tol=1e-6)
    _steps([(["run", value], f"{depth:.1f}\n")] +
           [(["run", gradient, "--mode", mode], about(depth)) for mode in MODES], timeout=30 if depth < DEPTH else 90)


def test_compare_on_a_deep_program(tmp_path):
    path = write(tmp_path, "deep.dl", FRONTEND.deep_application(2000))
    r = dl_limited("compare", path, "--modes", "backprop,tape", "--format", "csv", timeout=120)
    assert_clean(r, codes=(0,))


SLOW_CONSTRUCTS = {
    # construct: what `dl check` and `dl run` do on it at 10^5, re-measured 2026-11-30 on a 2-core machine at
    # load 6-8, where wall time ran 5-10 times the CPU time (CPU, then wall): past the 100 s bound, or near it
    "nested_ifs": "check 6.4 s CPU (37 s); run 11.6 s CPU, 99 s wall",
    "nested_lists": "check 2.9 s CPU (33 s); run killed at the 100 s timeout (9 s CPU by then, 508 MB)",
    "nested_tuples": "check 3.8 s CPU (34 s); run 12 s CPU, 79 s wall, 620 MB",
    "chained_lets": "check 13 s CPU, 99 s wall; run killed at the 100 s timeout (20 s CPU by then)",
}


@pytest.mark.slow
@pytest.mark.parametrize("construct", [
    *[pytest.param(c, marks=pytest.mark.xfail(strict=False, reason=f"issue 19 item 1: at 10^5 nodes, {why}"))
      for c, why in SLOW_CONSTRUCTS.items()],
    "operator_chain",  # check 5.8 s CPU (38 s) and run 12.4 s CPU (89 s) at load 7: passes, near the bound
    "nested_parens",   # check 1.5 s CPU (6.8 s) and run 1.4 s CPU (8.8 s) at load 7
])
def test_deep_constructs_under_check_and_run(tmp_path, construct):
    path = write(tmp_path, f"{construct}.dl", getattr(FRONTEND, construct)(DEPTH))
    _steps([(["check", path], lambda out: out.startswith("main : ")),
                      (["run", path], lambda out: out.count("\n") == 1)], timeout=100)


# ==== item 2: nothing after the out-of-memory diagnostic =================================================

@pytest.mark.slow  # fills memory up to its limit (~30 s on a loaded machine, and it takes the memory)
def test_out_of_memory_is_the_last_thing_printed(tmp_path):
    # 2*10^8 Ints do not fit in 4 GB; this limit is the one that shows the thread traceback every time
    # (at 2-3.5 GB the MemoryError happens to leave enough room). It touches about 2.8 GB for ~8 s.
    path = write(tmp_path, "hog.dl", "def main = length (build 200000000 (fun i -> i))\n")
    r = dl_limited("run", path, timeout=120, max_bytes=4 * GB)
    assert_clean(r, codes=(1,))
    lines = r.err.rstrip("\n").split("\n")
    assert "out of memory" in lines[0], str(r)
    assert len(lines) in (1, 3), f"something follows the diagnostic: {r}"
    if len(lines) == 3:
        diagnostic(r.err)


# ==== item 3: runaway memory =============================================================================

@pytest.mark.parametrize("target", ["/dev/zero", "FIFO", "/dev/null", "DIRECTORY"])
def test_importing_something_that_is_not_a_regular_file(tmp_path, target):
    if target == "FIFO":
        target = str(tmp_path / "pipe")
        os.mkfifo(target)
    elif target == "DIRECTORY":
        target = str(tmp_path)
    path = write(tmp_path, "main.dl", f'import "{target}"\ndef main = 1\n')
    r = dl_limited("run", path, timeout=10, max_bytes=2 * GB)
    assert_clean(r, codes=(1,))
    d = diagnostic(r.err)
    assert (d["kind"], d["line"], d["col"]) == ("import", 1, 1), str(r)
    assert "no such file" not in d["message"]
    assert r.peak_mb < 300 and r.seconds < 10, str(r)


def test_checking_a_50_MB_source_is_bounded(tmp_path):
    lines = [f"def f{i} = f{i - 1} + 1" for i in range(1, 2_300_000)]
    text = "def f0 = 0\n" + "\n".join(lines) + "\ndef main = f1\n"
    assert len(text) > 50_000_000
    path = write(tmp_path, "big.dl", text)
    r = dl_limited("check", path, timeout=20, max_bytes=2 * GB)
    assert_clean(r)
    assert r.peak_mb < 1000, str(r)
    if r.code != 0:  # refused: the message says how big the file is (or how big a file may be)
        assert re.search(r"\d\s*(bytes|[KMG]i?B)\b|\d{7,}", r.err), str(r)


def test_symbolic_mode_has_a_size_budget(tmp_path):
    # 10^5 inputs: the expression (2*10^5 nodes) is built in seconds, and its gradient, one walk of it per
    # input, would be 2*10^10 derivative nodes (without the budget: memory grows until the machine's runs out;
    # the 10^6 inputs show the same, after a longer build)
    path = write(tmp_path, "many.dl", "def main = grad (fun xs -> sum xs) (build 100000 (fun i -> 1.0))\n")
    r = dl_limited("run", path, "--mode", "symbolic", timeout=30, max_bytes=int(2.5 * GB))
    assert_clean(r, codes=(1,))
    assert r.peak_mb < 500, str(r)
    assert "symbolic" in r.err and re.search(r"\d", first_line(r)), str(r)


def test_there_is_a_max_memory_option_beside_budget():
    for command in ("run", "compare"):
        r = dl_limited(command, "--help", timeout=30)
        assert r.code == 0 and "--budget" in r.out
        assert "--max-memory" in r.out, r.out


def test_dl_runs_under_a_1_GB_address_space_limit(tmp_path):
    path = write(tmp_path, "small.dl", "def main = 1 + 2\n")
    for command in ("run", "check"):
        r = dl_limited(command, path, timeout=30, max_bytes=1 * GB)
        assert_clean(r, codes=(0,))


# ==== item 4: forward and numeric modes say how many passes they will make =============================

@pytest.mark.parametrize("mode", ["forward", "numeric"])
def test_a_million_passes_are_announced(tmp_path, mode):
    path = write(tmp_path, "wide.dl", "def main = grad (fun xs -> sum xs) (build 1000000 (fun i -> 1.0))\n")
    r = dl_limited("run", path, "--mode", mode, interrupt_after=10, timeout=15)
    assert not r.timed_out, f"did not stop on Ctrl-C: {r}"
    assert "Traceback" not in r.err and "internal error" not in r.err, str(r)
    said = r.err.replace(",", "").replace("_", "").replace(" 000", "000")
    assert re.search(r"1000000|10\^6|1e6|one million", said) and "pass" in said, str(r)


# ==== item 5: messages speak of what the user wrote, not of its desugaring ===============================

LEAKS = re.compile(r"`if`|condition|branch|annotat|\bfst\b|\bsnd\b|`[a-z]\d+`")

# (source, words the message must contain, (line, col) of the caret or None)
SUGAR_ERRORS = [
    # `&&` and `||` desugar to `if`: each operand is said to be an operand, with the caret under it
    ("def main = 1 && true", "the left operand of `&&` must be Bool", (1, 12)),
    ("def main = true && 1", "the right operand of `&&` must be Bool", (1, 20)),
    ("def main = 1 || false", "the left operand of `||` must be Bool", (1, 12)),
    ("def main = false || 1", "the right operand of `||` must be Bool", (1, 21)),
    ("def main = (1 < 2 && 3) + 1", "the right operand of `&&`", (1, 22)),
    ("def main = 1 < 2 || (true && 0)", "the right operand of `&&` must be Bool, but `0`", (1, 30)),
    # `()` desugars to an annotation `: Unit`, a nested tuple pattern to a let of a fresh name: the words are
    # the pattern's, the caret under the value (or the component of a tuple written out) that it matches
    ("def main = let () = 1 in 2", "the pattern `()` needs a value of type Unit, but `1`", (1, 21)),
    ("def main = let ((), x) = (1, 2) in x", "the pattern `()` needs a value of type Unit, but `1` (component 1 "
     "of `(1, 2)`)", (1, 27)),
    ("def main = let (_, ()) = (1, 2) in 3", "`2` (component 2 of `(1, 2)`)", (1, 30)),
    ("def main = let ((a, b), c) = (1, 2) in a", "the pattern `(a, b)` needs a tuple of 2, but `1` (component 1 of "
     "`(1, 2)`)", (1, 31)),
    ("def main = let (((a, b), c), d) = ((1, 2), 3) in a", "`1` (component 1 of `(1, 2)`)", (1, 37)),
    ("def p = (1, 2)\ndef main = let ((a, b), c) = p in a", "component 1 of `p` does not fit", (2, 30)),
    ("def q = ((1, 2), 3)\ndef main = let (((a, b), c), d) = q in a", "component 1 of component 1 of `q`", (2, 35)),
    # a local function is `let rec f x = e1`, not the whole `let ... in e2` (which has another type)
    ("def main = let rec f x = if x then 1 else f 2 in f true", "`let rec f x = if x then 1 else f 2` has type",
     (1, 12)),
    ("def main = (fun (() : Int) -> 1) 2", "the pattern `()` needs a value of type Unit, but `(() : Int)` has "
     "type Int", (1, 17)),
    # these speak of what was written today (kept so that they stay that way)
    ("def main = 1 |> (fun (b : Bool) -> b)", "", (1, 12)),
    ("def main = (&&) 1 true", "(&&)", (1, 17)),
    ("def main = (||) true 1", "(||)", (1, 22)),
    ("def main = (fun (a, b) -> a) 1", "fun (a, b) -> a", (1, 30)),
    ("def main = (fun (a, b, c) -> a) (1, 2)", "fun (a, b, c) -> a", (1, 33)),
    ("def main = let (a, b) = 1 in a", "pattern of 2", (1, 25)),
    ("def main = let f (a, b) = a in f 1", "`f`", (1, 34)),
    ("def main = map (fun (a, b) -> a) [1, 2]", "map", (1, 34)),
    ("def main = (fun () -> 1) 2", "fun () -> 1", (1, 26)),
]


@pytest.mark.parametrize("source,words,where", SUGAR_ERRORS)
def test_messages_about_sugar_speak_of_what_was_written(tmp_path, source, words, where):
    code, out, err = cli("check", write(tmp_path, "sugar.dl", source + "\n"))
    assert code == 1, err
    d = diagnostic(err)
    assert not LEAKS.search(d["message"]), d["message"]
    assert words in d["message"], d["message"]
    if where is not None:
        assert (d["line"], d["col"]) == where, err


def test_an_annotation_inside_a_pattern_speaks_of_the_component_it_annotates(tmp_path):
    # `(x : Int)` was written, so "annotated" is right; the value is `true`, not the pattern `(x : Int)`
    code, out, err = cli("check", write(tmp_path, "sugar.dl", "def main = let ((x : Int), y) = (true, 1) in x\n"))
    d = diagnostic(err)
    assert code == 1 and (d["line"], d["col"]) == (1, 34), err
    assert d["message"] == "`true` (component 1 of `(true, 1)`) has type Bool, not the annotated Int", err


# ==== item 6: deep types are printed =====================================================================

DEEP_TYPES = [
    ("tuples", "def main = " + "(1.0, " * 350 + "1.0" + ")" * 350,
     lambda t: t.startswith("Real * (Real * (") and t.count("Real") == 351),
    ("lambdas", "def main = " + "".join(f"fun x{i} -> " for i in range(1000)) + "x0",
     lambda t: t.count("->") == 1000),
    ("lists", "def main = " + "[" * 1000 + "1.0" + "]" * 1000, lambda t: t == "[" * 1000 + "Real" + "]" * 1000),
]


@pytest.mark.parametrize("name,source,shape", DEEP_TYPES, ids=[d[0] for d in DEEP_TYPES])
def test_check_prints_a_deep_type(tmp_path, name, source, shape):
    r = dl_limited("check", write(tmp_path, "deep.dl", source + "\n"), timeout=60)
    assert_clean(r, codes=(0,))
    (line,) = r.out.splitlines()
    assert line.startswith("main : ") and shape(line[len("main : "):]), line[:200]


def test_run_prints_a_deep_value(tmp_path):
    r = dl_limited("run", write(tmp_path, "deep.dl", DEEP_TYPES[0][1] + "\n"), timeout=60)
    assert_clean(r, codes=(0,))
    assert r.out == "(1.0, " * 350 + "1.0" + ")" * 350 + "\n"


# ==== item 7: --budget is honoured promptly, in every phase ===============================================

BUDGET_CASES = [
    # source, budget (seconds)
    pytest.param("def main = " + "9" * 1_000_000, 1, id="parse-a-million-digit-literal"),
    pytest.param("def main = (7 : Int) ^ 1000000", 1, id="print-a-huge-int"),  # 845,000 digits: ~25 s to print
    # 7^10^6 takes ~0.6 s, x * x ~1.3 s, y * y ~4 s, z * z ~13 s: the budget expires during z * z, one C
    # call that nothing in the process interrupts (the supervising parent kills the child)
    pytest.param("def main = let x = (7 : Int) ^ 1000000 in let y = x * x in let z = y * y in z * z > 0", 3,
                 id="one-long-Int-multiplication"),
    pytest.param("def f x = f x\ndef main = f 1", 1, id="a-plain-loop"),
]


@pytest.mark.parametrize("source,budget", BUDGET_CASES)
def test_the_budget_is_honoured_promptly_in_every_phase(tmp_path, source, budget):
    path = write(tmp_path, "slow.dl", source + "\n")
    limit = budget + 2 + 2 * startup_seconds()  # the budget, ~2 s to notice it, and starting up twice over
    r = dl_limited("run", path, "--budget", str(budget), timeout=limit + 10, max_bytes=2 * GB)
    assert r.seconds < limit, f"--budget {budget} took {r.seconds:.1f} s (limit {limit:.1f} s): {r}"
    assert_clean(r, codes=(0, 1))
    if r.code == 1:
        assert "--budget" in first_line(r), str(r)


def test_a_budget_expiring_as_the_evaluation_ends_is_not_a_traceback(tmp_path):
    # 7^10^6 ~0.6 s, x * x ~1.3 s, then y * y ~4 s: --budget 4 expires during y * y, the last operation
    path = write(tmp_path, "late.dl", "def main = let x = (7 : Int) ^ 1000000 in let y = x * x in y * y > 0\n")
    r = dl_limited("run", path, "--budget", "4", timeout=60, max_bytes=2 * GB)
    assert_clean(r, codes=(0, 1))
    assert (r.code, r.out, r.err) == (0, "true\n", "") or (r.code == 1 and r.out == "" and
                                                           r.err.startswith("dl: runtime error: evaluation stopped")), str(r)


# ==== item 8: counts are checked before allocating; out of memory has a position ==========================

COUNTS = [
    "def main = length (build 99999999999999999999 (fun i -> i))",
    "def main = length (replicate 99999999999999999999 1)",
    "def main = length (build 1000000000000 (fun i -> i))",
    "def main = length (replicate 1000000000000 1.5)",
    "def main = length (range 1000000000000)",
    "def main = length (range 99999999999999999999)",
]


@pytest.mark.parametrize("source", COUNTS)
def test_an_impossible_count_stops_at_once_with_a_position(tmp_path, source):
    col = source.index("(") + 2  # the call inside `length (...)`
    r = dl_limited("run", write(tmp_path, "count.dl", source + "\n"), timeout=10, max_bytes=2 * GB)
    assert_clean(r, codes=(1,))
    d = diagnostic(r.err)
    assert (d["kind"], d["line"], d["col"]) == ("runtime", 1, col), str(r)
    assert r.seconds < 2 + 2 * startup_seconds() and r.peak_mb < 300, str(r)


@pytest.mark.slow  # fills memory up to its limit (~30 s on a loaded machine, and it takes the memory)
def test_out_of_memory_points_at_the_call(tmp_path):
    path = write(tmp_path, "hog.dl", "def main =\n  length (build 50000000 (fun i -> [i, i]))\n")
    r = dl_limited("run", path, timeout=120, max_bytes=int(1.5 * GB))
    assert_clean(r, codes=(1,))
    d = diagnostic(r.err)
    assert (d["kind"], d["line"], d["col"]) == ("runtime", 2, 11), str(r)
    assert "memory" in d["message"]


# ==== item 9: the front end is near-linear in nesting depth ==============================================
#
# benchmarks/frontend.py measures the exponents; here one size per construct, failing today by a wide
# margin. Times are in units of `startup_seconds()` (a one-line `dl check`, here and now: ~0.5 s on an idle
# machine, ~2 s on a loaded one), so that a loaded machine does not fail a linear front end; memory is
# absolute. Today's figures are from a 2-core machine at load ~4-8, with `dl check` of one line at ~1-2 s.

FRONTEND_BOUNDS = [
    # construct, n, time bound in startups, peak MB bound, what happened before the fix
    ("nested_lists", 2000, 4, 250, "~20 s (quadratic: 1,000 take 7 s, 3,000 take 48 s)"),
    ("chained_lets", 6000, 6, 250, "~900 MB (quadratic memory: 3,000 lets take 245 MB, 10^4 end in "
                                   "`internal error: MemoryError` at 3 GB)"),
    ("nested_lambdas", 6000, 6, 250, "~1 GB (quadratic memory: 3,000 take 252 MB, 10^4 end in `internal error: "
                                     "MemoryError` at 3 GB)"),
    ("nested_parens", 30_000, 4, 250, "~17 s (exponent 1.8: the Lark-to-syntax step on parentheses)"),
    ("deep_application", 10_000, 4, 250, "~20 s"),
    ("top_level_defs", 10_000, 6, 250, "~18 s under load (30,000 take 75 s); linear since, ~150 us per definition: "
                                        "~2.5 s idle, so 6 units leave room for a loaded machine"),
    ("nested_tuples", 30_000, 8, 250, "~30 s (quadratic: generalising a type walked a list of its variables "
                                      "once per variable)"),
    ("operator_chain", 10_000, 4, 250, "~14 s (linear, but ~1 ms per operand on a loaded machine)"),
]


@pytest.mark.parametrize("construct,n,units,peak_mb,before", [
    pytest.param(*b, id=f"{b[0]}-{b[1]}") for b in FRONTEND_BOUNDS])
def test_check_time_and_memory_per_construct(tmp_path, construct, n, units, peak_mb, before):
    path = write(tmp_path, "big.dl", getattr(FRONTEND, construct)(n))
    # units of start-up, at least a second each: with a 0.25 s start-up, 10^4 operands' own linear work
    # (~1.5 s) would otherwise count as a failure; a quadratic front end takes minutes here
    limit = units * max(startup_seconds(), 1.0)
    r = dl_limited("check", path, timeout=2 * limit + 5, max_bytes=int(2.5 * GB))
    assert_clean(r, codes=(0,))
    assert r.out.splitlines()[-1].startswith("main : "), str(r)
    assert r.peak_mb < peak_mb, str(r)
    assert r.seconds < limit, f"limit {limit:.1f} s: {r}"


# Found while testing item 9: past the front end, the specialiser and the backprop transform are
# quadratic in depth too.

def test_run_of_nested_tuples_is_not_quadratic(tmp_path):
    path = write(tmp_path, "pairs.dl", "def main = " + "(1.0, " * 2000 + "1.0" + ")" * 2000 + "\n")
    limit = 4 * startup_seconds()
    r = dl_limited("run", path, timeout=2 * limit + 5)
    assert_clean(r, codes=(0,))
    assert r.seconds < limit, f"limit {limit:.1f} s: {r}"


def _let_pattern(n: int) -> str:
    """`let (a0, (a1, ... (a(n-1), an) ...)) = (1.0, (1.0, ... )) in a0`: a pattern nested n deep to the right."""
    pattern = "".join(f"(a{i}, " for i in range(n)) + f"a{n}" + ")" * n
    return f"def main = let {pattern} = {'(1.0, ' * n}1.0{')' * n} in a0\n"


def _parameter_pattern(n: int) -> str:
    """`def f ((((x, a1), a2), ...), an) = x`: a parameter pattern nested n deep to the left."""
    pattern = "(" * n + "x" + "".join(f", a{i})" for i in range(1, n + 1))
    value = "(" * n + "1.0" + ", 1.0)" * n
    return f"def f {pattern} = x\ndef main = f {value}\n"


@pytest.mark.parametrize("program,n", [(_let_pattern, 4000), (_parameter_pattern, 10_000)])
def test_check_of_deep_tuple_patterns_is_not_quadratic(tmp_path, program, n):
    # Before: a `let` pattern bound fresh variables to each level's components, so the occurs check walked the
    # rest of the type at every level (2,000 deep: 5.9 s of CPU, 4,000: ~25 s; now ~0.5 s); the names a
    # pattern binds were joined level by level (a parameter pattern 10^4 deep: 5.5 s of CPU;
    # now ~1.2 s). Start-up ~0.6 s of CPU.
    path = write(tmp_path, "pattern.dl", program(n))
    limit = 6 * max(startup_seconds(), 1.0)
    r = dl_limited("check", path, timeout=2 * limit + 5, max_bytes=2 * GB)
    assert_clean(r, codes=(0,))
    assert r.out.splitlines()[-1] == "main : Real", str(r)
    assert r.seconds < limit, f"limit {limit:.1f} s: {r}"


@pytest.mark.xfail(strict=False, reason="found testing issue 19 (item 9): backprop mode on `sin (sin (... x))` 4,000 "
                   "deep takes ~12 startups (9.8 s against a 5.0 s bound at load ~7; tape 2.5 s): linear, over the "
                   "bound by a constant factor. In-process at that load: simplify 1.9 s (one pass fewer than before: "
                   "3.9 s), preaccumulation 1.5 s (3.2 s), Python's compile 1.3 s (two functions, 1.6 MB: a try block "
                   "per sin and cos), ←D 0.8 s. The weight is one 4,000-factor product, but the compiler already "
                   "spills it to one local per factor, so the generated Python is linear; bounding it would not help")
def test_backprop_of_a_deep_composition_is_not_quadratic(tmp_path):
    n = 4000
    path = write(tmp_path, "sins.dl", "def f x = " + "sin (" * n + "x" + ")" * n + "\ndef main = grad f 1.0\n")
    limit = 6 * startup_seconds()  # tape mode takes ~1.2 startups
    r = dl_limited("run", path, "--mode", "backprop", timeout=2 * limit + 5)
    assert_clean(r, codes=(0,))
    assert r.seconds < limit, f"limit {limit:.1f} s: {r}"


# ==== item 10: the exact modes agree where a derivative is infinite ======================================

SINGULAR = [
    # the two
    "grad (fun x -> sqrt x * 0.0) 0.0",
    "grad (fun x -> let u = sqrt x - 1.0 in u * u / u) 0.0",
    # more of the same: an infinite local derivative times a zero
    "grad (fun x -> 0.0 * sqrt x) 0.0",
    "grad (fun x -> log x * 0.0) 0.0",
    "grad (fun x -> sqrt x * 0.0 + x) 0.0",
    "grad (fun x -> let y = sqrt x in y * 0.0) 0.0",
    "grad (fun x -> sum (map (fun y -> y * 0.0) [sqrt x, log x])) 0.0",
    "grad (fun x -> exp x * 0.0) 1000.0",
    "grad (fun (x, y) -> sqrt x * y) (0.0, 0.0)",
    # singular points where the modes agreed already
    "grad (fun x -> log x) 0.0",
    "grad (fun x -> 1.0 / x) 0.0",
    "grad (fun x -> 1.0 / sqrt x) 0.0",
    "grad (fun x -> pow x 0.0) 0.0",
    "grad (fun x -> x ^ 0.0) 0.0",
    "grad (fun x -> x ^ 0.5) 0.0",
    "grad (fun x -> relu x) 0.0",
    "grad (fun x -> abs x) 0.0",
    "grad (fun x -> max x 0.0) 0.0",
    "grad (fun x -> if x > 0.0 then 1.0 else 2.0) 0.0",
    "grad (fun x -> if x >= 0.0 then sqrt x else 0.0) 0.0",
    "grad (fun x -> if x > 0.0 then log x else 0.0 * x) 0.0",
    "grad (fun x -> sqrt x - sqrt x) 0.0",
    "grad (fun x -> x * log x) 0.0",
    "grad (fun x -> snd (sqrt x, x)) 0.0",
]


def _ieee(v):
    """A value with every real replaced by (class, value): nan and inf and finite compared as classes."""
    if isinstance(v, (list, tuple)):
        return type(v)(_ieee(x) for x in v)
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)
        if math.isinf(v):
            return ("inf", v)
        return ("finite", round(v, 9) + 0.0)
    return v


@pytest.mark.parametrize("expr", SINGULAR)
def test_exact_modes_agree_at_singular_points(expr):
    """Every exact mode, the same value (item 10: the first nine disagreed before the rule of
    docs/transforms.md, Zeros and infinities)."""
    values = {mode: _ieee(run(f"def main = {expr}\n", mode)) for mode in EXACT_MODES}
    assert len(set(map(repr, values.values()))) == 1, values


# ==== item 11: backprop-naive on a long fold ==============================================================

def test_naive_mode_on_a_long_fold(tmp_path):
    path = write(tmp_path, "fold.dl",
                 "def main = grad (fun x -> fold (fun a _ -> a + x * 0.5) 0.0 (range 1000000)) 1.0\n")
    r = dl_limited("run", path, "--mode", "backprop-naive", timeout=90, max_bytes=3 * GB)
    assert_clean(r, codes=(0, 1))
    if r.code == 0:
        assert r.out == "500000.0\n"
    else:
        assert "use fold" not in r.err and "tail-recursive" not in r.err, str(r)


# ==== item 12: small diagnostics ==========================================================================

def _special(tmp_path, what: str) -> str:
    if what == "fifo":
        p = tmp_path / "pipe.dl"
        os.mkfifo(p)
    elif what == "loop":
        p = tmp_path / "loop.dl"
        os.symlink(tmp_path / "loop2.dl", p)
        os.symlink(p, tmp_path / "loop2.dl")
    elif what == "dir":
        p = tmp_path / "folder.dl"
        p.mkdir()
    else:
        return what
    return str(p)


SPECIAL_FILES = [
    ("fifo", r"fifo|named pipe|not a (regular|plain) file"),
    ("/dev/null", r"device|not a (regular|plain) file"),
    ("loop", r"symbolic link|symlink|loop"),
    ("dir", r"directory"),
]


@pytest.mark.parametrize("what,words", SPECIAL_FILES)
def test_a_file_that_cannot_be_run_says_what_it_is(tmp_path, what, words):
    path = _special(tmp_path, what)
    for command in ("run", "check"):
        r = dl_limited(command, path, timeout=15)
        assert_clean(r, codes=(1, 2))
        assert "no such file" not in r.err and re.search(words, r.err, re.IGNORECASE), str(r)


@pytest.mark.parametrize("what,words", [("dir", r"directory"), ("fifo", r"fifo|named pipe|not a (regular|plain) file"),
                                        ("/dev/null", r"device|not a (regular|plain) file"),
                                        ("loop", r"symbolic link|symlink|loop")])
def test_repl_load_of_something_that_is_not_a_file_says_what_it_is(tmp_path, what, words):
    path = _special(tmp_path, what)
    r = dl_limited("repl", stdin=f":load {path}\n", timeout=20)
    text = r.out + r.err
    assert not r.timed_out and "Traceback" not in text and "internal error" not in text, str(r)
    assert "no such file" not in text and re.search(words, text, re.IGNORECASE), str(r)


def display_width(text: str) -> int:
    """Columns on a terminal: wide (CJK) characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


@pytest.mark.parametrize("comment", ["{- 日本語 -}", "{- e\u0301e\u0301e\u0301 -}", "{- ｆｕｌｌ -}"])
def test_the_caret_sits_under_the_error_on_screen(tmp_path, comment):
    source = f"def main = {comment} 1 + true"
    code, out, err = cli("run", write(tmp_path, "wide.dl", source + "\n"))
    d = diagnostic(err)
    shown, caret = err.split("\n")[1], err.split("\n")[2]
    assert display_width(shown[: shown.index("true")]) == caret.index("^"), err


CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("content", [b"def main = 1\r\x1b[31m + \xff\n", b'def main = "\x07\x1b[2J" 1\n',
                                     b"def main = 1 +\x1b[2J\x08\n"],
                         ids=["not-utf8", "utf8-string", "utf8-escape"])
def test_diagnostics_do_not_echo_control_characters(tmp_path, content):
    path = tmp_path / "ctl.dl"
    path.write_bytes(content)
    r = dl_limited("run", str(path), timeout=20)
    assert_clean(r, codes=(1,))
    assert not CONTROL.search(r.err), repr(r.err)
    diagnostic(r.err)


def test_repl_shows_an_invalid_byte_as_the_byte(tmp_path):
    r = dl_limited("repl", stdin=b"1 + \xff\n", timeout=20)
    text = r.out + r.err
    assert not r.timed_out and "Traceback" not in text, str(r)
    assert "udcff" not in text.lower() and re.search(r"(\\x|0x)ff", text, re.IGNORECASE), text


def test_the_default_memory_budget_keeps_to_what_is_available(tmp_path):
    """Three quarters of the machine, and no more than what dl holds now and three quarters of MemAvailable: on a
    shared machine the kernel kills a process, without a diagnostic, long before it reaches the first."""
    import os
    from lang.back.deep import resident_bytes
    from lang.tools.cli import default_max_memory
    whole = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:    2000000 kB\n")
    held = resident_bytes()
    limit = default_max_memory(str(info))
    assert held <= limit - 2000000 * 1024 * 3 // 4 <= resident_bytes()  # (what dl held, and 1.5 GB more)
    info.write_text("MemTotal: 1 kB\nMemAvailable: 999999999999 kB\n")  # more available than three quarters
    assert default_max_memory(str(info)) == whole
    for unreadable in ("MemTotal: 5 kB\n", "MemAvailable: lots\n", ""):
        info.write_text(unreadable)
        assert default_max_memory(str(info)) == whole
    assert default_max_memory(str(tmp_path / "absent")) == whole
