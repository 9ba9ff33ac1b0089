"""←D and →D on Arrays: one backpropagator, or one tangent, per array (docs/transforms.md, Arrays).

    ←D(Array) = Array * ¬Array        →D(Array) = Array * Array

An array operation is a primitive whose partial derivatives are linear maps
instead of numbers, so its backpropagator is BMP's, with a vector–Jacobian
product (the row's `vjp`, lang/model/array_rows.py) in place of `∂i * a`:

    p(t1, ..., tk)  ->  let (x1, x1') = ←D(t1) in ... let r = p(x1, ..., xk) in
                        (r, fun c -o x1' (vjp1 c) + ... + xk' (vjpk c))

    amatmul w x     ->  ... (r, fun c -o w' (matmulCtA w x c) + x' (matmulCtB w x c))

and its forward rule is the row's `jvp` (for an operation linear in some
arguments, the operation applied to their tangents). Arguments that carry no
derivative (an axis, a shape, indices) are the same in every language. A list
of arrays or reals ([Array], [[Real]]) is a list of pairs: its primal is
`map fst`, its backpropagators `map snd`, applied each to its piece of the
cotangent by one effect (`dApplyList`, `dScatter`). A list-valued result
(`toList`, `unstack`) gets one backpropagator per element, each adding its
cotangent into the array's accumulator at its position (a sparse cotangent,
never a one-hot array).

The real rows (+, *, sin, ...) are elementwise at Array; their rules are their
partial derivatives re-typed at Array (`if x > 0 then 1 else 0` becomes
`where (greater x 0.0) 1.0 0.0`), the cotangent summed back over broadcast
axes for a binary operation: `x + y` with x : (3) and y : (2, 3) gives

    fun c -o x' (unbroadcastLike x c) + y' (unbroadcastLike y c)

`amap f a` runs f per element: forward mode by →D(f) (`amapForward`), and in
reverse mode f's value and derivative together by ←D(→D(f)) per element
(`amapReverse`, lang/back/array_runtime.py), so the array gets one
backpropagator, `a' (c * f'(a))`, plus whatever f captured.

Linear factoring is unchanged: a pending argument of an array backpropagator
is an ndarray accumulator (lang/back/linear.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model import core as c
from ..model.array_rows import REAL_TO_ARRAY, A
from ..model.errors import DlRuntimeError
from ..model.primitives import Primitive, is_zero
from ..model.types import ARRAY, D, INT, REAL, TFun, TList, TNeg, Type, prune
from . import common


def arg_kind(t: Type) -> tuple[str, int]:
    """What an argument is to the rules: ("dual", 0) a Real or an Array; ("duals", k) a list of them,
    k deep; ("fun", 0) a function (amap); ("plain", 0) data without reals (an axis, a shape)."""
    t = prune(t)
    if t == REAL or t == ARRAY:
        return ("dual", 0)
    depth = 0
    while isinstance(t, TList):
        t, depth = prune(t.item), depth + 1
    if depth and (t == REAL or t == ARRAY):
        return ("duals", depth)
    if isinstance(t, TFun):
        return ("fun", 0)
    return ("plain", 0)


def innermost(t: Type) -> Type:
    t = prune(t)
    while isinstance(t, TList):
        t = prune(t.item)
    return t


@dataclass
class Bound:
    """The arguments of one application, each transformed once and bound to names."""

    binds: list = field(default_factory=list)    # (names, term): a let or a tuple let, in order
    primals: list = field(default_factory=list)  # each argument's primal term
    seconds: list = field(default_factory=list)  # its backpropagator(s) or tangent(s); None: none
    kinds: list = field(default_factory=list)    # arg_kind of each

    def wrap(self, body: c.Expr, ty: Type, span) -> c.Expr:
        """`body` under the bindings."""
        for names, term in reversed(self.binds):
            if isinstance(names, tuple):
                body = c.LetTuple(names, term, body, ty=ty, span=span)
            else:
                body = c.Let(names, term, body, ty=ty, span=span)
        return body


def bind_arguments(tr, e: c.Prim) -> Bound:
    """Transform and bind each argument: (x, x') for a Real or an Array, xs for a list of them (with
    `map fst xs` and `map snd xs`), the term itself (bound when not atomic) for the others."""
    out = Bound()
    seen: dict = {}  # a variable given twice (x * x) is bound once, so its backpropagator is applied once
    for arg in e.args:
        kind = arg_kind(arg.ty)
        if isinstance(arg, c.Var) and (arg.name, arg.inst) in seen:
            k = seen[(arg.name, arg.inst)]
            out.primals.append(out.primals[k])
            out.seconds.append(out.seconds[k])
            out.kinds.append(kind)
            continue
        if isinstance(arg, c.Var):
            seen[(arg.name, arg.inst)] = len(out.primals)
        d = tr.term(arg)
        source_t = prune(arg.ty)
        if kind[0] == "dual":
            constant = _constant_pair(d)
            if constant is not None:
                out.primals.append(_atomic(out, tr, constant, source_t))
                out.seconds.append(None)
            else:
                x = tr.fresh("x")
                out.binds.append(((x, x + tr.suffix), d))
                out.primals.append(c.Var(x, ty=source_t))
                out.seconds.append(c.Var(x + tr.suffix, ty=tr.second_of(source_t)))
        elif kind[0] == "duals":
            xs = tr.fresh("xs")
            pairs_t = tr.type(source_t)
            out.binds.append((xs, d))
            var = c.Var(xs, ty=pairs_t)
            out.primals.append(_map_component(var, kind[1], 0, source_t, pairs_t))
            out.seconds.append(_map_component(var, kind[1], 1, _seconds_type(tr, source_t), pairs_t))
        else:
            out.primals.append(_atomic(out, tr, d, tr.type(source_t)))
            out.seconds.append(None)
        out.kinds.append(kind)
    return out


def _atomic(out: Bound, tr, term: c.Expr, ty: Type) -> c.Expr:
    if isinstance(term, (c.Var, c.Lit, c.Global)):
        return term
    x = tr.fresh("x")
    out.binds.append((x, term))
    return c.Var(x, ty=ty)


def _constant_pair(d: c.Expr) -> c.Expr | None:
    """The primal of a transformed constant, `(r, fun a -o 0)` or `(r, 0.0)`; None for anything else."""
    if isinstance(d, c.Tuple) and len(d.items) == 2:
        second = d.items[1]
        if isinstance(second, c.LinLam) and isinstance(second.body, c.DZero):
            return d.items[0]
        if (is_zero(second) or isinstance(second, c.Lit) and second.value == 0.0) and isinstance(d.items[0], c.Lit):
            return d.items[0]
    return None


def _seconds_type(tr, t: Type) -> Type:
    t = prune(t)
    if isinstance(t, TList):
        return TList(_seconds_type(tr, t.item))
    return tr.second_of(t)


def _map_component(xs: c.Expr, depth: int, which: int, result_t: Type, pairs_t: Type) -> c.Expr:
    """`map fst xs` (which = 0) or `map snd xs` (which = 1), `depth` lists deep."""
    pairs_t, result_t = prune(pairs_t), prune(result_t)
    assert isinstance(pairs_t, TList) and isinstance(result_t, TList)
    p = c.Var("p", ty=pairs_t.item)
    if depth == 1:
        body: c.Expr = c.Prim("fst" if which == 0 else "snd", (p,), ty=result_t.item)
    else:
        body = _map_component(p, depth - 1, which, result_t.item, pairs_t.item)
    fn = c.Lam("p", body, ty=TFun(pairs_t.item, result_t.item))
    return c.Prim("map", (fn, xs), ty=result_t)


# ---- the rules, from the rows -------------------------------------------------------------------


def vjp_terms(prim: Primitive, primals: list, r: c.Expr, ct: c.Expr) -> list:
    """One cotangent term per argument (None: none) of an array instance of `prim`."""
    if prim.kind == "real":
        partials = prim.partials(*primals, r)
        if len(primals) == 1:
            return [times(partials[0], ct)]
        # binary: the cotangent summed back over broadcast axes; a constant partial (1, -1, a literal)
        # scales after the sum, on the smaller array
        out = []
        for x, d in zip(primals, partials):
            if isinstance(d, c.Lit):
                out.append(scale(retype(d), A("unbroadcastLike", x, ct)))
            else:
                g = times(d, ct)
                out.append(None if g is None else A("unbroadcastLike", x, g))
        return out
    if prim.vjp is None:
        raise _no_rule(prim, "reverse")
    return list(prim.vjp(*primals, r, ct))


def jvp_term(prim: Primitive, primals: list, tangents: list, r: c.Expr) -> c.Expr | None:
    """The tangent of an array instance of `prim` (None: zero), from the tangents of its arguments."""
    if prim.kind == "array" and prim.vjp is not None:
        # the arguments the result does not depend on differentiably (where's mask) contribute nothing
        cts = prim.vjp(*primals, r, r)
        tangents = [t if g is not None else None for t, g in zip(tangents, cts)]
    if all(t is None for t in tangents):
        return None
    if prim.kind == "real":
        terms = [times(d, t) for d, t in zip(prim.partials(*primals, r), tangents) if t is not None]
        return _sum([t for t in terms if t is not None])
    if prim.jvp is not None:
        return prim.jvp(*primals, *tangents, r)
    if prim.bilinear:
        terms = [c.Prim(prim.name, tuple(t if k == i else x for k, x in enumerate(primals)), ty=r.ty)
                 for i, t in enumerate(tangents) if t is not None]
        return _sum(terms)
    if prim.linear:
        if any(t is not None for i, t in enumerate(tangents) if i not in prim.linear):
            raise _no_rule(prim, "forward")
        args = [(tangents[i] if tangents[i] is not None else _zero_tangent(x)) if i in prim.linear else x
                for i, x in enumerate(primals)]
        return c.Prim(prim.name, tuple(args), ty=r.ty)
    raise _no_rule(prim, "forward")


def _zero_tangent(x: c.Expr) -> c.Expr:
    t = prune(x.ty)
    if t == ARRAY:
        return A("azerosLike", x)
    return c.Lit(0.0, ty=REAL)


def _no_rule(prim: Primitive, which: str) -> DlRuntimeError:
    return DlRuntimeError(f"`{prim.name}` has no {which}-mode rule: differentiating through it (nested "
                          "differentiation of arrays, or a mode that needs it) is not supported yet")


def times(d: c.Expr, x: c.Expr) -> c.Expr | None:
    """d * x at Array for a partial d written at Real, its symbolic zeros never multiplied (the zeros
    rule, elementwise: docs/transforms.md, Zeros and infinities): `if c then 1 else 0` times x is
    `where c x 0.0`, so an infinite x[i] where c is false gives 0, not 0 * inf. None where d is zero by
    construction (sign): no contribution."""
    if is_zero(d):
        return None
    if isinstance(d, c.If):
        then, else_ = times(d.then, x), times(d.else_, x)
        if then is None and else_ is None:
            return None
        zero = c.Lit(0.0, ty=ARRAY)
        return c.Prim("where", (retype(d.cond), zero if then is None else then, zero if else_ is None else else_),
                      ty=ARRAY)
    return scale(retype(d), x)


def retype(t: c.Expr) -> c.Expr:
    """A partial derivative written at Real, at Array: every real node an array node, a comparison a mask,
    `if` a `where`."""
    if is_zero(t):
        return c.Lit(0.0, ty=ARRAY)
    match t:
        case c.Lit(value) if prune(t.ty) == REAL:
            return c.Lit(value, ty=ARRAY)
        case c.Var() | c.Lit() | c.Global():  # the arguments and the result: arrays already
            return t
        case c.Prim(op, args) if op in REAL_TO_ARRAY:
            return c.Prim(REAL_TO_ARRAY[op], tuple(retype(a) for a in args), ty=ARRAY)
        case c.Prim(op, args):
            return c.Prim(op, tuple(retype(a) for a in args), ty=ARRAY)
        case c.If(cond, then, else_):
            return c.Prim("where", (retype(cond), retype(then), retype(else_)), ty=ARRAY)
    raise AssertionError(f"no Array form of the partial derivative term {t!r}")


def scale(d: c.Expr, x: c.Expr) -> c.Expr:
    """d * x at Array, as ←D and →D write it: x for d = 1, -x for d = -1."""
    return common.scale(d, x, ARRAY)


def _sum(terms: list) -> c.Expr | None:
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = c.Prim("+", (out, t), ty=out.ty)
    return out


def _result_name(tr) -> str:
    return tr.fresh("r")


# ---- ←D ---------------------------------------------------------------------------------------


def _start(tr, e: c.Prim, prim: Primitive, ty: Type, amap_rule):
    """What ←D and →D do alike: a constant (`pi` at Array), amap (its own rule), or the arguments bound and
    the operation applied to their primals — finished when the result carries no derivative (a shape).
    Returns (a finished term, None) or (None, (arguments, result type, result kind, the primal value))."""
    if prim.kind == "toreal":  # pi at Array: a constant
        return tr.array_constant(c.Prim(e.op, (), ty=ARRAY, span=e.span)), None
    if prim.per_element:
        return amap_rule(tr, e, ty), None
    args = bind_arguments(tr, e)
    result_t = prune(e.ty)
    kind = arg_kind(result_t)
    value = c.Prim(e.op, tuple(args.primals), ty=result_t, span=e.span)
    if kind[0] == "plain":
        return args.wrap(value, ty, e.span), None
    return None, (args, result_t, kind, value)


def backprop_rule(tr, e: c.Prim, prim: Primitive, ty: Type) -> c.Expr:
    """←D of an array instance of `prim` (tr: the Backprop transform)."""
    done, rest = _start(tr, e, prim, ty, _amap_reverse)
    if done is not None:
        return done
    args, result_t, kind, value = rest
    if kind[0] == "duals":
        return args.wrap(_per_element_reverse(tr, e, prim, args, ty), ty, e.span)
    r = _result_name(tr)
    r_var = c.Var(r, ty=result_t)
    lin = tr.lin
    ct = c.Var(lin, ty=result_t)
    contributions = []
    if any(s is not None for s in args.seconds):
        cts = vjp_terms(prim, args.primals, r_var, ct)
        merged: dict = {}  # x' applied twice (x * x): once, to the sum (the factoring rule, written statically)
        for second, g, kind_i, src in zip(args.seconds, cts, args.kinds, e.args):
            if second is None or g is None:
                continue
            if kind_i[0] == "dual" and isinstance(second, c.Var) and second.name in merged:
                k = merged[second.name]
                old = contributions[k].arg
                total = c.Prim("*", (c.Lit(2.0, ty=ARRAY), g), ty=ARRAY) if old == g and prune(g.ty) == ARRAY \
                    else c.Prim("+", (old, g), ty=old.ty)
                contributions[k] = c.LinApp(second, total, ty=D)
                continue
            if kind_i[0] == "dual" and isinstance(second, c.Var):
                merged[second.name] = len(contributions)
            contributions.append(_apply(second, g, kind_i, src.ty))
    body: c.Expr = c.DZero(ty=D)
    for k, more in enumerate(contributions):
        body = more if k == 0 else c.DSum(body, more, ty=D)
    bp = c.LinLam(lin, body, ty=TNeg(result_t))
    out = c.Let(r, value, c.Tuple((r_var, bp), ty=ty, span=e.span), ty=ty, span=e.span)
    return args.wrap(out, ty, e.span)


def _apply(second: c.Expr, g: c.Expr, kind: tuple, source_t: Type) -> c.Expr:
    """x' g, or for a list of duals the effect applying each backpropagator to its piece of g."""
    if kind[0] == "dual":
        return c.LinApp(second, g, ty=D)
    effect = "dApplyList" if innermost(source_t) == ARRAY and kind[1] == 1 else "dScatter"
    return c.Prim(effect, (second, g), ty=D)


