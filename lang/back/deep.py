"""Running deep programs: a worker thread with a big stack, a high recursion limit, and budgets.

Every phase of dl — parsing, desugaring, inference, specialisation, the transforms, the compiler,
the evaluation and the printers — recurses on the program's tree, and runs on this worker. CPython
3.11 runs Python-to-Python calls without growing the C stack, so a high recursion limit is enough
for most of it (a frame costs ~200 bytes: RECURSION_LIMIT frames are ~400 MB at most); the big
thread stack covers the C-level recursion that remains (hashing and comparing deep types,
pickling). The limits are documented in docs/reference.md, Limits.

The stack is reserved, not used: its pages are touched only as it grows. Under an address-space
limit (`ulimit -v`) a 1 GiB reservation may not fit, so the worker takes what the limit leaves room
for (a quarter of the free address space, between 32 MiB and 1 GiB).

Budgets: past `budget` seconds the evaluation raises Timeout; past `max_memory` bytes of resident
memory (polled every 50 ms) it raises MemoryBudget. Both are raised *in* the worker, between two
bytecodes, and only while the worker is inside its `try` (armed): a stop that arrives before that is
raised by the worker itself as it arms, one that arrives as the work ends is taken back or reported
as the stop — never a traceback of the thread's own start or clean-up.

A single long C call (multiplying two multi-million-digit Ints, converting one to text) holds the
interpreter lock and sees no bytecode boundary: nothing in the process can interrupt it, not even
the thread that watches the clock. `supervised(budget)` covers that: it forks, the child does the
work under run_deep's budget, and the parent, which does nothing but wait, kills the child a grace
period after the budget and reports the budget itself. `dl run --budget` uses it.
"""
from __future__ import annotations

import os
import resource
import sys
import threading
import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any, Callable

STACK_BYTES = 1 << 30       # the most the worker reserves (virtual: pages are touched only as it grows)
MIN_STACK_BYTES = 32 << 20
RECURSION_LIMIT = 2_000_000  # Python frames: 10^5 nested dl calls or syntax nodes fit many times over
POLL_SECONDS = 0.05


class Timeout(Exception):
    """Raised inside an evaluation that ran past its time budget."""


class MemoryBudget(Exception):
    """Raised inside an evaluation whose resident memory went past its budget (`--max-memory`)."""


