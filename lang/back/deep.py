"""Running deep programs: a worker thread with a big stack and a high recursion limit.

CPython 3.11 runs Python-to-Python calls without growing the C stack, so a
high recursion limit is enough for most deep dl programs (10^5 nested
non-tail calls); the big thread stack covers the C-level recursion that
remains (Lark, pickling, printing). The caller's own thread is untouched.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

STACK_BYTES = 1 << 30      # virtual: pages are only touched as the stack grows
RECURSION_LIMIT = 400_000  # one dl call is one Python frame: 10^5 nested calls fit four times over


class Timeout(Exception):
    """Raised inside an evaluation that ran past its time budget."""


def _raise_in(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Ask `thread` to raise `exc` at its next bytecode (how Ctrl-C and budgets stop an evaluation)."""
    import ctypes  # only to stop an evaluation (start-up)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc))


def run_deep(fn: Callable[[], Any], budget: float | None = None) -> Any:
    """Run `fn()` on a big-stack thread and return its result (or raise its exception).

    Ctrl-C in the calling thread interrupts the evaluation (KeyboardInterrupt is
    raised in both); past `budget` seconds the evaluation raises Timeout.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 — handed back to the caller's thread
            result["error"] = e

    old_limit = sys.getrecursionlimit()
    old_size = threading.stack_size()
    sys.setrecursionlimit(max(old_limit, RECURSION_LIMIT))
    try:
        threading.stack_size(STACK_BYTES)
        worker = threading.Thread(target=target, name="dl-eval", daemon=True)
        worker.start()
    finally:
        threading.stack_size(old_size)
    deadline = None if budget is None else time.monotonic() + budget
    try:
        while worker.is_alive():
            worker.join(0.05)
            if deadline is not None and time.monotonic() > deadline and worker.is_alive():
                _raise_in(worker, Timeout)
                deadline = None
    except KeyboardInterrupt:
        _raise_in(worker, KeyboardInterrupt)
        worker.join()
        raise
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in result:
        raise result["error"]
    return result.get("value")