def _per_element_reverse(tr, e: c.Prim, prim: Primitive, args: Bound, ty: Type) -> c.Expr:
    """A list-valued result (toList, unstack): element i is (element, fun c -o x' (its cotangent))."""
    item_t = prune(prune(e.ty).item)
    i = tr.fresh("i")
    i_var = c.Var(i, ty=INT)
    count, element, cotangents = prim.unlist(*args.primals, i_var)
    r = tr.fresh("r")
    r_var = c.Var(r, ty=item_t)
    ct = c.Var(tr.lin, ty=item_t)
    parts = []
    for second, g, kind_i, src in zip(args.seconds, cotangents(ct), args.kinds, e.args):
        if second is not None and g is not None:
            parts.append(_apply(second, g, kind_i, src.ty))
    body: c.Expr = c.DZero(ty=D)
    for k, more in enumerate(parts):
        body = more if k == 0 else c.DSum(body, more, ty=D)
    pair_t = tr.type(item_t)
    pair = c.Let(r, element, c.Tuple((r_var, c.LinLam(tr.lin, body, ty=TNeg(item_t))), ty=pair_t), ty=pair_t)
    fn = c.Lam(i, pair, ty=TFun(INT, pair_t))
    return c.Prim("build", (count, fn), ty=ty, span=e.span)


