"""The dualrev stages' runtime: how each stage's target runs, and how its backward pass is resolved.

The terms come from lang/transforms/dualrev.py (stages 1-2) and dualrev_ids.py (stages 3-4); they are
compiled by the ordinary compiler, with the rules of lang/modes/dualrev_code.py for the target-only
primitives and backpropagator closures. What differs between the stages is what the forward
pass builds and how the driver turns the output's cotangent into the inputs' (docs/transforms.md,
dualrev):

    stage 1  dualrev-staged   a backpropagator returns a Staged value (a dict from backpropagator
                              closures to pending arguments); the driver keeps one such map of pending
                              calls, runs the oldest, and merges what it returns into the map
    stage 2  dualrev-cayley   the same, but a backpropagator adds its calls to the map it is given
    stage 3  dualrev-ids      pending calls keyed by ID in a map with a max-heap of IDs: largest first
    stage 4  dualrev-defun    the same map, holding Contrib records the driver interprets
    stage 5  dualrev          two arrays indexed by ID (adjoint, record), swept once from the top ID down

In stages 1-2 nothing orders the backpropagators, so a body runs again when a call reaches it after it
ran (oldest-first order): correct by linearity, and not linear in cost on some programs
(experiments/chain_order.dl). From stage 3 on, a backpropagator only calls smaller IDs, so running the
largest pending ID first runs each body once.

Sinks: an input real's backpropagator is a Sink (stages 1-2); from stage 3 on, the inputs have the IDs
1..n and a record SINK, and contributions to them go straight to the gradient. A constant's
backpropagator is None (stages 1-3: the compiler writes `fun a -> zeroS` as None and creates no
closure when every parent is None) and its record None (stages 4-5).

Zeros (docs/transforms.md, Zeros and infinities): an input that no contribution reaches gets the
symbolic zero, a cotangent that is the symbolic zero seeds nothing, and cotangents are never turned
into floats, so the kernel's `Paths` seeds (an order-free second pass where a gradient is not finite)
flow through every stage's arithmetic.
"""
from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from typing import Any

from ..model.values import Fun, apply
from ..model.zeros import ZERO
from ..transforms.common import TermTransform, refuse_array_types
from ..transforms.dualrev import CAYLEY_TRANSFORM, DEFUN_TRANSFORM, IDS_TRANSFORM, STAGED_TRANSFORM
from .dualrev_code import StageCompiler, call_supplied
from .runtimes import Runtime

SINK = ()  # the record of an input (stages 4-5)


class Sink:
    """The backpropagator of the k-th input real (stages 1-2): collects what reaches it."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k


# ---- pending calls: what a backward pass holds ---------------------------------------------------------


class Pending:
    """The pending calls of one backward pass, and the gradient they lead to (counting if asked)."""

    def __init__(self, counters, counting: bool, n_inputs: int):
        self.counters = counters
        self.counting = counting
        self.grad: list = [None] * n_inputs
        self.peak = 0

    def to_sink(self, k: int, e: float) -> None:
        """A contribution that reached the k-th input (k from 0)."""
        old = self.grad[k]
        self.grad[k] = e if old is None else old + e
        if self.counting:
            self.counters.sink_updates += 1
            if old is not None:
                self.counters.merges += 1

    def merged(self) -> None:
        if self.counting:
            self.counters.merges += 1

    def extra(self, name: str, n: int = 1) -> None:
        if self.counting:
            extra = self.counters.extra
            extra[name] = extra.get(name, 0) + n

    def gradient(self) -> list:
        if self.counting:
            self.counters.peak_pending = max(self.counters.peak_pending, self.peak)
        return [ZERO if g is None else g for g in self.grad]  # nothing reached: the symbolic zero


class ByClosure(Pending):
    """Stages 1-2: pending arguments keyed by the backpropagator closure, in order of arrival."""

    def __init__(self, counters, counting: bool, n_inputs: int):
        super().__init__(counters, counting, n_inputs)
        self.calls: OrderedDict = OrderedDict()

    def add(self, p: Any, e: float) -> "ByClosure":
        """One contribution: the call p e (the stageC of stage 2 is this)."""
        if p is None:
            return self
        if type(p) is Sink:
            self.to_sink(p.k, e)
            return self
        calls = self.calls
        old = calls.get(p)
        if old is None:
            calls[p] = e
            if len(calls) > self.peak:
                self.peak = len(calls)
        else:
            calls[p] = old + e
            self.merged()
        return self

    def resolve(self, returns_staged: bool) -> None:
        """Run the oldest pending call until none is left; stage 1's bodies return their calls (merged
        here, counted as map_unions), stage 2's add them to this map themselves."""
        calls, counters, counting = self.calls, self.counters, self.counting
        while calls:
            p, e = calls.popitem(last=False)
            if counting:
                counters.bp_run += 1
            if returns_staged:
                staged = p.body(p.captured, e)
                self.extra("map_unions", len(staged))
                for q, w in staged.items():
                    self.add(q, w)
            else:
                p.body(p.captured, e, self)


