"""One process per tool: the tool's callables are prepared, timed and measured there, on command.

Tools run in separate processes so that none slows another: in one process, what one tool leaves behind
(its allocator's state, its caches, JAX's and PyTorch's background threads) measurably slowed the next
tool's samples (dl's value and gradient by up to 2x at n = 10^3 when it shared a process with the peers).
The parent (run.py) sends one command at a time, so the rounds stay interleaved across tools and every
tool still shares the same machine noise; only timings, checks and sizes cross the pipe, never a
timing's own overhead.

Commands: ("prepare", workload, n) -> {kind: (style, nogc)}; ("first", kind) -> (result, seconds);
("calibrate", kind, target) -> seconds per call; ("sample", kind, k) -> seconds per call;
("memory", kind) -> peak bytes; ("counts", workload, n) -> dl's cost counters; ("release",); ("quit",).
"""
from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc

import peers
from workloads import BY_KEY, flatten

MAKERS = {
    "python": lambda: peers.Python(),
    "dl": lambda: peers.DL(),
    "micrograd": lambda: peers.Micrograd(),
    "micrograd-nogc": lambda: peers.Micrograd(nogc=True),
    "autograd": lambda: peers.Autograd(),
    "torch": lambda: peers.Torch(),
    "torch-vec": lambda: peers.Torch(vector=True),
    "jax": lambda: peers.Jax(),
    "jax-jit": lambda: peers.Jax(jit=True),
    "fd": lambda: peers.FiniteDifferences(),
}

STACK_BYTES = 1 << 30         # as dl's lang.back.deep: micrograd's recursive topological sort needs it
RECURSION_LIMIT = 2_000_000


# ---- timing, inside the worker ------------------------------------------------------------------

def timed_loop(impl: peers.Impl, k: int) -> float:
    """Seconds per call of k calls.

    Before: the collector runs and every survivor is frozen (untimed), so a collection during the calls
    traverses only what they allocate. After, unless gc is off for this callable: one more collection,
    timed, so that the tool pays for collecting its own cyclic garbage, as a long-running program would."""
    fn = impl.fn
    gc.collect()
    gc.freeze()
    if impl.nogc:
        gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        if not impl.nogc:
            gc.collect()
        return (time.perf_counter() - t0) / k
    finally:
        if impl.nogc:
            gc.enable()


def calibrate(impl: peers.Impl, target: float) -> float:
    """Seconds per call, from as many calls as fit in `target` seconds (at least one)."""
    fn = impl.fn
    gc.collect()
    gc.freeze()
    if impl.nogc:
        gc.disable()
    try:
        count, t0 = 0, time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= target:
                return elapsed / count
    finally:
        if impl.nogc:
            gc.enable()


def first_call(impl: peers.Impl):
    """(result, seconds) of one call, under the callable's gc setting."""
    if impl.nogc:
        gc.disable()
    try:
        t0 = time.perf_counter()
        result = impl.fn()
        return result, time.perf_counter() - t0
    finally:
        if impl.nogc:
            gc.enable()


def peak_memory(fn) -> int:
    """tracemalloc's peak over one call, above what was allocated before it; the collector off."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
        gc.enable()
    return peak


def plain(kind: str, result):
    """A result as plain floats, for the check in the parent: value, or (value, flat gradient)."""
    if kind == "vg":
        v, g = result
        return float(v), flatten(g)
    return float(result)


# ---- the command loop -------------------------------------------------------------------------------

def main(conn, name: str) -> None:
    """Process entry point: serve `name`'s commands on a big-stack thread."""
    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(STACK_BYTES)
    t = threading.Thread(target=serve, args=(conn, name), name=f"bench-{name}")
    t.start()
    t.join()


def serve(conn, name: str) -> None:
    import warnings
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # W2's overflowing derivative, in numpy peers
    try:
        tool = MAKERS[name]()
    except ImportError as e:
        conn.send(("missing", f"{name}: not installed ({e}); `pip install -e '.[bench]'` adds it"))
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
                impls = tool.prepare(w, msg[2], w.inputs(msg[2]))
                reply = {k: (i.style, i.nogc) for k, i in impls.items()}
            elif op == "first":
                result, seconds = first_call(impls[msg[1]])
                reply = (plain(msg[1], result), seconds)
            elif op == "calibrate":
                reply = calibrate(impls[msg[1]], msg[2])
            elif op == "sample":
                reply = timed_loop(impls[msg[1]], msg[2])
            elif op == "memory":
                reply = peak_memory(impls[msg[1]].fn)
            elif op == "counts":
                w = BY_KEY[msg[1]]
                reply = tool.count_prims(w, w.inputs(msg[2]))
            elif op == "release":
                impls = {}
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                reply = None
            else:
                raise ValueError(f"unknown command {op!r}")
            conn.send(("ok", reply))
        except peers.NotApplicable as e:
            conn.send(("na", str(e)))
        except Exception as e:  # noqa: BLE001 — a peer failing is reported, not fatal
            conn.send(("error", f"{type(e).__name__}: {str(e)[:300]}"))


class Worker:
    """The parent's handle on one tool's process. Starting it does not wait: the tools import in
    parallel (PyTorch and JAX take seconds each), and `ready()` waits for the worker's greeting."""

    def __init__(self, ctx, name: str):
        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=main, args=(child, name), name=f"bench-{name}", daemon=True)
        self.proc.start()
        child.close()
        self.ok, self.message, self.label, self.version = False, "", name, ""

    def ready(self) -> Worker:
        """Wait until the tool has loaded (or failed to): sets ok, message, label and version."""
        status = self.conn.recv()
        self.ok = status[0] == "ready"
        self.message = status[1] if not self.ok else ""
        self.label = status[1] if self.ok else self.name
        self.version = status[2] if self.ok else ""
        return self

    def call(self, *msg):
        """The reply's value; peers.NotApplicable or RuntimeError for what the worker raised."""
        self.conn.send(msg)
        kind, value = self.conn.recv()
        if kind == "na":
            raise peers.NotApplicable(value)
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
