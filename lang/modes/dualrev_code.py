"""How the dualrev stages' targets are compiled: the target-only primitives, backpropagator closures, loops.

The compiler of lang/back/compiler.py writes every stage's term; this module gives it the rules it
does not have (docs/transforms.md, dualrev):

- one row per target-only primitive (TARGET_CODE): `fresh s` is two locals, `noId` is 0, `contrib2`
  a tuple written in place (one branch per parent that may be a constant, as backprop's records are),
  `stageC`/`stageAt` an insertion into the driver's map, `applyI` the next call, `mapI`/`foldI`/
  `zipWithI`/`buildI` a loop with the function's body in place when it is written there;
- a backpropagator closure (a lambda of type Real -> Staged or Real -> Staged -> Staged) is created
  only when one of its parents is not a constant, and counted (`bp_created`); the zero one is None;
- in a backpropagator's body, the arithmetic that mentions its parameter (`∂ * a`) is the backward
  pass's accumulation, not a primitive of the program: it is not counted in `prims`;
- a partial application lifted into a target that threads the supply finishes its call one argument
  and one supply at a time (Compiler.lifted_partial).
"""
from __future__ import annotations

from typing import Any, Callable

from ..back.compiler import MAX_LOOP_NESTING, Gen
from ..back.languages import TransformCompiler
from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES
from ..model.types import Type, resolve
from ..model.values import Code, Fun, apply
from ..transforms.check import TargetLanguage
from ..transforms.dualrev import BP_CAYLEY, BP_STAGED, STAGING
from .table import refusal

EMPTY: dict = {}  # the Staged value with no call (stage 1); never mutated


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


def call_supplied(f: Fun, x: Any, s: int) -> tuple:
    """A target function applied to an argument and the supply."""
    return f.body(f.captured, x, s) if f.arity == 2 else apply(f, (x, s))


def _run_const(f: Fun) -> Any:
    """runConst f: the computation f run on the supply of constants (0: every ID it gives is noId)."""
    return f.body(f.captured, 0)[0] if f.arity == 1 else apply(f, (0,))[0]


def _map_i(f: Fun, xs: list, s: int) -> tuple:
    out = []
    for x in xs:
        y, s = call_supplied(f, x, s)
        out.append(y)
    return out, s


def _fold_i(f: Fun, acc: Any, xs: list, s: int) -> tuple:
    for x in xs:
        g, s = call_supplied(f, acc, s)
        acc, s = call_supplied(g, x, s)
    return acc, s


def _zip_with_i(f: Fun, xs: list, ys: list, s: int) -> tuple:
    out = []
    for x, y in zip(xs, ys):
        g, s = call_supplied(f, x, s)
        z, s = call_supplied(g, y, s)
        out.append(z)
    return out, s


def _negative(n: int, span) -> DlRuntimeError:
    return DlRuntimeError(f"build of a negative count ({n})", span)


def _build_i(n: int, f: Fun, s: int, span=None) -> tuple:
    if n < 0:
        raise _negative(n, span)
    out = []
    for i in range(n):
        y, s = call_supplied(f, i, s)
        out.append(y)
    return out, s


# the built-ins that thread the supply, called with a function value (a function written in place is a loop)
_THREADING = {"mapI": _map_i, "foldI": _fold_i, "zipWithI": _zip_with_i, "buildI": _build_i}


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
            case c.If(then=then, else_=else_):   # a partial zero on a branch: the parents of both
                stack += [else_, then]
            case c.Lam(body=b):
                stack.append(b)
    return out


def _write_call(name: str) -> Callable:
    """A target primitive written as a call of its implementation (the compiler's own, from its runtime)."""
    def write(gen: StageGen, e: c.Prim, ind: int) -> str:
        args = [gen.atom(a, ind) for a in e.args]
        v = gen.local()
        gen.line(ind, f"{v} = {gen.const(gen.compiler.impl[name])}({', '.join(args)})")
        return v
    return write


