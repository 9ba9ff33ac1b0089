"""Measuring the modes side by side on cost and accuracy: the data of `dl compare` and `:compare`.

For each size n (with `--sweep n=...`, main is applied to n) and each mode,
`main` runs on a fresh machine, timed: the first run compiles and transforms
as it goes; when it took less than a second, up to five more runs within
about a second give the fastest (a `main` that is a value is computed again
each time), else the first run's time is reported. Then `main` runs once on
a second machine whose code counts (counting is compiled in, so it cannot
share the timed machine's code). With `memory=True` that machine runs it
once more, compiled, under tracemalloc. Each row reports

    error      normwise relative error of main's value against backprop's:
               max |a - b| over all its reals, over the largest of them
    term       nodes of the terms the mode compiled (transformed definitions and
               lambdas; for symbolic, the unrolled expression and its derivatives)
    (extras)   counters a mode reports of its own, such as chad's ct_leaves
    prims      primitive operations executed
    apps       function applications (beta steps)
    bp_apps    backpropagator applications (bodies run; tape: nodes swept)
    time       wall time, seconds          memory   peak traced memory, bytes (memory=True)

and the ratio of each cost to the *primal* run — main with every derivative
call replaced by a plain call of the function. With a sweep, the growth
exponent of each metric is the least-squares slope of log(metric) against
log(n). A row whose value differs from backprop's by more than its mode's
tolerance (the mode table's `tolerance`, the test of `:gradcheck`) is
marked as disagreeing.

The budget bounds the evaluation the user asked for, not the measuring
around it (docs/transforms.md, Reading dl compare): a mode whose first run
takes more than `budget` seconds is stopped and shown as `timeout`. The
counted run, which counting slows by a bounded factor (up to about 2.5),
may take three times as long as the first run did, and at least the
budget. Memory tracing slows a run 10 to 60 times (deep recursion more), so
it is opt-in; the traced run gets the budget, and past it the row's memory
is left out with a note.
"""
from __future__ import annotations

import math
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable

from ..back.deep import Timeout, run_deep
from ..back.machine import Machine
from ..model.errors import DlError
from ..modes.table import ALL, REFERENCE, Mode

METRICS = ("term", "prims", "apps", "bp_apps", "time", "memory")


def metric_names(rows: list) -> list[str]:
    """METRICS, then the counters of their own that some modes report (chad's `ct_leaves`), in the order met:
    they get columns, ratios and growth exponents too."""
    names = list(METRICS)
    for r in rows:
        names += [k for k in r.metrics if k not in names]
    return names
REPEAT_BELOW = 1.0       # a first run quicker than this is timed again, compiled (the fastest of up to 5)
COUNTING_ALLOWANCE = 3.0  # the counted run may take this many times the timed run (and at least the budget)


@dataclass
class Row:
    mode: str
    n: int | None
    status: str = "ok"              # ok | timeout | error: ...
    value: Any = None
    error: float | None = None
    agrees: bool | None = None      # within the mode's tolerance of backprop's value (None: not compared)
    metrics: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)   # what was not measured, and why

    @property
    def shown_status(self) -> str:
        """The status as tables print it: `disagrees` for a run whose value is out of tolerance."""
        return "disagrees" if self.status == "ok" and self.agrees is False else self.status


@dataclass
class Report:
    rows: list[Row]
    exponents: dict            # mode -> metric -> slope (sweeps only)
    sizes: list


def _reals(v: Any, out: list) -> list:
    if type(v) is float:
        out.append(v)
    elif type(v) in (tuple, list):
        for x in v:
            _reals(x, out)
    elif type(v) is int and not isinstance(v, bool):
        out.append(float(v))
    elif type(v).__name__ == "ndarray":  # an Array: its elements, row-major
        out.extend(v.ravel().tolist())
    return out


def max_relative_error(value: Any, reference: Any) -> float:
    """Normwise relative error: max |a - b| over the reals of the values, over the largest |a| or |b|.

    (Component by component, a gradient entry that is exactly 0 would make any
    rounding look like a 100% error.)"""
    a, b = _reals(value, []), _reals(reference, [])
    if len(a) != len(b):
        return math.inf
    if any((x != x) != (y != y) for x, y in zip(a, b)):
        return math.inf
    pairs = [(x, y) for x, y in zip(a, b) if x == x and y == y]
    worst = max((abs(x - y) for x, y in pairs if x != y), default=0.0)
    if worst == 0.0:
        return 0.0
    scale = max(max(abs(x), abs(y)) for x, y in pairs)
    return worst / scale if scale > 0 and math.isfinite(scale) else math.inf


def disagrees(value: Any, reference: Any, tol: float) -> bool:
    """Whether two results differ by more than `tol`, relative to the larger of the two numbers or, for
    numbers near zero, to the largest number of the reference (finite differences of a zero derivative
    are tiny, not zero). A non-finite number against a different one always disagrees.

    The one test of agreement: `:gradcheck` and `dl compare` both flag what it flags."""
    a, b = _reals(value, []), _reals(reference, [])
    if len(a) != len(b):
        return True
    scale = max((abs(y) for y in b if math.isfinite(y)), default=0.0)
    for x, y in zip(a, b):
        if x == y or (x != x and y != y):
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            return True
        if abs(x - y) > tol * max(abs(x), abs(y), scale, 1e-300):
            return True
    return False


