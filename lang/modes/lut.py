"""The lut and lut-recompute modes: linearize, unzip, transpose (Radul et al., POPL 2023).

`vjp f x` (docs/transforms.md, lut):

1. *Linearize*: trace f at x into its JVP program (lang/modes/lut_trace.py): the
   program run once on duals, every primitive's forward-mode rule recorded.
2. *Unzip* (lang/transforms/lut.py): the primal program (what the trace
   computed, and the residuals) and the linear program. The primal program
   ran during the trace: its values are known, as in JAX's partial evaluation
   with known primals; what the forward pass keeps is the residuals' values
   (store), or the input alone (recompute).
3. *Transpose* the linear program into the cotangent program; the pullback
   evaluates it on the output's cotangent (`Runner`, below), after the
   recomputing prefix under recompute. `jvp` and `derivative` linearize and
   run the linear program on the tangent (`Linearized.pushforward`), without
   transposing it.

The programs take the input's and return the output's *components*: its
reals, and its lists of reals as lists (a list of tuples of reals as one list
per field), in a fixed order; Int, Bool and Unit leaves are fixed at the point,
as branches and loop counts are. Arrays are refused.

Counters (docs/transforms.md, Cost counters): prims, betas as the program ran
in the trace, plus (recompute) the primal equations run again; bp_created the
Groups recorded (one per primitive application with a non-zero tangent, per
iteration in a loop); bp_run the Groups of the cotangent program run; merges
its accumulations (an Acc, or one per element of an AddList); sink_updates
and peak_pending counted by the transposition. Extras: `equations` (tangent
equations recorded), `loops` (Loop equations written), `residuals` (reals
handed from the forward pass to the backward one), `recompute_prims`.
"""
from __future__ import annotations

from typing import Any, Callable

from ..back.compiler import Gen
from ..model import core as c
from ..model import zeros
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES
from ..model.types import ARRAY, REAL, TList, TTuple, Type, prune
from ..model.values import call1
from ..transforms.lut import RECOMPUTE, STORE, Trace, Transposed, transpose, unzip
from ..transforms.lut_ir import (ZERO, Acc, Add, AddList, Copy, Group, Loop, Neg, Pack, Prim, Program, Scale,
                                 Sub, Sum, Var, Zero, defined, elem)
from .lut_trace import Dual, Tracer, _column, _element, _rebuild, _shape, value_of
from .overloading import OverloadingCompiler
from .runtimes import Untransformed

NOT_ARRAYS = "does not differentiate arrays yet"


# ---- the language the trace runs in -----------------------------------------------------------------


class LutCompiler(OverloadingCompiler):
    """The untransformed program with its real primitives recording on the current tracer, and its
    map/fold/zipWith/build traced a body at a time (lang/modes/lut_trace.py)."""

    def __init__(self, machine, name: str):
        super().__init__(machine, name)
        self.tracer: Tracer | None = None   # the trace under way
        self.reports: list | None = None    # `dl transform` collects each linearization here

    def primal_of(self, v: Any) -> Any:
        return v.p.value if type(v) is Dual else v

    def overload(self, prim, impl: Callable) -> Callable:
        compiler = self

        def traced(*args):
            for a in args:
                if type(a) is Dual:
                    return compiler.tracer.apply(prim, impl, args)
            return impl(*args)
        return traced

    def primitive_code(self, prim, e: c.Prim):
        if prim.kind not in ("structural", "ad") and any(prune(t) == ARRAY for t in (e.ty, *(a.ty for a in e.args))):
            raise DlRuntimeError(f"`{e.op}` on an Array: {self.name} {NOT_ARRAYS}", e.span)
        return super().primitive_code(prim, e)

    def generator(self, params: list[str], self_ref, closed: bool = False) -> Gen:
        return _LoopGen(self, params, self_ref, closed=closed)

    def loop_function(self, op: str, literal: bool, span) -> Callable:
        """The function a map/zipWith/fold/build call compiles to: the tracer's loop."""
        compiler = self

        def tracer() -> Tracer:
            return compiler.tracer
        match op:
            case "map":
                return lambda f, xs: tracer().loop("map", f, [xs], None, len(xs), literal)
            case "zipWith":
                return lambda f, xs, ys: tracer().loop("map", f, [xs, ys], None, min(len(xs), len(ys)), literal)
            case "fold":
                return lambda f, z, xs: tracer().loop("fold", f, [xs], z, len(xs), literal)
            case "build":
                def build(n, f):
                    if n < 0:
                        raise DlRuntimeError(f"build of a negative count ({n})", span)
                    return tracer().loop("map", f, None, None, n, literal)
                return build
        raise AssertionError(op)