def _write_record(gen: StageGen, e: c.Prim, ind: int) -> str:
    """contrib1 j p w / contrib2 j p w k q u: the record of the parents that are not constants (None when
    none is), one branch per case, each weight computed only where its parent is in the record (as
    backprop's records are written: lang/back/linear.py)."""
    parents = [e.args[i:i + 3] for i in range(0, len(e.args), 3)]
    heads = [(gen.atom(j, ind), gen.atom(p, ind)) for j, p, _ in parents]
    v = gen.local()

    def cases(k: int, present: list, ind: int) -> None:
        if k == len(parents):
            fields = []
            for (j, p), (_, _, w), here in zip(heads, parents, present):
                if here:
                    fields += [j, p, gen.atom(w, ind)]
            if fields:
                gen.line(ind, f"{v} = ({', '.join(fields)})")
                gen.count(ind, "bp_created")
            else:
                gen.line(ind, f"{v} = None")
            return
        gen.line(ind, f"if {heads[k][1]} is None:")
        cases(k + 1, present + [False], ind + 1)
        gen.line(ind, "else:")
        cases(k + 1, present + [True], ind + 1)
    cases(0, [], ind)
    return v


def _write_apply(gen: StageGen, e: c.Prim, ind: int) -> str:
    """applyI (g, s) x: the next argument of a call (not an application of its own: `apps` counts the
    source's application once, where the call starts). An error inside a prelude function is reported
    at the program's call of it, as the compiler does for the call's start."""
    g, s = gen.components(e.args[0], 2, ind)
    x = gen.atom(e.args[1], ind)
    first = e.args[0]
    while isinstance(first, c.Prim) and first.op == "applyI":
        first = first.args[0]
    head = c.spine(first)[0] if isinstance(first, c.App) else None
    v = gen.local()
    gen.call_line(f"{v} = {g}.body({g}.captured, {x}, {s}) if {g}.arity == 2 else _apply({g}, ({x}, {s}))",
                  head, e.span, ind)
    return v


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
        if body is None or gen.loop_depth >= MAX_LOOP_NESTING:   # a function value: call the implementation
            args = [gen.atom(a, ind) for a in e.args]
            gen.count(ind, "prims")
            v = gen.local()
            span = f", {gen.const(e.span)}" if kind == "buildI" else ""
            gen.line(ind, f"{v} = {gen.const(_THREADING[kind])}({', '.join(args)}{span})")
            return v
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
        olds = [gen.env.bind((p, ()), v) for p, v in zip(params[:-1], values)]
        old_s = gen.env.bind((params[-1], ()), s)
        gen.count(ind + 1, "betas")
        gen.loop_depth += 1
        y, s2 = gen.components(inner, 2, ind + 1)
        gen.loop_depth -= 1
        if kind == "foldI":
            gen.line(ind + 1, f"{acc} = {y}")
        else:
            gen.line(ind + 1, f"{acc}.append({y})")
        gen.line(ind + 1, f"{s} = {s2}")
        gen.env.restore((params[-1], ()), old_s)
        for p, old in reversed(list(zip(params[:-1], olds))):
            gen.env.restore((p, ()), old)
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
    "contrib1": _write_record,
    "contrib2": _write_record,
}


def _fresh_tuple(gen: StageGen, e: c.Prim, ind: int) -> str:
    s = gen.atom(e.args[0], ind)
    v = gen.local()
    gen.line(ind, f"{v} = ({s}, {s} + 1 if {s} else 0)")
    return v


class StageCompiler(TransformCompiler):
    """The compiler of one stage's target language (no nesting: a derivative inside is refused)."""

    nests = False

    def __init__(self, machine, stage):
        super().__init__(machine, counting=machine.counting, name=stage.name)
        self.stage = stage
        self.backpropagator: str | None = None  # set while a backpropagator's closure is compiled
        self.impl = {"stage": _stage, "plusS": _plus((machine.counters, machine.counting)), "runConst": _run_const}

    def transform(self, e: c.Expr) -> c.Expr:
        t = self.stage.transform
        return t.simplify(t.term(e))

    def d_type(self, t: Type) -> Type:
        return self.stage.transform.type(t)

    def language(self) -> TargetLanguage:
        base = super().language()
        return TargetLanguage(base.name, base.d_type, base.global_type, self.stage.transform.checks,
                              self.stage.transform.ad_args)

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
        fn, s = call_supplied(fn, a, s)
    return call_supplied(fn, y, s)


_STATE_PARTIAL = Code(2, _partial_body, name="<partial>", mode="partial, state-passing")


__all__ = ["StageCompiler", "StageGen", "TARGET_CODE", "EMPTY", "call_supplied"]
