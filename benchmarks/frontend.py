"""How `dl check` scales with the size of a program (issue 19 item 9): time and peak memory per construct.

    .venv/bin/python benchmarks/frontend.py            # sizes 10^3 .. 10^5 (stops a construct at its first timeout)
    .venv/bin/python benchmarks/frontend.py --quick    # sizes 500, 1000, 2000, 4000: a few minutes
    .venv/bin/python benchmarks/frontend.py --constructs nested_lists,chained_lets --sizes 1000,2000

For each construct (nested list literals, chained lets, nested lambdas, a long operator chain, many
top-level definitions, deep application, ...) a program with n nodes of it is generated, and
`python -m lang check FILE` runs on it in a child process with an address-space limit
(`--max-memory`, default 3 GB: dl itself reserves 1 GiB of it for its evaluation thread's stack) and a
timeout. Measured: wall time, and the child's peak resident memory (`ru_maxrss` of that one child, from
os.wait4: the figure `resource.getrusage(RUSAGE_CHILDREN)` reports, but for this child alone rather than
the largest of all children so far). The growth exponent is the least-squares slope of log(time - t0)
against log(n), t0 being the time to check a one-line program (interpreter start and prelude; the fastest
of three runs before and two after), over the sizes that finished and took over 1.5 t0; likewise for memory above the one-line
program's (which includes the ~20 MB of this script, from which the child is forked: Linux counts it in
the child's ru_maxrss). A linear front end has exponent ~1. On a shared machine, run it twice: the load
of other processes moves single timings by a factor of two.

The generators are also used by tests/test_hostile.py (one bounded-time test per construct).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# ---- programs ---------------------------------------------------------------------------------------
#
# Each generator returns a program whose `main` has a small type (Int or Real), so that `dl check`
# prints one short line and the time measured is parsing, desugaring and inference, not printing a
# type as big as the program (the type printer's depth is issue 19 item 6, tested on its own).

def nested_lists(n: int) -> str:
    """`length [[[ ... [1] ... ]]]`: n nested list literals."""
    return "def main = length " + "[" * n + "1" + "]" * n + "\n"


def chained_lets(n: int) -> str:
    """`let x1 = x0 + 1 in let x2 = x1 + 1 in ...`: n lets, each the body of the one before."""
    lines = ["def main =", "  let x0 = 0 in"]
    lines += [f"  let x{i} = x{i - 1} + 1 in" for i in range(1, n)]
    lines.append(f"  x{n - 1}")
    return "\n".join(lines) + "\n"


def nested_lambdas(n: int) -> str:
    """`(fun x0 -> (fun x1 -> ... (fun x9 -> x9) x8 ...) x0) 1`: n lambdas, each applying the next to its
    parameter (distinct names, as a program would have)."""
    opening = "".join(f"(fun x{i} -> " for i in range(n))
    closing = "".join(f") x{i}" for i in range(n - 2, -1, -1))
    return f"def main = {opening}x{n - 1}{closing}) 1\n"


def operator_chain(n: int) -> str:
    """`1 + 2 * 3 - 4 + ...`: n operands, one long left-nested chain of binary operators."""
    ops = ["+", "*", "-"]
    parts = ["1"]
    for i in range(1, n):
        parts.append(f" {ops[i % 3]} {i % 7 + 1}")
    return "def main = " + "".join(parts) + "\n"


def top_level_defs(n: int) -> str:
    """n top-level definitions, each using the one before."""
    lines = ["def f0 = 0"] + [f"def f{i} = f{i - 1} + 1" for i in range(1, n)] + [f"def main = f{n - 1}"]
    return "\n".join(lines) + "\n"


def deep_application(n: int) -> str:
    """`id2 (id2 ( ... (id2 1) ... ))`: n nested calls."""
    return "def id2 x = x\ndef main = " + "id2 (" * n + "1" + ")" * n + "\n"


def nested_parens(n: int) -> str:
    """`((( ... 1 ... )))`: n parentheses."""
    return "def main = " + "(" * n + "1" + ")" * n + "\n"


def nested_ifs(n: int) -> str:
    """`if true then if true then ... 1 else 2 ... else 2`: n nested ifs."""
    return "def main = " + "if true then " * n + "1" + " else 2" * n + "\n"


def nested_tuples(n: int) -> str:
    """`fst (1.0, (1.0, ... (1.0, 1.0) ...))`: n nested pairs."""
    return "def main = fst " + "(1.0, " * n + "1.0" + ")" * n + "\n"


CONSTRUCTS = {
    "nested_lists": nested_lists,
    "chained_lets": chained_lets,
    "nested_lambdas": nested_lambdas,
    "operator_chain": operator_chain,
    "top_level_defs": top_level_defs,
    "deep_application": deep_application,
}
EXTRA_CONSTRUCTS = {"nested_parens": nested_parens, "nested_ifs": nested_ifs, "nested_tuples": nested_tuples}
ALL_CONSTRUCTS = {**CONSTRUCTS, **EXTRA_CONSTRUCTS}

FULL_SIZES = [1000, 2000, 4000, 10_000, 30_000, 100_000]
QUICK_SIZES = [500, 1000, 2000, 4000]


# ---- measuring ---------------------------------------------------------------------------------------

@dataclass
class Result:
    construct: str
    n: int
    exit: int | None          # None: stopped at the timeout
    seconds: float
    peak_mb: float
    message: str              # the last line of stderr when the check did not succeed


def _limit(max_bytes: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return preexec


def measure(command: list[str], source: str, timeout: float, max_bytes: int, construct: str = "", n: int = 0,
            python: str = sys.executable) -> Result:
    """Run `python -m lang COMMAND FILE` on `source` in a child process: wall time and that child's peak RSS."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "prog.dl"
        path.write_text(source, encoding="utf-8")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        err_path = Path(d) / "stderr"
        with open(err_path, "wb") as err, open(os.devnull, "wb") as out:
            start = time.monotonic()
            child = subprocess.Popen([python, "-m", "lang", *command, str(path)], stdout=out, stderr=err,
                                     stdin=subprocess.DEVNULL, env=env, cwd=str(ROOT), preexec_fn=_limit(max_bytes))
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                child.kill()
            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                _, status, usage = os.wait4(child.pid, 0)
            finally:
                timer.cancel()
            seconds = time.monotonic() - start
            child.returncode = os.waitstatus_to_exitcode(status)  # (so that Popen does not wait for it again)
        lines = err_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        message = lines[0] if lines else ""
        code = None if timed_out.is_set() else child.returncode
        return Result(construct, n, code, seconds, usage.ru_maxrss / 1024, "" if code == 0 else message)


