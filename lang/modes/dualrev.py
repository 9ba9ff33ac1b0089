"""The dualrev stages' runtime: how each stage's target runs, and how its backward pass is resolved.

The terms come from lang/transforms/dualrev.py (stages 1-2) and dualrev_ids.py (stages 3-4); they are
compiled by the ordinary compiler, with this module's rules for the target-only primitives (one table,
TARGET_CODE) and for backpropagator closures. What differs between the stages is what the forward
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
"""
from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from typing import Any, Callable

from ..back.compiler import MAX_LOOP_NESTING, Gen
from ..back.languages import TransformCompiler
from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES
from ..model.types import Type, prune, resolve
from ..model.values import Code, Fun, apply
from ..transforms.check import TargetLanguage
from ..transforms.common import TermTransform
from ..transforms.dualrev import (BP_CAYLEY, BP_STAGED, CAYLEY_TRANSFORM, DEFUN_TRANSFORM, IDS_TRANSFORM,
                                  STAGED_TRANSFORM, STAGING)
from .runtimes import Runtime
from .table import refusal

SINK = ()  # the record of an input (stages 4-5)


class Sink:
    """The backpropagator of the k-th input real (stages 1-2): collects what reaches it."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k


EMPTY: dict = {}  # the Staged value with no call (stage 1); never mutated


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
        return [0.0 if g is None else g for g in self.grad]


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
    first. Each insertion and removal is a heap operation (the log factor of an ordered map: map_ops)."""

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
            self.extra("map_ops")
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
            j = -heapq.heappop(heap)
            p, e = entries.pop(j)
            if counting:
                counters.bp_run += 1
                self.extra("map_ops")
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
        first contribution. O(1) per contribution, one visit per ID."""
        if self.counting:
            return self._resolve_counting()
        adj, rec, n = self.adj, self.rec, self.n_inputs
        grad = self.grad
        for i in range(len(adj) - 1, n, -1):
            e = adj[i]
            if e is None:
                continue
            r = rec[i]
            for k in range(0, len(r), 3):
                j, p = r[k], r[k + 1]
                if p is None:
                    continue
                w = r[k + 2] * e
                if j <= n:
                    old = grad[j - 1]
                    grad[j - 1] = w if old is None else old + w
                    continue
                old = adj[j]
                if old is None:
                    adj[j] = w
                    rec[j] = p
                else:
                    adj[j] = old + w

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
                if p is None:
                    continue
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


# ---- the target-only primitives: one row each ---------------------------------------------------------


def _plus(pending_counters):
    """plusS s t: the union of two Staged values, merging the calls of one backpropagator (stage 1).
    Linear use lets it merge the smaller map into the larger one in place; `map_unions` counts the
    entries moved."""
    counters, counting = pending_counters

    def plus(s: dict, t: dict) -> dict:
        if not s:
            return t
        if not t:
            return s
        if len(s) < len(t):
            s, t = t, s
        for p, e in t.items():
            old = s.get(p)
            if old is None:
                s[p] = e
            else:
                s[p] = old + e
                if counting:
                    counters.merges += 1
        if counting:
            counters.extra["map_unions"] = counters.extra.get("map_unions", 0) + len(t)
        return s
    return plus


def _stage(p: Any, e: float) -> dict:
    """stage p e: the pending call p e as a Staged value (stage 1)."""
    return EMPTY if p is None else {p: e}


def _contrib(counters, counting: bool) -> tuple[Callable, Callable]:
    """contrib1 and contrib2: a record of the parents that are not constants (None when none is)."""
    def contrib1(j: int, p: Any, w: float):
        if p is None:
            return None
        if counting:
            counters.bp_created += 1
        return (j, p, w)

    def contrib2(j: int, p: Any, w: float, k: int, q: Any, u: float):
        if p is None:
            return contrib1(k, q, u)
        if q is None:
            return contrib1(j, p, w)
        if counting:
            counters.bp_created += 1
        return (j, p, w, k, q, u)
    return contrib1, contrib2


def _call(f: Fun, x: Any, s: int) -> tuple:
    """A target function applied to an argument and the supply."""
    return f.body(f.captured, x, s) if f.arity == 2 else apply(f, (x, s))


def _run_const(f: Fun) -> Any:
    """runConst f: the computation f run on the supply of constants (0: every ID it gives is noId)."""
    return f.body(f.captured, 0)[0] if f.arity == 1 else apply(f, (0,))[0]


def _map_i(f: Fun, xs: list, s: int) -> tuple:
    out = []
    for x in xs:
        y, s = _call(f, x, s)
        out.append(y)
    return out, s


def _fold_i(f: Fun, acc: Any, xs: list, s: int) -> tuple:
    for x in xs:
        g, s = _call(f, acc, s)
        acc, s = _call(g, x, s)
    return acc, s


def _zip_with_i(f: Fun, xs: list, ys: list, s: int) -> tuple:
    out = []
    for x, y in zip(xs, ys):
        g, s = _call(f, x, s)
        z, s = _call(g, y, s)
        out.append(z)
    return out, s


def _negative(n: int, span) -> DlRuntimeError:
    return DlRuntimeError(f"build of a negative count ({n})", span)


def _build_i(n: int, f: Fun, s: int, span=None) -> tuple:
    if n < 0:
        raise _negative(n, span)
    out = []
    for i in range(n):
        y, s = _call(f, i, s)
        out.append(y)
    return out, s


# ---- compiling the targets -------------------------------------------------------------------------------


class StageGen(Gen):
    """The code of one function of a stage's target: the target-only primitives written as TARGET_CODE
    says, backpropagator closures created only when they have a parent (and counted), and the
    accumulation arithmetic of a backpropagator's body (`∂ * a`) left out of `prims`: it is the backward
    pass's, not a primitive of the program (as in backprop, whose records hold only the partials)."""

    def __init__(self, compiler, params, self_ref, closed: bool = False, bp: str | None = None):
        super().__init__(compiler, params, self_ref, closed=closed)
        self.bp = bp  # the parameter of the backpropagator whose body this is

    def primitive(self, e: c.Prim, ind: int) -> str:
        write = TARGET_CODE.get(e.op)
        if write is not None:
            return write(self, e, ind)
        if self.bp is not None and (self.bp, ()) in c.free_locals(e):
            return self.uncounted(e, ind)
        return super().primitive(e, ind)

    def uncounted(self, e: c.Prim, ind: int) -> str:
        args = [self.atom(a, ind) for a in e.args]
        how = self.compiler.primitive_code(PRIMITIVES[e.op], e)
        v = self.local()
        self.line(ind, f"{v} = " + (how.template.format(*args) if how.template is not None
                                     else f"{self.const(how.fn)}({', '.join(args)})"))
        return v

    def closure(self, lam: c.Lam, ind: int, self_ref=None, target: str | None = None) -> str:
        parents = _parents(lam)
        if parents is None:
            return super().closure(lam, ind, self_ref, target)
        v = target or self.local()
        if not parents:   # fun a -> zeroS, fun a acc -> acc: the zero backpropagator
            self.line(ind, f"{v} = None")
            return v
        tests = [f"{self.atom(p, ind)} is None" for p in parents]
        self.line(ind, f"if {' and '.join(tests)}:")
        self.line(ind + 1, f"{v} = None")
        self.line(ind, "else:")
        compiler = self.compiler
        compiler.backpropagator = lam.param
        try:
            super().closure(lam, ind + 1, target=v)
        finally:
            compiler.backpropagator = None
        self.count(ind + 1, "bp_created")
        return v

    def components(self, e: c.Expr, n: int, ind: int) -> list[str]:
        if isinstance(e, c.Prim) and e.op == "fresh":   # let (j, s1) = fresh s: no tuple
            s = self.atom(e.args[0], ind)
            j, s1 = self.local(), self.local()
            self.line(ind, f"{j} = {s}")
            self.line(ind, f"{s1} = {s} + 1 if {s} else 0")
            return [j, s1]
        return super().components(e, n, ind)


