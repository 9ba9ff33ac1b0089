"""Array benchmarks (A1-A3): dl's Array type against numpy's floor and the array AD peers.

    .venv-bench/bin/python benchmarks/arrays/run.py            # benchmarks/arrays/RESULTS.md, results.json
    .venv-bench/bin/python benchmarks/arrays/run.py --quick    # smoke run: RESULTS-quick.md, results-quick.json
    .venv-bench/bin/python benchmarks/arrays/run.py --only A1s --tools numpy,python

Protocol, as the scalar suite's (benchmarks/run.py): each tool runs in its own worker process
(array_worker.py) and prepares its program once per workload and size; its first call is a warm-up
(for jax.jit: trace and compile, reported apart) and gives the result checked against the numpy floor;
then every tool's `primal` and `vg` (value and gradient) are timed in interleaved rounds, one sample of
each per round, the order rotated every round; a sample of a quick callable is a loop of k calls.
Tables give medians; ratios are medians of same-round ratios. Peers run single-threaded in float64.
Tools are listed in array_tools.TOOLS; a tool that cannot run yet (dl) is reported as skipped.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import array_tools  # noqa: E402,F401  (sets the single-thread environment before numpy loads)
from array_tools import TOOL_ORDER, NotApplicable, Skip  # noqa: E402
from array_workloads import WORKLOADS, rel_error, size_label  # noqa: E402
from array_worker import Worker  # noqa: E402

TOL = 1e-8
REFERENCE = "numpy"
SPEED_REF = "torch"


@dataclass
class Config:
    quick: bool
    budget: float        # seconds of samples per callable per cell
    min_reps: int
    max_reps: int
    min_sample: float    # a sample lasts at least this long (k calls)
    max_call: float      # a callable slower than this per call (after its warm-up) is not timed


FULL = Config(False, budget=0.5, min_reps=7, max_reps=21, min_sample=0.005, max_call=3.0)
QUICK = Config(True, budget=0.04, min_reps=3, max_reps=5, min_sample=0.0005, max_call=0.5)


@dataclass
class Entry:
    tool: str
    kind: str
    worker: Worker
    style: str
    k: int = 1
    reps: int = 0
    first: float = 0.0
    estimate: float = 0.0
    samples: list = field(default_factory=list)
    rounds: list = field(default_factory=list)
    result: object = None
    error: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def paired(a: dict | None, b: dict | None) -> float | None:
    """Median over the rounds in which both were sampled of a's time / b's time."""
    if not a or not b or not a.get("median_s") or not b.get("median_s"):
        return None
    bm = dict(zip(b["rounds"], b["samples_s"]))
    rs = [x / bm[r] for r, x in zip(a["rounds"], a["samples_s"]) if r in bm and bm[r] > 0]
    return statistics.median(rs) if rs else a["median_s"] / b["median_s"]


def run_cell(w, size, workers, cfg: Config, cells: list) -> None:
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    for wk in workers:
        try:
            kinds = wk.call("prepare", w.key, size)
        except Skip as e:
            skipped[wk.name] = f"skipped: {e}"
            continue
        except NotApplicable as e:
            skipped[wk.name] = f"not applicable: {e}"
            continue
        except RuntimeError as e:
            skipped[wk.name] = f"error: {e}"
            log(f"  {w.key} {size} {wk.name}: {e}")
            continue
        for kind, style in kinds.items():
            entries.append(Entry(wk.name, kind, wk, style))

    # warm-up: one call each (JAX compiles here), giving the result to check
    kept = []
    for e in entries:
        try:
            e.result, e.first = e.worker.call("first", e.kind)
        except RuntimeError as ex:
            skipped[f"{e.tool}:{e.kind}"] = f"error: {ex}"
            log(f"  {w.key} {size} {e.tool} {e.kind}: {ex}")
            continue
        kept.append(e)
    entries = kept

    by = {(e.tool, e.kind): e for e in entries}
    ref_vg = by.get((REFERENCE, "vg"))
    if ref_vg:
        rv, rg = ref_vg.result
        for e in entries:
            if e.kind == "vg":
                v, g = e.result
                errs = [rel_error([v], [rv])] + ([rel_error(a, b) for a, b in zip(g, rg)]
                                                  if len(g) == len(rg) else [math.inf])
                e.error = max(errs)
            else:
                e.error = rel_error([e.result], [rv])
    for e in entries:
        e.result = None

    t_cell = time.perf_counter()
    timed = []
    for e in entries:
        # the estimate is not the first call's time, which includes JAX's compiles
        e.estimate = e.worker.call("calibrate", e.kind, cfg.min_sample / 2)
        if e.estimate > cfg.max_call:
            skipped[f"{e.tool}:{e.kind}"] = f"budget: {e.estimate:.3g} s per call > {cfg.max_call:g} s"
            continue
        timed.append(e)
        est = max(e.estimate, 1e-7)
        e.k = max(1, math.ceil(cfg.min_sample / est))
        f = w.reps_factor
        e.reps = int(min(cfg.max_reps * f, max(cfg.min_reps * f, round(f * cfg.budget / (est * e.k)))))
        if est > cfg.max_call / 4:
            e.reps = max(1, min(e.reps, 3))

    entries = timed
    rounds = max((e.reps for e in entries), default=0)
    for r in range(rounds):
        todo = [e for e in entries if len(e.samples) < e.reps]
        shift = r % max(1, len(todo))
        for e in todo[shift:] + todo[:shift]:
            e.samples.append(e.worker.call("sample", e.kind, e.k))
            e.rounds.append(r)
    for wk in workers:
        if wk.name not in skipped:
            wk.call("release")

    cell = {"workload": w.key, "size": size, "label": size_label(w, size), "skipped": skipped, "entries": []}
    for e in entries:
        cell["entries"].append({"tool": e.tool, "kind": e.kind, "style": e.style,
                                "median_s": e.median if e.samples else None, "samples_s": e.samples,
                                "rounds": e.rounds, "k": e.k, "first_call_s": e.first, "error": e.error})
    cells.append(cell)
    bad = [f"{e.tool}:{e.kind} err {e.error:.1e}" for e in entries if e.error is not None and e.error > TOL]
    log(f"{w.key} {size_label(w, size)}: {len(entries)} callables, {time.perf_counter() - t_cell:.1f} s"
        + (("; DISAGREE: " + ", ".join(bad)) if bad else ""))


# ---- report --------------------------------------------------------------------------------------------

def fmt(x, digits=3):
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 0.001:
        return f"{x:.2e}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def us(e):
    return e["median_s"] * 1e6 if e and e.get("median_s") else None


def fmt_err(e):
    if e is None:
        return "—"
    return ("ok" if e <= TOL else "**FAIL**") + (f" {e:.0e}" if e > 0 else " 0")


def index(cells):
    out = {}
    for c in cells:
        for e in c["entries"]:
            out[(c["workload"], c["label"], e["tool"], e["kind"])] = e
    return out


TOOL_NOTES = {
    "numpy": "the floor: the program in numpy with a hand-written reverse pass (benchmarks/arrays/array_workloads.py, "
             "`*_floor_vg`); the reference every tool is checked against",
    "python": "A1 only: a plain Python loop over a list, hand-written derivative cos(x) x + sin(x); takes and "
              "returns Python lists (its own form): dl's scalar path, the other side of the crossover",
    "dl": "`primal` / `vg` of benchmarks/arrays/workloads/*.dl compiled in-process (mode backprop: one "
          "backpropagator per array operation, linear factoring), called with numpy arrays",
    "dl-map": "A1 through `amap` (`primalMap` / `vgMap` of a1_sum_sin.dl): a dl function per element, a Python "
              "loop, its derivative by forward mode per element",
    "torch": "PyTorch eager, `torch.from_numpy` in, `torch.autograd.grad`, `.numpy()` out; primal under `no_grad`",
    "autograd": "HIPS autograd `value_and_grad` over `autograd.numpy` (logsumexp from `autograd.scipy.special`)",
    "jax": "JAX eager: `jax.value_and_grad` unjitted, op by op; numpy arrays passed straight in (JAX converts "
           "them), `np.asarray` out",
    "jax-jit": "`jax.jit(f)` and `jax.jit(jax.value_and_grad(f))`; compile time reported apart",
}


def goal_rows(cells, ix) -> list:
    """(goal, workload, size, measured ratio, met) for the issue's goals: dl <= 1.5x PyTorch eager and <= 2x
    the numpy floor on the MLP (A2) and the GMM (A3); dl's grad/primal <= 3 on every array workload."""
    out = []
    for c in cells:
        w, lab = c["workload"], c["label"]
        dl_g, dl_p = ix.get((w, lab, "dl", "vg")), ix.get((w, lab, "dl", "primal"))
        if not dl_g:
            continue
        if w in ("A2", "A3"):
            torch_g, np_g = ix.get((w, lab, "torch", "vg")), ix.get((w, lab, REFERENCE, "vg"))
            if torch_g:
                r = paired(dl_g, torch_g)
                out.append(("dl v+g <= 1.5x PyTorch eager", w, lab, r, r is not None and r <= 1.5))
            if np_g:
                r = paired(dl_g, np_g)
                out.append(("dl v+g <= 2x numpy floor", w, lab, r, r is not None and r <= 2.0))
        if dl_p and w != "A1s":
            r = paired(dl_g, dl_p)
            out.append(("dl grad/primal <= 3", w, lab, r, r is not None and r <= 3.0))
    return out