def fit_exponent(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of log y against log x (None with fewer than two usable points)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _status(r: Result) -> str:
    if r.exit is None:
        return "timeout"
    if r.exit == 0:
        return "ok"
    return f"exit {r.exit}"


def _short(message: str, width: int = 70) -> str:
    message = message.replace("|", "\\|")
    return message if len(message) <= width else message[: width - 1] + "…"


def median_of(runs: list[Result]) -> Result:
    """The median run by time (its peak memory the median of the peaks); a failed run, if any, stands for all."""
    failed = [r for r in runs if r.exit != 0]
    if failed:
        return failed[0]
    runs = sorted(runs, key=lambda r: r.seconds)
    mid = runs[len(runs) // 2]
    peaks = sorted(r.peak_mb for r in runs)
    return Result(mid.construct, mid.n, mid.exit, mid.seconds, peaks[len(peaks) // 2], mid.message)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} and a 60 s timeout")
    p.add_argument("--sizes", default=None, help="comma-separated sizes (default: 10^3 .. 10^5)")
    p.add_argument("--constructs", default=None,
                   help=f"comma-separated, from {', '.join(ALL_CONSTRUCTS)} (default: the first six)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per check (default 120, quick 60)")
    p.add_argument("--max-memory", type=float, default=3.0, help="GB of address space per check (default 3)")
    p.add_argument("--command", default="check", help="dl command to time (default: check)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per size; the median time and memory are reported (default 1: a shared machine "
                        "moves single timings by a factor of two, so use 3 for figures worth quoting)")
    args = p.parse_args(argv)

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    names = args.constructs.split(",") if args.constructs else list(CONSTRUCTS)
    unknown = [c for c in names if c not in ALL_CONSTRUCTS]
    if unknown:
        p.error(f"unknown construct(s): {', '.join(unknown)}")
    timeout = args.timeout or (60.0 if args.quick else 120.0)
    max_bytes = int(args.max_memory * 1e9)
    command = args.command.split()

    began = time.monotonic()
    bases = [measure(command, "def main = 1\n", timeout, max_bytes, "baseline", 1) for _ in range(3)]
    t0, m0 = min(b.seconds for b in bases), min(b.peak_mb for b in bases)
    print(f"# dl front end: `dl {args.command}` time and peak memory against program size\n")
    print(f"Python {sys.version.split()[0]}; {os.cpu_count()} cores (shared); timeout {timeout:g} s; "
          f"address-space limit {args.max_memory:g} GB per check.  ")
    print(f"Baseline (one-line program, fastest of 3): {t0:.2f} s, {m0:.0f} MB. Exponents: slope of "
          "log(time - baseline) and log(peak - baseline) against log n, over the sizes that finished (exit 0) "
          "and stand out of the baseline.  ")
    print(f"Runs per size: {args.repeat} (median).  ")
    print(f"Load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| construct | n | source KB | status | time (s) | peak (MB) | message |")
    print("|---|---:|---:|---|---:|---:|---|")
    results: dict[str, list[Result]] = {}
    for name in names:
        gen = ALL_CONSTRUCTS[name]
        results[name] = []
        for n in sizes:
            source = gen(n)
            # a new text each run (a trailing comment): dl caches parsed files by their text, and a repeat that
            # read the tree back would not time the parser
            r = median_of([measure(command, source + f"-- run {k} {time.time()}\n", timeout, max_bytes, name, n)
                           for k in range(args.repeat)])
            results[name].append(r)
            print(f"| {name} | {n} | {len(source.encode()) / 1024:.0f} | {_status(r)} | {r.seconds:.2f} | "
                  f"{r.peak_mb:.0f} | {_short(r.message)} |", flush=True)
            if r.exit != 0:
                break  # bigger sizes would only fail the same way, slower
    # the baseline again: other processes' load moves it, and an inflated t0 hides the growth of small sizes
    bases += [measure(command, "def main = 1\n", timeout, max_bytes, "baseline", 1) for _ in range(2)]
    t0, m0 = min(b.seconds for b in bases), min(b.peak_mb for b in bases)
    print(f"\nBaseline again at the end; fastest of all 5: {t0:.2f} s, {m0:.0f} MB (used for the exponents).")
    print("\n| construct | sizes finished | time exponent | memory exponent | largest finished: time, peak |")
    print("|---|---|---:|---:|---|")
    for name, rs in results.items():
        ok = [r for r in rs if r.exit == 0]
        # sizes whose cost stands out of the baseline's noise
        te = fit_exponent([(r.n, r.seconds - t0) for r in ok if r.seconds > 1.5 * t0])
        me = fit_exponent([(r.n, r.peak_mb - m0) for r in ok if r.peak_mb > m0 + 5])
        last = f"n={ok[-1].n}: {ok[-1].seconds:.1f} s, {ok[-1].peak_mb:.0f} MB" if ok else "-"
        fmt = (lambda e: "-" if e is None else f"{e:.2f}")
        failed = [r for r in rs if r.exit != 0]
        finished = ", ".join(str(r.n) for r in ok) or "none"
        if failed:
            finished += f" (n={failed[0].n}: {_status(failed[0])})"
        print(f"| {name} | {finished} | {fmt(te)} | {fmt(me)} | {last} |")
    print(f"\nTotal {time.monotonic() - began:.0f} s; load average at end: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
