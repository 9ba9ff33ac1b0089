"""The lut modes' three programs as dl terms: printed by `dl transform`, checked, read back.

Each program of lang/transforms/lut_ir.py becomes a core term of dl's target
language, which the printer (lang/model/printer.py) writes and the parser
reads back to the same term:

    primal      fun x -> let p1 = sin x in ... in (value, (residual, ...))
    linear      fun res -> let (p2, p1, x) = res in <recomputed lets> fun dx -o let t1 = p2 * dx in ... in t4
    transposed  fun res -> let (p2, p1, x) = res in <recomputed lets> fun c4 -o let c2 = c4 in ... in cx'

An equation is a `let`; an element X[i] is `get xs i`; a Loop (a scan) is a
`map` when it carries nothing, else a `fold` whose state also collects the
per-iteration outputs in a list (consed, then reversed when the loop ran
forwards):

    map over one column        map (fun x -> body) xs
    map over several           map (fun i -> let x = get xs i in let y = get ys i in body) (range n)
    fold, forwards             fold (fun s x -> let (a, acc) = s in ... (a', out :: acc)) (a0, []) xs
    fold, backwards            fold (fun s i -> ...) (a0, []) (reverse (range n))

so a left fold transposes to a fold over the reversed range, and a map to a
map. Names: the input's components x, x1, xs, ...; primal variables p1, p2,
...; tangents dx (the input's), t1, t2, ...; the cotangent of a tangent tK is
cK (of dx, cx), each further accumulation into it cK', cK'', ...; lists have
an `s` (ps3, ts4, cs4).
"""
from __future__ import annotations

from typing import Any

from ..model import core as c
from ..model.types import REAL, UNIT, TFun, TList, TTuple, Type
from .lut_ir import (ZERO, Acc, Add, AddList, Copy, Group, Loop, Neg, Pack, Prim, Program, Scale, Sub, Sum, Var,
                     Zero)


class Names:
    """Readable, distinct names for the variables of one set of programs (module docstring)."""

    def __init__(self) -> None:
        self.names: dict[Var, str] = {}
        self.taken: set[str] = set()
        self.counts: dict[str, int] = {}
        self.versions: dict[Any, int] = {}

    def inputs(self, components: tuple, tangents: tuple) -> None:
        """Names for the input's components and their tangents: x (x1, x2, ... when several), xs for a list."""
        scalars = [v for v in components if not v.is_list]
        lists = [v for v in components if v.is_list]
        for group, stem in ((scalars, "x"), (lists, "xs")):
            for k, v in enumerate(group, 1):
                self.assign(v, stem if len(group) == 1 else f"{stem}{k}")
        for v, t in zip(components, tangents):
            if type(t) is Var:
                self.assign(t, "d" + self.names[v])

    def assign(self, v: Var, name: str) -> str:
        self.names[v] = name
        self.taken.add(name)
        return name

    def fresh(self, stem: str) -> str:
        k = self.counts.get(stem, 0) + 1
        while f"{stem}{k}" in self.taken:
            k += 1
        self.counts[stem] = k
        name = f"{stem}{k}"
        self.taken.add(name)
        return name

    def __call__(self, v: Var) -> str:
        found = self.names.get(v)
        if found is not None:
            return found
        if v.of is not None:
            return self.assign(v, self.cotangent(v))
        stem = {"p": "p", "P": "ps", "t": "t", "T": "ts"}[v.kind]
        return self.assign(v, self.fresh(stem))

    def cotangent(self, v: Var) -> str:
        """c + the tangent's name without its t (or d), one more prime per later version."""
        of = v.of
        if of is ZERO:  # the cotangent of an output that is a constant
            return self.fresh("cz")
        if of.list is not None:
            base = f"{self.cotangent_stem(self(of.list))}_{of.index}"
        else:
            base = self.cotangent_stem(self(of))
        k = self.versions.get(base, 0) + 1
        self.versions[base] = k
        name = base if k == 1 else base + "'" * (k - 1) if k <= 3 else f"{base}_v{k}"
        while name in self.taken:
            k += 1
            self.versions[base] = k
            name = f"{base}_v{k}"
        return name

    @staticmethod
    def cotangent_stem(name: str) -> str:
        for prefix in ("d", "t"):
            if name.startswith(prefix):
                return "c" + name[len(prefix):]
        return "c" + name