# the loops a trace keeps: (arity of the function argument, its position)
_LOOPS = {"map": (1, 0), "zipWith": (2, 0), "fold": (2, 0), "build": (1, 1)}


class _LoopGen(Gen):
    """Writes map/zipWith/fold/build as a call of the tracer's loop (never inlined: the tracer must see
    each iteration as a call)."""

    def primitive(self, e: c.Prim, ind: int) -> str:
        spec = _LOOPS.get(e.op)
        if spec is None:
            return super().primitive(e, ind)
        arity, pos = spec
        fn = e.args[pos]
        literal = isinstance(fn, c.Lam) and len(c.lambda_chain(fn)[0]) == arity
        args = [self.atom(a, ind) for a in e.args]
        self.count(ind, "prims")
        v = self.local()
        self.line(ind, f"{v} = {self.const(self.compiler.loop_function(e.op, literal, e.span))}({', '.join(args)})")
        return v


# ---- components: a value's reals and lists of reals -----------------------------------------------


def _flat(t: Type) -> bool:
    """Whether a list of t is taken as columns: t a Real, or a tuple of Reals, Ints, Bools and Units."""
    t = prune(t)
    if t == REAL:
        return True
    if isinstance(t, TTuple):
        return all(_flat(i) or _data(i) for i in t.items)
    return False


def _data(t: Type) -> bool:
    t = prune(t)
    return not isinstance(t, (TList, TTuple)) and t != REAL and t != ARRAY and not _has_function(t)


def _has_function(t: Type) -> bool:
    from ..model.types import TFun  # noqa: PLC0415 — only to refuse function types, never at start-up
    return isinstance(prune(t), TFun)


