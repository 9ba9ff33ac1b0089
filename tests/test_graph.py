"""Graphs of a derivative call (lang/tools/graph.py; `dl graph`, `:graph`).

The DOT text is checked by reading it back (nodes, labels, edges and their
colours) against repeated squaring worked out by hand; the naive call counts
drawn on the nodes are checked against a naive run's own count. Rendering
to SVG needs Graphviz's `dot` (.ci/run installs it); without it those
tests are skipped and the no-Graphviz path, which is the same code with
`dot` off PATH, is tested instead.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from conftest import ROOT, cli, load_source
from lang.back.deep import run_deep
from lang.tools.graph import MERGED, MERGED_FILL, NoCall, TooLarge, graph, naive_calls, svg
from lang.tools.pipeline import main_call
from lang.tools.repl.core import execute, new_state
from lang.tools.watch import watch

SQUARINGS = "def squarings n x = if n == 0 then x else squarings (n - 1) (x * x)\n"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")

NODE = re.compile(r'^\s*(\w+) \[(?:shape=([\w, =]+?), )?label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$")


def _typed(text: str, defs: str = SQUARINGS):
    program = load_source(defs + f"def main = {text}\n")
    return program.world, run_deep(lambda: main_call(program, []))


def read_dot(text: str) -> tuple[dict, list]:
    """The nodes (name -> (label, attributes)) and edges (from, to, attributes) of our DOT output."""
    nodes, edges = {}, []
    for line in text.splitlines():
        if m := EDGE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3) or ""))
        elif m := NODE.match(line):
            nodes[m.group(1)] = (m.group(3).replace("\\n", "\n"), (m.group(2) or "") + m.group(4))
    return nodes, edges


def test_repeated_squaring_graph() -> None:
    x, n = 1.5, 3
    world, typed = _typed(f"grad (squarings {n}) {x}")
    drawing = graph(world, typed, "sq")
    dot = drawing.dot
    assert dot.startswith("digraph dl {") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    nodes, edges = read_dot(dot)
    # the computation: x, then v(k) = v(k-1) * v(k-1) = x^(2^k), each operand an edge (two per node)
    assert nodes["n0"][0] == "x = 1.5"
    for k in range(1, n + 1):
        label = nodes[f"n{k}"][0]
        prev = "x" if k == 1 else f"v{k - 1}"
        assert label.startswith(f"v{k} = {prev} * {prev}\n= ")
        assert math.isclose(float(label.split("= ")[-1]), x ** (2 ** k), rel_tol=1e-7)
        assert sum(1 for a, b, _ in edges if (a, b) == (f"n{k - 1}", f"n{k}")) == 2
    assert "peripheries=2" in nodes[f"n{n}"][1]  # the output
    # the backpropagators: v(k)' runs once; below the top, on 2 merged calls; naive would call it 2^(n-k) times
    for k in range(1, n + 1):
        label, attrs = nodes[f"b{k}"]
        assert label.startswith(f"v{k}'  of v{k} = ")
        assert "runs once" in label
        assert f"naive: {2 ** (n - k)} call" in label
        assert (("2 calls merged" in label) and MERGED_FILL in attrs) == (k < n)
    sink_label, sink_attrs = nodes["b0"]
    gradient = 2 ** n * x ** (2 ** n - 1)
    assert sink_label.startswith("x'\nsink: gradient ")
    assert math.isclose(float(sink_label.split("\n")[1].split()[-1]), gradient, rel_tol=1e-7)
    assert f"naive: {2 ** n} calls" in sink_label
    # one edge per call, drawn target -> source with the arrow reversed; the second call of each pair merged
    calls = [(b, a, attrs) for a, b, attrs in edges if a.startswith("b") and "dir=back" in attrs]
    for k in range(1, n + 1):
        pair = [attrs for src, dst, attrs in calls if (src, dst) == (f"b{k}", f"b{k - 1}")]
        assert len(pair) == 2
        assert [MERGED in attrs for attrs in pair] == [False, True]
    assert sum(MERGED in attrs for *_, attrs in calls) == n
    assert ("b3", "seed0") in [(a, b) for a, b, _ in edges]
    # each backpropagator in the column of its value
    for k in range(n + 1):
        assert f"{{rank=same; n{k}; b{k};}}" in dot


@pytest.mark.parametrize("program", [
    "grad (squarings 5) 1.01",
    "grad (fun (x, y) -> sin (x * y) + x * x * y) (0.4, 1.7)",
    "grad (fun xs -> sum (map (fun x -> x * x) xs) * sum xs) [1.0, 2.0, 3.0]",
    "grad (fun x -> fold (fun a b -> a * b + a) 1.0 [x, x, x, x]) 1.2",
    "grad (fun x -> grad (fun y -> x * y * y) x) 3.0",
])
def test_naive_counts_are_what_naive_does(program: str) -> None:
    """The number of call paths from the seed, drawn on each node, is how often a naive run calls it."""
    world, typed = _typed(program)
    f, nv = watch(world, typed, "backprop").backward, watch(world, typed, "backprop-naive").backward
    assert f.records == nv.records  # the same forward run
    assert naive_calls(f) == dict(Counter(s.node for s in nv.steps))


def test_unreached_backpropagators_are_grey() -> None:
    """fst of a pair: the second component's backpropagator is created but never called."""
    world, typed = _typed("grad (fun x -> fst (x * x, sin x)) 2.0", "")
    nodes, edges = read_dot(graph(world, typed, "g").dot)
    [unreached] = [name for name, (label, _) in nodes.items() if "not reached" in label]
    assert "#999999" in nodes[unreached][1]


