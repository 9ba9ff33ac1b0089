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

Arrays. An Array is one node, whose record holds, instead of partial
derivatives, a function from the result's cotangent to its parents'
(compiled once from the row's vjp rule, lang/transforms/arrays.py); adjoints
of array nodes are ndarray accumulators, added into in place. `toList` and
`unstack` give one node per element (its cotangent a sparse scatter into the
array's adjoint); `amap f a` runs f on those element nodes, so the tape holds
one node per element and per operation of f — the tape's way, where the
backprop mode records one backpropagator for the whole map.

A partial that is the symbolic zero (relu for x <= 0, ...: lang/model/zeros.py)
records no parent, as ←D records no contribution for it; an entry left
with no parent is a constant, a plain number. Adjoints start as the
symbolic zero, so an input nothing reached gets 0.0, not a sum with 0.0.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model import core as c
from ..model.primitives import array_kernel
from ..model.types import prune
from ..model.values import call1
from ..transforms.arrays import arg_kind, innermost
from ..model.zeros import REAL_TYPES, ZERO
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

    def input(self, value: Any) -> Node:
        """An input real or array: a sink."""
        self.parents.append(())
        self.weights.append(())
        self.n_inputs += 1
        return Node(value, len(self.parents) - 1)

    def node(self, value: Any, parents: tuple, vjp: Callable) -> Node:
        """An array operation's node: `vjp(ct)` gives one cotangent per parent (None: nothing)."""
        self.parents.append(parents)
        self.weights.append(vjp)
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

    def varying_leaf(self, v: Any) -> bool | None:
        """A tape node carries a derivative; a plain float is a constant."""
        return True if type(v) is Node else False if type(v) is float else None

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

    # ---- arrays
    def overload_array(self, prim, e: c.Prim) -> Callable:
        """An operation on Arrays: its kernel on the values, and a node whose record is the row's vjp."""
        kernel = array_kernel(prim.array)
        if prim.per_element:
            return self._amap(kernel)
        kinds = [arg_kind(a.ty) for a in e.args]
        arrays_in = [innermost(a.ty).name == "Array" for a in e.args]
        result = arg_kind(e.ty)[0]
        if result == "plain":
            return lambda *args: kernel(*[_values(a, k) for a, k in zip(args, kinds)])
        if result == "duals":
            return self._per_element(kernel, self.unlist_vjp(prim, e), kinds)
        rule = self.array_vjp(prim, e)
        compiler = self

        def record(*args):
            values = [_values(a, k) for a, k in zip(args, kinds)]
            r = kernel(*values)
            parents, routes = [], []
            for k, (a, kind) in enumerate(zip(args, kinds)):
                if kind[0] == "dual" and type(a) is Node:
                    parents.append(a.index)
                    routes.append((k, None))
                elif kind[0] == "duals":
                    for pos, n in _nodes(a):
                        parents.append(n.index)
                        routes.append((k, pos if arrays_in[k] and kind[1] == 1 else ("flat", pos)))
            if not parents:
                return r

            def vjp(ct):
                cts = rule(*values, r, ct)
                out = []
                flat_cache: dict = {}
                for k, pos in routes:
                    g = cts[k]
                    if g is None or pos is None:
                        out.append(g)
                    elif type(pos) is tuple:  # an element of a nested list of Reals: its place in g
                        if k not in flat_cache:
                            flat_cache[k] = array_kernel("elements")(g)
                        out.append(flat_cache[k][pos[1]])
                    else:
                        out.append(g[pos])
                return out
            if compiler.counting:
                compiler.counters.bp_created += 1
            return compiler.tape.node(r, tuple(parents), vjp)
        return record

    def _per_element(self, kernel, rule, kinds) -> Callable:
        """toList, unstack: a node per element, each scattering its cotangent into the array's adjoint."""
        compiler = self

        def record(*args):
            values = [_values(a, k) for a, k in zip(args, kinds)]
            items = kernel(*values)
            parents = [(k, a.index) for k, a in enumerate(args) if type(a) is Node]
            if not parents:
                return items
            out = []
            for i, item in enumerate(items):
                def vjp(ct, i=i):
                    cts = rule(*values, i, ct)
                    return [cts[k] for k, _ in parents]
                out.append(compiler.tape.node(item, tuple(p for _, p in parents), vjp))
                if compiler.counting:
                    compiler.counters.bp_created += 1
            return out
        return record

    def _amap(self, kernel) -> Callable:
        """amap f a on the tape: f on each element's node, the results gathered into one node."""
        to_list = array_kernel("toList")
        scatter = array_kernel("agetFlatCt")
        from_list, elements = array_kernel("fromList"), array_kernel("elements")
        compiler = self

        def record(f, a):
            if type(a) is not Node:
                xs = to_list(a)
            else:
                value = a.value
                xs = [compiler.tape.node(x, (a.index,), lambda ct, i=i: [scatter(value, i, ct)])
                      for i, x in enumerate(to_list(value))]
            ys = [call1(f, x) for x in xs]
            nodes = [(i, y) for i, y in enumerate(ys) if type(y) is Node]
            result = from_list([y.value if type(y) is Node else y for y in ys]).reshape(
                array_kernel("shape")(a.value if type(a) is Node else a))
            if not nodes:
                return result
            return compiler.tape.node(result, tuple(y.index for _, y in nodes),
                                      lambda ct: [v for v in _pick(elements(ct), [i for i, _ in nodes])])
        return record


def _pick(values: list, positions: list) -> list:
    return [values[i] for i in positions]


def _values(a: Any, kind: tuple) -> Any:
    """An argument's value: a node's value, or a list with its nodes' values."""
    if type(a) is Node:
        return a.value
    if kind[0] == "duals" and type(a) is list:
        return [_values(x, (kind[0], kind[1] - 1) if kind[1] > 1 else ("dual", 0)) for x in a]
    return a


def _nodes(a: Any) -> list:
    """(position, node) of the nodes in a (nested) list: positions row-major, among all its leaves."""
    out, counter = [], [0]

    def walk(x):
        if type(x) is list:
            for y in x:
                walk(y)
            return
        if type(x) is Node:
            out.append((counter[0], x))
        counter[0] += 1
    walk(a)
    return out


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
        x_nodes = kernel.shapes.map_leaves(x, in_t, tape.input, tape.input)  # an array input: one node
        y_nodes = call1(kernel.lift_fun(f, compiler, {}), x_nodes)
    finally:
        compiler.tape = saved
    shapes = kernel.shapes
    outputs = shapes.leaves(y_nodes, out_t)
    unnode = lambda o: o.value if type(o) is Node else o  # noqa: E731
    y = shapes.map_leaves(y_nodes, out_t, unnode, unnode)

    def pullback(u: Any) -> Any:
        adj: list = [ZERO] * len(tape.parents)
        touched = [False] * len(tape.parents)
        owned: set = set()

        def add(p: int, g: Any) -> None:
            """g into the adjoint of node p (an array adjoint is the sweep's own after its first sum)."""
            if not touched[p]:
                adj[p] = g
                touched[p] = True
            elif type(adj[p]) in REAL_TYPES or g is ZERO:
                adj[p] = adj[p] + g
            else:
                adj[p] = array_kernel("accumulate")(adj[p], g, p in owned)
                owned.add(p)
                if counting:
                    counters.elements += array_kernel("touched")(g)

        for o, ct in zip(outputs, shapes.leaves(u, out_t)):
            if type(o) is Node and ct is not ZERO:
                add(o.index, ct)
        parents, weights = tape.parents, tape.weights
        for i in range(len(parents) - 1, tape.n_inputs - 1, -1):
            if not touched[i]:
                continue
            ct = adj[i]
            if counting:
                counters.bp_run += 1
            ws = weights[i]
            if type(ws) is tuple:  # a real operation: its partial derivatives
                for p, w in zip(parents[i], ws):
                    if counting:
                        if p < tape.n_inputs:
                            counters.sink_updates += 1
                        if touched[p]:
                            counters.merges += 1
                    adj[p] += w * ct
                    touched[p] = True
            else:  # an array operation: its vector-Jacobian product
                for p, g in zip(parents[i], ws(ct)):
                    if g is None:
                        continue
                    if counting:
                        if p < tape.n_inputs:
                            counters.sink_updates += 1
                        if touched[p]:
                            counters.merges += 1
                    add(p, g)
        return shapes.rebuild_leaves(x, in_t, adj[: tape.n_inputs])
    return y, pullback
