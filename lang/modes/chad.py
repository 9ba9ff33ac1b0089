"""The chad and chad-efficient modes: CHAD's terms, compiled and run (docs/transforms.md, chad).

The transform (lang/transforms/chad.py) makes every function return its value
and a linear map from the value's cotangent to the argument's and the
function's own. This module runs those terms:

- `ChadGen` writes the linear fragment into the generated Python: a linear
  abstraction `fun ct -o t` is a closure (a backpropagator created), `lapp f x`
  a call of it (a body run), and the target-only rows call the mode's
  `Algebra` (lang/modes/chad_algebra.py): dense cotangents for chad, sparse and
  accumulated in place for chad-efficient.
- `lcurryk entry` makes the curried value of a λ of k parameters from its
  *entry*, the function that takes all k at once; `lcallk f a1 .. ak` runs the
  entry when f has one of k parameters (a saturated call), and otherwise applies
  f one argument at a time (`Calls`). A top-level definition of k parameters is
  compiled as its entry, and its calls from other definitions go straight to it.
- The kernel's vjp runs Dr1(f) on the input and keeps its linear map; the
  pullback applies it to the output's cotangent and writes the argument's part
  out as a dl value (zeros as 0.0, 0, false, ()).

Nested differentiation is refused: a derivative call inside a function the
chad modes differentiate stops with a diagnostic naming it (docs/transforms.md, chad).
"""
from __future__ import annotations

from typing import Any

from ..back.compiler import Cell, Compiler, Gen
from ..back.languages import TransformCompiler
from ..model import core as c
from ..model.primitives import PRIMITIVES
from ..model.types import INT, Type, instance_name
from ..model.values import Code, Fun, call1
from ..transforms.common import refuse_array_types
from ..transforms.chad import CHAD as CHAD_TRANSFORM, CHAD_EFFICIENT as EFFICIENT_TRANSFORM
from .chad_algebra import Algebra, Cat, DenseAlgebra, One, SparseAlgebra, entries, linear_map
from .runtimes import Runtime
from .table import refusal


# ---- calls: the curried protocol of a function made by lcurryk, and lcallk -------------------------------