class Components:
    """The components of one value: variables (primal and tangent), and where each real of the value
    (in `Shapes.flatten` order) is among them: (component, element or -1)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # (for what it refuses)
        self.primal: list = []
        self.tangent: list = []
        self.slots: list[tuple[int, int]] = []

    def inputs(self, x: Any, t: Type) -> Any:
        """x as duals of fresh variables (each list of reals one list variable)."""
        t = prune(t)
        if t == REAL:
            k = self._add(Var("p", x), Var("t"))
            self.slots.append((k, -1))
            return Dual(self.primal[k], self.tangent[k])
        if t == ARRAY:
            raise DlRuntimeError(f"an Array input: {self.mode} {NOT_ARRAYS}")
        if isinstance(t, TList) and _flat(t.item):
            rows, width = _rows(x, t.item)
            ks = [self._add(Var("P", [r[j] for r in rows], length=len(x)), Var("T", length=len(x)))
                  for j in range(width)]
            out = []
            for i, v in enumerate(x):
                duals = [Dual(_element(self.primal[k], i), elem(self.tangent[k], i)) for k in ks]
                self.slots.extend((k, i) for k in ks)
                out.append(_rebuild(v, duals, [0]))
            return out
        if isinstance(t, TList):
            return [self.inputs(v, t.item) for v in x]
        if isinstance(t, TTuple):
            return tuple(self.inputs(v, ti) for v, ti in zip(x, t.items))
        return x

    def outputs(self, y: Any, t: Type, eqs: list) -> None:
        """The components of a traced result (lists not already a list variable are packed, in `eqs`)."""
        t = prune(t)
        if t == REAL:
            k = self._add(y.p if type(y) is Dual else y, y.t if type(y) is Dual else ZERO)
            self.slots.append((k, -1))
        elif t == ARRAY:
            raise DlRuntimeError(f"an Array result: {self.mode} {NOT_ARRAYS}")
        elif isinstance(t, TList) and _flat(t.item):
            rows, width = _rows(y, t.item)
            ks = []
            for j in range(width):
                leaves = [r[j] for r in rows]
                primal = [a.p if type(a) is Dual else a for a in leaves]
                tangent = [a.t if type(a) is Dual else ZERO for a in leaves]
                p = _column(primal, "p", eqs) if primal else _empty("P", eqs)
                if all(a is ZERO for a in tangent):
                    tv = Var("T", length=len(y))
                    eqs.append(Zero(tv))
                else:
                    tv = _column(tangent, "t", eqs)
                ks.append(self._add(p, tv))
            for i in range(len(y)):
                self.slots.extend((k, i) for k in ks)
        elif isinstance(t, TList):
            for v in y:
                self.outputs(v, t.item, eqs)
        elif isinstance(t, TTuple):
            for v, ti in zip(y, t.items):
                self.outputs(v, ti, eqs)

    def _add(self, p, t) -> int:
        self.primal.append(p)
        self.tangent.append(t)
        return len(self.primal) - 1

    def values(self, flat: list, lengths: list[int]) -> list:
        """Component values from the value's reals in flatten order."""
        out: list = [[zeros.ZERO] * n if n >= 0 else zeros.ZERO for n in lengths]
        for (k, i), r in zip(self.slots, flat):  # r kept as it is: a symbolic zero or a sum over paths too
            if i < 0:
                out[k] = r
            else:
                out[k][i] = r
        return out

    def flatten(self, values: list) -> list:
        """The value's reals in flatten order, from component values."""
        return [values[k] if i < 0 else values[k][i] for k, i in self.slots]


def _rows(xs: list, item: Type) -> tuple[list[list], int]:
    """A list of `item`s taken as columns: each element's leaves in flatten order (a row per element),
    and how many leaves a row has (from the type when the list is empty)."""
    rows = []
    for v in xs:
        leaves: list = []
        _shape(v, leaves)
        rows.append(leaves)
    return rows, (len(rows[0]) if rows else _reals_in(item))


def _reals_in(t: Type) -> int:
    t = prune(t)
    if t == REAL:
        return 1
    if isinstance(t, TTuple):
        return sum(_reals_in(i) for i in t.items)
    return 0


def _empty(kind: str, eqs: list) -> Var:
    out = Var(kind, [] if kind == "P" else None, length=0)
    eqs.append(Pack(out, ()))
    return out


def _lengths(components: list) -> list[int]:
    return [v.length if type(v) is Var and v.is_list else -1 for v in components]


# ---- running a program of the lut language ------------------------------------------------------


def read(env: dict, a: Any) -> Any:
    """The value of an atom."""
    if type(a) is Var:
        if a.list is not None:
            return env[a.list][a.index]
        return env[a]
    return zeros.ZERO if a is ZERO else a  # the zero tangent: the symbolic zero (lang/model/zeros.py)


