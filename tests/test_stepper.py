"""The watched backward pass and the stepper (lang/tools/watch.py, lang/tools/stepper.py; `:step`, `dl step`).

The watched backends re-write the factoring sweep with a log, so the first
tests hold them to the real ones (lang/back/linear.py) on random graphs of
records: the same gradient to the last bit, and the same counts as the
counting sweep. The rest check what the stepper shows against values worked
out by hand: repeated squaring y(k+1) = y(k)^2 runs n bodies with factoring
and 2^(n+1) - 1 calls naively, and its arguments are products of the 2·y(k).
"""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, cli, load_source, run
from lang.back.compiler import Counters
from lang.back.deep import run_deep
from lang.back.linear import GENERIC, SINK, Factoring, Naive
from lang.tools.pipeline import main_call
from lang.tools.repl.core import execute, new_state
from lang.tools.stepper import factoring_rows, naive_rows, show_transcript, step
from lang.tools.watch import Pass, WatchedFactoring, WatchedNaive, labels, watch

SQUARINGS = "def squarings n x = if n == 0 then x else squarings (n - 1) (x * x)\n"


# ---- the watched backends against the real ones, on random records ---------------------


class Doubling:
    """A stand-in for a generic record's compiled body: calls its captured parent on twice the argument."""

    def __init__(self, backend):
        self.backend = backend

    def body(self, captured, ct):
        self.backend.contribute(captured[0], 2.0 * ct)


@st.composite
def record_graphs(draw):
    """A few sinks, then records calling 1-3 older identities with random weights (some generic), and
    1-2 seeds: any graph the compiler can make, and more."""
    n_sinks = draw(st.integers(1, 3))
    size = draw(st.integers(0, 12))
    records: list = [SINK] * n_sinks
    for k in range(n_sinks, n_sinks + size):
        if draw(st.integers(0, 5)) == 0:
            records.append(("generic-doubling", draw(st.integers(0, k - 1))))
            continue
        fields = []
        for _ in range(draw(st.integers(1, 3))):
            fields += [draw(st.integers(0, k - 1)), draw(st.floats(-3, 3, allow_nan=False, width=32))]
        records.append(tuple(fields))
    top = len(records) - 1
    seeds = [(draw(st.integers(0, top)), draw(st.floats(-2, 2, allow_nan=False, width=32)))
             for _ in range(draw(st.integers(1, 2)))]
    return records, seeds, n_sinks


def _bind(records: list, backend) -> list:
    """The generic stand-ins made real for one backend."""
    return [(GENERIC, Doubling(backend), (r[1],)) if r and r[0] == "generic-doubling" else r for r in records]


@settings(max_examples=150, deadline=None)
@given(record_graphs())
def test_watched_factoring_is_the_real_sweep(graph) -> None:
    records, seeds, n_sinks = graph
    real = Factoring(Counters(), counting=True)
    expected = real.backward(_bind(records, real), seeds, n_sinks)
    watched = WatchedFactoring(Counters())
    watched.log = log = Pass("backprop")
    got = watched.backward(_bind(records, watched), seeds, n_sinks)
    assert got == expected  # the same float operations in the same order: equal to the last bit
    assert log.gradient == expected
    assert log.runs == real.counters.bp_run
    assert log.merges == real.counters.merges
    assert [s.node for s in log.steps] == sorted({s.node for s in log.steps}, reverse=True)  # largest first


@settings(max_examples=150, deadline=None)
@given(record_graphs())
def test_watched_naive_is_the_real_naive(graph) -> None:
    records, seeds, n_sinks = graph
    real = Naive(Counters(), counting=True)
    expected = real.backward(_bind(records, real), seeds, n_sinks)
    watched = WatchedNaive(Counters())
    watched.log = log = Pass("backprop-naive")
    assert watched.backward(_bind(records, watched), seeds, n_sinks) == expected
    assert log.runs == real.counters.bp_run
    assert sum(log.sink_counts) == real.counters.sink_updates


def test_unwatched_backends_take_the_normal_path() -> None:
    """No log: the watched classes are the real ones (what a run outside :graph/:step would do)."""
    records, seeds = [SINK, (0, 3.0, 0, 3.0)], [(1, 1.0)]
    assert WatchedFactoring(Counters()).backward(records, seeds, 1) == [6.0]
    assert WatchedNaive(Counters()).backward(records, seeds, 1) == [6.0]


# ---- repeated squaring, by hand ------------------------------------------------------------


def _typed(text: str):
    program = load_source(SQUARINGS + f"def main = {text}\n")
    return program.world, run_deep(lambda: main_call(program, []))


def test_repeated_squaring_bodies_and_calls() -> None:
    x = 1.1
    for n in range(1, 8):
        world, typed = _typed(f"grad (squarings {n}) {x}")
        f, nv = watch(world, typed, "backprop"), watch(world, typed, "backprop-naive")
        exact = 2 ** n * x ** (2 ** n - 1)  # d/dx x^(2^n)
        assert math.isclose(f.value, exact, rel_tol=1e-12) and math.isclose(nv.value, exact, rel_tol=1e-12)
        assert f.backward.runs == n                      # each body once
        assert f.backward.merges == n                    # v(k)' calls v(k-1)' twice: one merge per level
        assert nv.backward.runs == 2 ** (n + 1) - 1      # 1 + 2 + ... + 2^n calls, the sink's included
        assert nv.backward.merges == 0
        assert nv.backward.sink_counts == [2 ** n] and len(nv.backward.sink_calls[0]) == 2 ** n


