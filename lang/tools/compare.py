"""Measuring the modes side by side on cost and accuracy: the data of `dl compare` and `:compare`.

For each size n (with `--sweep n=...`, main is applied to n) and each mode,
`main` runs on a fresh machine, first to compile and transform it, then timed
(the fastest of up to five runs within a second; a `main` that is a value is
computed again each time), and on a second machine with the cost counters and
tracemalloc on (after one warm-up run unless the first run was slow, so that
the peak is the evaluation's, not the compiler's). Each row reports

    error      normwise relative error of main's value against backprop's:
               max |a - b| over all its reals, over the largest of them
    term       nodes of the terms the mode compiled (transformed definitions and
               lambdas; for symbolic, the unrolled expression and its derivatives)
    prims      primitive operations executed
    apps       function applications (beta steps)
    bp_apps    backpropagator applications (bodies run; tape: nodes swept)
    time       wall time, seconds          memory   peak traced memory, bytes

and the ratio of each cost to the *primal* run — main with every derivative
call replaced by a plain call of the function. With a sweep, the growth
exponent of each metric is the least-squares slope of log(metric) against
log(n). A run past the budget is stopped and shown as `timeout`.
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


@dataclass
class Row:
    mode: str
    n: int | None
    status: str = "ok"              # ok | timeout | error: ...
    value: Any = None
    error: float | None = None
    metrics: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)


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


def measure(world, make_call: Callable[[], Any], mode: Mode, budget: float) -> Row:
    """Run one mode: (value, metrics), or the reason it has none."""
    row = Row(mode.name, None)

    def timed() -> tuple[Any, float]:
        machine = Machine(world, mode=mode)
        run = machine.compile_expression(make_call())
        start = time.perf_counter()
        value = run()
        first = time.perf_counter() - start
        if first > budget / 3:
            return value, first
        best, spent = math.inf, 0.0
        for _ in range(5):  # the fastest of up to 5 runs within a second, its code compiled
            machine.forget_values()  # a `main` that is a value is computed again
            start = time.perf_counter()
            value = run()
            took = time.perf_counter() - start
            best, spent = min(best, took), spent + took
            if spent > 1.0:
                break
        return value, best

    def counted(warm: bool) -> tuple[Machine, int]:
        machine = Machine(world, mode=mode, counting=True)
        run = machine.compile_expression(make_call())
        if warm:  # compile every function first: the peak is the evaluation's, not the compiler's
            run()
            machine.forget_values()
            machine.counters.reset()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            run()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return machine, peak

    try:
        started = time.perf_counter()
        row.value, elapsed = run_deep(timed, budget=budget)
        remaining = max(budget - (time.perf_counter() - started), budget / 2)
        machine, peak = run_deep(lambda: counted(elapsed < budget / 20), budget=remaining)
    except Timeout:
        row.status = "timeout"
        return row
    except DlError as e:
        row.status = f"error: {e.message}"
        return row
    except RecursionError:
        row.status = "error: stack overflow"
        return row
    row.metrics = {**machine.runtime.metrics(machine), "time": elapsed, "memory": peak}
    return row


def compare(world, make_call: Callable[[int | None], Any], sizes: list, modes: list[Mode], budget: float,
            progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Measure every mode at every size, with errors against the reference mode (backprop) and ratios to
    the primal run."""
    rows: list[Row] = []
    total = len(sizes) * (len(modes) + 1)
    done = 0
    for n in sizes:
        primal = measure(world, lambda: make_call(n), ALL["primal"], budget)
        done += 1
        by_mode = {}
        for mode in modes:
            if progress:
                progress(f"n={n} {mode.name}" if n is not None else mode.name, done, total)
            row = measure(world, lambda: make_call(n), mode, budget)
            row.n = n
            by_mode[mode.name] = row
            done += 1
        reference = by_mode.get(REFERENCE.name)
        for mode, row in by_mode.items():
            if row.status == "ok" and reference is not None and reference.status == "ok":
                row.error = max_relative_error(row.value, reference.value)
            if row.status == "ok" and primal.status == "ok":
                row.ratios = {k: (row.metrics[k] / primal.metrics[k] if primal.metrics[k] else None)
                              for k in METRICS}
            rows.append(row)
    if progress:
        progress("done", total, total)
    exponents = {}
    if len(sizes) > 1 and all(isinstance(n, int) for n in sizes):
        for mode in modes:
            exponents[mode.name] = {}
            for k in METRICS:
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