class Runner:
    """Runs the equations of lut programs on values, counting what the backward pass does."""

    def __init__(self, counters, counting: bool, backward: bool = True):
        self.counters = counters
        self.counting = counting
        self.backward = backward  # a transposed program (its Groups are bp_run) or the linear one run forwards
        self.recomputed = 0

    def run(self, program: Program, res: list, args: list) -> list:
        env: dict = dict(zip(program.res, res))
        self.eqs(program.prefix, env)
        env.update(zip(program.params, args))
        self.eqs(program.eqs, env)
        return [read(env, o) for o in program.outs]

    def eqs(self, eqs, env: dict) -> None:
        counting, counters = self.counting, self.counters
        for e in eqs:
            t = type(e)
            if t is Prim:
                env[e.out] = PRIMITIVES[e.op].impl(*[read(env, a) for a in e.args])
                self.recomputed += 1
            elif t is Group:
                if counting and self.backward:
                    counters.bp_run += 1
                self.eqs(e.eqs, env)
            elif t is Scale:
                env[e.out] = read(env, e.w) * read(env, e.x)
            elif t is Add:
                env[e.out] = read(env, e.x) + read(env, e.y)
            elif t is Sub:
                env[e.out] = read(env, e.x) - read(env, e.y)
            elif t is Neg:
                env[e.out] = -read(env, e.x)
            elif t is Copy:
                env[e.out] = read(env, e.src)
            elif t is Acc:
                x = read(env, e.x)
                if e.w is not None:
                    x = read(env, e.w) * x
                env[e.out] = read(env, e.prev) - x if e.negate else read(env, e.prev) + x
                if counting:
                    counters.merges += 1
            elif t is Zero:
                env[e.out] = [zeros.ZERO] * e.out.length if e.out.is_list else zeros.ZERO
            elif t is Pack:
                env[e.out] = [read(env, a) for a in e.items]
            elif t is Sum:
                total = zeros.ZERO
                for x in env[e.xs]:
                    total += x
                env[e.out] = total
            elif t is AddList:
                env[e.out] = [a + b for a, b in zip(env[e.x], env[e.y])]
                if counting:
                    counters.merges += e.out.length
            elif t is Loop:
                self.loop(e, env)
            else:
                raise AssertionError(e)

    def loop(self, L: Loop, env: dict) -> None:
        state = [read(env, a) for a in L.carry_init]
        columns = [env[v] for v in L.columns]
        outs: list = [[] for _ in L.col_out]
        saved: list = [[] for _ in L.saved]
        for i in (range(L.n - 1, -1, -1) if L.reverse else range(L.n)):
            env.update(zip(L.carry_params, state))
            for p, column in zip(L.col_params, columns):
                env[p] = column[i]
            self.eqs(L.body, env)
            state = [read(env, a) for a in L.carry_out]
            for o, column in zip(L.col_out, outs):
                column.append(read(env, o))
            for (v, _), column in zip(L.saved, saved):
                column.append(env[v])
        if L.reverse:
            for column in (*outs, *saved):
                column.reverse()
        env.update(zip(L.carry_vars, state))
        env.update(zip(L.out_vars, outs))
        env.update(zip((col for _, col in L.saved), saved))


# ---- linearizing a function at a point --------------------------------------------------------------


class Linearized:
    """f at x: its value, the three programs, and the residuals the forward pass kept."""

    def __init__(self, kernel, runtime, x: Any, in_t: Type, out_t: Type, trace: Trace, y: Any,
                 ins: Components, outs: Components):
        self.kernel = kernel
        self.runtime = runtime
        self.x, self.in_t, self.out_t = x, in_t, out_t
        self.value = y
        self.ins, self.outs = ins, outs
        self.unzipped = unzip(trace, runtime.policy)
        self.trace = trace
        self.res_values = [v.value for v in self.unzipped.linear.res]
        self._transposed: Transposed | None = None

    @property
    def transposed(self) -> Transposed:
        if self._transposed is None:
            self._transposed = transpose(self.unzipped.linear)
        return self._transposed

    def pullback(self, u: Any) -> Any:
        """The cotangent program run on u (the output's cotangent): the input's cotangent."""
        machine = self.kernel.machine
        counters, counting = machine.counters, machine.counting
        shapes = self.kernel.shapes
        transposed = self.transposed
        seeds = self.outs.values(shapes.flatten(u, self.out_t), _lengths(self.outs.tangent))
        runner = Runner(counters, counting)
        cts = runner.run(transposed.program, self.res_values, seeds)
        if counting:
            counters.sink_updates += transposed.sink_updates
            counters.peak_pending = max(counters.peak_pending, transposed.peak_pending)
            _recomputed(counters, runner.recomputed)
        return shapes.rebuild(self.x, self.in_t, self.ins.flatten(cts))

    def pushforward(self, v: Any) -> Any:
        """The linear program run on v (the input's tangent): the output's tangent."""
        machine = self.kernel.machine
        shapes = self.kernel.shapes
        tangents = self.ins.values(shapes.flatten(v, self.in_t), _lengths(self.ins.tangent))
        runner = Runner(machine.counters, machine.counting, backward=False)
        out = runner.run(self.unzipped.linear, self.res_values, tangents)
        if machine.counting:
            _recomputed(machine.counters, runner.recomputed)
        return shapes.rebuild(self.value, self.out_t, self.outs.flatten(out))


