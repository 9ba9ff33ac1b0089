"""The delta and delta-noshare modes: Delta expressions built by the forward pass, transposed after it.

The transform (lang/transforms/delta.py) pairs every real with a Delta; this
module is their runtime (docs/transforms.md, delta). A Delta value is plain
data, built by the compiled code of the target-only rows `dzero`, `dscale`,
`dadd`, `dshare`, `dmark`:

    None            dzero
    k  (an int)     input k (k < n, the kernel's k-th input real) or shared node k (its body: records[k])
    (w, d)          dscale w d
    (d1, d2, "+")   dadd d1 d2
    (d,)            dmark d

The constructors are smart: a scale or sum of zeros is zero, and `dshare`
of zero, of an input or of a node shared already returns it unchanged
(horde-ad's `shareDelta` does the same; `dmark` of a marked node too). So every Delta a real carries in
`delta` is None or an int, and a record's body is one primitive's small tree.

`dshare d` appends d to the mode's list of records and returns its index,
when the primitive *runs*: identities increase along every data dependency
(a body mentions only smaller identities). The backward pass (`Sharing`)
is then the array sweep of linear factoring on data: walk the output's
Delta with the seed, then for each identity from the largest down to n,
if a cotangent is pending there, walk that record's body once with it. A
walk adds `w * c` into the identity a scaled path ends at; two arrivals at
one identity merge, which is the rule `t u + t v -> t (u + v)`.

`delta-noshare` (`Unshared`) has no identities: `dmark d` is `(d,)`, and the
walk enters a node once per path that reaches it, as backprop-naive runs a
backpropagator once per call: 2^(n+1) - 1 entries on n repeated squarings.

Counters (docs/transforms.md, Cost counters): bp_created counts dshare
(dmark) nodes made; bp_run the shared bodies walked (in noshare: every entry
into a dmark node or an input); merges, sink_updates and peak_pending as in
backprop (backprop-naive for noshare); the extra `delta_nodes` counts the
dscale and dadd nodes the walks visit.
"""
from __future__ import annotations

from typing import Any, Callable

from ..back.compiler import Compiler, Gen
from ..back.languages import TransformCompiler, forward_transform, forward_type
from ..model import core as c
from ..model.zeros import REAL_TYPES, ZERO, settle
from ..model.primitives import PRIMITIVES
from ..model.types import Type
from ..model.values import call1
from ..transforms.common import refuse_array_types
from ..transforms.delta import DELTA as DELTA_TRANSFORM, DELTA_NOSHARE as NOSHARE_TRANSFORM
from .runtimes import Runtime

INPUT = ()  # the record of an input: identities 0 .. n-1 are the n input reals


# ---- the constructors in Python (nesting's tree_add/tree_mul; DeltaGen writes the same inline) ----

def scale(w: float, d: Any) -> Any:
    """dscale w d."""
    return None if d is None else (w, d)


def add(a: Any, b: Any) -> Any:
    """dadd a b."""
    return b if a is None else a if b is None else (a, b, "+")


class DeltaBackend:
    """The records of one mode (shared by every nesting depth) and the node constructors that fill them."""

    def __init__(self, counters, counting: bool):
        self.counters = counters
        self.counting = counting
        self.records: list = []  # the shared bodies of the evaluation under way (inputs first)

    def share(self, d: Any) -> Any:
        """dshare d: a fresh identity for d (zero, an input, a shared node: d itself)."""
        if d is None or type(d) is int:
            return d
        records = self.records
        records.append(d)
        return len(records) - 1

    def share_counting(self, d: Any) -> Any:
        if d is None or type(d) is int:
            return d
        records = self.records
        records.append(d)
        self.counters.bp_created += 1
        return len(records) - 1

    @staticmethod
    def mark(d: Any) -> Any:
        """dmark d: d as one primitive's part, no identity (zero, an input, a marked node: d itself)."""
        return d if d is None or type(d) is int or len(d) == 1 else (d,)

    def mark_counting(self, d: Any) -> Any:
        if d is None or type(d) is int or len(d) == 1:
            return d
        self.counters.bp_created += 1
        return (d,)

    def node(self, name: str) -> Callable[[Any], Any]:
        """The function a node row (dshare, dmark) compiles to, counting or not."""
        fn = {"dshare": self.share, "dmark": self.mark}[name]
        counting = {"dshare": self.share_counting, "dmark": self.mark_counting}[name]
        return counting if self.counting else fn

    def backward(self, records: list, seeds: list[tuple[Any, float]], n: int) -> list:
        """Transpose: the cotangent that reaches each of the n inputs from the (Delta, cotangent) seeds."""
        raise NotImplementedError

    def _count_nodes(self, k: int) -> None:
        extra = self.counters.extra
        extra["delta_nodes"] = extra.get("delta_nodes", 0) + k


class Sharing(DeltaBackend):
    """delta: every shared body walked once, from the largest identity down."""

    def backward(self, records: list, seeds: list[tuple[Any, float]], n: int) -> list:
        adj: list = [None] * len(records)
        counting = self.counting
        counters = self.counters
        for k, ct in seeds:  # a real's Delta is None or an identity: the seed is pending there
            old = adj[k]
            adj[k] = ct if old is None else old + ct
            if counting and old is not None:
                counters.merges += 1  # (as backprop counts a seed: a merge, not a sink update)
        if counting:
            self._sweep_counting(records, adj, n)
        else:
            _sweep(records, adj, n)
        return [ZERO if g is None else g for g in adj[:n]]  # nothing reached: the symbolic zero

    def _sweep_counting(self, records: list, adj: list, n: int) -> None:
        counters = self.counters
        pending = sum(1 for v in adj[n:] if v is not None)
        peak, nodes = pending, 0
        for i in range(len(records) - 1, n - 1, -1):
            ct = adj[i]
            if ct is None:
                continue
            counters.bp_run += 1
            pending -= 1
            stack = [(records[i], ct)]
            while stack:
                d, c = stack.pop()
                if type(d) is int:
                    old = adj[d]
                    if d < n:
                        counters.sink_updates += 1
                    if old is None:
                        adj[d] = c
                        if d >= n:
                            pending += 1
                    else:
                        adj[d] = old + c
                        counters.merges += 1
                elif len(d) == 2:
                    nodes += 1
                    stack.append((d[1], d[0] * c))
                else:
                    nodes += 1
                    stack.append((d[1], c))
                    stack.append((d[0], c))
            peak = max(peak, pending)
        counters.peak_pending = max(counters.peak_pending, peak)
        self._count_nodes(nodes)


def _sweep(records: list, adj: list, n: int) -> None:
    """Walk each pending body once, largest identity first. The bodies a primitive of one or two
    arguments makes (`dscale w k`, `dadd a b` with a, b an identity or a scaled one) are walked in place;
    any other shape (a sum of more, from nesting) by `_walk`."""
    stack: list = []
    for i in range(len(records) - 1, n - 1, -1):
        ct = adj[i]
        if ct is None:
            continue
        rec = records[i]
        if len(rec) == 2:
            w, k = rec
            if type(k) is int:
                old = adj[k]
                adj[k] = w * ct if old is None else old + w * ct
                continue
        elif len(rec) == 3:
            for d in (rec[0], rec[1]):
                if type(d) is int:
                    old = adj[d]
                    adj[d] = ct if old is None else old + ct
                elif len(d) == 2 and type(d[1]) is int:
                    k = d[1]
                    old = adj[k]
                    adj[k] = d[0] * ct if old is None else old + d[0] * ct
                else:
                    _walk(d, ct, adj, stack)
            continue
        _walk(rec, ct, adj, stack)


def _walk(d: Any, c: float, adj: list, stack: list) -> None:
    """Add c times the map d into adj: a scale multiplies, a sum walks both sides (left first), an
    identity accumulates. Iterative: a dmark chain is as deep as the program."""
    while True:
        if type(d) is int:
            old = adj[d]
            adj[d] = c if old is None else old + c
            if not stack:
                return
            d, c = stack.pop()
        elif len(d) == 2:
            c = d[0] * c
            d = d[1]
        elif len(d) == 3:
            stack.append((d[1], c))
            d = d[0]
        else:
            d = d[0]


class Unshared(DeltaBackend):
    """delta-noshare: the trees walked as they are, a node once per path that reaches it."""

    def backward(self, records: list, seeds: list[tuple[Any, float]], n: int) -> list:
        grad = [ZERO] * n
        counting = self.counting
        counters = self.counters
        nodes = 0
        stack = list(reversed(seeds))
        while stack:
            d, ct = stack.pop()
            if type(d) is int:  # an input
                grad[d] += ct
                if counting:
                    counters.bp_run += 1
                    counters.sink_updates += 1
            elif len(d) == 1:
                if counting:
                    counters.bp_run += 1
                stack.append((d[0], ct))
            elif len(d) == 2:
                nodes += 1
                stack.append((d[1], d[0] * ct))
            else:
                nodes += 1
                stack.append((d[1], ct))
                stack.append((d[0], ct))
        if counting:
            self._count_nodes(nodes)
        return grad


# ---- the target language: the compiler and the leaves of its reals ----------------------------


class DeltaLeaves:
    """Leaves of the delta languages: Δ reals (x, d); arithmetic builds a node (nesting's tree_add/mul)."""

    def __init__(self, node: Callable[[Any], Any]):
        self.node = node  # dshare or dmark, as the backend compiles it

    @staticmethod
    def is_leaf(v: Any) -> bool:
        return type(v) is tuple and len(v) == 2 and type(v[0]) in REAL_TYPES

    @staticmethod
    def const(r: float) -> Any:
        return (float(r), None)

    @staticmethod
    def settle(v: Any) -> Any:
        """The leaf with its value settled (the symbolic zero as 0.0: lang/model/zeros.py)."""
        return (settle(v[0]), v[1])

    def add(self, a: Any, b: Any) -> Any:
        (x, xd), (y, yd) = a, b
        return (x + y, self.node(add(xd, yd)))

    def mul(self, a: Any, b: Any) -> Any:
        (x, xd), (y, yd) = a, b
        return (x * y, self.node(add(scale(y, xd), scale(x, yd))))


class DeltaGen(Gen):
    """Writes the Delta constructors in place, as the linear backend writes backpropagators: no call.

        dscale w d    v = None if d is None else (w, d)
        dadd a b      v = b if a is None else a if b is None else (a, b, "+")
        dshare d      if d is None or type(d) is int: v = d
                      else: R.append(d); v = len(R) - 1        (R: the records, read on entry)
        dmark d       if d is None or type(d) is int or len(d) == 1: v = d
                      else: v = (d,)
    """

    def primitive(self, e: c.Prim, ind: int) -> str:
        if PRIMITIVES[e.op].kind != "delta":
            return super().primitive(e, ind)
        args = [self.atom(a, ind) for a in e.args]
        match e.op, args:
            case "dzero", []:
                return "None"
            case "dscale", [w, d]:
                v = self.local()
                self.line(ind, f"{v} = None if {d} is None else ({w}, {d})")
            case "dadd", [a, b]:
                v = self.local()
                self.line(ind, f"{v} = {b} if {a} is None else {a} if {b} is None else ({a}, {b}, \"+\")")
            case "dshare", [d]:
                v = self.local()
                # the records do not change while one evaluation runs: read them on entry
                records = self.entry("DR", f"{self.const(self.compiler.backend)}.records")
                self.line(ind, f"if {d} is None or type({d}) is int:")
                self.line(ind + 1, f"{v} = {d}")
                self.line(ind, "else:")
                self.line(ind + 1, f"{records}.append({d})")
                self.line(ind + 1, f"{v} = len({records}) - 1")
                self.count(ind + 1, "bp_created")
            case "dmark", [d]:
                v = self.local()
                self.line(ind, f"if {d} is None or type({d}) is int or len({d}) == 1:")
                self.line(ind + 1, f"{v} = {d}")
                self.line(ind, "else:")
                self.line(ind + 1, f"{v} = ({d},)")
                self.count(ind + 1, "bp_created")
            case _:
                raise AssertionError(f"the delta language has no constructor {e.op!r}")
        return v


class DeltaCompiler(TransformCompiler):
    """Δ(→D^depth t): the delta (or delta-noshare) language over `depth` levels of forward derivatives.

    At depth 0 this is Δ itself; a derivative taken inside it runs one level deeper (`deeper`). All
    depths of one mode build on one backend, so a nested derivative's nodes land on the outer records."""

    def __init__(self, machine, runtime: DeltaRuntime, backend: DeltaBackend, depth: int, parent: Compiler | None):
        name = runtime.name if depth == 0 else f"{runtime.name}∘forward^{depth}"
        super().__init__(machine, counting=machine.counting, name=name)
        self.runtime = runtime
        self.backend = backend
        self.depth = depth
        self.source_name = parent.name if parent is not None else "primal"
        self.leaves = DeltaLeaves(backend.node(runtime.flavour.node))

    def transform(self, e: c.Expr) -> c.Expr:
        delta = self.runtime.flavour.transform
        return delta.simplify(delta.term(forward_transform(e, self.depth)))

    def d_type(self, t: Type) -> Type:
        return self.runtime.flavour.transform.type(forward_type(t, self.depth))

    def generator(self, params: list[str], self_ref, closed: bool = False) -> Gen:
        return DeltaGen(self, params, self_ref, closed=closed)

    takes_custom_rules = True

    def lift_real(self, r: float) -> Any:
        return (r, None) if self.depth == 0 else ((r, None), (0.0, None))

    def custom_leaf(self, value: float, pairs: list) -> Any:
        """(y, Σ dscale J d): a row of the rule's Jacobian as one Delta node over the inputs' Deltas."""
        d = None
        for (_, d_in), weight in pairs:
            if weight is not ZERO:
                d = add(d, scale(weight, d_in))
        return (value, self.leaves.node(d))

    def varying_leaf(self, v: Any) -> bool | None:
        """A Δ real (r, d) carries a derivative when it has a Delta (a constant's is None)."""
        return v[1] is not None if DeltaLeaves.is_leaf(v) else None

    def lift_leaf(self, v: Any) -> Any:
        """A Δ real of the language below, one forward level deeper: (ℓ, (0.0, None))."""
        if self.depth > 0 and DeltaLeaves.is_leaf(v):
            return (v, (0.0, None))
        return None

    def deeper(self, kernel) -> Compiler:
        return self.runtime.compiler(kernel, self.depth + 1)


# ---- the runtime the mode table names ----------------------------------------------------------


class Flavour:
    """What tells the two modes apart: the term transform (dshare or dmark) and the backward pass."""

    def __init__(self, transform, node: str, backend: type):
        self.transform = transform  # the TermTransform (lang/transforms/delta.py)
        self.node = node            # the node row its terms use
        self.backend = backend      # Sharing or Unshared


class DeltaRuntime(Runtime):
    """vjp by Δ: run Δ(f) on the inputs paired with their identities, transpose the output's Deltas."""

    def __init__(self, name: str, flavour: Flavour):
        self.name = name
        self.flavour = flavour

    def backend(self, kernel) -> DeltaBackend:
        if self.name not in kernel.backends:
            kernel.backends[self.name] = self.flavour.backend(kernel.machine.counters, kernel.machine.counting)
        return kernel.backends[self.name]

    def compiler(self, kernel, depth: int) -> DeltaCompiler:
        """Δ(→D^depth t) for this mode, made on first use."""
        parent = self.compiler(kernel, depth - 1) if depth > 0 else None
        return kernel.language((self.name, depth),
                               lambda machine: DeltaCompiler(machine, self, self.backend(kernel), depth, parent))

    def vjp(self, kernel, f, x, in_t, out_t):
        refuse_array_types(self.name, in_t, out_t)  # Delta has no array constructors yet
        compiler = self.compiler(kernel, 0)
        backend = compiler.backend
        shapes = kernel.shapes
        delta_f = kernel.lift_fun(f, compiler, {})
        saved = backend.records
        try:
            x_delta, n = shapes.inject(x, in_t, 0)  # the k-th input real is (x_k, k): the Delta `input k`
            records = backend.records = [INPUT] * n
            y_delta = call1(delta_f, x_delta)
        finally:
            backend.records = saved
        deltas: list = []
        y = shapes.unlift(y_delta, out_t, deltas)

        def pullback(u: Any) -> Any:
            seeds = [(d, ct) for d, ct in zip(deltas, shapes.flatten(u, out_t)) if d is not None and ct is not ZERO]
            return shapes.rebuild(x, in_t, backend.backward(records, seeds, n))
        return y, pullback


DELTA = DeltaRuntime("delta", Flavour(DELTA_TRANSFORM, "dshare", Sharing))
DELTA_NOSHARE = DeltaRuntime("delta-noshare", Flavour(NOSHARE_TRANSFORM, "dmark", Unshared))

__all__ = ["DELTA", "DELTA_NOSHARE", "DeltaCompiler", "DeltaLeaves", "Sharing", "Unshared", "INPUT"]
