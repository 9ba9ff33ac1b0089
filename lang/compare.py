"""`dl compare`: the modes side by side on cost and accuracy (SPEC §12).

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

import json
import math
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable

from .deep import Timeout, run_deep
from .errors import DlError, DlRuntimeError
from .machine import MODES, Machine

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


def measure(world, make_call: Callable[[], Any], mode: str, budget: float) -> Row:
    """Run one mode: (value, metrics), or the reason it has none."""
    row = Row(mode, None)

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
    counts = machine.counters.as_dict()
    extra = machine.counters.extra
    term = sum(comp.term_size for comp in machine.ad.compilers.values())
    if mode == "symbolic":
        term = extra.get("expression_size", 0) + extra.get("derivative_size", 0)
        counts["prims"] += extra.get("evaluation_steps", 0)  # evaluating the derivative trees
    elif mode in ("tape", "numeric", "primal"):
        term = machine.primal.term_size
    row.metrics = {
        "term": term, "prims": counts["prims"], "apps": counts["betas"],
        "bp_apps": counts["bp_run"], "time": elapsed, "memory": peak,
    }
    return row


def compare(world, make_call: Callable[[int | None], Any], sizes: list, modes: list[str], budget: float,
            progress: Callable[[str], None] | None = None) -> Report:
    """Measure every mode at every size, with errors against backprop and ratios to the primal run."""
    rows: list[Row] = []
    total = len(sizes) * (len(modes) + 1)
    done = 0
    for n in sizes:
        primal = measure(world, lambda: make_call(n), "primal", budget)
        done += 1
        by_mode = {}
        for mode in modes:
            if progress:
                progress(f"n={n} {mode}" if n is not None else mode, done, total)
            row = measure(world, lambda: make_call(n), mode, budget)
            row.n = n
            by_mode[mode] = row
            done += 1
        reference = by_mode.get("backprop")
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
            exponents[mode] = {}
            for k in METRICS:
                pts = [(math.log(r.n), math.log(r.metrics[k])) for r in rows
                       if r.mode == mode and r.status == "ok" and r.metrics.get(k) and r.n and r.n > 0]
                exponents[mode][k] = _slope(pts)
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


# ---- output -------------------------------------------------------------------------


def _fmt(v: Any, kind: str = "") -> str:
    if v is None:
        return "-"
    if kind == "time":
        return f"{v:.3g}"
    if kind == "error":
        return "0" if v == 0 else f"{v:.1e}"
    if kind == "ratio":
        return f"{v:.2f}" if v < 1000 else f"{v:.3g}"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, int) and v >= 10 ** 9:
        return f"{v:.3g}"
    return str(v)


def format_table(report: Report) -> str:
    headers = ["n", "mode", "status", "error", "term", "prims", "apps", "bp_apps", "time s", "memory B",
               "time/primal", "prims/primal", "bp/primal-prims"]
    table = []
    for r in report.rows:
        m, q = r.metrics, r.ratios
        bp_ratio = (m["bp_apps"] / r_primal_prims(report, r)) if r.status == "ok" and r_primal_prims(report, r) else None
        table.append([
            "" if r.n is None else str(r.n), r.mode, r.status if r.status in ("ok", "timeout") else "error",
            _fmt(r.error, "error"), _fmt(m.get("term")), _fmt(m.get("prims")), _fmt(m.get("apps")),
            _fmt(m.get("bp_apps")), _fmt(m.get("time"), "time"), _fmt(m.get("memory")),
            _fmt(q.get("time"), "ratio"), _fmt(q.get("prims"), "ratio"), _fmt(bp_ratio, "ratio"),
        ])
    if all(r.n is None for r in report.rows):
        headers, table = headers[1:], [row[1:] for row in table]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in table:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    errors = [r for r in report.rows if r.status.startswith("error")]
    for r in errors:
        lines.append(f"  {r.mode}{'' if r.n is None else f' (n={r.n})'}: {r.status}")
    if report.exponents:
        lines.append("")
        lines.append("growth exponents (slope of log cost against log n):")
        metric_names = ["prims", "apps", "bp_apps", "term", "time", "memory"]
        lines.append("  " + "mode".ljust(16) + "".join(k.rjust(10) for k in metric_names))
        for mode, slopes in report.exponents.items():
            lines.append("  " + mode.ljust(16) + "".join(
                (f"{slopes[k]:.2f}" if slopes.get(k) is not None else "-").rjust(10) for k in metric_names))
    return "\n".join(lines)


def r_primal_prims(report: Report, row: Row) -> float | None:
    """Backpropagator applications per primal primitive operation."""
    if not row.ratios or row.ratios.get("prims") in (None, 0):
        return None
    return row.metrics["prims"] / row.ratios["prims"]


def format_csv(report: Report) -> str:
    cols = ["n", "mode", "status", "error"] + list(METRICS) + [f"{k}_ratio" for k in METRICS]
    lines = [",".join(cols)]
    for r in report.rows:
        vals = ["" if r.n is None else str(r.n), r.mode, r.status.replace(",", ";"),
                "" if r.error is None else repr(r.error)]
        vals += ["" if r.metrics.get(k) is None else repr(r.metrics[k]) for k in METRICS]
        vals += ["" if r.ratios.get(k) is None else repr(r.ratios[k]) for k in METRICS]
        lines.append(",".join(vals))
    return "\n".join(lines)


def format_json(report: Report) -> str:
    rows = [{"n": r.n, "mode": r.mode, "status": r.status, "error": r.error, "metrics": r.metrics,
             "ratios": r.ratios} for r in report.rows]
    return json.dumps({"rows": rows, "exponents": report.exponents}, indent=2, default=_json_default)


def _json_default(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return str(v)


def plot(report: Report, path: str) -> str | None:
    """Log-log plots of time, primitive operations and backpropagator applications against n;
    None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = ((axes[0], "time", "wall time (s)"), (axes[1], "prims", "primitive operations"),
              (axes[2], "bp_apps", "backpropagator applications"))
    for ax, metric, label in panels:
        for mode in dict.fromkeys(r.mode for r in report.rows):
            pts = [(r.n, r.metrics[metric]) for r in report.rows
                   if r.mode == mode and r.status == "ok" and r.metrics.get(metric) and r.n]
            if pts:
                ax.loglog(*zip(*pts), marker="o", label=mode)
        ax.set_xlabel("n")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---- the command -------------------------------------------------------------------