def _recomputed(counters, k: int) -> None:
    if k:
        counters.prims += k
        counters.extra["recompute_prims"] = counters.extra.get("recompute_prims", 0) + k


def linearize(kernel, runtime, f, x: Any, in_t: Type, out_t: Type) -> Linearized:
    """Trace f at x, unzip, and keep what the policy keeps (module docstring)."""
    compiler: LutCompiler = kernel.language(runtime.name, lambda machine: LutCompiler(machine, runtime.name))
    machine = kernel.machine
    tracer = Tracer(machine.counters, machine.counting, runtime.policy)
    ins, outs = Components(runtime.name), Components(runtime.name)
    saved = compiler.tracer
    compiler.tracer = tracer
    try:
        x_dual = ins.inputs(x, in_t)
        y_dual = call1(kernel.lift_fun(f, compiler, {}), x_dual)
        outs.outputs(y_dual, out_t, tracer.eqs)
    finally:
        compiler.tracer = saved
    y = value_of(y_dual)
    trace = Trace(tuple(ins.primal), tuple(ins.tangent), tuple(tracer.eqs), tuple(outs.primal),
                  tuple(outs.tangent))
    lin = Linearized(kernel, runtime, x, in_t, out_t, trace, y, ins, outs)
    if machine.counting:
        extra = machine.counters.extra
        extra["residuals"] = extra.get("residuals", 0) + sum(_reals(v) for v in lin.res_values)
    if compiler.reports is not None:
        compiler.reports.append(lin)
    else:
        _forget(trace)
    return lin


def _reals(v: Any) -> int:
    if type(v) is list:
        return sum(_reals(x) for x in v)
    return 1


def _forget(trace: Trace) -> None:
    """Drop the values the trace computed: what the backward pass needs is in the residuals (kept apart),
    so memory holds only what the policy keeps."""
    for e in trace.eqs:
        for v in defined(e):
            v.value = None
            for x in (v.elems or {}).values():
                x.value = None
    for v in trace.inputs:
        v.value = None
        for x in (v.elems or {}).values():
            x.value = None


# ---- the runtimes the mode table names ------------------------------------------------------------


class LutRuntime(Untransformed):
    """vjp: linearize, unzip, transpose, and run the transposed program on the cotangent. jvp: linearize and
    unzip, and run the linear program itself on the tangent — no transposition (JAX's `linearize` followed
    by an application). A derivative call inside the function being traced is refused (the mode table's
    `nests`): a trace at the point has one level of tangents."""

    def __init__(self, name: str, policy: str):
        self.name = name
        self.policy = policy

    def vjp(self, kernel, f, x, in_t, out_t):
        lin = linearize(kernel, self, f, x, in_t, out_t)
        return lin.value, lin.pullback

    def jvp(self, kernel, f, x, v, in_t, out_t):
        lin = linearize(kernel, self, f, x, in_t, out_t)
        return lin.value, lin.pushforward(v)


