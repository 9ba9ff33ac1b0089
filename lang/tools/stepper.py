"""The stepper: a backward pass one step at a time, backprop and backprop-naive side by side (`:step`).

The expression is run twice with its first derivative call watched
(lang/tools/watch.py): once with linear factoring, once naively. The
transcript puts the two backward passes in two columns, one row per step:

    factoring   a row per backpropagator body run: which one, on what argument, and the pending
                calls that were summed into that argument (the rule `t u + t v -> t (u + v)`);
                then, per input, what reached its sink
    naive       a row per call, indented by its depth in the call tree: which backpropagator,
                on what argument, called by whom; a call of a sink adds into the gradient

On repeated squaring the left column stops after n rows while the right one
runs to 2^(n+1) - 1: the exponential blow-up and its cure, step by step.
Backpropagators are named after the values they belong to (v2' belongs to
v2 = v1 * v1, x' is the input's sink), as in docs/transforms.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..model import core as c
from ..back.deep import Timeout
from .watch import Call, Pass, Watch, input_name, labels, show_number, watch

MAX_ROWS = 200   # rows shown per column; the rest are counted


@dataclass
class Transcript:
    """The two watched runs of one expression (naive is None when it ran past the budget)."""
    what: str            # the expression, as typed
    factoring: Watch
    naive: Watch | None
    budget: float | None = None

    @property
    def labels(self) -> dict[int, str]:
        """The operation of each backpropagator, when the computation graph matches the records."""
        w = self.factoring
        return labels(w.computation, w.backward) if w.backward else {}


def step(world, typed: c.Expr, what: str, budget: float | None = None) -> Transcript:
    """Watch the first derivative call of `typed` under linear factoring and naively; the naive run
    may be stopped by the budget (its cost is exponential on sharing), the factoring one may not."""
    factoring = watch(world, typed, "backprop", budget=budget)
    try:
        naive = watch(world, typed, "backprop-naive", budget=budget)
    except Timeout:
        naive = None
    return Transcript(what, factoring, naive, budget)


def bp_name(k: int, n_sinks: int) -> str:
    """The name of backpropagator k: x' for an input's sink, v{k}' for an operation's."""
    return (input_name(k, n_sinks) if k < n_sinks else f"v{k}") + "'"


def _sources(calls, n_sinks: int) -> str:
    """Who made a list of calls: `v3' + v3' (2 calls merged)`, `seed`."""
    names = ["seed" if x.source is None else bp_name(x.source, n_sinks) for x in calls]
    shown = " + ".join(names[:4]) + (f" + ... ({len(names)} calls)" if len(names) > 4 else "")
    return shown + (f"  ({len(names)} calls merged)" if 1 < len(names) <= 4 else "")


def _calls(k: int) -> str:
    return f"{k} call" + ("" if k == 1 else "s")


def factoring_rows(p: Pass) -> list[tuple[str, ...]]:
    """(step, body, argument, calls merged into it), then one row per sink."""
    n = p.n_sinks
    rows = [(str(i), bp_name(s.node, n), show_number(s.argument), _sources(s.calls, n))
            for i, s in enumerate(p.steps[:MAX_ROWS], 1)]
    if p.runs > MAX_ROWS:
        rows.append(("...", "", "", f"{p.runs - MAX_ROWS} more steps"))
    for k, calls in enumerate(p.sink_calls):
        rows.append(("sink", bp_name(k, n), show_number(p.gradient[k]), _sources(calls, n) if calls else "nothing"))
    return rows


def naive_rows(p: Pass) -> list[tuple[str, ...]]:
    """(call, body indented by depth, argument, caller); a sink's call adds into the gradient."""
    n = p.n_sinks
    rows = []
    for i, s in enumerate(p.steps[:MAX_ROWS], 1):
        call: Call = s.calls[0]
        body = "  " * s.depth + bp_name(s.node, n) + (" +=" if s.node < n else "")
        rows.append((str(i), body, show_number(s.argument), "seed" if call.source is None else bp_name(call.source, n)))
    if p.runs > MAX_ROWS:
        rows.append(("...", "", "", f"{p.runs - MAX_ROWS} more calls"))
    for k in range(n):
        rows.append(("sink", bp_name(k, n), show_number(p.gradient[k]), f"{_calls(p.sink_counts[k])} added"))
    return rows