def test_repeated_squaring_arguments() -> None:
    """Factoring runs v(k)' once on the summed argument a(k) = prod_{j>k} 2 y(j-1), y(j) = x^(2^j); naive
    calls it 2^(n-k) times on the unsummed share, a(k) / 2^(n-k)."""
    x, n = 1.1, 3
    world, typed = _typed(f"grad (squarings {n}) {x}")
    f, nv = watch(world, typed, "backprop").backward, watch(world, typed, "backprop-naive").backward
    y = [x ** (2 ** j) for j in range(n + 1)]
    a = {n: 1.0}
    for k in range(n - 1, -1, -1):
        a[k] = a[k + 1] * 2 * y[k]
    assert [s.node for s in f.steps] == [3, 2, 1]
    for s in f.steps:
        assert math.isclose(s.argument, a[s.node], rel_tol=1e-14)
        assert [c.source for c in s.calls] == ([None] if s.node == n else [s.node + 1, s.node + 1])
        assert [c.merged for c in s.calls] == ([False] if s.node == n else [False, True])
    assert math.isclose(f.gradient[0], a[0], rel_tol=1e-14)
    for s in nv.steps:
        assert s.depth == n - s.node
        assert math.isclose(s.argument, a[s.node] / 2 ** (n - s.node), rel_tol=1e-14)
    # depth-first: v3', v2', v1', x', x', v1', x', x', v2', ...
    assert [s.node for s in nv.steps[:9]] == [3, 2, 1, 0, 0, 1, 0, 0, 2]


def test_transcript_side_by_side() -> None:
    world, typed = _typed("grad (squarings 3) 1.1")
    t = step(world, typed, "grad (squarings 3) 1.1")
    assert labels(t.factoring.computation, t.factoring.backward) == {
        1: "v1 = x * x", 2: "v2 = v1 * v1", 3: "v3 = v2 * v2"}
    left, right = factoring_rows(t.factoring.backward), naive_rows(t.naive.backward)
    assert [r[:2] for r in left] == [("1", "v3'"), ("2", "v2'"), ("3", "v1'"), ("sink", "x'")]
    assert left[1][3] == "v3' + v3'  (2 calls merged)"
    assert left[3][2] == f"{8 * 1.1 ** 7:.8g}"
    assert len(right) == 15 + 1 and right[3][1] == "      x' +=" and right[-1][3] == "8 calls added"
    text = show_transcript(t)
    lines = text.splitlines()
    assert lines[0] == "-- :step grad (squarings 3) 1.1: the backward pass of its first derivative call, one step at a time"
    assert "v1' of v1 = x * x" in lines[1]
    rows = [line for line in lines if "|" in line]
    assert len(rows) == 2 + 16  # titles, headers, then the longer (naive) column
    assert all(line.index("|") == rows[0].index("|") for line in rows)  # the columns line up
    assert lines[-2] == ("backprop: 3 bodies run, 3 calls merged into pending ones;  "
                         "backprop-naive: 15 calls (sinks included)")
    assert lines[-1] == "the sinks hold the same gradient in both"


def test_two_inputs_and_what_reached_each_sink() -> None:
    """f (x, y) = sin (x y) + x: x' is reached from + and from *, y' from * only."""
    world, typed = _typed("grad (fun (x, y) -> sin (x * y) + x) (0.7, 1.3)")
    t = step(world, typed, "...")
    p = t.factoring.backward
    x, y = 0.7, 1.3
    assert math.isclose(p.gradient[0], y * math.cos(x * y) + 1, rel_tol=1e-14)
    assert math.isclose(p.gradient[1], x * math.cos(x * y), rel_tol=1e-14)
    assert [c.source for c in p.sink_calls[0]] == [4, 2] and [c.source for c in p.sink_calls[1]] == [2]
    assert factoring_rows(p)[-2] == ("sink", "x1'", f"{p.gradient[0]:.8g}", "v4' + v2'  (2 calls merged)")


def test_the_watched_run_agrees_with_the_plain_run() -> None:
    """The value a watched run computes is the program's (bit for bit, factoring)."""
    source = "def f (a, b) = let c = a * b in sin c * c + exp (a - b)\n"
    text = "value_and_grad f (0.3, -1.2)"
    program = load_source(source + f"def main = {text}\n")
    typed = run_deep(lambda: main_call(program, []))
    assert watch(program.world, typed).value == run(source + f"def main = {text}\n")


def test_naive_past_its_budget() -> None:
    """Naive repeated squaring at n = 24 makes 2^25 calls: the stepper shows factoring and says naive
    did not finish."""
    world, typed = _typed("grad (squarings 24) 1.0000001")
    t = step(world, typed, "grad (squarings 24) 1.0000001", budget=1.0)
    assert t.naive is None
    text = show_transcript(t)
    assert "backprop-naive: did not finish within 1 s" in text
    assert t.factoring.backward.runs == 24


def test_step_command_and_cli() -> None:
    state, _ = execute(new_state(), SQUARINGS.strip())
    _, out = execute(state, ":step grad (squarings 2) 3.0")
    assert not out.error and out.rich is not None
    assert "backprop-naive: 7 calls (sinks included)" in out.text
    _, out = execute(state, ":step 1.0 + 2.0")
    assert out.text.startswith("-- `1.0 + 2.0` makes no reverse-mode derivative call") and out.rich is None
    _, out = execute(state, ":step grad (squarings 2) true")
    assert out.error and "type error" in out.text
    code, stdout, _ = cli("step", str(ROOT / "examples" / "sharing.dl"), "3")
    assert code == 0
    assert "backprop: 3 bodies run, 3 calls merged" in stdout and "backprop-naive: 15 calls" in stdout
