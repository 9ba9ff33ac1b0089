"""The example notebooks (examples/notebooks/) run from top to bottom on the dl kernel, without an error.

Each is executed with nbclient, as Jupyter would run it, on the kernelspec
that `dl kernel install --prefix` puts in a temporary directory. Beyond "no
error", the outputs that the notebooks' prose relies on are checked against
values worked out independently: the gradients, the naive and factoring
counts of repeated squaring, the growth exponents of the sweeps.

Needs the [jupyter] extra (CI installs it, .ci/run); without it the module is skipped.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT
from lang.modes.table import compared

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = ROOT / "examples" / "notebooks"
HAS_DOT = shutil.which("dot") is not None
try:
    import matplotlib  # noqa: F401
    HAS_PLOT = True
except ImportError:
    HAS_PLOT = False


@pytest.fixture(scope="module")
def executed():
    """Every notebook, executed once (the kernelspec installed where only this module looks)."""
    prefix = tempfile.mkdtemp(prefix="dl-kernelspec-")
    done = subprocess.run([sys.executable, "-m", "lang", "kernel", "install", "--prefix", prefix], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    books = {}
    try:
        for path in sorted(NOTEBOOKS.glob("*.ipynb")):
            book = nbformat.read(path, as_version=4)
            nbclient.NotebookClient(book, timeout=300, kernel_name="dl",
                                    resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
            books[path.stem] = book
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved
        shutil.rmtree(prefix, ignore_errors=True)
    return books


def outputs(book, source: str) -> list:
    """The outputs of the code cell whose source is `source`."""
    [cell] = [c for c in book.cells if c.cell_type == "code" and c.source == source]
    return cell.outputs


def text(outs: list) -> str:
    """Everything a cell printed as text (streams, results, the plain text of displays)."""
    return "".join(o.get("text", "") if o.output_type == "stream" else o.data.get("text/plain", "") + "\n"
                   for o in outs)


def result(outs: list) -> float:
    [r] = [o for o in outs if o.output_type == "execute_result"]
    return float(r.data["text/plain"].split(" : ")[0])


def test_the_three_notebooks_exist() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == ["comparing_transforms", "tour",
                                                                  "why_linear_factoring"]


def test_no_cell_fails(executed) -> None:
    for name, book in executed.items():
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs, f"{name}: no output from {cell.source!r}"
                errors = [o for o in cell.outputs if o.output_type == "error"]
                assert not errors, f"{name}: {cell.source!r} failed: {errors[0].ename}: {errors[0].evalue}"


def test_tour(executed) -> None:
    book = executed["tour"]
    assert result(outputs(book, "grad f 1.0")) == pytest.approx(math.sin(1) + math.cos(1), rel=1e-15)
    x = 1.0000001
    assert result(outputs(book, "main 3")) == pytest.approx(8 * x ** 7, rel=1e-12)
    [shown] = outputs(book, ":transform f")
    assert "<span" in shown.data["text/html"] and "¬Real" in shown.data["text/html"]
    [graph] = outputs(book, ":graph main 3")
    assert ("image/svg+xml" in graph.data) == HAS_DOT
    [table] = outputs(book, ":compare grad f 1.0")
    # the header, a row per compared mode (a chain's intermediate stages are compared when asked for)
    assert table.data["text/html"].count("<tr>") == 1 + len(compared())


def test_why_linear_factoring(executed) -> None:
    book = executed["why_linear_factoring"]
    naive, factoring = [text(c.outputs) for c in book.cells if c.source == ":cost grad (squarings 10) 1.0000001"]
    runs = re.compile(r"backpropagator bodies run\s+(\d+)")
    assert int(runs.search(naive).group(1)) == 2 ** 11 - 1
    assert int(runs.search(factoring).group(1)) == 10
    [step] = outputs(book, ":step grad (squarings 3) 1.1")
    assert "backprop-naive: 15 calls" in step.data["text/plain"]
    assert f"{2 ** 3 * 1.1 ** 7:.8g}" in step.data["text/plain"]
    sweep = outputs(book, ":sweep n=2,4,6,8 grad (squarings n) 1.0000001")
    assert ("image/svg+xml" in sweep[-1].data) == HAS_PLOT
    slopes = exponents(sweep[0].data["text/plain"])
    assert slopes["backprop"]["bp_apps"] == pytest.approx(1.0, abs=1e-9)  # n bodies run
    # the least-squares slope of log(2^(n+1) - 1) against log n over n = 2, 4, 6, 8
    ns = [2, 4, 6, 8]
    xs, ys = [math.log(n) for n in ns], [math.log(2 ** (n + 1) - 1) for n in ns]
    mx, my = sum(xs) / 4, sum(ys) / 4
    expected = sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)
    assert slopes["backprop-naive"]["bp_apps"] == pytest.approx(expected, abs=0.005)


def test_comparing_transforms(executed) -> None:
    book = executed["comparing_transforms"]
    slopes = exponents(outputs(book, ":sweep n=8,16,32,64 main n")[0].data["text/plain"])
    for mode in ("backprop", "backprop-naive", "tape"):
        assert 0.8 < slopes[mode]["prims"] < 1.2, mode
    for mode in ("forward", "numeric"):
        assert 1.7 < slopes[mode]["prims"] < 2.2, mode
    shown = [c for c in book.cells if c.source == ":transform f"]
    assert "←D(f@Real)" in text(shown[0].outputs) and "→D(f@Real)" in text(shown[1].outputs)


def exponents(table: str) -> dict[str, dict[str, float]]:
    """The growth exponents printed under a sweep's table."""
    lines = table.split("growth exponents (slope of log cost against log n):\n")[1].splitlines()
    metrics = lines[0].split()[1:]
    return {row.split()[0]: {m: float(v) for m, v in zip(metrics, row.split()[1:]) if v != "-"} for row in lines[1:]}