class ById(Pending):
    """Stages 3-4: pending (backward part, argument) keyed by ID, and a max-heap of the IDs: the largest
    first, as a persistent ordered map would give it. `map_ops` counts insertions and removals, and
    `map_depth` the height of the heap at each (⌊log2 size⌋ + 1, a bound on its comparisons): the log
    factor that stage 5's arrays remove."""

    def __init__(self, counters, counting: bool, n_inputs: int):
        super().__init__(counters, counting, n_inputs)
        self.n_inputs = n_inputs
        self.entries: dict = {}
        self.heap: list = []

    def add(self, j: int, p: Any, e: float) -> "ById":
        """One contribution e to the real with ID j, whose backward part is p (stageAt of stage 3)."""
        if p is None:   # a constant (ID 0, or a real computed from constants only)
            return self
        if j <= self.n_inputs:
            self.to_sink(j - 1, e)
            return self
        entry = self.entries.get(j)
        if entry is None:
            self.entries[j] = [p, e]
            heapq.heappush(self.heap, -j)
            if self.counting:
                self.extra("map_ops")
                self.extra("map_depth", len(self.heap).bit_length())
            if len(self.entries) > self.peak:
                self.peak = len(self.entries)
        else:
            entry[1] += e
            self.merged()
        return self

    def resolve(self, defun: bool) -> None:
        entries, heap, counters, counting = self.entries, self.heap, self.counters, self.counting
        add = self.add
        while heap:
            if counting:
                counters.bp_run += 1
                self.extra("map_ops")
                self.extra("map_depth", len(heap).bit_length())
            j = -heapq.heappop(heap)
            p, e = entries.pop(j)
            if not defun:
                p.body(p.captured, e, self)
            else:
                for k in range(0, len(p), 3):   # (ID, record, partial) per parent
                    add(p[k], p[k + 1], p[k + 2] * e)


class ByArray(Pending):
    """Stage 5: an adjoint and a record per ID, in two arrays, swept once from the top ID down."""

    def __init__(self, counters, counting: bool, n_inputs: int, size: int):
        super().__init__(counters, counting, n_inputs)
        self.n_inputs = n_inputs
        self.adj: list = [None] * size
        self.rec: list = [None] * size

    def seed(self, j: int, p: Any, e: float) -> None:
        if p is None:
            return
        if j <= self.n_inputs:
            self.to_sink(j - 1, e)
            return
        old = self.adj[j]
        self.adj[j] = e if old is None else old + e
        self.rec[j] = p
        if old is not None:
            self.merged()

    def resolve(self) -> None:
        """The reference's resolve (tomsmeding/ad-dualrev-th, TH.hs): for i from the top down, a pending
        adjoint is passed to the parents its record names; a parent's record enters the array with its
        first contribution. O(1) per contribution, one visit per ID. (A record never names a constant:
        contrib1 and contrib2 leave constants out.)"""
        if self.counting:
            return self._resolve_counting()
        adj, rec, n = self.adj, self.rec, self.n_inputs
        grad = self.grad
        for i in range(len(adj) - 1, n, -1):
            e = adj[i]
            if e is None:
                continue
            r = rec[i]
            if len(r) == 3:
                j, p, w = r
                parents = ((j, p, w),)
            else:
                j, p, w, k, q, u = r
                parents = ((j, p, w), (k, q, u))
            for j, p, w in parents:
                if j <= n:
                    old = grad[j - 1]
                    grad[j - 1] = w * e if old is None else old + w * e
                    continue
                old = adj[j]
                if old is None:
                    adj[j] = w * e
                    rec[j] = p
                else:
                    adj[j] = old + w * e

    def _resolve_counting(self) -> None:
        adj, rec, n, counters = self.adj, self.rec, self.n_inputs, self.counters
        pending = sum(1 for v in adj[n + 1:] if v is not None)
        self.peak = max(self.peak, pending)
        for i in range(len(adj) - 1, n, -1):
            e = adj[i]
            if e is None:
                continue
            counters.bp_run += 1
            pending -= 1
            r = rec[i]
            for k in range(0, len(r), 3):
                j, p = r[k], r[k + 1]
                w = r[k + 2] * e
                if j <= n:
                    self.to_sink(j - 1, w)
                    continue
                old = adj[j]
                if old is None:
                    adj[j] = w
                    rec[j] = p
                    pending += 1
                else:
                    adj[j] = old + w
                    counters.merges += 1
            self.peak = max(self.peak, pending)