class _Terms:
    """Builds the core terms of equations and programs with one set of names."""

    def __init__(self, names: Names):
        self.names = names
        self.depth = 0

    def var(self, v: Var) -> c.Expr:
        return c.Var(self.names(v))

    def atom(self, a: Any) -> c.Expr:
        if type(a) is Var:
            if a.list is not None:
                return c.Prim("get", (self.var(a.list), c.Lit(a.index)))
            return self.var(a)
        if a is ZERO:
            return c.Lit(0.0)
        return c.Lit(float(a))

    def tuple_of(self, atoms) -> c.Expr:
        items = [self.atom(a) for a in atoms]
        if len(items) == 1:
            return items[0]
        return c.Tuple(tuple(items)) if items else c.Lit(())

    def block(self, eqs, result) -> c.Expr:
        """let-bindings of the equations, then `result()` (called after, so its names exist)."""
        bindings: list = []
        for e in eqs:
            bindings.extend(self.eq(e))
        out = result()
        for names, bound in reversed(bindings):
            out = c.LetTuple(names, bound, out) if isinstance(names, tuple) else c.Let(names, bound, out)
        return out

    def bind_params(self, params: tuple, inner, linear: bool = False, whole: str = "res") -> c.Expr:
        """fun p -> ... (or fun p -o ...) taking a tuple of the params (one param: itself)."""
        make = c.LinLam if linear else c.Lam
        names = [self.names(p) for p in params]
        if len(names) == 1:
            return make(names[0], inner())
        return make(whole, c.LetTuple(tuple(names), c.Var(whole), inner()) if names else inner())

    # ---- equations
    def eq(self, e) -> list:
        name = self.names
        match e:
            case Prim(out, op, args):
                return [(name(out), c.Prim(op, tuple(self.atom(a) for a in args)))]
            case Copy(out, src):
                return [(name(out), self.atom(src))]
            case Zero(out) if out.is_list:
                return [(name(out), c.Prim("map", (c.Lam(self.index(), c.Lit(0.0)),
                                                   c.Prim("range", (c.Lit(out.length),)))))]
            case Zero(out):
                return [(name(out), c.Lit(0.0))]
            case Scale(out, w, x):
                return [(name(out), c.Prim("*", (self.atom(w), self.atom(x))))]
            case Add(out, x, y):
                return [(name(out), c.Prim("+", (self.atom(x), self.atom(y))))]
            case Sub(out, x, y):
                return [(name(out), c.Prim("-", (self.atom(x), self.atom(y))))]
            case Neg(out, x):
                return [(name(out), c.Prim("neg", (self.atom(x),)))]
            case Acc(out, prev, w, x, negate):
                term = self.atom(x) if w is None else c.Prim("*", (self.atom(w), self.atom(x)))
                return [(name(out), c.Prim("-" if negate else "+", (self.atom(prev), term)))]
            case Group(_, eqs):
                return [b for q in eqs for b in self.eq(q)]
            case Pack(out, items):
                return [(name(out), c.List(tuple(self.atom(a) for a in items)))]
            case Sum(out, xs):
                add = c.Lam("a", c.Lam("b", c.Prim("+", (c.Var("a"), c.Var("b")))))
                return [(name(out), c.Prim("fold", (add, c.Lit(0.0), self.var(xs))))]
            case AddList(out, x, y):
                add = c.Lam("a", c.Lam("b", c.Prim("+", (c.Var("a"), c.Var("b")))))
                return [(name(out), c.Prim("zipWith", (add, self.var(x), self.var(y))))]
            case Loop():
                return self.loop(e)
        raise AssertionError(e)

    def index(self) -> str:
        return {1: "i", 2: "j"}.get(self.depth, f"i{self.depth}")

    def loop(self, L: Loop) -> list:
        """A scan as a map or a fold (module docstring)."""
        self.depth += 1
        try:
            return self._loop(L)
        finally:
            self.depth -= 1

    def _loop(self, L: Loop) -> list:
        names = self.names
        per_iteration = [*L.col_out, *(v for v, _ in L.saved)]
        columns_out = [*L.out_vars, *(col for _, col in L.saved)]
        direct = len(L.col_params) == 1
        if direct:
            param = names(L.col_params[0])
            iterable: c.Expr = self.var(L.columns[0])
            if L.carry_params and L.reverse:
                iterable = c.Prim("reverse", (iterable,))
        else:
            param = self.index()
            iterable = c.Prim("range", (c.Lit(L.n),))
            if L.carry_params and L.reverse:
                iterable = c.Prim("reverse", (iterable,))

        def elements(inner):
            if direct:
                return inner()
            out = inner()
            for p, column in reversed(list(zip(L.col_params, L.columns))):
                out = c.Let(names(p), c.Prim("get", (self.var(column), c.Var(param))), out)
            return out

        bindings: list = []
        if not L.carry_params:
            body = c.Lam(param, elements(lambda: self.block(L.body, lambda: self.tuple_of(per_iteration))))
            made = c.Prim("map", (body, iterable))
            bindings.extend(self.columns(made, columns_out))
            return bindings
        state_names = [names(p) for p in L.carry_params]
        acc = names.fresh("acc") if per_iteration else None
        whole = [*state_names, *([acc] if acc else [])]

        def next_state() -> c.Expr:
            items = [self.atom(a) for a in L.carry_out]
            if acc:
                items.append(c.Prim("::", (self.tuple_of(per_iteration), c.Var(acc))))
            return items[0] if len(items) == 1 else c.Tuple(tuple(items))

        inner = elements(lambda: self.block(L.body, next_state))
        if len(whole) == 1:
            fn = c.Lam(whole[0], c.Lam(param, inner))
        else:
            s = names.fresh("s")
            fn = c.Lam(s, c.Lam(param, c.LetTuple(tuple(whole), c.Var(s), inner)))
        init = [self.atom(a) for a in L.carry_init] + ([c.List(())] if acc else [])
        made = c.Prim("fold", (fn, init[0] if len(init) == 1 else c.Tuple(tuple(init)), iterable))
        finals = [names(v) for v in L.carry_vars]
        if acc:
            collected = names.fresh("acc")
            finals.append(collected)
        bindings.append((finals[0] if len(finals) == 1 else tuple(finals), made))
        if acc:
            listed: c.Expr = c.Var(collected)
            if not L.reverse:
                listed = c.Prim("reverse", (listed,))
            bindings.extend(self.columns(listed, columns_out))
        return bindings

    def columns(self, made: c.Expr, columns_out: list) -> list:
        """Bindings of the output columns of a loop whose per-iteration results (tuples when several)
        are the list `made`."""
        names = self.names
        if len(columns_out) == 1:
            return [(names(columns_out[0]), made)]
        whole = names.fresh("l")
        out = [(whole, made)]
        parts = tuple(names.fresh("v") for _ in columns_out)
        for k, column in enumerate(columns_out):
            v = names.fresh("v")
            pick = c.Lam(v, c.LetTuple(parts, c.Var(v), c.Var(parts[k])))
            out.append((names(column), c.Prim("map", (pick, c.Var(whole)))))
        return out