class Calls:
    """lcurryk and lcallk for one mode.

    The curried value of an entry E of k parameters is a Fun of arity 1 that shares E's captured values (its
    code, made once per entry, knows E's). Applied to j < k arguments one at a time it gives *intermediates*
    holding E and the arguments so far; the k-th argument runs E. The linear map of each application returns
    (the argument's cotangent, the function's own):

        chad            the function's own cotangent is a copower: the application to a gives the entry
                        (a, the result's cotangent); the argument's cotangent of an application that did not
                        run E is found by running E again on each entry of the result's copower
                        (`recomputed`), as the reference does for a λ returning a λ
        chad-efficient  an intermediate's cotangent is the tuple (E's own, the cotangents of the arguments
                        it holds): no recomputation
    """

    def __init__(self, algebra: Algebra, counters, counting: bool):
        self.algebra = algebra
        self.counters = counters
        self.counting = counting
        self.inter_code = Code(1, self._intermediate_body, name="<partial>", mode="chad")

    def linear(self, fn) -> Fun:
        """A linear map the protocol makes (counted as created, like a compiled `fun ct -o ...`)."""
        if self.counting:
            self.counters.bp_created += 1
        return linear_map(fn)

    # ---- making values
    def curry(self, k: int, entry: Fun) -> Fun:
        """lcurryk entry."""
        return Fun(self.curried_code(entry.code, k), entry.captured)

    def curried_code(self, code: Code, k: int) -> Code:
        found = code.info.get("curried")
        if found is None:
            calls = self

            def body(captured, a):
                return calls.step(code, captured, k, (), a)
            found = Code(1, body, name=code.name, mode=code.mode)
            found.info["entry"] = code
            found.info["entry_arity"] = k
            found.free = code.free
            code.info["curried"] = found
        return found

    def _intermediate_body(self, captured, a):
        code, env, k, given = captured
        return self.step(code, env, k, given, a)

    # ---- applying them one argument at a time
    def step(self, code: Code, env: tuple, k: int, given: tuple, a: Any) -> Any:
        """The application of the function (entry `code` with captured `env`, arguments `given` so far) to a."""
        args = given + (a,)
        j = len(given)
        alg = self.algebra
        if len(args) == k:
            y, bp = code.body(env, *args)
            if alg.sparse:
                def back(ct):
                    r = alg.apply(bp, ct)
                    if r is None:
                        return None
                    return (r[j], _own(r[-1], r[:j]))  # (the argument's, the intermediate's)
            else:
                def back(ct):
                    r = alg.apply(bp, ct)
                    return (None if r is None else r[j], alg.singleton(a, ct))
            return (y, self.linear(back))
        rest = Fun(self.inter_code, (code, env, k, args))
        if alg.sparse:
            def back(cp):
                if cp is None:
                    return None
                return (cp[j + 1], _own(cp[0], cp[1:j + 1]))
        else:
            def back(cp):
                return (self.recompute(code, env, k, args, cp, j), alg.singleton(a, cp))
        return (rest, self.linear(back))

    def recompute(self, code: Code, env: tuple, k: int, args: tuple, cp: Any, j: int) -> Any:
        """chad: the cotangent of argument j, from the copower of what the application returned: E run again on
        the arguments of each of its entries (nested, one level per argument still to come)."""
        alg = self.algebra
        total = None
        stack = [(args, cp)]
        while stack:
            have, node = stack.pop()
            for a, ct in entries(node):
                now = have + (a,)
                if len(now) < k:
                    stack.append((now, ct))
                    continue
                if self.counting:
                    self.counters.betas += 1
                    alg._count("recomputed")
                _, bp = code.body(env, *now)
                r = alg.apply(bp, ct)
                if r is not None:
                    total = alg.plus(total, r[j])
        return total

    # ---- lcallk
    def call(self, f: Fun, *args: Any) -> Any:
        """lcallk f a1 .. ak: (the result, a linear map to (the arguments' cotangents, f's own))."""
        n = len(args)
        if self.counting:
            self.counters.betas += 1
        info = f.code.info
        if info.get("entry_arity") == n:  # a saturated call of a curried value: its entry
            return info["entry"].body(f.captured, *args)
        if f.code is self.inter_code:
            code, env, k, given = f.captured
            if len(given) + n == k:
                return self.call_intermediate(code, env, given, args)
        return self.one_at_a_time(f, args)

    def call_intermediate(self, code: Code, env: tuple, given: tuple, args: tuple) -> Any:
        """An intermediate given its remaining arguments: E runs; the intermediate's own cotangent is made as
        the curried applications would make it."""
        alg = self.algebra
        j = len(given)
        y, bp = code.body(env, *given, *args)
        if alg.sparse:
            def back(ct):
                r = alg.apply(bp, ct)
                if r is None:
                    return None
                return (*r[j:-1], _own(r[-1], r[:j]))
        else:
            def back(ct):
                r = alg.apply(bp, ct)
                own = ct
                for a in reversed(args):
                    own = alg.singleton(a, own)
                cts = (None,) * len(args) if r is None else r[j:-1]
                return (*cts, own)
        return (y, self.linear(back))

    def one_at_a_time(self, f: Fun, args: tuple) -> Any:
        """Any other function: applied to each argument in turn; the maps chained back."""
        alg = self.algebra
        maps = []
        g = f
        for a in args:
            g, bp = call1(g, a)
            maps.append(bp)

        def back(ct):
            cts = []
            for bp in reversed(maps):
                r = alg.apply(bp, ct)
                x, ct = (None, None) if r is None else r
                cts.append(x)
            return (*reversed(cts), ct)
        return (g, self.linear(back))

    # ---- fold's forward loop
    def fold_forward(self, f: Fun, z: Any, xs: list) -> Any:
        """lfoldfwd f z xs: the accumulator through the calls f acc x, each call's linear map kept."""
        steps = []
        acc = z
        call = self.call
        for x in xs:
            acc, bp = call(f, acc, x)
            steps.append(bp)
        return (acc, steps)


def _own(f: Any, xs: tuple) -> Any:
    """chad-efficient: the cotangent of a curried value holding arguments xs: the entry's own cotangent f
    and the arguments' (f alone when it holds none: the curried value itself)."""
    return (f, *xs) if xs else f


# ---- the compiler of the target language -------------------------------------------------------------------