def _raise_in(thread: threading.Thread, exc: type[BaseException] | None) -> None:
    """Ask `thread` to raise `exc` at its next bytecode (how Ctrl-C and budgets stop an evaluation);
    None takes back a request that has not landed yet."""
    import ctypes  # only to stop an evaluation (start-up)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(exc) if exc is not None else None)


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _address_space_room() -> int | None:
    """Bytes of address space left under RLIMIT_AS (None: no limit)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(soft - used, 0)


def stack_bytes() -> int:
    """The worker's stack: 1 GiB, or a quarter of what an address-space limit leaves."""
    room = _address_space_room()
    if room is None:
        return STACK_BYTES
    return max(MIN_STACK_BYTES, min(STACK_BYTES, room // 4 // (1 << 20) * (1 << 20)))


def _start(target: Callable[[], None], started: list) -> threading.Thread:
    """Start the worker with the biggest stack that can be had (halving on failure); it is appended to
    `started` before it starts, so a Ctrl-C landing before this returns still finds it."""
    old_size = threading.stack_size()
    size = stack_bytes()
    try:
        while True:
            try:
                threading.stack_size(size)
                worker = threading.Thread(target=target, name="dl-eval", daemon=True)
                started.append(worker)
                worker.start()
                return worker
            except (RuntimeError, MemoryError):
                if size <= MIN_STACK_BYTES:
                    raise MemoryError("not enough memory to start dl's worker thread") from None
                size = max(MIN_STACK_BYTES, size // 2)
    finally:
        threading.stack_size(old_size)


def run_deep(fn: Callable[[], Any], budget: float | None = None, max_memory: int | None = None) -> Any:
    """Run `fn()` on a big-stack thread and return its result (or raise its exception).

    Ctrl-C in the calling thread interrupts the evaluation (KeyboardInterrupt is raised in both);
    past `budget` seconds the evaluation raises Timeout; past `max_memory` resident bytes, MemoryBudget.
    """
    result: dict[str, Any] = {}
    lock = threading.Lock()
    # armed: the worker is inside its try, where a stop can land; early: a stop asked for before that;
    # sent: a stop was asked of the running worker (PyThreadState_SetAsyncExc)
    state: dict[str, Any] = {"armed": False, "done": False, "early": None, "sent": False}

    def target() -> None:
        try:
            with lock:
                state["armed"] = True
                early = state["early"]
            if early is not None:
                raise early
            outcome: tuple[str, Any] = ("value", fn())
        except MemoryError as e:
            e.__traceback__ = None  # the frames would keep the half-built data that filled memory alive
            outcome = ("error", e)
        except BaseException as e:  # noqa: BLE001 — handed back to the caller's thread
            outcome = ("error", e)
        # A stop requested just as `fn` returned may land here, after the try: it is taken as the
        # outcome (the budget was reached), and any request still pending is taken back, so that
        # nothing lands in the thread's own clean-up (a traceback of the thread on stderr). Only when one
        # was sent: taking back sets the interpreter's eval breaker, which stays set once this thread is
        # gone, and a thread running under sys.settrace (a debugger, hypothesis's explain phase) then
        # re-runs the call it is entering for ever on CPython 3.11 — run_deep never returned there.
        while True:
            try:
                with lock:
                    state["done"] = True
                    sent = state["sent"]
                if sent:
                    _raise_in(threading.current_thread(), None)
                break
            except BaseException as late:  # noqa: BLE001
                outcome = ("error", late)
        result[outcome[0]] = outcome[1]

    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, RECURSION_LIMIT))

    def stop(exc: type[BaseException]) -> None:
        with lock:
            if not state["armed"]:
                state["early"] = exc  # (the worker raises it itself as it arms)
            elif not state["done"]:
                state["sent"] = True
                _raise_in(started[-1], exc)

    started: list[threading.Thread] = []  # the worker (a Ctrl-C may land before _start returns it)
    try:
        worker = _start(target, started)
        deadline = None if budget is None else time.monotonic() + budget
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            if deadline is not None and time.monotonic() > deadline and worker.is_alive():
                stop(Timeout)
                deadline = None
            if max_memory is not None and worker.is_alive() and resident_bytes() > max_memory:
                stop(MemoryBudget)
                max_memory = None
    except KeyboardInterrupt:
        if started and started[-1].ident is not None:  # (not when it came before the worker started)
            stop(KeyboardInterrupt)
            started[-1].join()
        raise
    finally:
        sys.setrecursionlimit(old_limit)
    if "error" in result:
        raise result["error"]
    return result.get("value")


GRACE_SECONDS = 1.0  # how long past its budget a supervised child may take to stop by itself
_KILLED = -1


def supervised(budget: float, grace: float = GRACE_SECONDS) -> int | None:
    """Fork. In the child, return None: it goes on to do the work (under run_deep's budget). In the
    parent, wait for the child and return its exit code — or, when it is still running `grace`
    seconds past `budget` (stuck in one long C call), kill it and return `supervised.KILLED`.

    The parent ignores Ctrl-C (the child, in the same process group, gets it too and says so) and
    passes a SIGTERM or SIGHUP on to the child. Call it before any thread is started, with nothing
    buffered for output (the child would print it a second time)."""
    import signal  # only for `dl run --budget` (start-up)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        return None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: os.kill(pid, number))
    try:
        deadline = time.monotonic() + budget + grace
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return _KILLED
            time.sleep(0.02)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


supervised.KILLED = _KILLED
