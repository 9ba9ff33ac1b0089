"""The ps mode: Pearlmutter and Siskind's backpropagator per closure, compiled and run.

The transform (lang/transforms/ps.py) makes every function return its value
and a backpropagator; this module is the runtime of its target language
(docs/transforms.md, ps):

- Sensitivities are plain data: floats, tuples, lists, and an `Env` — the
  tuple of a closure's captured variables' sensitivities. The zero at every
  type is the symbolic zero `ZERO` (lang/model/zeros.py): a float, so
  `∂ * ct` and `ct + ct'` on reals need no case for it, and it is the unit
  of `oplus` on tuples, lists and Envs, so no shaped zero is built until a
  rule needs one (rackpropagator's `gen-zero`). A one-hot list (the ρ of
  `get` and `head`) is built dense: n zeros and one sensitivity.
- `PSGen` writes the target-only rows as calls of the functions below,
  without counting them as primitives (they are the backward pass's
  accumulation), except the structural rows `mapP`, `foldP`, ..., which are
  map and fold themselves (one primitive per call, one application per
  element call, as the primal counts them).
- The kernel's vjp runs P(f) on the input — reals are unchanged — and keeps
  the backpropagator; the pullback applies it to the output's cotangent and
  drops the Env of the outermost function (its captured values are constants).
  A primal partial application met among the captured values becomes a
  function of the ps calling convention (`partial_value`).

Nested differentiation is refused: a derivative call inside a function ps
differentiates stops with a diagnostic naming it.

Counters (docs/transforms.md, Cost counters): `bp_created` counts the
backpropagators the forward pass creates (one per call of a transformed
function) and the primitives whose ρ is inlined (one per real primitive
application with a variable argument, as backprop records one); `bp_run`
the backpropagators applied to a non-zero sensitivity and the inlined ρs run
with one; `merges` the ⊕s of two non-zero reals; the extra `sens_leaves`
the positions ⊕ walks and the zeros a one-hot list materialises — the cost
of dense Envs and lists.
"""
from __future__ import annotations

from typing import Any

from ..back.compiler import Gen, PrimCode
from ..back.languages import TransformCompiler
from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES, Primitive
from ..model.types import REAL, TList, TTuple, Type, prune
from ..model.values import Code, Fun, call1
from ..model.zeros import ZERO, Zero
from ..transforms.common import refuse_array_types
from ..transforms.ps import BP, PS_TRANSFORM, p_type
from .runtimes import Runtime
from .table import refusal