def parse_sweep(text: str | None) -> list:
    """`n=10,100,1000` (also `n=1..10`) into [10, 100, 1000]; ValueError, in words, for anything else."""
    if not text:
        return [None]
    name, eq, values = text.partition("=")
    if name.strip() != "n" or not eq or not values.strip():
        raise ValueError(f"expected n=10,100,1000 or n=1..10, not {text!r}")
    out = []
    for part in values.split(","):
        lo, dots, hi = part.strip().partition("..")
        bounds = [lo, hi] if dots else [lo]
        if not all(b.strip().lstrip("-").isdigit() for b in bounds):
            raise ValueError(f"{part.strip()!r} in {text!r} is not an integer or a range a..b of integers")
        if dots:
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(lo))
    if not out:
        raise ValueError(f"the range in {text!r} is empty")
    return out


class _Progress:
    """A one-line progress bar on stderr (only when it is a terminal or the run is long)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if not sys.stderr.isatty() and time.monotonic() - self.start < 2:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what:<28}"
        sys.stderr.write(line)
        sys.stderr.flush()
        self.shown = True
        if done >= total:
            sys.stderr.write("\n")


def compare_command(args) -> int:
    from .pipeline import find_def, load, main_call
    from .types import TFun, prune
    program = load(args.file)
    sizes = parse_sweep(args.sweep)
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else list(MODES)
    for m in modes:
        if m not in MODES:
            print(f"dl: unknown mode {m!r} (modes: {', '.join(MODES)})", file=sys.stderr)
            return 2

    def make_call(n):
        return main_call(program, [] if n is None else [str(n)])

    # report argument errors before measuring anything
    if isinstance(prune(make_call(sizes[0]).ty), TFun):
        raise DlRuntimeError("main takes an argument: give its values with --sweep n=10,100,1000",
                             find_def(program, "main").name_span)
    progress = None if args.format == "json" else _Progress()
    report = compare(program.world, make_call, sizes, modes, args.budget, progress)
    text = {"table": format_table, "csv": format_csv, "json": format_json}[args.format](report)
    print(text)
    if args.plot:
        if plot(report, args.plot) is None:
            print("dl: --plot needs matplotlib (pip install 'dl-lang[plot]'); no plot written", file=sys.stderr)
        else:
            print(f"dl: plot written to {args.plot}", file=sys.stderr)
    return 0
