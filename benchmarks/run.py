"""The dl benchmark suite: dl against plain Python, finite differences, micrograd, HIPS autograd,
PyTorch eager and JAX (eager and jit) on seven workloads, and dl's goals (GOAL_AREAS): its speed against
the peers, the cost of a gradient over the primal, its primal speed against plain Python, memory, start-up.

    .venv/bin/python benchmarks/run.py            # full run: benchmarks/RESULTS.md, benchmarks/results.json
    .venv/bin/python benchmarks/run.py --quick    # smoke run (well under a minute): benchmarks/RESULTS-quick.md

Progress goes to stderr as the run goes; the results (the goals, the checks of every tool's value and
gradient, where the full tables were written) go to stdout at the end.

Protocol. Each tool runs in its own worker process (worker.py), where its program is compiled or traced
once; then, per workload and size, every tool's `primal` and `vg` (value and gradient) callables are
timed in interleaved rounds (one sample of each per round, the order rotated every round, one command
at a time) so that all tools share the machine's noise; a sample of a quick callable is a loop of k
calls. Tables give medians; ratios are medians of same-round ratios. Workers run on a thread with a
1 GiB stack and a recursion limit of 2,000,000 (what dl's own `lang.back.deep` uses), which micrograd's
recursive topological sort needs on deep graphs. Peak memory is tracemalloc's peak over one call.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from workloads import WORKLOADS, rel_error  # noqa: E402

import peers  # noqa: E402  (sets the single-thread environment variables before torch/jax load)
from worker import Worker  # noqa: E402
import tape_floor  # noqa: E402

TOOL_ORDER = ("python", "dl", "micrograd", "micrograd-nogc", "autograd", "torch", "torch-vec", "jax", "jax-jit", "fd")

REFERENCE_ORDER = ("torch", "micrograd", "autograd", "dl")   # whose value and gradient the others are checked against
MEMORY_TOOLS = ("python", "dl", "micrograd", "autograd")      # tracemalloc sees their allocations
GOAL_TOOLS = ("dl", "python", "micrograd", "micrograd-nogc", "torch")  # the goals need them: 5x the time limit
TOL = 1e-8
FD_TOL = 1e-4


@dataclass
class Config:
    quick: bool
    budget: float        # seconds of samples per callable per cell (after warm-up)
    min_reps: int
    max_reps: int
    min_sample: float    # a sample lasts at least this long (k calls per sample)
    max_call: float      # a callable predicted to take longer per call is skipped
    max_fd_call: float   # the same for finite differences (O(n^2) on W4)
    startup_runs: int


FULL = Config(False, budget=1.2, min_reps=5, max_reps=31, min_sample=0.002, max_call=12.0,
              max_fd_call=3.0, startup_runs=10)
QUICK = Config(True, budget=0.08, min_reps=3, max_reps=7, min_sample=0.0005, max_call=0.4,
               max_fd_call=0.4, startup_runs=1)

# What each goal measures, by area: the goals table and the summary say this, not where a goal came from.
GOAL_AREAS = {
    "against peers": "dl's value and gradient per operation against micrograd's and PyTorch eager's, on the same "
                     "program written op by op",
    "gradient cost": "dl's value-and-gradient time over its own primal time (reverse mode's constant factor), "
                     "and how flat that ratio stays as n grows",
    "primal speed": "dl's compiled primal program against the same program in plain Python",
    "memory": "peak memory of one gradient, against micrograd's",
    "start-up": "wall time of `dl run` on a trivial file (interpreter start, imports, the cached prelude)",
}


@dataclass
class Entry:
    tool: str
    kind: str
    worker: Worker
    style: str
    nogc: bool
    k: int = 1
    reps: int = 0
    first: float = 0.0
    estimate: float = 0.0
    samples: list = field(default_factory=list)
    rounds: list = field(default_factory=list)
    result: object = None
    error: float | None = None
    memory: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def paired(a: dict | None, b: dict | None) -> float | None:
    """Median over the rounds in which both were sampled of a's time / b's time (entries as in the JSON).

    Two callables sampled in the same round ran seconds apart, so their ratio cancels most of the slow
    drift of a shared machine's load; with no common round, the ratio of the medians."""
    if not a or not b or not a.get("median_s") or not b.get("median_s"):
        return None
    bm = dict(zip(b["rounds"], b["samples_s"]))
    rs = [x / bm[r] for r, x in zip(a["rounds"], a["samples_s"]) if r in bm and bm[r] > 0]
    return statistics.median(rs) if rs else a["median_s"] / b["median_s"]