HEADERS = {"factoring": ("step", "runs", "on a =", "the calls summed into a"),
           "naive": ("call", "runs", "on a =", "called by")}
TITLES = {"factoring": "backprop: each body runs once", "naive": "backprop-naive: each call runs at once"}


def summary(t: Transcript) -> list[str]:
    """What the transcript shows, in words: the sizes of the two passes and whether they agree."""
    f = t.factoring.backward
    head = f"backprop: {f.runs} bodies run, {_calls(f.merges)} merged into pending ones;  "
    if t.naive is None:
        return [head + f"backprop-naive: did not finish within {t.budget:g} s"]
    n = t.naive.backward
    lines = [head + f"backprop-naive: {_calls(n.runs)} (sinks included)"]
    agree = all(abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0) for a, b in zip(f.gradient, n.gradient))
    lines.append("the sinks hold the same gradient in both" if agree else
                 "the sinks differ: " + ", ".join(show_number(x) for x in f.gradient) + " against "
                 + ", ".join(show_number(x) for x in n.gradient))
    return lines


def preamble(t: Transcript) -> list[str]:
    """The title, the backpropagators' operations, the seeds, and which derivative call it is."""
    w = t.factoring
    p = w.backward
    lines = [f"-- :step {t.what}: the backward pass of its first derivative call, one step at a time"]
    if w.calls > 1:
        lines.append(f"-- (the expression made {w.calls} derivative calls; this is the first)")
    names = t.labels
    if names:
        ops = ", ".join(f"{bp_name(k, p.n_sinks)} of {names[k]}" for k in sorted(names)[:8])
        lines.append(f"-- backpropagators: {ops}{', ...' if len(names) > 8 else ''}; "
                     f"{', '.join(bp_name(k, p.n_sinks) for k in range(p.n_sinks))}: "
                     + ("the input's sink" if p.n_sinks == 1 else "the inputs' sinks"))
    elif w.computation is not None and w.computation.refused:
        lines.append(f"-- (no operation names: the computation graph is not available: {w.computation.refused})")
    lines.append("-- seeds: " + ", ".join(f"{bp_name(k, p.n_sinks)} called on {show_number(v)}" for k, v in p.seeds))
    return lines


def show_transcript(t: Transcript) -> str:
    """The transcript as text: two columns, one row per step."""
    if t.factoring.backward is None:
        return no_derivative(t.what)
    left = [HEADERS["factoring"], *factoring_rows(t.factoring.backward)]
    right = [HEADERS["naive"], *naive_rows(t.naive.backward)] if t.naive else [("", "did not finish", "", "")]
    lw = _widths(left)
    rw = _widths(right)
    lwidth = max(sum(lw) + 2 * (len(lw) - 1), len(TITLES["factoring"]))
    lines = preamble(t)
    lines.append(f"{TITLES['factoring']:<{lwidth}}  |  {TITLES['naive']}")
    for k in range(max(len(left), len(right))):
        a = _line(left[k], lw) if k < len(left) else ""
        b = _line(right[k], rw) if k < len(right) else ""
        lines.append(f"{a:<{lwidth}}  |  {b}".rstrip())
    lines += summary(t)
    return "\n".join(lines)


def no_derivative(what: str) -> str:
    """What :step and :graph say about an expression that makes no reverse-mode derivative call."""
    return (f"-- `{what}` makes no reverse-mode derivative call (grad, value_and_grad, vjp): there is no backward pass "
            "to show; try e.g. grad f 1.0")


def _widths(rows: list[tuple[str, ...]]) -> list[int]:
    return [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join([row[0].rjust(widths[0])] + [cell.ljust(w) for cell, w in zip(row[1:], widths[1:])])