# ---- the stages: the kernel's entry -------------------------------------------------------------------------


class Stage(Runtime):
    """A dualrev stage as the mode table names it: its transform, and how a vjp runs and resolves."""

    def __init__(self, name: str, number: int, transform: TermTransform):
        self.name = name
        self.number = number          # 1 staged, 2 cayley, 3 ids, 4 defun, 5 arrays
        self.transform = transform

    def compiler(self, kernel) -> StageCompiler:
        return kernel.language(self.name, lambda machine: StageCompiler(machine, self))

    def vjp(self, kernel, f, x, in_t, out_t):
        refuse_array_types(self.name, in_t, out_t)  # the stages have no array rules yet
        compiler = self.compiler(kernel)
        dual_f = kernel.lift_fun(f, compiler, {})
        shapes = kernel.shapes
        machine = kernel.machine
        n = len(shapes.flatten(x, in_t))
        if self.number <= 2:
            sinks = iter([Sink(k) for k in range(n)])
            y_dual = _call1(dual_f, shapes.map_reals(x, in_t, lambda r: (r, next(sinks))))
            backs: list = []
            y = shapes.unlift(y_dual, out_t, backs)
            size = 0
        else:
            ids = itertools.count(1)
            x_dual = shapes.map_reals(x, in_t, lambda r: (r, next(ids), SINK))
            y_dual, size = call_supplied(dual_f, x_dual, n + 1)   # the inputs have the IDs 1..n
            backs = []
            y = shapes.map_reals(y_dual, out_t, lambda d: (backs.append(d), d[0])[1])

        def pullback(u: Any) -> Any:
            cotangents = shapes.flatten(u, out_t)
            grad = self.backward(machine, n, size, backs, cotangents)
            return shapes.rebuild(x, in_t, grad)
        return y, pullback

    def backward(self, machine, n: int, size: int, backs: list, cotangents: list) -> list:
        counters, counting = machine.counters, machine.counting
        number = self.number
        if number <= 2:
            pending = ByClosure(counters, counting, n)
            for p, ct in zip(backs, cotangents):
                if ct is not ZERO:
                    pending.add(p, ct)
            pending.resolve(returns_staged=number == 1)
        elif number <= 4:
            pending = ById(counters, counting, n)
            for (_, j, p), ct in zip(backs, cotangents):
                if ct is not ZERO:
                    pending.add(j, p, ct)
            pending.resolve(defun=number == 4)
        else:
            pending = ByArray(counters, counting, n, size)
            for (_, j, p), ct in zip(backs, cotangents):
                if ct is not ZERO:
                    pending.seed(j, p, ct)
            pending.resolve()
        return pending.gradient()


def _call1(f: Fun, x: Any) -> Any:
    return f.body(f.captured, x) if f.arity == 1 else apply(f, (x,))


STAGED = Stage("dualrev-staged", 1, STAGED_TRANSFORM)
CAYLEY = Stage("dualrev-cayley", 2, CAYLEY_TRANSFORM)
IDS = Stage("dualrev-ids", 3, IDS_TRANSFORM)
DEFUN = Stage("dualrev-defun", 4, DEFUN_TRANSFORM)
ARRAYS = Stage("dualrev", 5, DEFUN_TRANSFORM)   # stage 4's term, resolved with arrays

__all__ = ["STAGED", "CAYLEY", "IDS", "DEFUN", "ARRAYS", "Stage", "Sink", "SINK"]