def program_terms(primal: Program, linear: Program, transposed: Program | None,
                  names: Names | None = None) -> tuple[c.Expr, c.Expr, c.Expr | None]:
    """The three programs as core terms, with one set of names."""
    names = names or Names()
    names.inputs(primal.params, linear.params)
    terms = _Terms(names)
    n_value = len(primal.outs) - len(linear.res)

    def primal_result() -> c.Expr:
        value, res = primal.outs[:n_value], primal.outs[n_value:]
        return c.Tuple((terms.tuple_of(value), terms.tuple_of(res)))

    primal_term = terms.bind_params(primal.params, lambda: terms.block(primal.eqs, primal_result), whole="x")

    def linear_like(program: Program, whole: str) -> c.Expr:
        def after_res():
            def body():
                return terms.block(program.eqs, lambda: terms.tuple_of(program.outs))
            return terms.block(program.prefix, lambda: terms.bind_params(program.params, body, linear=True,
                                                                           whole=whole))
        return terms.bind_params(program.res, after_res)

    linear_term = linear_like(linear, "t")
    transposed_term = None
    if transposed is not None:
        transposed_term = linear_like(transposed, "c")
    return primal_term, linear_term, transposed_term





def program_types(primal: Program, linear: Program, transposed: Program | None, res_values: list) -> tuple:
    """The types the three terms of `program_terms` must have, from the kinds of their variables: a real
    for a real, [Real] for a list, () for no component. Unified with the inferred types (`dl transform`,
    the tests), they check the terms against what the programs are, and give a parameter that a program
    does not read (a zero cotangent, no residuals) its type. A residual's type is read off its value
    (`res_values`): a loop inside a loop keeps a list per iteration, [[Real]]."""
    n_value = len(primal.outs) - len(linear.res)
    res_t = _tuple_of([_value_type(v) for v in res_values])
    primal_t = TFun(_tuple_type(primal.params), TTuple((_tuple_type(primal.outs[:n_value]), res_t)))

    def linear_like(program: Program) -> Type:
        return TFun(res_t, TFun(_tuple_type(program.params), _tuple_type(program.outs)))
    return primal_t, linear_like(linear), None if transposed is None else linear_like(transposed)


def _tuple_type(atoms) -> Type:
    """The type of `_Terms.tuple_of(atoms)` (and of what `bind_params` binds)."""
    return _tuple_of([TList(REAL) if type(a) is Var and a.is_list else REAL for a in atoms])


def _tuple_of(items: list) -> Type:
    if not items:
        return UNIT
    return items[0] if len(items) == 1 else TTuple(tuple(items))


def _value_type(v: Any) -> Type:
    """Real, or a list of (a list of ...) reals."""
    if type(v) is list:
        return TList(_value_type(v[0]) if v else REAL)
    return REAL


def read_term(text: str) -> c.Expr:
    """A printed program read back (the printer's round trip): the core term it prints."""
    from ..front.desugar import Desugarer, Fresh, names_in  # noqa: PLC0415 — reading back is for tests and tools
    from ..front.parser import parse_expr
    from ..model.primitives import PRIMITIVES
    from ..model.spans import Source
    syntax = parse_expr(Source("<lut program>", text))
    return Desugarer(PRIMITIVES.get, Fresh(names_in(text)), lambda: [], target=True).expr(syntax, frozenset())

__all__ = ["Names", "program_terms", "program_types", "read_term"]