def run_cell(w, n, workers, cfg: Config, history: dict, out_cells: list) -> None:
    args = w.inputs(n)
    ops = w.ops(n)
    peers_too = w.peer_max_n is None or n <= w.peer_max_n
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    for wk in workers:
        if not peers_too and wk.name not in ("python", "dl"):
            skipped[wk.name] = f"n > {w.peer_max_n}: the comparison with the peers ends there"
            continue
        try:
            kinds = wk.call("prepare", w.key, n)
        except peers.NotApplicable as e:
            skipped[wk.name] = f"not applicable: {e}"
            continue
        except RuntimeError as e:
            skipped[wk.name] = f"error: {e}"
            log(f"  {w.key} n={n} {wk.name}: {e}")
            continue
        for kind, (style, nogc) in kinds.items():
            entries.append(Entry(wk.name, kind, wk, style, nogc))

    # warm-up: one call each (compiles, traces, gives the results to check), with the skip rule
    py_first = None
    kept = []
    for e in entries:
        key = (w.key, e.tool, e.kind)
        limit = cfg.max_call * (5 if e.tool in GOAL_TOOLS else 1)
        if e.tool == "fd" and py_first is not None:
            predicted = py_first * peers.FiniteDifferences.evaluations(w, args)
            limit = cfg.max_fd_call
        elif key in history:
            n0, t0 = history[key]
            predicted = t0 * n / n0
        else:
            predicted = 0.0
        if predicted > limit:
            skipped[f"{e.tool}:{e.kind}"] = f"budget: predicted {predicted:.3g} s per call > {limit:g} s"
            continue
        try:
            e.result, e.first = e.worker.call("first", e.kind)
        except RuntimeError as ex:
            skipped[f"{e.tool}:{e.kind}"] = f"error: {ex}"
            log(f"  {w.key} n={n} {e.tool} {e.kind}: {ex}")
            continue
        if e.tool == "python":
            py_first = e.first
        kept.append(e)
    entries = kept

    # checks against the reference tool's value and gradient
    by = {(e.tool, e.kind): e for e in entries}
    ref_tool = next((t for t in REFERENCE_ORDER if (t, "vg") in by), None)
    ref_v, ref_g = None, None
    if ref_tool:
        rv, ref_g = by[(ref_tool, "vg")].result
        ref_v = [rv]
    for e in entries:
        if ref_v is not None:
            if e.kind == "vg":
                v, g = e.result
                # central differences with h = 1e-6 carry an absolute round-off of about 1e-10 |f|: components
                # below 1e-5 max(1, |f|) are compared against that, not relatively
                floor = 1e-5 * max(1.0, abs(ref_v[0])) if e.tool == "fd" and math.isfinite(ref_v[0]) else 0.0
                e.error = max(rel_error([v], ref_v), rel_error(g, ref_g, floor))
            else:
                e.error = rel_error([e.result], ref_v)
        e.result = None

    t_cell = time.perf_counter()
    for e in entries:
        e.estimate = e.first if e.first >= 0.3 else e.worker.call("calibrate", e.kind, cfg.min_sample / 2)
        history[(w.key, e.tool, e.kind)] = (n, e.estimate)
        est = max(e.estimate, 1e-7)
        e.k = max(1, math.ceil(cfg.min_sample / est))
        e.reps = int(min(cfg.max_reps, max(cfg.min_reps, round(cfg.budget / (est * e.k)))))
        if est > cfg.max_call / 4:
            e.reps = max(1, min(e.reps, 3 if est < cfg.max_call * 2 else 1))

    # interleaved rounds
    rounds = max((e.reps for e in entries), default=0)
    for r in range(rounds):
        todo = [e for e in entries if len(e.samples) < e.reps]
        shift = r % max(1, len(todo))
        for e in todo[shift:] + todo[:shift]:
            e.samples.append(e.worker.call("sample", e.kind, e.k))
            e.rounds.append(r)

    # peak memory (one call each, tracemalloc; Python-level tools only)
    if n >= 1000 or not w.sized or cfg.quick:
        for e in entries:
            if e.tool in MEMORY_TOOLS and not e.nogc:
                try:
                    e.memory = e.worker.call("memory", e.kind)
                except RuntimeError as ex:
                    log(f"  memory {e.tool} {e.kind}: {ex}")
    for wk in workers:
        if wk.name not in skipped:
            wk.call("release")

    cell = {"workload": w.key, "n": n, "ops": ops, "reference": ref_tool, "skipped": skipped, "entries": []}
    for e in entries:
        cell["entries"].append({
            "tool": e.tool, "kind": e.kind, "style": e.style, "nogc": e.nogc,
            "median_s": e.median if e.samples else None, "samples_s": e.samples, "rounds": e.rounds, "k": e.k,
            "first_call_s": e.first, "error": e.error, "peak_bytes": e.memory,
        })
    out_cells.append(cell)
    dl_vg = by.get(("dl", "vg"))
    dl_p = by.get(("dl", "primal"))
    slowest = sorted(entries, key=lambda e: -sum(e.samples) * e.k)[:3]
    msg = (f"{w.key} n={n}: {len(entries)} callables, {time.perf_counter() - t_cell:.0f} s (most: "
           + ", ".join(f"{e.tool}:{e.kind} {sum(e.samples) * e.k:.0f} s" for e in slowest) + ")")
    if dl_vg and dl_p and dl_p.samples and dl_vg.samples:
        msg += (f"; dl primal {dl_p.median / ops * 1e6:.3f} us/op, v+g {dl_vg.median / ops * 1e6:.3f} us/op, "
                f"ratio {dl_vg.median / dl_p.median:.2f}")
    cell["disagreements"] = disagreements(w, n, entries)
    for d in cell["disagreements"]:
        msg += (f"; {d['tool']}:{d['kind']} err {d['error']:.1e} "
                + (f"(expected: {d['expected']})" if d["expected"] else "DISAGREES (unexpected)"))
    log(msg)


def disagreements(w, n, entries) -> list[dict]:
    """The tools whose value or gradient is beyond tolerance of the reference, each with the reason it
    was expected (finite differences on a workload they cannot follow at this size) or None."""
    out = []
    for e in entries:
        if e.error is not None and not e.error <= (FD_TOL if e.tool == "fd" else TOL):
            expected = w.fd_expected_to_fail(n) if e.tool == "fd" else None
            out.append({"tool": e.tool, "kind": e.kind, "error": e.error, "expected": expected})
    return out


# ---- start-up ----------------------------------------------------------------------------------

def measure_startup(cfg: Config) -> dict:
    """`dl run` on a trivial file against `python -c pass`, interleaved. The goal's pair is measured in a fresh
    venv with dl installed from the wheel (`pip install .`, the README's install) when this venv's dl is an
    editable install: an editable install's finder slows every `python` of its venv (`python -c pass` too),
    which would flatter the ratio. This venv's pair is measured beside it."""
    exe_dir = Path(sys.executable).parent
    dl_cmd = exe_dir / "dl"
    dl_path = str(dl_cmd) if dl_cmd.exists() else shutil.which("dl")
    if not dl_path:
        return {"error": "no installed `dl` command (pip install -e . puts one next to python)"}
    with tempfile.TemporaryDirectory() as tmp:
        trivial = Path(tmp) / "trivial.dl"
        trivial.write_text("def main = 1 + 2\n")
        commands = {
            "dl run trivial.dl": [dl_path, "run", str(trivial)],
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import lang.tools.cli'": [sys.executable, "-c", "import lang.tools.cli"],
        }
        install = "this venv"
        wheel = _wheel_venv(Path(tmp) / "venv") if _editable() else None
        if wheel is not None:
            install = "a fresh venv, `pip install .` (this venv's dl is an editable install)"
            commands = {"dl run trivial.dl": [str(wheel / "dl"), "run", str(trivial)],
                        "python -c pass": [str(wheel / "python"), "-c", "pass"],
                        **{f"{k} (editable venv)": v for k, v in commands.items()}}
        # As after any pip install, modules load from cached bytecode: a PYTHONDONTWRITEBYTECODE
        # inherited from the shell would make every run compile dl's sources again.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        times: dict[str, list[float]] = {k: [] for k in commands}
        for k, cmd in commands.items():   # warm the page cache, the bytecode cache and the parse cache
            subprocess.run(cmd, capture_output=True, cwd=tmp, env=env)
        out = subprocess.run(commands["dl run trivial.dl"], capture_output=True, text=True, cwd=tmp, env=env)
        for _ in range(cfg.startup_runs):
            for k, cmd in commands.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, capture_output=True, cwd=tmp, env=env)
                times[k].append(time.perf_counter() - t0)
    return {"dl": commands["dl run trivial.dl"][0], "install": install, "stdout": out.stdout.strip(),
            "returncode": out.returncode, "runs": cfg.startup_runs, "times_s": times,
            "median_s": {k: statistics.median(v) for k, v in times.items()}}


