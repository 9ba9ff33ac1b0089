"""Running `dl` on hostile input without letting it hurt the machine (tests/test_hostile.py, test_fuzz_hostile.py).

`dl_limited(...)` runs `python -m lang ARGS` (this checkout) in a child process with an address-space
limit (RLIMIT_AS; dl itself reserves 1 GiB of it for the stack of its evaluation thread, so 2 GB
leaves it about 1 GB of heap), no core dumps, and a wall-clock timeout after which the child is
killed (its whole process group). It returns the exit code, stdout, stderr, the wall time, dl's peak
resident memory (`ru_maxrss` from os.wait4, taken by a small launcher: see _LAUNCHER) and whether the
timeout struck. stdout and stderr go to files, so a child that prints megabytes cannot block on a
full pipe.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GB = 1_000_000_000


@dataclass
class Outcome:
    code: int | None        # None when the timeout struck
    out: str
    err: str
    seconds: float
    peak_mb: float
    timed_out: bool

    def __str__(self) -> str:
        status = "timeout" if self.timed_out else f"exit {self.code}"
        err = self.err if len(self.err) < 1500 else self.err[:1500] + "..."
        out = self.out if len(self.out) < 300 else self.out[:300] + "..."
        return f"{status} after {self.seconds:.1f} s, peak {self.peak_mb:.0f} MB\nstdout: {out!r}\nstderr: {err!r}"


# A small launcher between the test process and dl: on Linux a child's ru_maxrss counts the memory of the
# process it was forked from (pytest, easily 300 MB after in-process tests), so dl is forked from this
# fresh ~10 MB interpreter instead, which reports dl's exit status and peak memory in a file. It ignores
# Ctrl-C itself and restores it for dl, so that a SIGINT sent to the process group reaches dl alone.
_LAUNCHER = """
import json, os, resource, signal, sys
max_bytes, report, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
signal.signal(signal.SIGINT, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
"""


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("PYTHONDEVMODE", None)
    return e


def dl_limited(*args: str, timeout: float = 60, max_bytes: int = 2 * GB, stdin: str | bytes | None = None,
               cwd: str | None = None, interrupt_after: float | None = None) -> Outcome:
    """Run the dl command line on `args`, bounded in memory and time.

    `interrupt_after`: send SIGINT (Ctrl-C) after this many seconds instead of waiting for the end;
    the timeout still applies after it."""
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode("utf-8", "surrogateescape") if isinstance(stdin, str) else stdin)
            inp.seek(0)
        report = Path(d) / "report.json"
        start = time.monotonic()
        child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(max_bytes), str(report),
                                  sys.executable, "-m", "lang", *args], stdin=inp, stdout=out, stderr=err,
                                 env=env(), cwd=cwd or str(ROOT), start_new_session=True)
        timed_out = threading.Event()

        def signal_group(sig) -> None:
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                pass

        def kill() -> None:
            timed_out.set()
            signal_group(signal.SIGKILL)

        timers = [threading.Timer(timeout + (interrupt_after or 0), kill)]
        if interrupt_after is not None:
            timers.append(threading.Timer(interrupt_after, signal_group, (signal.SIGINT,)))
        for t in timers:
            t.start()
        try:
            child.wait()
        finally:
            for t in timers:
                t.cancel()
            signal_group(signal.SIGKILL)  # nothing of it may outlive the test
        seconds = time.monotonic() - start
        try:
            result = json.loads(report.read_text())
        except (OSError, ValueError):
            result = {"code": None, "maxrss_kb": 0}
        out.seek(0)
        err.seek(0)
        return Outcome(None if timed_out.is_set() else result["code"],
                       out.read().decode("utf-8", "backslashreplace"), err.read().decode("utf-8", "backslashreplace"),
                       seconds, result["maxrss_kb"] / 1024, timed_out.is_set())


def assert_clean(r: Outcome, codes=(0, 1, 2)) -> None:
    """Finished in time, with an expected exit code, no Python traceback and no internal error."""
    assert not r.timed_out, f"did not finish: {r}"
    assert "Traceback" not in r.err and "Exception ignored" not in r.err, str(r)
    assert "internal error" not in r.err, str(r)
    assert r.code in codes, str(r)


def frontend_generators():
    """The program generators of benchmarks/frontend.py (one per construct)."""
    import importlib.util
    if "dl_frontend_benchmark" in sys.modules:
        return sys.modules["dl_frontend_benchmark"]
    spec = importlib.util.spec_from_file_location("dl_frontend_benchmark", ROOT / "benchmarks" / "frontend.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dl_frontend_benchmark"] = module
    spec.loader.exec_module(module)
    return module


_STARTUP: list[float] = []


def startup_seconds() -> float:
    """How long `dl check` of a one-line program takes here and now (the fastest of three): the unit of the
    time bounds, so that they scale with the machine and its load instead of being absolute seconds."""
    if not _STARTUP:
        with tempfile.TemporaryDirectory() as d:
            times = []
            for k in range(3):  # a new text each time: the unit is a check that parses (no parse cache hit)
                path = Path(d) / f"one{k}.dl"
                path.write_text(f"def main = {k}\n")
                times.append(dl_limited("check", str(path), timeout=60).seconds)
            _STARTUP.append(min(times))
    return _STARTUP[0]