class Algebra:
    """The sensitivity algebra and the structural rules, counting into one machine's counters."""

    def __init__(self, counters, counting: bool):
        self.counters = counters
        self.counting = counting

    def _leaves(self, k: int) -> None:
        extra = self.counters.extra
        extra["sens_leaves"] = extra.get("sens_leaves", 0) + k

    # ---- zero and ⊕
    def oplus(self, a: Any, b: Any) -> Any:
        """a ⊕ b: structural, the symbolic zero its unit at every type."""
        if type(a) is Zero:
            return b
        if type(b) is Zero:
            return a
        t = type(a)
        if t is tuple:
            if self.counting:
                self._leaves(len(a))
            return tuple(self.oplus(x, y) for x, y in zip(a, b))
        if t is list:
            if self.counting:
                self._leaves(len(a))
            return [self.oplus(x, y) for x, y in zip(a, b)]
        if self.counting:
            self.counters.merges += 1
            self._leaves(1)
        return a + b

    # ---- taking sensitivities apart (a zero gives zeros)
    def rho(self, ct: Any, partials: Any) -> Any:
        """An inlined primitive's ρ: each partial times ct."""
        if type(ct) is Zero:
            return ZERO if type(partials) is not tuple else (ZERO,) * len(partials)
        if self.counting:
            self.counters.bp_run += 1
        if type(partials) is tuple:
            return tuple(d * ct for d in partials)
        return partials * ct

    def back(self, k: int, bp: Any, ct: Any) -> Any:
        """A backpropagator applied to ct; k zeros (one for k = 1) when ct is zero, without running it."""
        if type(ct) is Zero:
            return ZERO if k == 1 else (ZERO,) * k
        if type(bp) is Fun:
            if self.counting:
                self.counters.bp_run += 1
            return bp.body(bp.captured, ct)
        return bp(ct)  # a structural row's backpropagator (a Python function)

    @staticmethod
    def backenv(bp: Fun, ct: Any) -> Any:
        """An `if`'s backpropagator applied to ct (part of the enclosing one's run: not counted)."""
        return ZERO if type(ct) is Zero else bp.body(bp.captured, ct)

    @staticmethod
    def split(n: int, ct: Any) -> tuple:
        return (ZERO,) * n if type(ct) is Zero else ct

    @staticmethod
    def sget(ct: Any, i: int) -> Any:
        return ZERO if type(ct) is Zero else ct[i]

    @staticmethod
    def env(k: int, slots: Any) -> Any:
        """env k (s1, ..., sk): the zero when every slot is."""
        if k == 0:
            return ZERO
        if k == 1:
            return ZERO if type(slots) is Zero else (slots,)
        return ZERO if all(type(s) is Zero for s in slots) else slots

    @staticmethod
    def unenv(k: int, e: Any) -> Any:
        if type(e) is Zero:
            return ZERO if k == 1 else (ZERO,) * k
        return e[0] if k == 1 else e

    def unenvrec(self, k: int, j: int, e: Any) -> Any:
        """The slots other than j of a recursive closure's Env, where slot j holds the Env of the calls it
        made: summed down that chain by a loop (a recursion would be as deep as the calls were)."""
        total: Any = ZERO
        while type(e) is not Zero:
            rest = e[:j] + e[j + 1:]
            total = self.oplus(total, rest)
            e = e[j]
        if type(total) is Zero:
            return ZERO if k == 2 else (ZERO,) * (k - 1)
        return total[0] if k == 2 else total

    # ---- the structural rows: value and backpropagator
    def _call(self, f: Fun, x: Any) -> Any:
        if self.counting:
            self.counters.betas += 1
        return f.body(f.captured, x) if f.arity == 1 else call1(f, x)

    def _created(self, n: int = 1) -> None:
        if self.counting:
            self.counters.bp_created += n

    def mapP(self, f: Fun, xs: list) -> tuple:
        pairs = [self._call(f, x) for x in xs]
        bps = [b for _, b in pairs]

        def bp(ct: list) -> tuple:
            env, out = ZERO, []
            for b, ct_i in zip(bps, ct):
                e, x_c = self.back(2, b, ct_i)
                env = self.oplus(env, e)
                out.append(x_c)
            return env, out
        return [y for y, _ in pairs], bp

    def zipWithP(self, f: Fun, xs: list, ys: list) -> tuple:
        steps, out = [], []
        for x, y in zip(xs, ys):
            g, b1 = self._call(f, x)
            z, b2 = self._call(g, y)
            steps.append((b1, b2))
            out.append(z)

        def bp(ct: list) -> tuple:
            env, xs_c, ys_c = ZERO, [], []
            for (b1, b2), ct_i in zip(steps, ct):
                g_c, y_c = self.back(2, b2, ct_i)
                f_c, x_c = self.back(2, b1, g_c)
                env = self.oplus(env, f_c)
                xs_c.append(x_c)
                ys_c.append(y_c)
            return env, xs_c, ys_c
        return out, bp

    def foldP(self, f: Fun, acc: Any, xs: list) -> tuple:
        steps = []
        for x in xs:
            g, b1 = self._call(f, acc)
            acc, b2 = self._call(g, x)
            steps.append((b1, b2))

        def bp(ct: Any) -> tuple:
            env, xs_c = ZERO, [ZERO] * len(steps)
            for i in range(len(steps) - 1, -1, -1):
                b1, b2 = steps[i]
                g_c, xs_c[i] = self.back(2, b2, ct)
                f_c, ct = self.back(2, b1, g_c)
                env = self.oplus(env, f_c)
            return env, ct, xs_c
        return acc, bp

    def buildP(self, n: int, f: Fun) -> tuple:
        if n < 0:
            raise DlRuntimeError(f"build of a negative count ({n})")
        pairs = [self._call(f, i) for i in range(n)]

        def bp(ct: list) -> tuple:
            env = ZERO
            for (_, b), ct_i in zip(pairs, ct):
                env = self.oplus(env, self.back(2, b, ct_i)[0])
            return ZERO, env
        return [y for y, _ in pairs], bp

    def onehot(self, n: int, i: int, ct: Any) -> list:
        if self.counting:
            self._leaves(n)
        out: list = [ZERO] * n
        out[i] = ct
        return out

    def getP(self, xs: list, i: int) -> tuple:
        y = PRIMITIVES["get"].impl(xs, i)
        n = len(xs)
        return y, lambda ct: (self.onehot(n, i, ct), ZERO)

    def headP(self, xs: list) -> tuple:
        y = PRIMITIVES["head"].impl(xs)
        n = len(xs)
        return y, lambda ct: self.onehot(n, 0, ct)

    def tailP(self, xs: list) -> tuple:
        ys = PRIMITIVES["tail"].impl(xs)
        return ys, lambda ct: [ZERO, *ct]

    @staticmethod
    def reverseP(xs: list) -> tuple:
        return xs[::-1], lambda ct: ct[::-1]

    @staticmethod
    def consP(x: Any, xs: list) -> tuple:
        return [x, *xs], lambda ct: (ct[0], ct[1:])

    @staticmethod
    def appendP(xs: list, ys: list) -> tuple:
        n = len(xs)
        return xs + ys, lambda ct: (ct[:n], ct[n:])