def _parents(lam: c.Lam) -> list[c.Expr] | None:
    """The backpropagators a backpropagator closure stages calls of; None when `lam` is not one."""
    if lam.ty is None or resolve(lam.ty) not in (BP_STAGED, BP_CAYLEY):
        return None
    out: list[c.Expr] = []
    stack = [lam.body]
    while stack:
        t = stack.pop()
        match t:
            case c.Prim(op, args) if op in STAGING:   # stage p w | stageC p w acc | stageAt j p w acc
                out.append(args[1] if op == "stageAt" else args[0])
                if op != "stage":
                    stack.append(args[-1])
            case c.Prim("plusS", (l, r)):
                stack += [r, l]
            case c.Lam(body=b):
                stack.append(b)
    return out


def _call_code(gen: StageGen, f: str, x: str, s: str, ind: int) -> str:
    v = gen.local()
    gen.line(ind, f"{v} = {f}.body({f}.captured, {x}, {s}) if {f}.arity == 2 else _apply({f}, ({x}, {s}))")
    return v


def _write_call(name: str, counted: bool = False) -> Callable:
    """A target primitive written as a call of its implementation (the compiler's own, from its runtime)."""
    def write(gen: StageGen, e: c.Prim, ind: int) -> str:
        args = [gen.atom(a, ind) for a in e.args]
        if counted:
            gen.count(ind, "prims")
        v = gen.local()
        gen.line(ind, f"{v} = {gen.const(gen.compiler.impl[name])}({', '.join(args)})")
        return v
    return write