def test_nested_derivative_has_no_computation_graph_but_a_backward_one() -> None:
    world, typed = _typed("grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0", "")
    nodes, _ = read_dot(graph(world, typed, "nested").dot)
    assert "no computation graph: nested differentiation" in nodes["none"][0]
    assert "sink: gradient 2" in nodes["b0"][0]


def test_too_large_and_no_call() -> None:
    world, typed = _typed("grad (squarings 200) 1.0")
    with pytest.raises(TooLarge, match="401 nodes, more than 150"):
        graph(world, typed, "big")
    world, typed = _typed("1.0 + 2.0", "")
    with pytest.raises(NoCall, match="makes no reverse-mode derivative call"):
        graph(world, typed, "x")
    world, typed = _typed("(grad sin 1.0, grad cos 1.0)", "")
    with pytest.raises(NoCall, match="makes 2 derivative calls: there is no call 3"):
        graph(world, typed, "two", which=3)
    nodes, _ = read_dot(graph(world, typed, "two", which=2).dot)
    assert "sin" not in nodes["n1"][0] and nodes["n1"][0].startswith("v1 = cos x")


def test_graph_command() -> None:
    state, _ = execute(new_state(), SQUARINGS.strip())
    _, out = execute(state, ":graph grad (squarings 2) 1.5")
    assert not out.error
    head, _, rest = out.text.partition("\n")
    assert head.startswith("// render it with Graphviz") and rest.startswith("digraph dl {")
    assert out.rich.dot == rest + "\n"
    _, out = execute(state, ":graph grad (squarings 300) 1.0")
    assert out.error and "too many to read" in out.text
    _, out = execute(state, ":graph squarings")
    assert not out.error and "makes no reverse-mode derivative call" in out.text


@needs_dot
@pytest.mark.parametrize("program", ["grad (squarings 3) 1.5", "grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0",
                                     "grad (fun x -> fst (x * x, sin x)) 2.0"])
def test_svg_renders(program: str) -> None:
    world, typed = _typed(program)
    picture = svg(graph(world, typed, program).dot)
    root = ET.fromstring(picture)
    assert root.tag.endswith("svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "backpropagators (backward pass, linear factoring)" in texts


@needs_dot
def test_cli_writes_svg(tmp_path) -> None:
    out = tmp_path / "sharing.svg"
    code, stdout, stderr = cli("graph", str(ROOT / "examples" / "sharing.dl"), "3", "-o", str(out))
    assert code == 0 and "graph written to" in stderr
    texts = " ".join(t.text or "" for t in ET.parse(out).getroot().iter() if t.tag.endswith("text"))
    assert "v3' &#160;of v3 = v2 * v2" in texts or "v3'  of v3 = v2 * v2" in texts.replace("\xa0", " ")
    assert texts.count("2 calls merged") == 3


def test_cli_without_graphviz_says_so(tmp_path) -> None:
    """With no `dot` on PATH: no traceback, a sentence, the DOT text written beside, exit 1."""
    out = tmp_path / "g.svg"
    env = {**os.environ, "PATH": str(tmp_path / "nowhere"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "lang", "graph", "examples/sharing.dl", "2", "-o", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 1
    assert "Graphviz's `dot` is not installed" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and (tmp_path / "g.dot").read_text().startswith("digraph dl {")


def test_cli_dot_to_stdout_and_file(tmp_path) -> None:
    code, stdout, _ = cli("graph", str(ROOT / "examples" / "sharing.dl"), "2")
    assert code == 0 and stdout.startswith("digraph dl {")
    nodes, _ = read_dot(stdout)
    assert "naive: 4 calls" in nodes["b0"][0]
    code, _, _ = cli("graph", str(ROOT / "examples" / "sharing.dl"), "2", "-o", str(tmp_path / "g.dot"))
    assert code == 0 and (tmp_path / "g.dot").read_text() == stdout
    code, _, stderr = cli("graph", str(ROOT / "examples" / "sharing.dl"), "2", "-o", str(tmp_path / "g.png"))
    assert code == 2 and ".svg or .dot" in stderr
    code, _, stderr = cli("graph", str(ROOT / "examples" / "seeds.dl"), "--call", "4")
    assert code == 1 and "makes 3 derivative calls: there is no call 4" in stderr