def write_report(data: dict, path: Path) -> None:
    meta, cells = data["meta"], data["cells"]
    ix = index(cells)
    labels = meta["labels"]
    tools = [t for t in meta["tools"] if any(e["tool"] == t for c in cells for e in c["entries"])]
    L: list[str] = []
    a = L.append
    a("# Array benchmarks: dl's arrays, the numpy floor, PyTorch, HIPS autograd, JAX")
    a("")
    a(f"Command: `{meta['command']}`  ")
    a(f"Date: {meta['date']} ({meta['wall_s'] / 60:.1f} min wall)  ")
    a(f"Machine: {meta['machine']}  ")
    a(f"Python {meta['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "  ")
    a(f"numpy's BLAS: {meta['blas']}  ")
    a(f"Load average at start / end: {meta['load_start']} / {meta['load_end']} (2 cores shared with other jobs)  ")
    a(f"Sampling: {meta['config']}")
    if meta.get("quick"):
        a("")
        a("**Quick (smoke) run: fewer sizes and samples; not the recorded results.**")
    a("")
    a("Every tool starts from numpy float64 arrays and returns a float or (float, numpy gradients): conversion "
      "is timed. Each tool runs in its own process; per workload and size, its program is prepared once, "
      "its first call is a warm-up (and, for JAX jit, the compile: table below) whose result is checked "
      "against the numpy floor (max over value and gradient arrays of |got - ref| / max(|ref|, 1e-6 max |ref|), "
      f"tolerance {TOL:g}); then primal and v+g (value and gradient) are sampled in interleaved rounds, order "
      "rotated each round. Times are medians in µs per call; every ratio is the median of same-round ratios. "
      "Peers are single-threaded (OMP/MKL/OpenBLAS threads 1, torch.set_num_threads(1), XLA single-thread "
      "flags) and in float64.")
    a("")
    a("## Tools")
    a("")
    a("| tool | what runs | status |")
    a("|---|---|---|")
    for t in meta["tools"] + [m.split(":")[0] for m in meta["missing"]]:
        skips = {why for c in cells for k, why in c["skipped"].items() if k == t and why.startswith("skipped")}
        status = "; ".join(sorted(skips)) if skips else ("ran" if t in tools else "not started")
        a(f"| {labels.get(t, t)} | {TOOL_NOTES.get(t, '')} | {status} |")
    for m in meta["missing"]:
        a(f"| | {m} | missing |")
    a("")

    goals = goal_rows(cells, ix)
    if goals:
        a("## Goals (the arrays issue)")
        a("")
        a("Ratios of medians of same-round ratios (dl ÷ PyTorch eager, dl ÷ the numpy floor; dl's v+g ÷ its own "
          "primal).")
        a("")
        a("| goal | workload | size | measured | status |")
        a("|---|---|---|---|---|")
        for goal, w, lab, r, ok in goals:
            a(f"| {goal} | {w} | {lab} | {fmt(r)} | {'**met**' if ok else '**missed**'} |")
        a("")

    a("## Summary: value + gradient, µs per call")
    a("")
    a("Each tool's v+g median; in brackets its ratio to the numpy floor's v+g (same rounds). Last column: the "
      "numpy floor's primal.")
    a("")
    a("| workload | size | " + " | ".join(labels[t] for t in tools) + " | numpy primal |")
    a("|---|---|" + "---|" * (len(tools) + 1))
    for c in cells:
        if c["workload"] == "A1s":
            continue
        w, lab = c["workload"], c["label"]
        ref = ix.get((w, lab, REFERENCE, "vg"))
        row = [w, lab]
        for t in tools:
            g = ix.get((w, lab, t, "vg"))
            r = paired(g, ref) if g and ref else None
            row.append(f"{fmt(us(g))} ({fmt(r)}×)" if g and r is not None else fmt(us(g)))
        row.append(fmt(us(ix.get((w, lab, REFERENCE, "primal")))))
        a("| " + " | ".join(row) + " |")
    a("")

    a("## grad / primal per tool (v+g time over the same tool's primal time)")
    a("")
    a("| workload | size | " + " | ".join(labels[t] for t in tools) + " |")
    a("|---|---|" + "---|" * len(tools))
    for c in cells:
        w, lab = c["workload"], c["label"]
        if w == "A1s":
            continue
        row = [w, lab] + [fmt(paired(ix.get((w, lab, t, "vg")), ix.get((w, lab, t, "primal")))) for t in tools]
        a("| " + " | ".join(row) + " |")
    a("")

    xo = [c for c in cells if c["workload"] == "A1s"]
    if xo:
        a("## Small arrays: the crossover between numpy and a plain Python loop (A1 at small n)")
        a("")
        a("f(x) = Σ sin(xᵢ)·xᵢ. *numpy*: the floor, arrays in and out (a v+g is 4 numpy calls: sin, cos, "
          "elementwise, dot). *Python*: a loop over a list with the hand-written derivative, lists in and out. "
          "*Python ÷ numpy* < 1: the scalar loop wins. Other tools' v+g for scale.")
        a("")
        extra = [t for t in tools if t not in ("numpy", "python")]
        a("| n | numpy primal µs | Python primal µs | Python ÷ numpy (primal) | numpy v+g µs | Python v+g µs | "
          "Python ÷ numpy (v+g) | " + " | ".join(f"{labels[t]} v+g µs" for t in extra) + " |")
        a("|---|---|---|---|---|---|---|" + "---|" * len(extra))
        cross_p = cross_g = None
        for c in xo:
            lab = c["label"]
            npp, pyp = ix.get(("A1s", lab, "numpy", "primal")), ix.get(("A1s", lab, "python", "primal"))
            npg, pyg = ix.get(("A1s", lab, "numpy", "vg")), ix.get(("A1s", lab, "python", "vg"))
            rp, rg = paired(pyp, npp), paired(pyg, npg)
            if rp is not None and rp > 1 and cross_p is None:
                cross_p = lab
            if rg is not None and rg > 1 and cross_g is None:
                cross_g = lab
            a("| " + " | ".join([lab, fmt(us(npp)), fmt(us(pyp)), fmt(rp), fmt(us(npg)), fmt(us(pyg)), fmt(rg)]
                                + [fmt(us(ix.get(("A1s", lab, t, "vg")))) for t in extra]) + " |")
        a("")
        a(f"First n at which numpy is faster than the Python loop: primal n = {cross_p or '> largest'}, "
          f"value and gradient n = {cross_g or '> largest'}.")
        a("")

    crossover = data.get("dl_crossover")
    if crossover:
        a("## Small arrays: dl's list path against its array path")
        a("")
        a(f"Command: `{crossover['command']}` (one process, interleaved rounds; {crossover['wall_s']:.0f} s). "
          "The same f(x) = Σ sin(xᵢ)·xᵢ, value and gradient in mode backprop, as a `[Real]` (one backpropagator "
          "per element) and as an `Array` (one per array operation).")
        a("")
        a(crossover["stdout"].strip())
        a("")

    jit = [(c, e) for c in cells for e in c["entries"] if e["tool"] == "jax-jit" and e["median_s"]]
    if jit:
        a("## JAX jit: compile time (not in the medians)")
        a("")
        a("First call (trace + compile + run) minus the median call.")
        a("")
        a("| workload | size | kind | compile s | steady µs |")
        a("|---|---|---|---|---|")
        for c, e in jit:
            a(f"| {c['workload']} | {c['label']} | {e['kind']} | {e['first_call_s'] - e['median_s']:.3f} | {fmt(us(e))} |")
        a("")

    a("## Details per workload")
    a("")
    a("*min*: the fastest sample (under heavy load the median carries the other jobs' preemptions, the minimum "
      "less so); *grad/primal*: the tool's v+g over its own primal; *÷ numpy*: over the numpy floor's (primal over primal, "
      "v+g over v+g); *÷ torch*: v+g over PyTorch eager's v+g; *check*: max relative error against the floor; "
      "*reps*: samples × calls per sample (primal / v+g).")
    for w in WORKLOADS:
        wc = [c for c in cells if c["workload"] == w.key]
        if not wc:
            continue
        a("")
        a(f"### {w.key}: {w.title}")
        a("")
        for note in w.notes:
            a(f"- {note}")
        a(f"- dl program: `benchmarks/arrays/workloads/{w.dl_file}`.")
        a("")
        a("| size | tool | primal µs | v+g µs | min primal / v+g µs | grad/primal | primal ÷ numpy | v+g ÷ numpy | v+g ÷ torch | check | reps |")
        a("|---|---|---|---|---|---|---|---|---|---|---|")
        skipped_by: dict = {}
        for c in wc:
            lab = c["label"]
            rp, rg = ix.get((w.key, lab, REFERENCE, "primal")), ix.get((w.key, lab, REFERENCE, "vg"))
            tg = ix.get((w.key, lab, SPEED_REF, "vg"))
            for t in tools:
                p, g = ix.get((w.key, lab, t, "primal")), ix.get((w.key, lab, t, "vg"))
                if not p and not g:
                    continue
                errs = [x["error"] for x in (p, g) if x and x["error"] is not None]
                a("| " + " | ".join([
                    lab, labels[t], fmt(us(p)), fmt(us(g)),
                    " / ".join(fmt(min(x["samples_s"]) * 1e6) if x and x["samples_s"] else "—" for x in (p, g)),
                    fmt(paired(g, p)) if p and g else "—",
                    fmt(paired(p, rp)) if p and rp else "—",
                    fmt(paired(g, rg)) if g and rg else "—",
                    fmt(paired(g, tg)) if g and tg else "—",
                    fmt_err(max(errs) if errs else None),
                    " / ".join(f"{len(x['samples_s'])}×{x['k']}" for x in (p, g) if x)]) + " |")
            for k, why in c["skipped"].items():
                skipped_by.setdefault((k, why), []).append(lab)
        if skipped_by:
            a("")
            a("Not run: " + "; ".join(f"{labels.get(k, k)} at {', '.join(ls)}: {why}"
                                      for (k, why), ls in skipped_by.items()) + ".")
    a("")
    ref = data.get("reference")
    if ref:
        a("## Reference trainers on the digits split (independent oracles for dl's examples)")
        a("")
        a(f"`{ref['command']}` (numpy with hand-written gradients, checked against central differences; "
          f"Adam; exit status {ref['returncode']}, which is 0 when every model reaches held-out accuracy >= 0.95), "
          f"run in this session, {ref['wall_s']:.1f} s wall:")
        a("")
        a("```")
        a(ref["stdout"].rstrip())
        a("```")
        a("")

    a("## Notes")
    a("")
    for n in meta["notes"]:
        a(f"- {n}")
    a("")
    path.write_text("\n".join(L))


NOTES = [
    "Times are wall-clock on a shared 2-core machine; same-round ratios are more trustworthy than absolute µs.",
    "The numpy floor is one hand-written program per workload, not the shared program the AD tools run: A1's "
    "primal is `dot(sin x, x)`, A3's builds Q by index assignment and contracts with einsum. It is the time "
    "to beat, not the same operation sequence.",
    "JAX eager compiles every primitive the first time it meets a shape; that happens in the warm-up call, "
    "outside the medians. Its steady per-op dispatch is what the medians show.",
    "Every AD tool takes the data arrays and the differentiated arrays as numpy arrays on every call "
    "(torch.from_numpy shares memory; JAX is handed the numpy arrays and converts them itself, which is "
    "cheaper than an explicit jnp.asarray per array); integer index arrays are converted once.",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer sizes and samples")
    ap.add_argument("--only", default="", help="comma-separated workloads: A1,A1s,A2,A3")
    ap.add_argument("--tools", default="", help="comma-separated tools (" + ",".join(TOOL_ORDER) + ")")
    ap.add_argument("--out", default="", help="output directory (default benchmarks/arrays)")
    ap.add_argument("--no-reference", action="store_true", help="do not run the numpy reference trainers")
    opts = ap.parse_args()
    cfg = QUICK if opts.quick else FULL
    partial = bool(opts.quick or opts.only or opts.tools)
    suffix = "-quick" if partial and not opts.out else ""
    outdir = Path(opts.out) if opts.out else HERE
    only = {s.strip() for s in opts.only.split(",") if s.strip()}
    want = {s.strip() for s in opts.tools.split(",") if s.strip()}
    names = [t for t in TOOL_ORDER if not want or t in want]

    t_start = time.time()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ctx = multiprocessing.get_context("spawn")
    log("starting one process per tool: " + ", ".join(names))
    workers, missing = [], []
    for name in names:
        wk = Worker(ctx, name)
        (workers if wk.ok else missing).append(wk if wk.ok else wk.message)
        if not wk.ok:
            log(f"missing {wk.message}")
    try:
        blas = next((wk.call("info") for wk in workers if wk.name == "numpy"), "?")
        cells: list = []
        for w in WORKLOADS:
            if only and w.key not in only:
                continue
            for size in (w.quick_sizes if cfg.quick else w.sizes):
                run_cell(w, size, workers, cfg, cells)
    finally:
        for wk in workers:
            wk.close()
    reference = None
    if not opts.no_reference:
        log("reference trainers: reference_numpy.py --check")
        cmd = [sys.executable, str(HERE / "reference_numpy.py"), "--check"]
        t0 = time.time()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        reference = {"command": "python benchmarks/arrays/reference_numpy.py --check", "stdout": out.stdout + out.stderr,
                     "returncode": out.returncode, "wall_s": time.time() - t0}
    dl_crossover = None
    if "dl" in names and not opts.only:
        log("dl's list path against its array path: crossover_dl.py")
        cmd = [sys.executable, str(HERE / "crossover_dl.py")] + (["--quick"] if cfg.quick else [])
        t0 = time.time()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        dl_crossover = {"command": " ".join(["python", "benchmarks/arrays/crossover_dl.py"] + cmd[2:]),
                        "stdout": out.stdout + out.stderr, "returncode": out.returncode, "wall_s": time.time() - t0}
    versions = {}
    for wk in workers:
        if wk.version and wk.name.split("-")[0] not in versions:
            versions[wk.name.split("-")[0]] = wk.version
    exe = Path(sys.executable)
    try:
        exe_s = str(exe.relative_to(ROOT))
    except ValueError:
        exe_s = str(exe)
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = {
        "command": " ".join([exe_s, "benchmarks/arrays/run.py"] + sys.argv[1:]),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": head,
        "wall_s": time.time() - t_start,
        "machine": f"{os.cpu_count()} cores, {cpu}, {platform.platform()}",
        "python": platform.python_version(),
        "versions": versions,
        "blas": blas,
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "quick": cfg.quick,
        "config": ", ".join(f"{k} {v}" for k, v in cfg.__dict__.items() if k != "quick"),
        "tools": [wk.name for wk in workers],
        "labels": {wk.name: wk.label for wk in workers},
        "missing": missing,
        "notes": NOTES,
    }
    data = {"meta": meta, "cells": cells, "reference": reference, "dl_crossover": dl_crossover}
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / f"results{suffix}.json").write_text(json.dumps(data, indent=1, default=str))
    write_report(data, outdir / f"RESULTS{suffix}.md")
    log(f"wrote {outdir / f'RESULTS{suffix}.md'} ({(time.time() - t_start) / 60:.1f} min)")


if __name__ == "__main__":
    main()
