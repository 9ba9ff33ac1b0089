"""The tape mode: operator overloading, the PyTorch / micrograd design.

The untransformed program runs with each input real replaced by a *node*:
a value and an index into a tape. A real primitive applied to a node
computes its value and its partial derivatives (from the primitive table)
at once, appends (parent indices, partials) to the tape, and returns a new
node; constants stay plain numbers. The backward pass sweeps the tape once,
in reverse recording order, accumulating adjoints.

This is the dynamic counterpart of the BMP transform with linear
factoring: the tape's order is the order of creation, and sweeping it
backwards is "largest identity first" (docs/transforms.md, Linear factoring) — here by construction,
there by the factoring rule. Counters: nodes recorded (backpropagators
created), nodes swept (bodies run), sink updates, merges.

A partial that is the symbolic zero (relu for x <= 0, ...: lang/model/zeros.py)
records no parent, as ←D records no contribution for it; an entry left
with no parent is a constant, a plain number. Adjoints start as the
symbolic zero, so an input nothing reached gets 0.0, not a sum with 0.0.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model.values import call1
from ..model.zeros import ZERO
from .overloading import OverloadingCompiler
from .runtimes import Untransformed


class Node:
    """A real carried through the program with its place on the tape."""

    __slots__ = ("value", "index")

    def __init__(self, value: float, index: int):
        self.value = value
        self.index = index

    def __repr__(self) -> str:
        return f"Node({self.value!r}, #{self.index})"


class Tape:
    __slots__ = ("parents", "weights", "n_inputs")

    def __init__(self) -> None:
        self.parents: list[tuple] = []
        self.weights: list[tuple] = []
        self.n_inputs = 0

    def input(self, value: float) -> Node:
        self.parents.append(())
        self.weights.append(())
        self.n_inputs += 1
        return Node(value, len(self.parents) - 1)


class TapeCompiler(OverloadingCompiler):
    def __init__(self, machine):
        super().__init__(machine, "tape")
        self.tape = Tape()

    def primal_of(self, v: Any) -> Any:
        return v.value if type(v) is Node else v

    custom_rules = True
    primal_real = primal_of

    def custom_leaf(self, value: float, pairs: list) -> Any:
        """A tape entry whose parents are the input nodes and whose weights are a row of the rule's Jacobian."""
        parents = [(a.index, w) for a, w in pairs if type(a) is Node and w is not ZERO]
        if not parents:
            return value
        self.tape.parents.append(tuple(p for p, _ in parents))
        self.tape.weights.append(tuple(w for _, w in parents))
        if self.counting:
            self.counters.bp_created += 1
        return Node(value, len(self.tape.parents) - 1)

    def overload(self, prim, impl: Callable) -> Callable:
        partials = self.partials(prim)
        compiler = self
        counters = self.counters
        counting = self.counting

        def record(*args):
            values = [a.value if type(a) is Node else a for a in args]
            r = impl(*values)
            if not any(type(a) is Node for a in args):
                return r
            ds = partials(*values, r)
            parents, weights = [], []
            for a, d in zip(args, ds):
                if type(a) is Node and d is not ZERO:
                    parents.append(a.index)
                    weights.append(d)
            if not parents:  # every partial zero by construction: a constant
                return r
            tape = compiler.tape
            tape.parents.append(tuple(parents))
            tape.weights.append(tuple(weights))
            if counting:
                counters.bp_created += 1
            return Node(r, len(tape.parents) - 1)
        return record


class TapeRuntime(Untransformed):
    name = "tape"

    def vjp(self, kernel, f, x, in_t, out_t):
        return vjp_tape(kernel, f, x, in_t, out_t)


TAPE = TapeRuntime()


def vjp_tape(kernel, f, x, in_t, out_t) -> tuple[Any, Callable]:
    compiler: TapeCompiler = kernel.language("tape", TapeCompiler)
    counters = kernel.machine.counters
    counting = kernel.machine.counting
    saved = compiler.tape
    tape = compiler.tape = Tape()
    try:
        x_nodes = kernel.shapes.map_reals(x, in_t, tape.input)
        y_nodes = call1(kernel.lift_fun(f, compiler, {}), x_nodes)
    finally:
        compiler.tape = saved
    shapes = kernel.shapes
    outputs = shapes.flatten(y_nodes, out_t)
    y = shapes.map_reals(y_nodes, out_t, lambda o: o.value if type(o) is Node else o)

    def pullback(u: Any) -> Any:
        adj = [ZERO] * len(tape.parents)
        touched = [False] * len(tape.parents)
        for o, ct in zip(outputs, shapes.flatten(u, out_t)):
            if type(o) is Node and ct is not ZERO:
                adj[o.index] += ct
                touched[o.index] = True
        parents, weights = tape.parents, tape.weights
        for i in range(len(parents) - 1, tape.n_inputs - 1, -1):
            if not touched[i]:
                continue
            ct = adj[i]
            if counting:
                counters.bp_run += 1
            for p, w in zip(parents[i], weights[i]):
                if counting:
                    if p < tape.n_inputs:
                        counters.sink_updates += 1
                    if touched[p]:
                        counters.merges += 1
                adj[p] += w * ct
                touched[p] = True
        return shapes.rebuild(x, in_t, adj[: tape.n_inputs])
    return y, pullback