def _amap_reverse(tr, e: c.Prim, ty: Type) -> c.Expr:
    """←D(amap f t) = let (a, a') = ←D(t) in amapReverse ←D(f) a a'  (←D(f) in place: a lambda written as
    an argument reads back with its parameter's type known)."""
    f, t = e.args
    a = tr.fresh("x")
    body = c.Prim("amapReverse", (tr.term(f), c.Var(a, ty=ARRAY), c.Var(a + tr.suffix, ty=TNeg(ARRAY))),
                  ty=ty, span=e.span)
    return c.LetTuple((a, a + tr.suffix), tr.term(t), body, ty=ty, span=e.span)


# ---- →D ---------------------------------------------------------------------------------------


def forward_rule(tr, e: c.Prim, prim: Primitive, ty: Type) -> c.Expr:
    """→D of an array instance of `prim` (tr: the Forward transform)."""
    done, rest = _start(tr, e, prim, ty, _amap_forward)
    if done is not None:
        return done
    args, result_t, kind, value = rest
    if kind[0] == "duals":  # toList, unstack: linear, so the tangents' list is the operation on the tangents
        tangent = jvp_term(prim, args.primals, args.seconds, value)
        if tangent is None:  # a constant array: its elements' tangents are zeros
            tangent = c.Prim(e.op, tuple(_zero_tangent(x) if prune(x.ty) == ARRAY else x for x in args.primals),
                             ty=result_t)
        item_t = prune(result_t.item)
        x, t = c.Var("x", ty=item_t), c.Var("t", ty=item_t)
        pair_t = tr.type(item_t)
        zipper = c.Lam("x", c.Lam("t", c.Tuple((x, t), ty=pair_t), ty=TFun(item_t, pair_t)),
                       ty=TFun(item_t, TFun(item_t, pair_t)))
        return args.wrap(c.Prim("zipWith", (zipper, value, tangent), ty=ty, span=e.span), ty, e.span)
    r = _result_name(tr)
    r_var = c.Var(r, ty=result_t)
    tangent = jvp_term(prim, args.primals, args.seconds, r_var)
    if tangent is None:
        tangent = _zero_tangent(r_var)
    out = c.Let(r, value, c.Tuple((r_var, tangent), ty=ty, span=e.span), ty=ty, span=e.span)
    return args.wrap(out, ty, e.span)


def _amap_forward(tr, e: c.Prim, ty: Type) -> c.Expr:
    """→D(amap f t) = let (a, a_dot) = →D(t) in amapForward →D(f) a a_dot."""
    f, t = e.args
    a = tr.fresh("x")
    body = c.Prim("amapForward", (tr.term(f), c.Var(a, ty=ARRAY), c.Var(a + tr.suffix, ty=ARRAY)),
                  ty=ty, span=e.span)
    return c.LetTuple((a, a + tr.suffix), tr.term(t), body, ty=ty, span=e.span)


__all__ = ["backprop_rule", "forward_rule", "vjp_terms", "jvp_term", "retype", "arg_kind"]
