"""Pictures of a derivative call: its computation graph and its graph of backpropagators (`dl graph`, `:graph`).

One watched run (lang/tools/watch.py, linear factoring) gives both, drawn
as one Graphviz digraph with two clusters:

    computation       the differentiated function at the point: inputs, then each real
                      operation `v2 = v1 * v1` with its value; an edge per operand, so a value
                      used twice has two edges out
    backpropagators   one node per backpropagator (v2' belongs to v2; x' is an input's sink),
                      an edge per call its body made in the backward pass, labelled with the
                      argument it sent. A call added to one already pending for its target is
                      *merged* (the factoring rule `t u + t v -> t (u + v)`): the edge is drawn
                      orange and dashed, and a node whose argument is a sum of several calls is
                      filled orange. Each node says how often it ran: once with factoring, and
                      how many times backprop-naive would call it (the number of call paths
                      from the seed to it, 2^k on repeated squaring)

The output is DOT text; `svg` runs Graphviz's `dot` on it when it is on PATH
and raises NoGraphviz, with a message in words, when it is not.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from ..model import core as c
from .stepper import bp_name, no_derivative
from .watch import Call, Computation, Pass, Watch, input_name, labels, node_name, record_parents, show_number, \
    show_op, watch

MAX_NODES = 150   # a bigger graph is not drawn: nobody reads it

MERGED = "#e8710a"      # orange: what the factoring rule merged (edges)
MERGED_FILL = "#f9cb9c" # light orange: a node whose argument is a merged sum
SINK = "#d9ead3"        # green: an input's sink
UNREACHED = "#999999"   # grey: a backpropagator no call reached


class NoGraphviz(Exception):
    """Graphviz's `dot` is not installed: the message says so, and what to do."""


class TooLarge(Exception):
    """The graph has more nodes than anyone reads."""


@dataclass
class Drawing:
    """A graph ready to print or render: its DOT text, and what it shows."""
    what: str
    dot: str
    watched: Watch


class NoCall(Exception):
    """The expression makes fewer derivative calls than the one asked for: the message says how many."""


def graph(world, typed: c.Expr, what: str, which: int = 1, max_nodes: int = MAX_NODES,
          budget: float | None = None) -> Drawing:
    """Watch the `which`-th derivative call of `typed` under linear factoring and draw it."""
    w = watch(world, typed, "backprop", which=which, budget=budget)
    if w.backward is None:
        if w.calls == 0:
            raise NoCall(no_derivative(what).lstrip("- "))
        if w.calls < which:
            raise NoCall(f"`{what}` makes {w.calls} derivative call{'s' if w.calls != 1 else ''}: there is no "
                         f"call {which}")
        raise NoCall(f"derivative call {which} of `{what}` made no backward pass (its pullback was never used)")
    size = len(w.backward.records) + len(w.computation.ops if w.computation else ())
    if size > max_nodes:
        raise TooLarge(f"the graph of `{what}` has {size} nodes, more than {max_nodes}: too many to read "
                       "(try a smaller input, or raise the limit: dl graph --max-nodes)")
    return Drawing(what, draw(w, what, which), w)


def draw(w: Watch, what: str, which: int = 1) -> str:
    """The DOT text of a watched derivative call."""
    p = w.backward
    title = f"{what}" + (f" (derivative call {which} of {w.calls})" if w.calls > 1 else "")
    lines = ["digraph dl {",
             f"  label={_quote(title)}; labelloc=t; fontname=Helvetica; rankdir=LR; newrank=true;",
             "  node [fontname=Helvetica, fontsize=11]; edge [fontname=Helvetica, fontsize=9];"]
    lines += _computation(w.computation)
    lines += _backpropagators(p, labels(w.computation, p))
    lines += _aligned(w.computation, p)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _computation(comp: Computation | None) -> list[str]:
    """The cluster of the computation graph (or a note saying why there is none)."""
    lines = ["  subgraph cluster_computation {", '    label="computation (forward)"; style=rounded; color="#4a86e8";']
    if comp is None or comp.refused:
        why = comp.refused if comp is not None else "not recorded"
        lines.append(f'    none [shape=note, label={_quote("no computation graph: " + why)}];')
        lines.append("  }")
        return lines
    n = len(comp.inputs)
    for k, v in enumerate(comp.inputs):
        lines.append(f"    n{k} [shape=ellipse, label={_quote(f'{input_name(k, n)} = {show_number(v)}')}];")
    outputs = {o for o in comp.outputs if isinstance(o, int)}
    for k, op in sorted(comp.ops.items()):
        text = f"{node_name(k, n)} = {show_op(op, n)}\n= {show_number(op.value)}"
        extra = ", peripheries=2" if k in outputs else ""
        lines.append(f"    n{k} [shape=box, label={_quote(text)}{extra}];")
    for k, op in sorted(comp.ops.items()):
        for a in op.args:
            if isinstance(a, int):
                lines.append(f"    n{a} -> n{k};")
    lines.append("  }")
    return lines