# ---- the compiler of the target language -----------------------------------------------------


class PSGen(Gen):
    """Writes the target-only rows as calls of the Algebra, and counts the backpropagators created:

        fun y_bar -> ...          (a backpropagator: origin BP)   k.bp_created += 1; v = _Fun(...)
        y = sin x                 (a primitive with an inlined ρ: src BP)   k.bp_created += 1; v = sin(x)
        oplus a b, back 2 bp ct   v = k3(a, b), not a primitive application
    """

    def closure(self, lam: c.Lam, ind: int, self_ref=None, target: str | None = None) -> str:
        if lam.origin == BP:
            self.count(ind, "bp_created")
        return super().closure(lam, ind, self_ref, target)

    def primitive(self, e: c.Prim, ind: int) -> str:
        prim = PRIMITIVES[e.op]
        if e.src == BP:
            self.count(ind, "bp_created")
        if prim.kind != "ps" or prim.cost == "structural":
            return super().primitive(e, ind)
        if e.op == "szero":
            return self.const(ZERO)
        fn = getattr(self.compiler.algebra, e.op)
        if not self.counting and e.op == "rho":  # uncounted runs (dl run, timings): the reals' case in place
            return self._rho(e, ind)
        args = [self.atom(a, ind) for a in e.args]
        v = self.local()
        if not self.counting and e.op == "oplus":
            a, b = args
            zero = self.const(Zero)
            self.line(ind, f"if {a}.__class__ is {zero}: {v} = {b}")
            self.line(ind, f"elif {b}.__class__ is {zero}: {v} = {a}")
            self.line(ind, f"elif {a}.__class__ is float: {v} = {a} + {b}")
            self.line(ind, f"else: {v} = {self.const(fn)}({a}, {b})")
            return v
        if e.op in ("back", "backenv"):  # written in place: a deep backward pass needs no extra Python frames
            k = e.args[0].value if e.op == "back" else 1
            bp, ct = args[-2:]
            zeros = ZERO if k == 1 else (ZERO,) * k
            self.line(ind, f"if {ct}.__class__ is {self.const(Zero)}: {v} = {self.const(zeros)}")
            self.line(ind, "else:")
            if e.op == "back":
                self.line(ind + 1, f"if {bp}.__class__ is _Fun:")
                self.count(ind + 2, "bp_run")
                self.line(ind + 2, f"{v} = {bp}.body({bp}.captured, {ct})")
                self.line(ind + 1, f"else: {v} = {bp}({ct})")
            else:
                self.line(ind + 1, f"{v} = {bp}.body({bp}.captured, {ct})")
            return v
        self.line(ind, f"{v} = {self.const(fn)}({', '.join(args)})")
        return v

    def _rho(self, e: c.Prim, ind: int) -> str:
        """rho ct ∂ / rho ct (∂1, ..., ∂k) in place: zeros when ct is zero, else each ∂ times ct."""
        ct_e, partials = e.args
        items = partials.items if isinstance(partials, c.Tuple) else (partials,)
        ct = self.atom(ct_e, ind)
        ds = [self.atom(d, ind) for d in items]
        v = self.local()
        zeros = ZERO if len(ds) == 1 and not isinstance(partials, c.Tuple) else (ZERO,) * len(ds)
        products = [f"{d} * {ct}" for d in ds]
        value = products[0] if not isinstance(partials, c.Tuple) else "(" + ", ".join(products) + ",)"
        self.line(ind, f"if {ct}.__class__ is {self.const(Zero)}: {v} = {self.const(zeros)}")
        self.line(ind, f"else: {v} = {value}")
        return v


class PSCompiler(TransformCompiler):
    """P t: the ps language (depth 0 only: a derivative inside it is refused)."""

    nests = False
    ad_args = True

    def __init__(self, machine, algebra: Algebra):
        super().__init__(machine, counting=machine.counting, name="ps")
        self.algebra = algebra

    def transform(self, e: c.Expr) -> c.Expr:
        return PS_TRANSFORM.term(e)

    def d_type(self, t: Type) -> Type:
        return p_type(t)

    def generator(self, params: list[str], self_ref, closed: bool = False) -> Gen:
        return PSGen(self, params, self_ref, closed=closed)

    def primitive_code(self, prim: Primitive, e: c.Prim) -> PrimCode:
        if prim.kind == "ps":  # the structural rows: their implementation is the Algebra's
            return PrimCode(fn=getattr(self.algebra, prim.name))
        return super().primitive_code(prim, e)

    def lift_real(self, r: float) -> Any:
        return r

    def refuse_nested(self, e: c.Prim):
        """A derivative call inside a function ps is differentiating: refused, by name."""
        return refusal("ps", e)