def measure(world, make_call: Callable[[], Any], mode: Mode, budget: float, memory: bool = False,
            preaccumulate: bool = True) -> Row:
    """Run one mode: its value and metrics, or the reason it has none (see the module docstring)."""
    row = Row(mode.name, None)
    timed: dict = {}  # the timed machine and its compiled `main`

    def first_run() -> tuple[Any, float]:
        """The evaluation the budget bounds: compiling and transforming as it goes."""
        machine = Machine(world, mode=mode, preaccumulate=preaccumulate)
        run = machine.compile_expression(make_call())
        timed.update(machine=machine, run=run)
        start = time.perf_counter()
        value = run()
        return value, time.perf_counter() - start

    def repeats() -> float:
        """The fastest of up to five more runs within about a second, the code compiled."""
        best, spent = math.inf, 0.0
        for _ in range(5):
            timed["machine"].forget_values()  # a `main` that is a value is computed again
            start = time.perf_counter()
            timed["run"]()
            took = time.perf_counter() - start
            best, spent = min(best, took), spent + took
            if spent > REPEAT_BELOW:
                break
        return best

    counted_machine: list[Machine] = []

    def counted() -> dict:
        """The counters of one run (exact: counting is compiled into this machine's code)."""
        machine = Machine(world, mode=mode, counting=True, preaccumulate=preaccumulate)
        counted_machine.append(machine)
        machine.compile_expression(make_call())()
        return machine.runtime.metrics(machine)

    def traced() -> int:
        """tracemalloc's peak over one more run on the counted machine, its code compiled already (so the
        peak is the evaluation's, not the compiler's)."""
        machine = counted_machine[0]
        run = machine.compile_expression(make_call())
        machine.forget_values()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    try:
        row.value, first = run_deep(first_run, budget=budget)
        elapsed = first
        if first < REPEAT_BELOW:
            try:  # each repeat is quicker than the first run: they cannot reach the budget but on a hiccup
                elapsed = run_deep(repeats, budget=budget)
            except Timeout:
                pass
        metrics = run_deep(counted, budget=max(budget, COUNTING_ALLOWANCE * first))
    except Timeout:
        row.status = "timeout"
        return row
    except DlError as e:
        row.status = f"error: {e.message}"
        return row
    except RecursionError:
        row.status = "error: stack overflow"
        return row
    row.metrics = {**metrics, "time": elapsed}
    if memory:
        try:
            row.metrics["memory"] = run_deep(traced, budget=budget)
        except Timeout:
            row.notes.append(f"memory not measured: tracing the run took more than the budget ({budget:g} s)")
        except (DlError, RecursionError) as e:  # it ran untraced; tracing's own frames can overflow
            row.notes.append(f"memory not measured: {getattr(e, 'message', 'stack overflow')}")
    return row


def compare(world, make_call: Callable[[int | None], Any], sizes: list, modes: list[Mode], budget: float,
            progress: Callable[[str, int, int], None] | None = None, memory: bool = False,
            preaccumulate: bool = True) -> Report:
    """Measure every mode at every size, with errors against the reference mode (backprop), agreement
    within each mode's tolerance, and ratios to the primal run (`preaccumulate`: False runs backprop on ←D's
    unsimplified term, docs/transforms.md, Preaccumulation)."""
    rows: list[Row] = []
    total = len(sizes) * (len(modes) + 1)
    done = 0
    for n in sizes:
        primal = measure(world, lambda: make_call(n), ALL["primal"], budget, memory)
        done += 1
        by_mode = {}
        for mode in modes:
            if progress:
                progress(f"n={n} {mode.name}" if n is not None else mode.name, done, total)
            row = measure(world, lambda: make_call(n), mode, budget, memory, preaccumulate)
            row.n = n
            by_mode[mode.name] = row
            done += 1
        reference = by_mode.get(REFERENCE.name)
        for mode in modes:
            row = by_mode[mode.name]
            if row.status == "ok" and reference is not None and reference.status == "ok":
                row.error = max_relative_error(row.value, reference.value)
                row.agrees = not disagrees(row.value, reference.value, mode.tolerance)
            if row.status == "ok" and primal.status == "ok":
                row.ratios = {k: (row.metrics[k] / primal.metrics[k] if primal.metrics.get(k) else None)
                              for k in row.metrics}
            rows.append(row)
    if progress:
        progress("done", total, total)
    exponents = {}
    if len(sizes) > 1 and all(isinstance(n, int) for n in sizes):
        for mode in modes:
            exponents[mode.name] = {}
            for k in metric_names(rows):
                pts = [(math.log(r.n), math.log(r.metrics[k])) for r in rows
                       if r.mode == mode.name and r.status == "ok" and r.metrics.get(k) and r.n and r.n > 0]
                exponents[mode.name][k] = _slope(pts)
    return Report(rows, exponents, sizes)


def _slope(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx
