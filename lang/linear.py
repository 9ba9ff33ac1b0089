"""Running the linear fragment of the target language: linear factoring, or naive.

A backpropagator `fun a -o t` is given an increasing *identity* when it is
created, and recorded on a tape (an array indexed by identity). Its body is
almost always what ←D writes for a primitive, a sum of contributions
`x1' (∂1 * a) + ... + xk' (∂k * a)` with the ∂i not mentioning `a`; such a
backpropagator is recorded *defunctionalised*: the identities of x1'..xk'
and the values of ∂1..∂k, computed at creation. Any other body is recorded
as compiled code plus its captured values. The zero backpropagator
`fun a -o 0` is `None` and never recorded.

Values of the answer type d are never built. A d-typed term is compiled to
an *effect*: applying a backpropagator to an argument, and summing, are
what the two backends do differently — the rest is shared:

factoring (THEORY §4)
    `x' e` adds e to the pending argument of x' (an array indexed by
    identity): a second call merges into the first, which is the rule
    `t u + t v -> t (u + v)`. The driver sweeps identities from the largest
    down, running each pending body once on its summed argument; since a
    backpropagator only calls older ones, everything that can call it has
    run by then. Cost: one body run per backpropagator created.

naive
    `x' e` runs the body of x' on e at once, recursively down to the
    inputs' sinks, which add into the gradient. A backpropagator reached by
    k paths runs k times: repeated squaring n times makes 2^(n+1) - 1 calls.
"""
from __future__ import annotations

from typing import Any

from . import core as c
from .evaluator import FrameLayout
from .runtime import Code

SINK = "sink"        # parents[] marker of an input's sink; weights[] holds the input's index
GENERIC = "generic"  # parents[] marker of a compiled body; weights[] holds (body, captured)


class Tape:
    """The backpropagators of one reverse-mode evaluation, by identity."""

    __slots__ = ("parents", "weights", "n_sinks")

    def __init__(self) -> None:
        self.parents: list = []
        self.weights: list = []
        self.n_sinks = 0

    def sink(self, index: int) -> int:
        """A new input sink for the input real number `index`."""
        self.parents.append(SINK)
        self.weights.append(index)
        self.n_sinks += 1
        return len(self.parents) - 1


def contributions(body: c.Expr, a: str) -> list[tuple[c.Expr, c.Expr]] | None:
    """Σ xi' (∂i * a)  as  [(xi', ∂i)], when the body has that shape (else None)."""
    out: list[tuple[c.Expr, c.Expr]] = []
    stack = [body]
    while stack:
        t = stack.pop()
        match t:
            case c.DZero():
                pass
            case c.DSum(l, r):
                stack.append(r)
                stack.append(l)
            case c.LinApp(fn, arg):
                weight = _weight(arg, a)
                if weight is None or _mentions(fn, a):
                    return None
                out.append((fn, weight))
            case _:
                return None
    return out


def _weight(arg: c.Expr, a: str) -> c.Expr | None:
    match arg:
        case c.Var(name) if name == a:
            return c.Lit(1.0)
        case c.Prim("neg", (c.Var(name),)) if name == a:
            return c.Lit(-1.0)
        case c.Prim("*", (w, c.Var(name))) if name == a and not _mentions(w, a):
            return w
    return None


def _mentions(e: c.Expr, name: str) -> bool:
    return (name, ()) in c.free_locals(e)


class LinearBackend:
    """What the two modes share: creating backpropagators, and compiling effects."""

    factoring = True

    def __init__(self, counters):
        self.counters = counters
        self.tape = Tape()
        self.adj: list = []          # the pending arguments of the sweep under way (factoring)
        self.grad: list = []         # the gradient being accumulated (naive)

    # ---- compiling
    def compile(self, compiler, e: c.Expr, layout: FrameLayout):
        match e:
            case c.LinLam(a, body):
                return self.backpropagator(compiler, a, body, layout)
            case _:
                raise AssertionError(f"a d-typed term {type(e).__name__} outside a backpropagator's body")

    def backpropagator(self, compiler, a: str, body: c.Expr, layout: FrameLayout):
        """Creation of a backpropagator: a new identity on the tape (or None for the zero one)."""
        pairs = contributions(body, a)
        backend = self
        counting = compiler.counting
        counters = self.counters
        if pairs is not None and not pairs:
            return lambda f: None
        if pairs is not None:
            runs = [(compiler.term(x, layout, None), compiler.term(w, layout, None)) for x, w in pairs]

            def create(f):
                ps, ws = [], []
                for parent, weight in runs:
                    p = parent(f)
                    if p is not None:
                        ps.append(p)
                        ws.append(weight(f))
                if not ps:
                    return None
                tape = backend.tape
                tape.parents.append(ps)
                tape.weights.append(ws)
                if counting:
                    counters.bp_created += 1
                return len(tape.parents) - 1
            return create
        # any other body: compiled as an effect, run later on its captured values
        inner = FrameLayout(layout, 1)
        inner.slots[(a, ())] = 1
        run_body = self.effect(compiler, body, inner)
        code = Code(1, run_body, name="<backpropagator>")
        code.pad = (None,) * (inner.size - 2)
        places = [layout.where(k) for k in inner.free]
        getters = [(lambda f, i=i: f[i]) if kind == "slot" else (lambda f, i=i: f[0][i]) for kind, i in places]

        def create_generic(f):
            tape = backend.tape
            tape.parents.append(GENERIC)
            tape.weights.append((code, tuple([g(f) for g in getters])))
            if counting:
                counters.bp_created += 1
            return len(tape.parents) - 1
        return create_generic

    def effect(self, compiler, e: c.Expr, layout: FrameLayout):
        """A d-typed term as a statement that adds its value into the backward pass."""
        match e:
            case c.DZero():
                return lambda f: None
            case c.DSum(l, r):
                left, right = self.effect(compiler, l, layout), self.effect(compiler, r, layout)

                def both(f):
                    left(f)
                    right(f)
                return both
            case c.LinApp(fn, arg):
                fn_run, arg_run = compiler.term(fn, layout, None), compiler.term(arg, layout, None)
                contribute = self.contribute

                def apply_linear(f):
                    p = fn_run(f)
                    if p is not None:
                        contribute(p, arg_run(f))
                return apply_linear
            case c.If(cond, then, else_):
                rc, rt, re_ = compiler.term(cond, layout, None), self.effect(compiler, then, layout), \
                    self.effect(compiler, else_, layout)
                return lambda f: rt(f) if rc(f) else re_(f)
            case c.Let(name, bound, body, inst):
                run_bound = compiler.term(bound, layout, None)
                slot = layout.new_slot()
                old = layout.slots.get((name, inst))
                layout.slots[(name, inst)] = slot
                run_body = self.effect(compiler, body, layout)
                if old is None:
                    del layout.slots[(name, inst)]
                else:
                    layout.slots[(name, inst)] = old

                def let(f):
                    f[slot] = run_bound(f)
                    run_body(f)
                return let
        raise AssertionError(f"cannot run the d-typed term {type(e).__name__} as a contribution")

    def run_generic(self, entry, ct: float) -> None:
        code, captured = entry
        code.body([captured, ct, *code.pad])

    # ---- what the modes define
    def contribute(self, p: int, value: float) -> None:
        raise NotImplementedError

    def backward(self, tape: Tape, seeds: list[tuple[int, float]]) -> list:
        """Run the backward pass from `seeds`; the arguments that reached each sink, by input index."""
        raise NotImplementedError


