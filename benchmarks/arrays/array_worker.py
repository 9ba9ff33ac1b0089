"""One process per tool for the array suite, driven one command at a time (as benchmarks/worker.py).

Commands: ("prepare", workload, size) -> {kind: style}; ("first", kind) -> (result, seconds);
("calibrate", kind, target) -> seconds per call; ("sample", kind, k) -> seconds per call;
("info",) -> BLAS / thread information; ("release",); ("quit",).
A tool that cannot run yet answers "skip", one without a program for a workload "na".
"""
from __future__ import annotations

import gc
import time

import array_tools as tools_mod
from array_workloads import BY_KEY


def timed_loop(fn, k: int) -> float:
    """Seconds per call of k calls. Before: a collection and gc.freeze() (untimed); after: one more
    collection, timed, so each tool pays for its own cyclic garbage (benchmarks/worker.py's rule)."""
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    gc.collect()
    return (time.perf_counter() - t0) / k


def calibrate(fn, target: float) -> float:
    gc.collect()
    gc.freeze()
    count, t0 = 0, time.perf_counter()
    while True:
        fn()
        count += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= target:
            return elapsed / count


def plain(kind: str, result):
    """Numpy/float copies of a result for the parent's check."""
    import numpy as np
    if kind == "vg":
        v, g = result
        return float(v), [np.array(a, dtype=np.float64) for a in g]
    return float(result)


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
        return "; ".join(f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')}, "
                         f"{d.get('num_threads')} thread{'s' if d.get('num_threads') != 1 else ''})"
                         for d in threadpool_info())
    except ImportError:
        return "threadpoolctl not installed"


def main(conn, name: str) -> None:
    import warnings
    warnings.filterwarnings("ignore")
    try:
        tool = tools_mod.TOOLS[name]()
    except ImportError as e:
        conn.send(("missing", f"{name}: not installed ({e})"))
        return
    except Exception as e:  # noqa: BLE001
        conn.send(("missing", f"{name}: failed to start ({type(e).__name__}: {e})"))
        return
    conn.send(("ready", tool.label, tool.version))
    gc.collect()
    gc.freeze()
    impls: dict = {}
    while True:
        msg = conn.recv()
        op = msg[0]
        try:
            if op == "quit":
                conn.send(("ok", None))
                return
            if op == "prepare":
                w = BY_KEY[msg[1]]
                impls = tool.prepare(w, w.make(msg[2]))
                reply = {k: i.style for k, i in impls.items()}
            elif op == "first":
                t0 = time.perf_counter()
                result = impls[msg[1]].fn()
                reply = (plain(msg[1], result), time.perf_counter() - t0)
            elif op == "calibrate":
                reply = calibrate(impls[msg[1]].fn, msg[2])
            elif op == "sample":
                reply = timed_loop(impls[msg[1]].fn, msg[2])
            elif op == "info":
                reply = blas_info()
            elif op == "release":
                impls = {}
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                reply = None
            else:
                raise ValueError(f"unknown command {op!r}")
            conn.send(("ok", reply))
        except tools_mod.Skip as e:
            conn.send(("skip", str(e)))
        except tools_mod.NotApplicable as e:
            conn.send(("na", str(e)))
        except Exception as e:  # noqa: BLE001 — a peer failing is reported, not fatal
            conn.send(("error", f"{type(e).__name__}: {str(e)[:300]}"))


class Worker:
    """The parent's handle on one tool's process."""

    def __init__(self, ctx, name: str):
        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=main, args=(child, name), name=f"abench-{name}", daemon=True)
        self.proc.start()
        child.close()
        status = self.conn.recv()
        self.ok = status[0] == "ready"
        self.message = status[1] if not self.ok else ""
        self.label = status[1] if self.ok else name
        self.version = status[2] if self.ok else ""

    def call(self, *msg):
        self.conn.send(msg)
        kind, value = self.conn.recv()
        if kind == "skip":
            raise tools_mod.Skip(value)
        if kind == "na":
            raise tools_mod.NotApplicable(value)
        if kind == "error":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        try:
            if self.ok:
                self.call("quit")
        except (EOFError, OSError, RuntimeError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