LUT = LutRuntime("lut", STORE)
LUT_RECOMPUTE = LutRuntime("lut-recompute", RECOMPUTE)




# ---- what `dl transform` prints -------------------------------------------------------------------


def show_linearized(lin: Linearized, title: str = "the function", ascii_arrow: bool = False) -> str:
    """The three programs of one linearization, each with its type, checked (the linear ones by the
    linear type system, lang/transforms/linearity.py)."""
    from ..model.printer import show_term  # noqa: PLC0415 — printing only when asked (dl transform)
    from ..model.types import show
    from ..model.values import show_value
    from ..transforms.linearity import check_linear_function, infer_type, show_linear
    from ..front.infer import unify
    from ..transforms.lut_print import Names, program_terms, program_types
    unz, tr = lin.unzipped, lin.transposed
    names = Names()
    primal, linear, transposed = program_terms(unz.primal, unz.linear, tr.program, names)
    expected = program_types(unz.primal, unz.linear, tr.program, lin.res_values)
    primal_t, linear_t, transposed_t = infer_type(primal), check_linear_function(linear), \
        check_linear_function(transposed)
    for t, want in zip((primal_t, linear_t, transposed_t), expected):
        unify(t, want)  # a mismatch is a bug in the programs (Mismatch escapes: never a user's error)
    policy = {STORE: "residuals stored", RECOMPUTE: "residuals recomputed"}[unz.policy]
    stats = _statistics(lin)
    lines = [f"-- {lin.runtime.name} mode: {title} at {_clip(show_value(lin.x))}, linearized, unzipped "
             f"({policy}) and transposed",
             f"-- the trace: {stats}",
             "-- (1) primal program (value, residuals) : " + show(primal_t),
             show_term(primal)]
    shown = [f"{names(v)} = {_clip(show_value(x), 60)}" for v, x in zip(unz.linear.res, lin.res_values)]
    if unz.policy == STORE:
        lines.append("-- residuals at the point: " + (", ".join(shown) if shown else "none"))
    else:
        lines.append("-- kept for the backward pass: the input (" + ", ".join(shown) + ")")
    lines += ["-- (2) linear program : " + show_linear(linear_t, ascii_arrow),
              show_term(linear),
              "-- (3) transposed program : " + show_linear(transposed_t, ascii_arrow),
              show_term(transposed)]
    return "\n".join(lines)


def _statistics(lin: Linearized) -> str:
    counts = {"prim": 0, "group": 0, "tangent": 0, "loop": 0}

    def walk(eqs) -> None:
        for e in eqs:
            if isinstance(e, Prim):
                counts["prim"] += 1
            elif isinstance(e, Group):
                counts["group"] += 1
                counts["tangent"] += len(e.eqs)
            elif isinstance(e, Loop):
                counts["loop"] += 1
                walk(e.body)
    walk(lin.trace.eqs)
    def n(k: int, what: str) -> str:
        return f"{k} {what}{'' if k == 1 else 's'}"
    return (f"{n(counts['prim'], 'primal equation')}, {n(counts['tangent'], 'tangent equation')} in "
            f"{n(counts['group'], 'group')}, {n(counts['loop'], 'loop')} (a loop's body counted once)")


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def linearizations(machine, name: str, run: Callable[[], Any]) -> list:
    """What each derivative call made by `run()` on `machine` (of a lut mode) linearized."""
    compiler = machine.ad.language(name, lambda m: LutCompiler(m, name))
    compiler.reports = []
    try:
        run()
        return compiler.reports
    finally:
        compiler.reports = None

__all__ = ["LUT", "LUT_RECOMPUTE", "LutRuntime", "LutCompiler", "Linearized", "linearize", "Runner", "NOT_ARRAYS",
           "show_linearized", "linearizations"]