class ChadGen(Gen):
    """Writes the linear fragment and the chad rows:

        fun ct -o t     a closure (counted: bp_created)       lapp f x     v = f.body(f.captured, x) (bp_run);
                                                                           chad-efficient: not run on a zero
        lzero           the zero of its type, a constant       lscale w x   v = None if x is None else w * x
        lcallk g a⃗      v = E.body((), a⃗) for a top-level g whose entry E takes k arguments
        any other row   a call of the mode's Algebra or Calls
    """

    def components(self, e: c.Expr, n: int, ind: int) -> list[str]:
        """A tuple taken apart; a cotangent that is the zero token gives n zeros."""
        if isinstance(e, (c.Tuple, c.Let, c.LetTuple, c.LetRec)):
            return super().components(e, n, ind)
        value = self.expr(e, ind)
        parts = [self.local() for _ in range(n)]
        self.line(ind, f"{', '.join(parts)} = {value} if {value} is not None else ({'None, ' * n})")
        return parts

    def expr(self, e: c.Expr, ind: int) -> str:
        if isinstance(e, c.LinLam):
            self.count(ind, "bp_created")
            return self.closure(c.Lam(e.param, e.body, span=e.span), ind)
        return super().expr(e, ind)

    def primitive(self, e: c.Prim, ind: int) -> str:
        row = PRIMITIVES[e.op]
        if row.kind not in ("linear", "chad"):
            return super().primitive(e, ind)
        compiler = self.compiler
        alg, calls = compiler.algebra, compiler.calls
        op = e.op
        if op == "lzero":
            z = alg.zero(e.ty)
            return "None" if z is None else self.literal(z)
        if op.startswith("lcall") and isinstance(e.args[0], c.Global):
            entry = compiler.entry_of(e.args[0])
            if entry is not None and entry.code.arity == len(e.args) - 1:
                args = [self.atom(a, ind) for a in e.args[1:]]
                self.count(ind, "betas")
                v = self.local()
                self.line(ind, f"{v} = {self.const(entry)}.body((), {', '.join(args)})")
                return v
        args = [self.atom(a, ind) for a in e.args]
        v = self.local()
        match op, args:
            case "lapp", [f, x]:
                if alg.sparse:
                    self.line(ind, f"if {x} is None:")
                    self.line(ind + 1, f"{v} = None")
                    self.line(ind, "else:")
                    ind += 1
                self.count(ind, "bp_run")
                self.line(ind, f"{v} = {f}.body({f}.captured, {x})")
                return v
            case "lscale", [w, x]:
                self.line(ind, f"{v} = None if {x} is None else {w} * {x}")
                if self.counting:
                    self.line(ind, f"if {x} is not None: {self.const(alg)}._count('ct_leaves')")
                return v
            case "lplus", [a, b]:
                fn = alg.plus
            case ("lcopowfold" | "lfix"), [f, cp]:
                fn = alg.copowfold if op == "lcopowfold" else alg.fix
                args = [f, cp, self.const(alg.zero(e.ty))]
            case _ if op.startswith("lcurry"):
                k = int(op[len("lcurry"):])
                self.line(ind, f"{v} = {self.const(calls.curry)}({k}, {args[0]})")
                return v
            case _ if op.startswith("lcall"):
                fn = calls.call
            case _:
                fn = {"lsingleton": alg.singleton, "lpack": alg.pack, "lunpack": alg.unpack, "lonehot": alg.onehot,
                      "lcons": alg.cons, "lhead": alg.head, "ltail": alg.tail, "ltake": alg.take, "ldrop": alg.drop,
                      "lreverse": alg.reverse, "lat": alg.at, "lunzip": alg.unzip, "lbackmap": alg.backmap,
                      "lbackmap2": alg.backmap, "lfoldfwd": calls.fold_forward, "lfoldback": alg.foldback,
                      "lnested": _nested}[op]
        self.line(ind, f"{v} = {self.const(fn)}({', '.join(args)})")
        return v


def _nested(ct: Any) -> Any:
    raise AssertionError("the derivative of a derivative call ran: the chad modes refuse nesting before this")


