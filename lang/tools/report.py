"""Reports as text: the `dl compare` table, CSV and JSON, the log-log plot, the cost counters.

Measuring is lang/tools/compare.py; this module only formats what it returns.
"""
from __future__ import annotations

import json
import math
from typing import Any

from ..modes.table import REFERENCE, get
from .compare import METRICS, Report, Row, metric_names

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


def _with_memory(report: Report) -> bool:
    return any("memory" in r.metrics for r in report.rows)


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The `dl compare` table as cells: its headers and one row of strings per (size, mode). The memory
    column appears only when memory was measured (`--memory`), the n column only for a sweep; a mode's own
    counters (chad's ct_leaves) get columns after the common ones."""
    extras = metric_names(report.rows)[len(METRICS):]
    headers = ["n", "mode", "status", "error", "term", "prims", "apps", "bp_apps", "time s", "memory B",
               "time/primal", "prims/primal", "bp/primal-prims", *extras]
    table = []
    for r in report.rows:
        m, q = r.metrics, r.ratios
        bp_ratio = (m["bp_apps"] / r_primal_prims(report, r)) if r.status == "ok" and r_primal_prims(report, r) else None
        table.append([
            "" if r.n is None else str(r.n), r.mode, r.shown_status if r.status in ("ok", "timeout") else "error",
            _fmt(r.error, "error"), _fmt(m.get("term")), _fmt(m.get("prims")), _fmt(m.get("apps")),
            _fmt(m.get("bp_apps")), _fmt(m.get("time"), "time"), _fmt(m.get("memory")),
            _fmt(q.get("time"), "ratio"), _fmt(q.get("prims"), "ratio"), _fmt(bp_ratio, "ratio"),
            *(_fmt(m.get(k)) for k in extras),
        ])
    with_memory = _with_memory(report)
    keep = [i for i, h in enumerate(headers) if (h != "n" or any(r.n is not None for r in report.rows))
            and (h != "memory B" or with_memory)]
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in table]


def exponent_metrics(report: Report) -> list[str]:
    """The metrics whose growth exponents a sweep reports (memory only when it was measured; then a mode's own
    counters)."""
    return (["prims", "apps", "bp_apps", "term", "time"] + (["memory"] if _with_memory(report) else [])
            + metric_names(report.rows)[len(METRICS):])


def exponent_rows(report: Report) -> list[list[str]]:
    """The growth exponents of a sweep as cells: one row per mode, a column per exponent_metrics."""
    metrics = exponent_metrics(report)
    return [[mode] + [f"{round(slopes[k], 2) + 0.0:.2f}" if slopes.get(k) is not None else "-"  # no -0.00
                      for k in metrics]
            for mode, slopes in report.exponents.items()]


def errors(report: Report) -> list[str]:
    """What is said under the table: why a row failed, disagrees, or lacks a metric."""
    out = []
    for r in report.rows:
        where = f"{r.mode}{'' if r.n is None else f' (n={r.n})'}"
        if r.status.startswith("error"):
            out.append(f"{where}: {r.status}")
        elif r.shown_status == "disagrees":
            out.append(f"{where}: disagrees with {REFERENCE.name}: error {_fmt(r.error, 'error')} is beyond "
                       f"the mode's tolerance {get(r.mode).tolerance:g}")
        out += [f"{where}: {note}" for note in r.notes]
    return out


def format_table(report: Report) -> str:
    """The `dl compare` table; under it, why a row failed, disagrees or lacks a metric, then the growth
    exponents of a sweep."""
    headers, table = table_rows(report)
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for row in table:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    lines += [f"  {e}" for e in errors(report)]
    if report.exponents:
        lines.append("")
        lines.append("growth exponents (slope of log cost against log n):")
        lines.append("  " + "mode".ljust(16) + "".join(k.rjust(10) for k in exponent_metrics(report)))
        for row in exponent_rows(report):
            lines.append("  " + row[0].ljust(16) + "".join(cell.rjust(10) for cell in row[1:]))
    return "\n".join(lines)


def r_primal_prims(report: Report, row: Row) -> float | None:
    """Backpropagator applications per primal primitive operation."""
    if not row.ratios or row.ratios.get("prims") in (None, 0):
        return None
    return row.metrics["prims"] / row.ratios["prims"]


def format_csv(report: Report) -> str:
    names = metric_names(report.rows)
    cols = ["n", "mode", "status", "error"] + names + [f"{k}_ratio" for k in names]
    lines = [",".join(cols)]
    for r in report.rows:
        vals = ["" if r.n is None else str(r.n), r.mode, r.shown_status.replace(",", ";"),
                "" if r.error is None else repr(r.error)]
        vals += ["" if r.metrics.get(k) is None else repr(r.metrics[k]) for k in names]
        vals += ["" if r.ratios.get(k) is None else repr(r.ratios[k]) for k in names]
        lines.append(",".join(vals))
    return "\n".join(lines)


def format_json(report: Report) -> str:
    rows = [{"n": r.n, "mode": r.mode, "status": r.shown_status, "error": r.error, "metrics": r.metrics,
             "ratios": r.ratios, "notes": r.notes} for r in report.rows]
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




COUNTER_LABELS = {
    "prims": "primitive applications", "betas": "function applications (beta)",
    "bp_created": "backpropagators created", "bp_run": "backpropagator bodies run",
    "merges": "factoring merges", "sink_updates": "sink updates", "peak_pending": "peak pending",
}


def format_counters(counts: dict, mode: str) -> str:
    """The cost counters as a small two-column table."""
    width = max(len(v) for v in COUNTER_LABELS.values())
    lines = [f"cost ({mode} mode)"]
    for key, value in counts.items():
        lines.append(f"  {COUNTER_LABELS.get(key, key):<{width}}  {value:>12}")
    return "\n".join(lines)
