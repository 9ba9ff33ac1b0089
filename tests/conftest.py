"""Shared helpers: run dl source text in-process, or the installed `dl` as a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Hermetic: the grammar and prelude caches of this run (and of the dl processes it starts) go to a
# directory of its own, never the user's ~/.cache/dl.
if "DL_CACHE_DIR" not in os.environ or not os.environ.get("DL_TESTS_SHARE_CACHE"):
    import tempfile
    os.environ["DL_CACHE_DIR"] = tempfile.mkdtemp(prefix="dl-tests-cache-")

from lang.back.deep import run_deep  # noqa: E402
from lang.front.loader import Loader, World  # noqa: E402
from lang.model.spans import Source  # noqa: E402
from lang.modes.table import MODES, get, listed  # noqa: E402
from lang.tools.pipeline import Program, run_main  # noqa: E402

# The modes, from the mode table: every test that loops over modes covers a new row without an edit.
EXACT_MODES = [m.name for m in listed() if m.tolerance <= 1e-9]                 # agree with backprop to 1e-9
TRANSFORM_MODES = list({m.transform: m.name for m in reversed(listed()) if m.transform}.values())[::-1]
# (one mode per term transform: backprop and backprop-naive share ←D)
__all__ = ["MODES", "EXACT_MODES", "TRANSFORM_MODES", "get", "refuses_custom_rule"]


def refuses_custom_rule(mode: str, e) -> bool:
    """Whether `mode`'s transform refuses the term e because it calls custom_vjp/custom_jvp (docs/reference.md,
    Custom derivatives): the mode table says the mode refuses custom rules."""
    from lang.model import core as c
    from lang.model.primitives import PRIMITIVES
    if get(mode).load_transform() is None or get(mode).custom_rules != "refuses":
        return False
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Prim) and PRIMITIVES[t.op].kind == "custom":
            return True
        stack.extend(c.children(t))
    return False


def load_source(text: str, name: str = "test.dl") -> Program:
    """Load dl source text (with the prelude) as the program `name`."""
    world = World()
    loader = Loader(world)
    loader.load_prelude()
    module = run_deep(lambda: loader.load_source(Source(name, text), name))
    return Program(world, loader, module)


def run(text: str, mode: str = "backprop", args: list[str] | None = None, counting: bool = False):
    """The value of `main` in `text`."""
    program = load_source(text)
    value, _ = run_deep(lambda: run_main(program, args or [], get(mode), counting))
    return value


def run_with_machine(text: str, mode: str = "backprop", args: list[str] | None = None, counting: bool = True,
                     preaccumulate: bool = True):
    program = load_source(text)
    return run_deep(lambda: run_main(program, args or [], get(mode), counting, preaccumulate=preaccumulate))


def dl(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the dl command line (this checkout's package) as a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "lang", *args], capture_output=True, text=True, input=input,
                          timeout=timeout, env=env, cwd=str(ROOT))


def close(a, b, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    """Structural closeness of dl values (reals within a relative tolerance)."""
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(close(x, y, rel, abs_) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if a != a:
            return b != b
        return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_)
    return a == b


@pytest.fixture
def tmp_dl(tmp_path):
    """Write dl files into a temporary directory: tmp_dl('name.dl', text) -> path."""
    def write(name: str, text: str) -> str:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return str(p)
    return write


def cli(*args: str) -> tuple[int, str, str]:
    """Run the dl command line in this process (the code path of `dl`, without a new interpreter):
    (exit code, stdout, stderr)."""
    import contextlib
    import io

    from lang.tools.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def failure(*args: str) -> dict:
    """`dl run ARGS...` that must stop with a diagnostic (exit 1): its parts, as `diagnostic` gives them."""
    out = dl("run", *args)
    assert out.returncode == 1, f"exit {out.returncode}, not 1: {out.stderr}"
    return diagnostic(out.stderr)


DIAGNOSTIC = r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): (?P<kind>syntax|name|type|runtime|import) error: (?P<message>[^\n]*)$"


def diagnostic(stderr: str) -> dict:
    """The parts of a diagnostic (docs/reference.md, Diagnostics): file, line, col, kind, message, source line, caret line.

    Fails unless `stderr` is exactly a header, the source line and a caret line (plus optional notes)."""
    import re

    lines = stderr.rstrip("\n").split("\n")
    assert len(lines) >= 3, f"not a diagnostic: {stderr!r}"
    m = re.match(DIAGNOSTIC, lines[0])
    assert m, f"not a diagnostic header: {lines[0]!r}"
    caret = lines[2]
    assert re.fullmatch(r" *\^+", caret), f"not a caret line: {caret!r}"
    parts = m.groupdict()
    parts["line"], parts["col"] = int(parts["line"]), int(parts["col"])
    parts["source"], parts["caret"] = lines[1], caret
    return parts