class Factoring(LinearBackend):
    """Linear factoring: pending arguments merged per identity, swept from the largest identity down."""

    def contribute(self, p: int, value: float) -> None:
        adj = self.adj
        old = adj[p]
        if old is None:
            adj[p] = value
        else:
            adj[p] = old + value
            self.counters.merges += 1

    def backward(self, tape: Tape, seeds: list[tuple[int, float]]) -> list:
        n = len(tape.parents)
        saved = self.adj
        adj = self.adj = [None] * n
        try:
            for p, v in seeds:
                self.contribute(p, v)
            if self.counters is not None and getattr(self, "counting", False):
                self._sweep_counting(tape, adj)
            else:
                self._sweep(tape, adj)
        finally:
            self.adj = saved
        grads = [0.0] * tape.n_sinks
        for i in range(n):
            if tape.parents[i] is SINK and adj[i] is not None:
                grads[tape.weights[i]] += adj[i]
        return grads

    def _sweep(self, tape: Tape, adj: list) -> None:
        parents, weights = tape.parents, tape.weights
        for i in range(len(parents) - 1, -1, -1):
            ct = adj[i]
            if ct is None:
                continue
            ps = parents[i]
            if type(ps) is list:
                for p, w in zip(ps, weights[i]):
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
            elif ps is GENERIC:
                self.run_generic(weights[i], ct)

    def _sweep_counting(self, tape: Tape, adj: list) -> None:
        parents, weights = tape.parents, tape.weights
        counters = self.counters
        pending = sum(1 for v in adj if v is not None)
        peak = pending
        for i in range(len(parents) - 1, -1, -1):
            ct = adj[i]
            if ct is None:
                continue
            ps = parents[i]
            if ps is SINK:
                continue
            pending -= 1
            counters.bp_run += 1
            if type(ps) is list:
                for p, w in zip(ps, weights[i]):
                    old = adj[p]
                    if parents[p] is SINK:
                        counters.sink_updates += 1
                    if old is None:
                        adj[p] = w * ct
                        if parents[p] is not SINK:
                            pending += 1
                    else:
                        adj[p] = old + w * ct
                        counters.merges += 1
            else:
                before = sum(1 for v in adj if v is not None)  # generic bodies are rare: count the slow way
                self.run_generic(weights[i], ct)
                pending += sum(1 for v in adj if v is not None) - before
            peak = max(peak, pending)
        counters.peak_pending = max(counters.peak_pending, peak)


class Naive(LinearBackend):
    """Naive application: every call of a backpropagator runs its body at once (exponential on sharing)."""

    factoring = False

    def contribute(self, p: int, value: float) -> None:
        self.run(p, value)

    def run(self, p: int, ct: float) -> None:
        tape = self.tape
        ps = tape.parents[p]
        self.counters.bp_run += 1
        if ps is SINK:
            self.counters.sink_updates += 1
            self.grad[tape.weights[p]] += ct
        elif ps is GENERIC:
            self.run_generic(tape.weights[p], ct)
        else:
            run = self.run
            for q, w in zip(ps, tape.weights[p]):
                run(q, w * ct)

    def backward(self, tape: Tape, seeds: list[tuple[int, float]]) -> list:
        saved_tape, saved_grad = self.tape, self.grad
        self.tape, self.grad = tape, [0.0] * tape.n_sinks
        try:
            for p, v in seeds:
                self.run(p, v)
            return self.grad
        finally:
            self.tape, self.grad = saved_tape, saved_grad


def backend_for(mode: str, counters) -> LinearBackend:
    return Naive(counters) if mode == "backprop-naive" else Factoring(counters)


__all__ = ["Tape", "Factoring", "Naive", "backend_for", "SINK", "GENERIC", "Any"]