# ---- the runtime the mode table names -------------------------------------------------------


class PSRuntime(Runtime):
    """vjp by P: run P(f) on the input (reals unchanged), apply the backpropagator to the cotangent."""

    name = "ps"

    def compiler(self, kernel) -> PSCompiler:
        return kernel.language("ps", lambda m: PSCompiler(m, Algebra(m.counters, m.counting)))

    def vjp(self, kernel, f, x, in_t, out_t):
        refuse_array_types("ps", in_t, out_t)  # ps has no array rules yet
        compiler = self.compiler(kernel)
        ps_f = self.lift(kernel, f, compiler, {})
        y, bp = call1(ps_f, x)
        shapes = kernel.shapes
        algebra = compiler.algebra

        def pullback(u: Any) -> Any:
            _, x_c = algebra.back(2, bp, sensitivity(u, out_t))  # the outermost Env (f's captured constants):
            return shapes.rebuild(x, in_t, flatten_sensitivity(x_c, x, in_t))  # dropped
        return y, pullback

    def lift(self, kernel, f: Fun, compiler: PSCompiler, memo: dict) -> Any:
        """A primal value as a value of the ps language; partial applications get its calling convention."""
        return _lift(kernel, f, compiler, memo)


def _lift(kernel, v: Any, compiler: PSCompiler, memo: dict) -> Any:
    t = type(v)
    if t is tuple:
        return tuple(_lift(kernel, a, compiler, memo) for a in v)
    if t is list:
        return [_lift(kernel, a, compiler, memo) for a in v]
    if t is not Fun:
        return v  # reals, ints, bools: the same in P
    if id(v) in memo:
        return memo[id(v)]
    if v.code.mode == "partial":
        fn, args = v.captured
        out = partial_value(_lift(kernel, fn, compiler, memo), tuple(_lift(kernel, a, compiler, memo) for a in args),
                            v.arity)
        memo[id(v)] = out
        return out
    if v.code.info.get("global") is not None or v.code.lam is None:
        return kernel.lift_fun(v, compiler, memo)
    code, where = kernel.transformed_code(v.code, compiler)
    out = Fun(code, ())
    memo[id(v)] = out
    out.captured = tuple(_lift(kernel, v.captured[i], compiler, memo) for i in where)
    return out


def partial_value(fn: Fun, args: tuple, remaining: int) -> Fun:
    """`fn a1 .. ak` of the primal, awaiting `remaining` more arguments, in the ps convention: each
    application returns (value, backpropagator). It is a constant (a captured value of the function being
    differentiated, lifted), so the Env its backpropagator returns is the zero."""
    def body(captured, a):
        if remaining > 1:
            return partial_value(fn, args + (a,), remaining - 1), _CONSTANT_BP
        g = fn
        for arg in args:
            g, _ = g.body(g.captured, arg)
        y, b = g.body(g.captured, a)
        return y, Fun(Code(1, lambda _, ct: (ZERO, b.body(b.captured, ct)[1]), name="<partial backpropagator>",
                           mode="ps"), ())
    return Fun(Code(1, body, name="<partial>", mode="ps"), ())


_CONSTANT_BP = Fun(Code(1, lambda _, ct: (ZERO, ZERO), name="<constant backpropagator>", mode="ps"), ())


def sensitivity(u: Any, t: Type) -> Any:
    """A cotangent given to the pullback (plain data of the output's type) as a sensitivity: reals kept,
    Int, Bool and Unit positions zero."""
    t = prune(t)
    if t == REAL:
        return u
    if isinstance(t, TTuple):
        return tuple(sensitivity(a, ti) for a, ti in zip(u, t.items))
    if isinstance(t, TList):
        return [sensitivity(a, t.item) for a in u]
    return ZERO


def flatten_sensitivity(s: Any, x: Any, t: Type) -> list:
    """The reals of a sensitivity of x (of type t), in the order `shapes.flatten` lists x's; zero where it is
    the zero (a whole tuple or list that nothing reached)."""
    out: list = []
    stack = [(s, x, prune(t))]
    while stack:
        s, x, t = stack.pop()
        if t == REAL:
            out.append(s)
        elif isinstance(t, TTuple):
            parts = (ZERO,) * len(t.items) if type(s) is Zero else s
            stack.extend(reversed([(p, xi, prune(ti)) for p, xi, ti in zip(parts, x, t.items)]))
        elif isinstance(t, TList):
            parts = [ZERO] * len(x) if type(s) is Zero else s
            stack.extend(reversed([(p, xi, prune(t.item)) for p, xi in zip(parts, x)]))
    return out


PS = PSRuntime()

__all__ = ["PS", "PSRuntime", "PSCompiler", "Algebra", "sensitivity", "flatten_sensitivity"]