def _write_apply(gen: StageGen, e: c.Prim, ind: int) -> str:
    """applyI (g, s) x: the next argument of a call (not an application of its own: `apps` counts the
    source's application once, where the call starts)."""
    g, s = gen.components(e.args[0], 2, ind)
    x = gen.atom(e.args[1], ind)
    return _call_code(gen, g, x, s, ind)


def _write_add(gen: StageGen, e: c.Prim, ind: int) -> str:
    """stageC p w acc / stageAt j p w acc: add the call to the pending ones (acc is the driver's map)."""
    args = [gen.atom(a, ind) for a in e.args]
    *call, acc = args
    v = gen.local()
    gen.line(ind, f"{v} = {acc}.add({', '.join(call)})")
    return v


def _literal(value: str) -> Callable:
    return lambda gen, e, ind: value


def _loop(kind: str) -> Callable:
    """mapI, foldI, zipWithI, buildI: a loop with the function's body in place when it is written there
    (as the compiler inlines map and fold), else a call of the implementation. One primitive, and one
    application per element when inlined, as for the source's map and fold."""
    arity = {"mapI": 1, "buildI": 1, "foldI": 2, "zipWithI": 2}[kind]

    def write(gen: StageGen, e: c.Prim, ind: int) -> str:
        fn_arg = e.args[1] if kind == "buildI" else e.args[0]
        body = _inline_shape(fn_arg, arity)
        if body is None or gen.loop_depth >= MAX_LOOP_NESTING:
            write_call = _write_call(kind, counted=True)
            if kind == "buildI":
                args = [gen.atom(a, ind) for a in e.args]
                gen.count(ind, "prims")
                v = gen.local()
                gen.line(ind, f"{v} = {gen.const(_build_i)}({', '.join(args)}, {gen.const(e.span)})")
                return v
            return write_call(gen, e, ind)
        params, inner = body
        if kind == "buildI":
            count_e, _, supply_e = e.args
            n = gen.atom(count_e, ind)
            gen.line(ind, f"if {n} < 0: raise {gen.const(_negative)}({n}, {gen.const(e.span)})")
            iterable, init = f"range({n})", None
        elif kind == "foldI":
            _, init_e, xs_e, supply_e = e.args
            init = gen.atom(init_e, ind)
            iterable = gen.atom(xs_e, ind)
        elif kind == "zipWithI":
            _, xs_e, ys_e, supply_e = e.args
            iterable, init = f"zip({gen.atom(xs_e, ind)}, {gen.atom(ys_e, ind)})", None
        else:
            _, xs_e, supply_e = e.args
            iterable, init = gen.atom(xs_e, ind), None
        gen.count(ind, "prims")
        s = gen.local()
        gen.line(ind, f"{s} = {gen.atom(supply_e, ind)}")
        acc = gen.local()
        gen.line(ind, f"{acc} = {init if kind == 'foldI' else '[]'}")
        elems = [gen.local() for _ in range(1 if kind != "zipWithI" else 2)]
        gen.line(ind, f"for {', '.join(elems)} in {iterable}:")
        values = ([acc] if kind == "foldI" else []) + elems
        olds = [gen.bind((p, ()), v) for p, v in zip(params[:-1], values)]
        old_s = gen.bind((params[-1], ()), s)
        gen.count(ind + 1, "betas")
        gen.loop_depth += 1
        y, s2 = gen.components(inner, 2, ind + 1)
        gen.loop_depth -= 1
        if kind == "foldI":
            gen.line(ind + 1, f"{acc} = {y}")
        else:
            gen.line(ind + 1, f"{acc}.append({y})")
        gen.line(ind + 1, f"{s} = {s2}")
        gen.restore((params[-1], ()), old_s)
        for p, old in reversed(list(zip(params[:-1], olds))):
            gen.restore((p, ()), old)
        v = gen.local()
        gen.line(ind, f"{v} = ({acc}, {s})")
        return v
    return write


def _inline_shape(fn: c.Expr, arity: int) -> tuple[list[str], c.Expr] | None:
    """The parameters (the elements', then the supply's) and body of a function written in place:
    `fun x s -> t`, or for two arguments `fun acc s -> (fun x s1 -> t, s)` (the second parameter is
    passed the same supply: the first call returns it unchanged)."""
    params, body = c.lambda_chain(fn) if isinstance(fn, c.Lam) else ([], fn)
    if len(params) != 2:
        return None
    if arity == 1:
        return params, body
    match body:
        case c.Tuple((c.Lam() as inner, c.Var(s))) if s == params[1]:
            more, t = c.lambda_chain(inner)
            if len(more) == 2 and params[0] not in more:
                # bind the inner supply to the outer one's variable: both are the loop's supply
                return [params[0], more[0], more[1]], t
    return None


