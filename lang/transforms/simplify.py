"""Algebraic clean-ups of transformed terms that keep their meaning.

←D gives every real constant the zero backpropagator, so `2.0 * x` becomes

    let (x1, x1') = (2.0, fun a -o 0) in let (x, x') = x in
    (x1 * x, fun a -o x1' (x * a) + x' (x1 * a))

and after these rules

    let (x, x') = x in (2.0 * x, fun a -o x' (2.0 * a))

The rules: a tuple pattern bound to a constant pair is substituted away;
applying the zero backpropagator gives 0 (it is `fun a -o 0`); applying any
backpropagator to `0 * a` gives 0 (backpropagators are linear); 0 is the unit
of the sum of d. The evaluator runs the simplified term; `dl transform`
prints the unsimplified one unless asked (`--simplify`).
"""
from __future__ import annotations

from dataclasses import replace

from ..model import core as c
from ..model.types import REAL, prune
from .common import ZERO_TANGENT


def is_zero_backpropagator(e: c.Expr) -> bool:
    return isinstance(e, c.LinLam) and isinstance(e.body, c.DZero)


def _constant(e: c.Expr) -> bool:
    return isinstance(e, c.Lit) or is_zero_backpropagator(e)


def simplify(e: c.Expr) -> c.Expr:
    """Apply the rules everywhere (bottom-up, substituting constant pairs)."""
    return Simplifier().term(e, {})


class Simplifier:
    """The rules above; a transform with constructs of its own (Delta expressions) extends `constant` and
    `primitive`."""

    def constant(self, e: c.Expr) -> bool:
        """A component of a pair that a tuple pattern may substitute away (duplicating it costs nothing)."""
        return _constant(e)

    def primitive(self, e: c.Prim) -> c.Expr:
        """A primitive application whose arguments are simplified already."""
        return _fold(e)

    def term(self, e: c.Expr, env: dict) -> c.Expr:
        match e:
            case c.Var(name, ()) if name in env:
                return env[name]
            case c.Var() | c.Global() | c.Lit() | c.DZero():
                return e
            case c.LetTuple(names, bound, body):
                bound_s = self.term(bound, env)
                if isinstance(bound_s, c.Tuple) and all(self.constant(i) for i in bound_s.items):
                    inner = dict(env)
                    inner.update(zip(names, bound_s.items))
                    return self.term(body, inner)
                return replace(e, bound=bound_s, body=self.term(body, _without(env, names)))
            case c.Let(name, bound, body):
                return replace(e, bound=self.term(bound, env), body=self.term(body, _without(env, (name,))))
            case c.LetRec(name, bound, body):
                inner = _without(env, (name,))
                return replace(e, bound=self.term(bound, inner), body=self.term(body, inner))
            case c.Lam(param, body) | c.LinLam(param, body):
                return replace(e, body=self.term(body, _without(env, (param,))))
            case c.LinApp(fn, arg):
                fn_s, arg_s = self.term(fn, env), self.term(arg, env)
                if is_zero_backpropagator(fn_s) or _is_zero_real(arg_s):
                    return c.DZero(ty=e.ty, span=e.span)
                return replace(e, fn=fn_s, arg=arg_s)
            case c.DSum(l, r):
                ls, rs = self.term(l, env), self.term(r, env)
                if isinstance(ls, c.DZero):
                    return rs
                if isinstance(rs, c.DZero):
                    return ls
                return replace(e, left=ls, right=rs)
            case c.App() | c.If() | c.Tuple() | c.List():
                return c.map_children(e, lambda t: self.term(t, env))
            case c.Prim():
                return self.primitive(c.map_children(e, lambda t: self.term(t, env)))
        raise AssertionError(e)


def _without(env: dict, names) -> dict:
    if not any(n in env for n in names):
        return env
    return {k: v for k, v in env.items() if k not in names}


def _is_zero_real(e: c.Expr) -> bool:
    """0 * a, a * 0 or the literal 0: an argument that a linear map sends to 0."""
    if isinstance(e, c.Lit) and e.value == 0.0 and not isinstance(e.value, bool):
        return True
    if isinstance(e, c.Prim) and e.op == "*":
        return any(isinstance(a, c.Lit) and a.value == 0.0 for a in e.args)
    return False


def _fold(e: c.Prim) -> c.Expr:
    """Negation of a literal, multiplication by the literal 1.0, and a constant's zero tangent
    dropped from products and sums (forward mode)."""
    if prune(e.ty) != REAL:
        return e
    if any(a is ZERO_TANGENT for a in e.args):
        if e.op in ("*", "neg"):
            return ZERO_TANGENT
        if e.op == "+":
            x, y = e.args
            return y if x is ZERO_TANGENT else x
    if e.op == "neg" and isinstance(e.args[0], c.Lit):
        return c.Lit(-e.args[0].value, ty=e.ty, span=e.span)
    if e.op == "*":
        x, y = e.args
        if isinstance(x, c.Lit) and x.value == 1.0:
            return y
        if isinstance(y, c.Lit) and y.value == 1.0:
            return x
    return e