def _editable() -> bool:
    """Whether this venv's python imports `lang` from the source tree (an editable install), from elsewhere
    than the tree's own directory (this script puts the tree on its own path)."""
    probe = subprocess.run([sys.executable, "-c", "import lang; print(lang.__file__)"], capture_output=True,
                           text=True, cwd=tempfile.gettempdir())
    return probe.returncode == 0 and Path(probe.stdout.strip()).resolve().parent.parent == ROOT.resolve()


def _wheel_venv(where: Path) -> Path | None:
    """A venv at `where` with dl installed from this source tree; its bin directory, or None if that fails
    (offline, no pip): then this venv's pair is the goal's."""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT)], check=True,
                       capture_output=True, timeout=900)
    except (OSError, subprocess.SubprocessError):
        return None
    return where / "bin"


# ---- derived numbers ------------------------------------------------------------------------------

def index(cells):
    """(workload, n, tool, kind) -> entry dict, with the cell's ops."""
    out = {}
    for c in cells:
        for e in c["entries"]:
            out[(c["workload"], c["n"], e["tool"], e["kind"])] = dict(e, ops=c["ops"])
    return out


def slope(points):
    """Least-squares slope of log t against log n."""
    pts = [(math.log(n), math.log(t)) for n, t in points if t and t > 0]
    if len(pts) < 3:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def us_op(e):
    return e["median_s"] / e["ops"] * 1e6 if e and e.get("median_s") else None


def compute_goals(cells, sizes_of, startup) -> list[dict]:
    ix = index(cells)
    goals = []

    def get(w, n, tool, kind):
        return ix.get((w, n, tool, kind))

    def largest_peer_n(w):
        wl = next(x for x in WORKLOADS if x.key == w)
        ns = [n for n in sizes_of[w] if wl.peer_max_n is None or n <= wl.peer_max_n]
        return max(ns) if ns else None

    for w in ("W2", "W4", "W7"):
        if w not in sizes_of:
            continue
        n = largest_peer_n(w)
        dl = get(w, n, "dl", "vg")
        mg = [x for x in (get(w, n, "micrograd", "vg"), get(w, n, "micrograd-nogc", "vg")) if x and x["median_s"]]
        th = get(w, n, "torch", "vg")
        if dl and mg:
            best = min(mg, key=lambda x: x["median_s"])
            r = paired(best, dl)
            goals.append({"area": "against peers", "goal": f"{w} n={n}: dl v+g per op <= 1/10 of micrograd's "
                                                           f"(the faster of normal gc and gc.disable())",
                          "measured": f"dl {us_op(dl):.3f} us/op, micrograd {us_op(best):.3f} us/op "
                                      f"({'gc.disable()' if best['nogc'] else 'normal gc'}): micrograd/dl = {r:.2f}x",
                          "met": r >= 10.0})
        else:
            goals.append({"area": "against peers", "goal": f"{w} n={n}: dl v+g per op <= 1/10 of micrograd's",
                          "measured": "not measured (micrograd missing or skipped)", "met": None})
        if dl and th and th["median_s"]:
            r = paired(th, dl)
            goals.append({"area": "against peers", "goal": f"{w} n={n}: dl v+g per op <= 1/10 of PyTorch eager's (same program)",
                          "measured": f"dl {us_op(dl):.3f} us/op, torch {us_op(th):.3f} us/op: torch/dl = {r:.2f}x",
                          "met": r >= 10.0})
        else:
            goals.append({"area": "against peers", "goal": f"{w} n={n}: dl v+g per op <= 1/10 of PyTorch eager's (same program)",
                          "measured": "not measured (torch missing or skipped)", "met": None})

    for wl in WORKLOADS:
        w = wl.key
        if w not in sizes_of:
            continue
        ratios = []
        for n in sizes_of[w]:
            p, g = get(w, n, "dl", "primal"), get(w, n, "dl", "vg")
            if p and g and p["median_s"] and g["median_s"]:
                ratios.append((n, paired(g, p)))
        if not ratios:
            continue
        worst = max(r for _, r in ratios)
        goals.append({"area": "gradient cost", "goal": f"{w}: dl v+g time / dl primal time <= 5 (every n)",
                      "measured": ", ".join(f"n={n}: {r:.2f}" for n, r in ratios) if wl.sized else f"{ratios[0][1]:.2f}",
                      "met": worst <= 5.0})
        if wl.sized and len(ratios) >= 2:
            (n0, r0), (n1, r1) = ratios[0], ratios[-1]
            spread = max(r for _, r in ratios) / min(r for _, r in ratios)
            goals.append({"area": "gradient cost", "goal": f"{w}: that ratio flat within 20% from n={n0} to n={n1}",
                          "measured": f"{r0:.2f} -> {r1:.2f} ({(r1 / r0 - 1) * 100:+.0f}%); max/min over all n {spread:.2f}",
                          "met": abs(r1 / r0 - 1) <= 0.2})
        # primal vs plain Python, at the largest n
        n = sizes_of[w][-1]
        p, py = get(w, n, "dl", "primal"), get(w, n, "python", "primal")
        if p and py and p["median_s"] and py["median_s"]:
            r = paired(p, py)
            goals.append({"area": "primal speed", "goal": f"{w}{f' n={n}' if wl.sized else ''}: dl primal per op <= 10x plain Python",
                          "measured": f"dl {us_op(p):.3f} us/op, Python {us_op(py):.3f} us/op: {r:.2f}x",
                          "met": r <= 10.0})

    if "W4" in sizes_of:
        n = sizes_of["W4"][-1]
        dl, mg = get("W4", n, "dl", "vg"), get("W4", n, "micrograd", "vg")
        if dl and mg and dl.get("peak_bytes") and mg.get("peak_bytes"):
            goals.append({"area": "memory", "goal": f"W4 n={n}: peak memory of a gradient <= micrograd's",
                          "measured": f"dl {dl['peak_bytes'] / 2**20:.1f} MiB, micrograd {mg['peak_bytes'] / 2**20:.1f} MiB "
                                      f"({dl['peak_bytes'] / mg['peak_bytes']:.2f}x)",
                          "met": dl["peak_bytes"] <= mg["peak_bytes"]})

    if startup and "median_s" in startup:
        m = startup["median_s"]["dl run trivial.dl"]
        py = startup["median_s"]["python -c pass"]
        goals.append({"area": "start-up", "goal": f"`dl run` start-up on a trivial file, median of {startup['runs']} <= 0.25 s",
                      "measured": f"{m:.3f} s (python -c pass {py:.3f} s)",
                      "met": m <= 0.25})
        goals.append({"area": "start-up", "goal": f"`dl run` on a trivial file <= 5x `python -c pass`, medians of "
                                                  f"{startup['runs']} interleaved runs, installed in "
                                                  f"{startup.get('install', 'this venv')}",
                      "measured": f"{m / py:.2f}x ({m:.3f} s / {py:.3f} s)", "met": m <= 5 * py})
    if "W2" in sizes_of:
        n = sizes_of["W2"][-1]
        p, py = get("W2", n, "dl", "primal"), get("W2", n, "python", "primal")
        if p and py:
            goals.append({"area": "primal speed", "goal": f"logistic map primal, n={n} steps (report)",
                          "measured": f"dl {us_op(p):.3f} us/op, plain Python {us_op(py):.3f} us/op: "
                                      f"{p['median_s'] / py['median_s']:.2f}x Python",
                          "met": None})
    # the gradient's cost at the largest sizes (dl alone: n = 10^5 on W2 and W4): <= 3 on W2, W4, W7
    for w in ("W2", "W4", "W7"):
        if w not in sizes_of:
            continue
        n = sizes_of[w][-1]
        p, g = get(w, n, "dl", "primal"), get(w, n, "dl", "vg")
        if p and g:
            r = paired(g, p)
            goals.append({"area": "gradient cost", "goal": f"{w}{f' n={n}' if n > 1 else ''}: grad/primal <= 3",
                          "measured": f"{r:.2f} (v+g {us_op(g):.3f} us/op, primal {us_op(p):.3f} us/op)",
                          "met": r <= 3.0})
    for w in ("W2", "W4"):
        if w not in sizes_of:
            continue
        ns = [n for n in sizes_of[w] if 100 <= n <= 100_000]
        rs = []
        for n in ns:
            p, g = get(w, n, "dl", "primal"), get(w, n, "dl", "vg")
            if p and g:
                rs.append((n, paired(g, p)))
        if len(rs) >= 2:
            r0, r1 = rs[0][1], rs[-1][1]
            goals.append({"area": "gradient cost", "goal": f"{w}: grad/primal flat from n={rs[0][0]} to n={rs[-1][0]} (within 20%)",
                          "measured": f"{r0:.2f} -> {r1:.2f} ({(r1 / r0 - 1) * 100:+.0f}%)",
                          "met": abs(r1 / r0 - 1) <= 0.2})
    return goals