class ChadCompiler(TransformCompiler):
    """The chad (or chad-efficient) language: definitions transformed by Dr, compiled by ChadGen."""

    nests = False
    ad_args = True

    def __init__(self, machine, runtime: ChadRuntime):
        super().__init__(machine, counting=machine.counting, name=runtime.name)
        self.runtime = runtime
        self.algebra = runtime.algebra_class(machine.counters, machine.counting)
        self.calls = Calls(self.algebra, machine.counters, machine.counting)
        self.entries: dict[tuple, Fun] = {}   # the entries of the definitions of several parameters
        self.sources: dict[tuple, c.Expr] = {}  # the transformed definitions

    def transform(self, e: c.Expr) -> c.Expr:
        t = self.runtime.transform
        return t.simplify(t.term(e))

    def d_type(self, t: Type) -> Type:
        return self.runtime.transform.type(t)

    def generator(self, params: list[str], self_ref, closed: bool = False) -> Gen:
        return ChadGen(self, params, self_ref, closed=closed)

    def refuse_nested(self, e: c.Prim):
        """A derivative call inside a function this mode differentiates: refused, by name."""
        return refusal(self.name, e)

    def lift_real(self, r: float) -> float:
        return r  # Dr1(Real) = Real: a captured real is the number itself

    # ---- definitions: a λ of k > 1 parameters is its entry and the curried value made from it
    def source_of_global(self, key: tuple) -> c.Expr:
        if key not in self.sources:  # transformed and checked once (define_global looks before it defines)
            self.sources[key] = super().source_of_global(key)
        return self.sources[key]

    def define_global(self, key: tuple) -> Fun | Cell:
        module, name, inst = key
        expr = self.source_of_global(key)
        curried = _curried_entry(expr)
        if curried is None:
            return super().define_global(key)
        k, lam = curried
        self.term_size += c.size(expr)
        params, body = c.lambda_chain(lam)
        code = Code(k, name=instance_name(name, inst), lam=lam, mode=self.name)
        entry = Fun(code, ())
        self.entries[key] = entry
        value = self.calls.curry(k, entry)
        self.globals[key] = value
        self.fill(code, params, body, None)
        entry.body = code.body
        return value

    def entry_of(self, g: c.Global) -> Fun | None:
        """The entry of a top-level definition of several parameters (None for any other)."""
        key = (g.module, g.name, g.inst)
        self.global_ref(key)
        return self.entries.get(key)

    def open_lambda(self, code) -> Any:
        """A function value's lambda, transformed: its curried value's code (sharing the entry's captured)."""
        term = self.checked(code.info.get("origin") or code.lam)
        curried = _curried_entry(term)
        if curried is None:
            return self.compile_open(term, code.name)
        k, lam = curried
        entry = self.compile_open(lam, code.name)
        return self.calls.curried_code(entry, k)

    def lift_partial(self, kernel, fn: Fun, memo: dict) -> Any:
        """A primal partial application f a1 .. aj: the lifted f applied to the lifted arguments, keeping the
        values (their cotangents are not asked for: they are constants of the function differentiated)."""
        f, given = fn.captured
        out = kernel.lift(f, self, memo)
        for a in given:
            out = call1(out, kernel.lift(a, self, memo))[0]
        memo[id(fn)] = out
        return out


def _curried_entry(e: c.Expr) -> tuple[int, c.Lam] | None:
    """`lcurryk (fun x1 .. xk -> t)` as (k, the lambda)."""
    if isinstance(e, c.Prim) and e.op.startswith("lcurry") and isinstance(e.args[0], c.Lam):
        return int(e.op[len("lcurry"):]), e.args[0]
    return None


# ---- the runtime the mode table names -----------------------------------------------------------------------


class ChadRuntime(Runtime):
    """vjp by CHAD: run Dr1(f) on the input, keep the linear map, apply it to the output's cotangent."""

    def __init__(self, name: str, transform, algebra_class: type):
        self.name = name
        self.transform = transform
        self.algebra_class = algebra_class

    def compiler(self, kernel) -> ChadCompiler:
        return kernel.language((self.name, 0), lambda machine: ChadCompiler(machine, self))

    def vjp(self, kernel, f, x, in_t, out_t):
        refuse_array_types(self.name, in_t, out_t)  # chad has no array rules yet
        compiler = self.compiler(kernel)
        alg = compiler.algebra
        dr_f = kernel.lift_fun(f, compiler, {})
        y, bp = call1(dr_f, x)  # Dr1 of differentiable data is the data itself

        def pullback(u: Any) -> Any:
            r = alg.apply(bp, alg.from_value(u, out_t))
            return alg.to_value(None if r is None else r[0], x, in_t)
        return y, pullback

    def metrics(self, machine) -> dict:
        """The shared metrics and `ct_leaves`: the cotangent data the backward pass writes (the cost of dense
        cotangents, which no other column shows)."""
        return {**super().metrics(machine), "ct_leaves": machine.counters.extra.get("ct_leaves", 0)}


CHAD = ChadRuntime("chad", CHAD_TRANSFORM, DenseAlgebra)
CHAD_EFFICIENT = ChadRuntime("chad-efficient", EFFICIENT_TRANSFORM, SparseAlgebra)

__all__ = ["CHAD", "CHAD_EFFICIENT", "ChadCompiler", "ChadGen", "Calls", "One", "Cat", "INT"]