TARGET_CODE: dict[str, Callable] = {
    "stage": _write_call("stage"),
    "plusS": _write_call("plusS"),
    "zeroS": lambda gen, e, ind: gen.const(EMPTY),
    "stageC": _write_add,
    "stageAt": _write_add,
    "fresh": lambda gen, e, ind: _fresh_tuple(gen, e, ind),
    "noId": _literal("0"),
    "runConst": _write_call("runConst"),
    "applyI": _write_apply,
    "mapI": _loop("mapI"),
    "foldI": _loop("foldI"),
    "zipWithI": _loop("zipWithI"),
    "buildI": _loop("buildI"),
    "contrib0": _literal("None"),
    "contrib1": _write_call("contrib1"),
    "contrib2": _write_call("contrib2"),
}


def _fresh_tuple(gen: StageGen, e: c.Prim, ind: int) -> str:
    s = gen.atom(e.args[0], ind)
    v = gen.local()
    gen.line(ind, f"{v} = ({s}, {s} + 1 if {s} else 0)")
    return v


class StageCompiler(TransformCompiler):
    """The compiler of one stage's target language (no nesting: a derivative inside is refused)."""

    nests = False

    def __init__(self, machine, stage: "Stage"):
        super().__init__(machine, counting=machine.counting, name=stage.name)
        self.stage = stage
        self.backpropagator: str | None = None  # set while a backpropagator's closure is compiled
        counters, counting = machine.counters, machine.counting
        contrib1, contrib2 = _contrib(counters, counting)
        self.impl = {"stage": _stage, "plusS": _plus((counters, counting)), "runConst": _run_const,
                     "mapI": _map_i, "foldI": _fold_i, "zipWithI": _zip_with_i,
                     "contrib1": contrib1, "contrib2": contrib2}

    def transform(self, e: c.Expr) -> c.Expr:
        t = self.stage.transform
        return t.simplify(t.term(e))

    def d_type(self, t: Type) -> Type:
        return self.stage.transform.type(t)

    def language(self) -> TargetLanguage:
        base = super().language()
        return TargetLanguage(base.name, base.d_type, base.global_type, self.stage.transform.checks)

    def refuse_nested(self, e: c.Prim):
        return refusal(self.name, e)

    def fill(self, code: Code, params: list[str], body: c.Expr, self_ref, closed: bool = False) -> None:
        gen = StageGen(self, params, self_ref, closed=closed, bp=self.backpropagator)
        self.backpropagator = None  # only the backpropagator's own body
        gen.tail(body, 0)
        code.free = tuple(gen.free)
        code.body = gen.build(code.name)

    def lift_real(self, r: float) -> Any:
        return (r, None) if self.stage.number <= 2 else (r, 0, None)

    def lifted_partial(self, code: Code) -> Code:
        return code if self.stage.number <= 2 else _STATE_PARTIAL


def _partial_body(captured: tuple, y: Any, s: int) -> tuple:
    """A partial application f a1 .. ak lifted into a target that threads the supply: each argument is
    given with the supply, and the function each call returns takes the next."""
    fn, args = captured
    for a in args:
        fn, s = _call(fn, a, s)
    return _call(fn, y, s)


_STATE_PARTIAL = Code(2, _partial_body, name="<partial>", mode="partial, state-passing")


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
            y_dual, size = _call(dual_f, x_dual, n + 1)   # the inputs have the IDs 1..n
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
                pending.add(p, float(ct))
            pending.resolve(returns_staged=number == 1)
        elif number <= 4:
            pending = ById(counters, counting, n)
            for (_, j, p), ct in zip(backs, cotangents):
                pending.add(j, p, float(ct))
            pending.resolve(defun=number == 4)
        else:
            pending = ByArray(counters, counting, n, size)
            for (_, j, p), ct in zip(backs, cotangents):
                pending.seed(j, p, float(ct))
            pending.resolve()
        return pending.gradient()


def _call1(f: Fun, x: Any) -> Any:
    return f.body(f.captured, x) if f.arity == 1 else apply(f, (x,))


STAGED = Stage("dualrev-staged", 1, STAGED_TRANSFORM)
CAYLEY = Stage("dualrev-cayley", 2, CAYLEY_TRANSFORM)
IDS = Stage("dualrev-ids", 3, IDS_TRANSFORM)
DEFUN = Stage("dualrev-defun", 4, DEFUN_TRANSFORM)
ARRAYS = Stage("dualrev", 5, DEFUN_TRANSFORM)   # stage 4's term, resolved with arrays

__all__ = ["STAGED", "CAYLEY", "IDS", "DEFUN", "ARRAYS", "Stage", "StageCompiler", "TARGET_CODE", "prune"]