# ---- report ---------------------------------------------------------------------------------------

def fmt_n(n: int) -> str:
    return f"{n:,}"


def fmt(x, digits=3):
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 0.001:
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def fmt_err(e, tool):
    if e is None:
        return "—"
    tol = FD_TOL if tool == "fd" else TOL
    # finite differences are an approximation: past their tolerance they are *inexact* (W2's chaos), not wrong
    mark = "ok" if e <= tol else ("*inexact*" if tool == "fd" else "**FAIL**")
    return f"{mark} {e:.0e}" if e > 0 else "ok 0"


def write_report(data: dict, path: Path) -> None:
    cells, goals, meta = data["cells"], data["goals"], data["meta"]
    ix = index(cells)
    tools = meta["tools"]
    labels = meta["labels"]
    L: list[str] = []
    a = L.append
    a("# dl benchmarks")
    a("")
    a(f"Command: `{meta['command']}`  ")
    a(f"Date: {meta['date']} ({meta['wall_s'] / 60:.1f} min)  ")
    a(f"Machine: {meta['machine']}  ")
    a(f"dl: {meta.get('dl_commit', '?')}  ")
    a(f"Python {meta['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    a(f"  \nLoad average at start / end: {meta['load_start']} / {meta['load_end']} (the machine is shared)")
    if meta.get("quick"):
        a("")
        a("**Quick (smoke) run: fewer sizes and samples; not the recorded results.**")
    a("")
    a("How it is measured: every tool receives the workload's inputs as plain Python data and returns plain "
      "Python data (conversion is timed). dl programs are compiled once (the `primal` and `vg` definitions of "
      "`benchmarks/workloads/*.dl`, called in-process); then, for each workload and size, every tool's primal and "
      "value+gradient (v+g) are sampled in interleaved rounds, order rotated each round, and the tables give "
      "medians. *µs/op* divides by the workload's primitive-operation count (the same for every tool: table "
      "*Workloads*). Peers run single-threaded (torch.set_num_threads(1), XLA single-thread flags) in float64. "
      "Each tool runs in its own process, driven one command at a time (tools sharing a process slowed each other), "
      "on a thread with a 1 GiB stack and recursion limit 2,000,000, as dl's `lang.back.deep` does: micrograd's "
      "recursive topological sort needs it on deep graphs (W2 at n = 10^4 is a chain of 5·10^4 nodes). "
      "Before each sample the collector runs and `gc.freeze()` moves every survivor (the tool's modules, caches, "
      "inputs) out of its reach, untimed. After each sample's calls the collector runs once more, timed (not for gc.disable() rows): "
      "every tool pays for collecting its own cyclic garbage and no other's.")
    a("")

    a("## Goals")
    a("")
    a("Each goal is in one area: " + "; ".join(f"*{k}*: {v}" for k, v in GOAL_AREAS.items()) + ".")
    a("")
    a("| area | goal | measured | status |")
    a("|---|---|---|---|")
    for g in goals:
        st = "report" if g["met"] is None else ("**met**" if g["met"] else "**missed**")
        a(f"| {g['area']} | {g['goal']} | {g['measured']} | {st} |")
    a("")

    a("## Workloads")
    a("")
    a("| | workload | dl program | primitive ops per evaluation | sizes n |")
    a("|---|---|---|---|---|")
    for w in WORKLOADS:
        if w.key not in meta["sizes"]:
            continue
        sz = ", ".join(f"{fmt_n(n)}" for n in meta["sizes"][w.key]) if w.sized else "—"
        a(f"| {w.key} | {w.title} | `benchmarks/workloads/{w.dl_file}` | {w.ops_text} | {sz} |")
    a("")
    a("dl's own counters (`Machine(counting=True)`, one primal evaluation at the smallest size) count the same real "
      "operations plus the Int loop-counter operations and `float`: " +
      "; ".join(f"{k}{' ' + v['n_label'] if v['n_label'] else ''}: {v['primal']} prims (nominal {v['nominal']})"
                for k, v in meta["dl_counts"].items()) + ".")
    a("")
    for w in WORKLOADS:
        for note in w.notes:
            if w.key in meta["sizes"]:
                a(f"- {w.key}: {note}")
    a("")

    a("## Tools")
    a("")
    a("| tool | what runs | style |")
    a("|---|---|---|")
    for t, d in meta["tool_notes"].items():
        if t in tools or t.split(":")[0] in tools:
            a(f"| {labels.get(t, t)} | {d[0]} | {d[1]} |")
    if meta["missing"]:
        a("")
        a("Not measured: " + "; ".join(meta["missing"]))
    a("")

    # summary at the largest peer size
    a("## Summary: value + gradient, µs per primitive operation, at each workload's largest size")
    a("")
    gtools = [t for t in tools if t != "python"]
    a("| workload | n | " + " | ".join(labels[t] for t in gtools) + " | plain Python primal |")
    a("|---|---|" + "---|" * len(gtools) + "---|")
    for w in WORKLOADS:
        if w.key not in meta["sizes"]:
            continue
        ns = [n for n in meta["sizes"][w.key] if w.peer_max_n is None or n <= w.peer_max_n]
        n = ns[-1]
        row = [w.key, f"{fmt_n(n)}" if w.sized else "—"]
        for t in gtools:
            row.append(fmt(us_op(ix.get((w.key, n, t, "vg")))))
        row.append(fmt(us_op(ix.get((w.key, n, "python", "primal")))))
        a("| " + " | ".join(row) + " |")
    a("")

    a("## dl: value+gradient time / primal time (same process), by size")
    a("")
    allns = sorted({n for w in meta["sizes"].values() for n in w})
    a("| workload | " + " | ".join(f"n={fmt_n(n)}" for n in allns) + " |")
    a("|---|" + "---|" * len(allns))
    for w in WORKLOADS:
        if w.key not in meta["sizes"]:
            continue
        row = [w.key]
        for n in allns:
            p, g = ix.get((w.key, n, "dl", "primal")), ix.get((w.key, n, "dl", "vg"))
            row.append(fmt(paired(g, p)) if p and g and p["median_s"] and g["median_s"] else "")
        a("| " + " | ".join(row) + " |")
    a("")

    floor = data.get("floor")
    if floor:
        a("### The floor: a hand-written per-operation tape in plain Python (W2)")
        a("")
        a("`benchmarks/tape_floor.py`: the logistic map with the least an operation-by-operation reverse pass "
          "can do in CPython (per operation one record of parent identities and partial derivatives appended "
          "to a list, then one backward sweep; no closures, no dual values, no generality), timed against the "
          "plain loop in the same rounds: what a reverse pass recording every operation costs in CPython, and "
          "its growth with n (the list of records outgrowing the caches). dl does not record every operation: "
          "preaccumulation writes one record per step, a record whose one parent is the record just below it "
          "is stored as its weight alone (a link) and runs of links are swept by `math.prod` "
          "(docs/transforms.md, Linear factoring), so where the gradient is finite its ratio falls below "
          "this floor. Where it is not (W2 from n = 10^4: the derivative overflows and is nan), the kernel's "
          "order-free pass runs ←D's own term again, per operation.")
        a("")
        a("| n | plain loop µs/op | hand-written tape µs/op | tape / loop | dl W2 v+g / primal |")
        a("|---|---|---|---|---|")
        for f in floor:
            p, g = ix.get(("W2", f["n"], "dl", "primal")), ix.get(("W2", f["n"], "dl", "vg"))
            dl_ratio = fmt(paired(g, p)) if p and g and p["median_s"] and g["median_s"] else "—"
            a(f"| {fmt_n(f['n'])} | {f['primal_us_op']:.3f} | {f['tape_us_op']:.3f} | {f['ratio']:.1f} | {dl_ratio} |")
        a("")

    a("## Growth: log–log slope of time against n")
    a("")
    a("Least-squares slope of log(median time) on log(n) over the sizes the tool ran (range in brackets); "
      "1 is linear.")
    a("")
    sized = [w for w in WORKLOADS if w.sized and w.key in meta["sizes"]]
    a("| tool | kind | " + " | ".join(w.key for w in sized) + " |")
    a("|---|---|" + "---|" * len(sized))
    for t in tools:
        for kind in ("primal", "vg"):
            row = [labels[t], "v+g" if kind == "vg" else kind]
            anyv = False
            for w in sized:
                pts = [(n, ix[(w.key, n, t, kind)]["median_s"]) for n in meta["sizes"][w.key]
                       if (w.key, n, t, kind) in ix and ix[(w.key, n, t, kind)]["median_s"]]
                s = slope(pts)
                if s is not None:
                    anyv = True
                    row.append(f"{s:.2f} [{fmt_n(pts[0][0])}–{fmt_n(pts[-1][0])}]")
                else:
                    row.append("—")
            if anyv:
                a("| " + " | ".join(row) + " |")
    a("")

    a("## Peak memory (tracemalloc, one call)")
    a("")
    a("Peak of Python-level allocations during one call, above what was allocated before it (inputs excluded, "
      "result included). PyTorch and JAX allocate natively, out of tracemalloc's sight: not reported.")
    a("")
    mcols = [(t, k) for t in MEMORY_TOOLS if t in tools for k in ("primal", "vg")
             if any((c["workload"], c["n"], t, k) in ix for c in cells)]
    a("| workload | n | " + " | ".join(f"{labels[t]} {'v+g' if k == 'vg' else k}" for t, k in mcols) + " |")
    a("|---|---|" + "---|" * len(mcols))
    for c in cells:
        if not any(e.get("peak_bytes") for e in c["entries"]):
            continue
        row = [c["workload"], f"{fmt_n(c['n'])}" if c["n"] > 1 else "—"]
        for t, k in mcols:
            e = ix.get((c["workload"], c["n"], t, k))
            pb = e.get("peak_bytes") if e else None
            row.append(f"{pb / 1024:.0f} KiB" if pb is not None and pb < 2**20 else
                       f"{pb / 2**20:.1f} MiB" if pb is not None else "—")
        a("| " + " | ".join(row) + " |")
    a("")

    jit = [(c, e) for c in cells for e in c["entries"] if e["tool"] == "jax-jit" and e["kind"] == "vg" and e["median_s"]]
    if jit:
        a("## JAX jit: compile time (reported apart, not in the tables' medians)")
        a("")
        a("First call (trace + compile + run) minus the median call, for `jax.jit(jax.value_and_grad(f))`.")
        a("")
        a("| workload | n | compile s | steady v+g µs/op |")
        a("|---|---|---|---|")
        for c, e in jit:
            a(f"| {c['workload']} | {fmt_n(c['n'])} | {e['first_call_s'] - e['median_s']:.3f} | {fmt(e['median_s'] / c['ops'] * 1e6)} |")
        a("")

    st = data.get("startup")
    if st and "median_s" in st:
        a("## Start-up")
        a("")
        a(f"Wall time of a subprocess, median of {st['runs']} interleaved runs after one warm-up; "
          f"`dl` is `{st['dl']}` (installed in {st.get('install', 'this venv')}), the trivial file is `def main = 1 + 2` (printed `{st['stdout']}`). "
          "Modules load from cached bytecode, as after any `pip install` (PYTHONDONTWRITEBYTECODE is "
          "removed from the subprocesses' environment); the prelude comes from its checked cache.")
        a("")
        a("| command | median s | min s |")
        a("|---|---|---|")
        for k, v in st["times_s"].items():
            a(f"| `{k}` | {statistics.median(v):.3f} | {min(v):.3f} |")
        a("")

    a("## Details per workload")
    a("")
    a("Columns: *primal* and *v+g* in µs per primitive operation (medians); *grad/primal* is the tool's v+g time over "
      "its own primal time; *÷ micrograd* is the tool's v+g time over micrograd's (the better of normal gc and "
      "gc.disable()); *÷ Python* is v+g time over plain Python's primal time (ratios: medians of same-round ratios, "
      "see *Notes*); *check* is the max relative error "
      f"of value and gradient against the reference (PyTorch scalar where it ran, else micrograd; tolerance "
      f"{TOL:g}; finite differences {FD_TOL:g}, with gradient components below 1e-5 max(1, |f|) compared "
      f"absolutely, as central differences with h = 1e-6 carry an absolute round-off of about 1e-10 |f|; "
      f"beyond that they are marked *inexact*, which they are on W2 from n = 100, where the map's chaos defeats "
      f"any step h); *reps* is samples × calls per sample.")
    for w in WORKLOADS:
        if w.key not in meta["sizes"]:
            continue
        a("")
        a(f"### {w.key}: {w.title}")
        a("")
        a("| n | tool | style | primal µs/op | v+g µs/op | grad/primal | ÷ micrograd | ÷ Python | check | reps |")
        a("|---|---|---|---|---|---|---|---|---|---|")
        skipped_by: dict = {}
        for c in [c for c in cells if c["workload"] == w.key]:
            n = c["n"]
            mg = [ix.get((w.key, n, t, "vg")) for t in ("micrograd", "micrograd-nogc")]
            mg = [m for m in mg if m and m["median_s"]]
            mgb = min(mg, key=lambda m: m["median_s"]) if mg else None
            py = ix.get((w.key, n, "python", "primal"))
            for t in tools:
                p, g = ix.get((w.key, n, t, "primal")), ix.get((w.key, n, t, "vg"))
                if not p and not g:
                    continue
                e0 = g or p
                row = [f"{fmt_n(n)}" if w.sized else "—", labels[t], e0["style"],
                       fmt(us_op(p)), fmt(us_op(g)),
                       fmt(paired(g, p)) if p and g else "—",
                       fmt(paired(g, mgb)) if g and mgb else "—",
                       fmt(paired(g, py)) if g and py else "—",
                       fmt_err(max([x["error"] for x in (p, g) if x and x["error"] is not None], default=None), t),
                       " / ".join(f"{len(x['samples_s'])}×{x['k']}" for x in (p, g) if x)]
                a("| " + " | ".join(row) + " |")
            for k, why in c["skipped"].items():
                skipped_by.setdefault((k, why), []).append(n)
        if skipped_by:
            a("")
            a("Not run: " + "; ".join(
                (f"{k} at n = {', '.join(fmt_n(n) for n in ns)}: {why}" if w.sized else f"{k}: {why}")
                for (k, why), ns in skipped_by.items()) + ".")
    a("")
    a("## Notes")
    a("")
    for note in meta["notes"]:
        a(f"- {note}")
    a("")
    path.write_text("\n".join(L))


TOOL_NOTES = {
    "python": ("the same program in plain Python (`math`), primal only", "scalar"),
    "dl": ("`primal` and `vg = value_and_grad f` of the workload's .dl file, mode backprop (linear factoring), "
           "compiled once in one `Machine`, called with Python data", "scalar"),
    "micrograd": ("micrograd 0.1.0 `Value` graph, `backward()`; sin, log and tanh added in the harness the "
                  "micrograd way (a new Value with a `_backward` closure); its `-` is `+ (-1 * x)`, `/` is `* x**-1`",
                  "scalar"),
    "micrograd-nogc": ("the same, with `gc.disable()` around the timed calls", "scalar"),
    "autograd": ("HIPS autograd `value_and_grad` of the same program over `autograd.numpy` (W4, W5: the numpy "
                 "array program, because autograd's element access costs O(n) per element)", "scalar; vector on W4, W5"),
    "torch": ("PyTorch eager, the same program on 0-d float64 tensors, `torch.autograd.grad`", "scalar"),
    "torch-vec": ("PyTorch eager on float64 arrays (W4: `(sin(x) * x).sum()`; W5: matrix products)", "vector, W4/W5 only"),
    "jax": ("JAX eager: `jax.value_and_grad` of the same program, unjitted, op by op", "scalar"),
    "jax-jit": ("`jax.jit(jax.value_and_grad(f))` of the idiomatic JAX program: `lax.fori_loop` for recurrences, "
                "array ops for W4/W5; compile time apart", "jit"),
    "fd": ("central differences of the plain-Python program, h = 1e-6 max(1, |x_i|): 2k + 1 evaluations for k "
           "inputs", "scalar"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: smaller sizes, few samples (under a minute)")
    ap.add_argument("--only", default="", help="comma-separated workloads, e.g. W2,W4")
    ap.add_argument("--tools", default="", help="comma-separated tool names (python,dl,micrograd,...)")
    ap.add_argument("--out", default="", help="output directory (default: benchmarks/ for a full run, "
                                              "files with a -quick suffix otherwise)")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    opts = ap.parse_args()

    warnings.filterwarnings("ignore", category=RuntimeWarning)  # W2's overflowing derivative, in numpy's peers
    cfg = QUICK if opts.quick else FULL
    partial = opts.quick or opts.only or opts.tools
    outdir = Path(opts.out) if opts.out else HERE
    suffix = "-quick" if partial and not opts.out else ""
    only = {s.strip().upper() for s in opts.only.split(",") if s.strip()}
    want_tools = {s.strip() for s in opts.tools.split(",") if s.strip()}

    global DL_COMMIT
    DL_COMMIT = dl_commit()  # at the start: the checkout may move while the suite runs
    t_start = time.time()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    startup = None
    if not opts.no_startup:
        log("start-up: dl run on a trivial file")
        startup = measure_startup(cfg)
        if "median_s" in startup:
            log(f"  median {startup['median_s']['dl run trivial.dl']:.3f} s")
    names = [t for t in TOOL_ORDER if not want_tools or t in want_tools or t.split("-")[0] in want_tools]
    log("starting one process per tool: " + ", ".join(names))
    ctx = multiprocessing.get_context("spawn")
    workers, missing = [], []
    for wk in [Worker(ctx, name) for name in names]:  # all start at once: their imports overlap
        if wk.ready().ok:
            workers.append(wk)
        else:
            missing.append(wk.message)
            log(f"skipping {wk.message}")
    try:
        body(opts, cfg, workers, missing, startup, t_start, load_start, outdir, suffix, only,
             lambda: fresh_workers(ctx, workers, missing))
    finally:
        for wk in workers:
            wk.close()


def fresh_workers(ctx, workers: list, missing: list) -> None:
    """Each tool's worker replaced by a new process (in place): a workload's samples are not slowed by what an
    earlier workload left in the process (its allocator's state: dl's primal at W4 n = 10^5 ran about 10 %
    slower after W2 and W3 than alone)."""
    names = [wk.name for wk in workers]
    for wk in workers:
        wk.close()
    started = [Worker(ctx, name) for name in names]  # (all at once: their imports overlap)
    workers[:] = [wk for wk in started if wk.ready().ok]
    for wk in started:
        if not wk.ok:
            wk.close()
            missing.append(f"{wk.message} (failed to start again)")
            log(f"skipping {missing[-1]}")


def body(opts, cfg, workers, missing, startup, t_start, load_start, outdir, suffix, only, renew) -> None:
    names = [wk.name for wk in workers]
    labels = {wk.name: wk.label for wk in workers}
    versions = {}
    for wk in workers:
        if wk.version and wk.name.split("-")[0] not in versions:
            versions[wk.name.split("-")[0]] = wk.version
    workloads = [w for w in WORKLOADS if not only or w.key in only]
    sizes_of = {w.key: (w.quick_sizes if cfg.quick else w.sizes) for w in workloads}
    dl_counts = {}
    cells: list = []
    history: dict = {}
    for i, w in enumerate(workloads):
        if i:
            renew()  # (each workload in fresh processes)
        for n in sizes_of[w.key]:
            run_cell(w, n, workers, cfg, history, cells)
        dl_worker = next((wk for wk in workers if wk.name == "dl"), None)
        if dl_worker:  # (dl's counters, after the timings)
            n0 = sizes_of[w.key][0]
            counts = dl_worker.call("counts", w.key, n0)
            dl_counts[w.key] = {"n": n0, "n_label": f"n={n0}" if w.sized else "", "nominal": w.ops(n0),
                                "primal": counts["primal"]["prims"], "vg_counters": counts["vg"]}
    goals = compute_goals(cells, sizes_of, startup)
    floor = []
    if "W2" in sizes_of:
        log("the floor: a hand-written tape for W2 (benchmarks/tape_floor.py)")
        floor = [tape_floor.measure(n, rounds=5 if cfg.quick else 15) for n in sizes_of["W2"]]
    notes = [
        "These workloads run on lists of Reals (one backpropagator per scalar operation). dl's `Array` type "
        "(one backpropagator per array operation) has its own suite against the numpy floor, PyTorch, HIPS "
        "autograd and JAX: benchmarks/arrays/RESULTS.md (`.venv-bench/bin/python benchmarks/arrays/run.py`).",
        "Times are wall-clock medians on a shared 2-core machine: other jobs ran alongside. Ratios between "
        "tools measured in the same interleaved rounds are more trustworthy than the absolute µs.",
        "micrograd's `backward()` sorts the graph recursively; it runs here on a big-stack thread with a "
        "recursion limit of 2,000,000 (as dl's `lang.back.deep` runs dl), which is what lets W2 at n = 10^4 finish.",
        "Each tool runs in its own worker process (`benchmarks/worker.py`), driven one command at a time by "
        "the parent: in a shared process, what one tool leaves behind (allocator state, caches, JAX's and "
        "PyTorch's threads) slowed the next one's samples, dl's value and gradient by up to 2x at n = 10^3. "
        "Each workload gets fresh processes too: after W2 and W3 in the same process, dl's primal of W4 at "
        "n = 10^5 ran about 10 % slower than alone (its grad/primal 1.57-1.60 against 1.73-1.80).",
        "micrograd builds more graph nodes than there are primitive operations (`-` is two nodes, constants "
        "are nodes); µs/op still divides by the workload's count, the same for every tool.",
        "*vector* and *jit* rows are the peers' idiomatic array programs, listed for context: the goals compare "
        "dl with the same program written op by op (micrograd, PyTorch eager scalar).",
        "A callable whose predicted time per call (from the previous size, linear in n; for finite "
        f"differences, 2k + 1 plain-Python evaluations) exceeds {cfg.max_call:g} s ({cfg.max_call * 5:g} s for "
        f"the tools the goals need: dl, plain Python, micrograd, PyTorch scalar; {cfg.max_fd_call:g} s for "
        "finite differences) is not run at that size: see *Not run* under each workload. Callables slower "
        f"than {cfg.max_call / 4:g} s per call get 3 samples.",
        "Every ratio (grad/primal, ÷ micrograd, ÷ Python, and the goals' ratios) is the median over rounds of "
        "the ratio of two samples taken in the same round, seconds apart: on a shared machine this cancels "
        "most of the drift in load that the separate medians of the µs/op columns carry. The machine's two "
        "CPUs are shared with other jobs; samples of one callable spread by up to 2-3x when they run.",
        "Peak memory is measured on one extra call with tracemalloc on and the garbage collector off (a "
        "call's graph stays reachable until it returns, so the collector frees little during one call); "
        "tracemalloc slows that call, which is not timed.",
        "micrograd's nodes form reference cycles (each `_backward` closure holds its node), so with the "
        "collector on, its cost per operation grows with the graph's size: the collector traverses the whole "
        "live graph again and again, and the timed collection after each sample (see above) frees the "
        "cyclic graph, which alone takes about 10 µs per node on deep graphs. gc.disable() removes both (the "
        "graph is then never freed); the goals hold dl to the better of the two.",
        "JAX eager re-traces on every call (that is what eager means); its first-call time is not separated.",
        "dl's first call of each workload compiles and transforms its definitions; that call is a warm-up and "
        "not in the medians (nor is any tool's first call).",
    ]
    meta = {
        "command": " ".join([command_python(), "benchmarks/run.py"] + sys.argv[1:]),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "wall_s": time.time() - t_start,
        "machine": f"{os.cpu_count()} cores, {cpu_model()}, {platform.platform()}",
        "python": platform.python_version(),
        "dl_commit": DL_COMMIT,
        "versions": versions,
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "quick": cfg.quick,
        "config": cfg.__dict__,
        "tools": names,
        "labels": labels,
        "tool_notes": {k: v for k, v in TOOL_NOTES.items() if k in names},
        "missing": missing,
        "sizes": {k: list(v) for k, v in sizes_of.items()},
        "dl_counts": dl_counts,
        "notes": notes,
    }
    data = {"meta": meta, "goals": goals, "startup": startup, "cells": cells, "floor": floor}
    outdir.mkdir(parents=True, exist_ok=True)
    jpath = outdir / f"results{suffix}.json"
    mpath = outdir / f"RESULTS{suffix}.md"
    jpath.write_text(json.dumps(data, indent=1, default=str))
    write_report(data, mpath)
    log(f"done in {time.time() - t_start:.0f} s")
    print(summary(data, mpath, jpath))


def summary(data: dict, mpath: Path, jpath: Path) -> str:
    """The results on stdout: the goals by area (what each area measures first), the checks of every
    tool against the reference (expected disagreements said as such, with their reason), the files."""
    meta, goals = data["meta"], data["goals"]
    lines = [f"dl benchmarks{' (quick smoke run: small sizes, few samples)' if meta['quick'] else ''}: "
             f"{len(meta['sizes'])} workloads, {meta['wall_s']:.0f} s; tools: {', '.join(meta['tools'])}"]
    lines += [f"  not measured: {m}" for m in meta["missing"]]
    lines += ["", "Goals, by area:"]
    areas = [a for a in GOAL_AREAS if any(g["area"] == a for g in goals)]
    for area in areas:
        lines.append(f"  {area}: {GOAL_AREAS[area]}")
        for g in goals:
            if g["area"] == area:
                st = "report" if g["met"] is None else ("met" if g["met"] else "MISSED")
                lines.append(f"    [{st}] {g['goal']}: {g['measured']}")
    found = [(c["workload"], c["n"], d) for c in data["cells"] for d in c.get("disagreements", [])]
    expected = [x for x in found if x[2]["expected"]]
    unexpected = [x for x in found if not x[2]["expected"]]
    lines += ["", f"Checks: every tool's value and gradient against the reference tool (tolerance {TOL:g}, "
                  f"finite differences {FD_TOL:g}): "
                  + ("all agree" if not found else f"{len(unexpected)} unexpected disagreement(s), "
                     f"{len(expected)} expected")]
    for w, n, d in unexpected:
        lines.append(f"  DISAGREES: {w} n={n} {d['tool']}:{d['kind']} error {d['error']:.1e}")
    for (w, reason), ns in _grouped(expected).items():
        lines.append(f"  expected: {w} n={', '.join(str(n) for n in ns)}: finite differences miss the gradient "
                     f"(error up to {max(d['error'] for x, m, d in expected if x == w):.1e}): {reason}")
    lines += ["", f"Tables: {mpath} (and {jpath})"]
    return "\n".join(lines)


def _grouped(found: list) -> dict:
    """(workload, reason) -> the sizes where that expected disagreement happened."""
    out: dict = {}
    for w, n, d in found:
        sizes = out.setdefault((w, d["expected"]), [])
        if n not in sizes:
            sizes.append(n)
    return out


DL_COMMIT = ""


def dl_commit() -> str:
    """The commit of the dl checkout measured, and whether lang/, stdlib/ or grammar/ differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lang", "stdlib", "grammar"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    return f"commit {head}" + (" with uncommitted changes in lang/, stdlib/ or grammar/" if dirty else "")


def command_python() -> str:
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        return str(exe)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