def naive_calls(p: Pass) -> dict[int, int] | None:
    """How many times backprop-naive calls each backpropagator: the number of call paths from the seeds
    to it (a record calls only older ones, so one sweep from the largest identity down counts them).
    None when a generic record hides whom it calls."""
    calls = [0] * len(p.records)
    for k, _ in p.seeds:
        calls[k] += 1
    for k in range(len(p.records) - 1, p.n_sinks - 1, -1):
        parents = record_parents(p.records[k])
        if parents is None:
            return None
        for q in parents:
            calls[q] += calls[k]
    return {k: m for k, m in enumerate(calls) if m}


def _backpropagators(p: Pass, ops: dict[int, str]) -> list[str]:
    """The cluster of backpropagators: nodes, the seed, and one edge per call of the pass."""
    n = p.n_sinks
    run = {s.node: s for s in p.steps}
    naive = naive_calls(p)
    lines = ["  subgraph cluster_backward {", '    label="backpropagators (backward pass, linear factoring)"; '
             'style=rounded; color="#e8710a";']
    for k in range(len(p.records)):
        name = bp_name(k, n)
        parts = [name + (f"  of {ops[k]}" if k in ops else "")]
        style = []
        if k < n:
            calls = p.sink_calls[k] if k < len(p.sink_calls) else []
            parts.append(f"sink: gradient {show_number(p.gradient[k])}")
            if len(calls) > 1:
                parts.append(f"{len(calls)} calls merged")
            style = ["style=filled", f'fillcolor="{MERGED_FILL if len(calls) > 1 else SINK}"']
        elif k in run:
            s = run[k]
            parts.append(f"runs once, on {show_number(s.argument)}")
            if len(s.calls) > 1:
                parts.append(f"{len(s.calls)} calls merged")
                style = ["style=filled", f'fillcolor="{MERGED_FILL}"']
        else:
            parts.append("not reached")
            style = [f'color="{UNREACHED}"', f'fontcolor="{UNREACHED}"']
        if naive is not None and naive.get(k):
            parts.append(f"naive: {naive[k]} call{'s' if naive[k] != 1 else ''}")
        shape = "box, peripheries=2" if k < n else "box"
        lines.append(f"    b{k} [shape={shape}, label={_quote(chr(10).join(parts))}{''.join(', ' + x for x in style)}];")
    for j, (k, v) in enumerate(p.seeds):
        lines.append(f'    seed{j} [shape=plaintext, label={_quote(f"seed {show_number(v)}")}];')
    calls: list[Call] = [x for s in p.steps for x in s.calls] + [x for cs in p.sink_calls for x in cs]
    seed_index = {k: j for j, (k, _) in enumerate(p.seeds)}
    for x in calls:
        start = f"seed{seed_index.get(x.target, 0)}" if x.source is None else f"b{x.source}"
        attrs = [f"label={_quote(show_number(x.value))}"]
        if x.merged:
            attrs += [f'color="{MERGED}"', "style=dashed", "penwidth=2", f'fontcolor="{MERGED}"']
        lines.append(_backward_edge(start, f"b{x.target}", attrs))
    for k in range(n, len(p.records)):  # a backpropagator never reached: its record's calls, greyed
        if k not in run and record_parents(p.records[k]) is not None:
            for q in record_parents(p.records[k]):
                lines.append(_backward_edge(f"b{k}", f"b{q}", [f'color="{UNREACHED}"', "style=dotted"]))
    lines.append("  }")
    return lines


def _backward_edge(source: str, target: str, attrs: list[str]) -> str:
    """A call from `source` to `target`, laid out right to left (under the computation, whose values
    flow left to right): written target -> source with the arrow drawn at the source's end reversed."""
    return f"    {target} -> {source} [dir=back, {', '.join(attrs)}];"


def _aligned(comp: Computation | None, p: Pass) -> list[str]:
    """Each backpropagator in the column of its value, when the two graphs match."""
    if comp is None or not labels(comp, p):
        return []
    return [f"  {{rank=same; n{k}; b{k};}}" for k in range(len(p.records))]


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, newlines as \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def svg(dot: str) -> str:
    """The graph as SVG, by Graphviz's `dot` (NoGraphviz when it is not installed)."""
    exe = shutil.which("dot")
    if exe is None:
        raise NoGraphviz("Graphviz's `dot` is not installed, so the graph is given as DOT text only "
                         "(install Graphviz, e.g. apt-get install graphviz, to get SVG)")
    done = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz's `dot` failed on dl's DOT text: {done.stderr.strip()}")
    return done.stdout


__all__ = ["graph", "draw", "svg", "naive_calls", "Drawing", "NoCall", "NoGraphviz", "TooLarge"]
