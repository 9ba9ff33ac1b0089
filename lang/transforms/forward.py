"""→D, the forward (dual-number) transform (docs/transforms.md, forward).

    →D(Real) = Real * Real         (value, tangent), a homomorphism elsewhere
    →D(Array) = Array * Array      (a tangent array: lang/transforms/arrays.py)
    r                 ->  (r, 0)          0: the symbolic zero, a tangent zero by construction
    f(t1, ..., tk)    ->  let (x1, x1_dot) = →D(t1) in ... let (xk, xk_dot) = →D(tk) in
                          (f(x1, ..., xk), ∂1 f * x1_dot + ... + ∂k f * xk_dot)

with the same partial derivatives as ←D, from the primitive table. One run
gives a Jacobian-vector product; a gradient of n inputs takes n runs. There
is no sharing problem: tangents are numbers, not functions.

Nesting without perturbation confusion. The target language of →D is the
source language (pairs of reals, no linear types), so →D applies to its
own output: the derivative of a derivative runs →D(→D(t)), in which each
real of the first level becomes a pair of the second. Every level's
perturbation lives in its own component of the nested pairs, kept apart by
the types, so `derivative (fun x -> x * derivative (fun y -> x + y) 1.0) 1.0`
is 1.0 (a tag-free implementation that mixed the levels would give 2.0).
"""
from __future__ import annotations

from ..model import core as c
from ..front.desugar import Fresh
from ..model.types import ARRAY, REAL, TTuple, Type
from ..model.primitives import zero
from . import arrays
from .common import Homomorphism, TermTransform, scale, variables_of
from .simplify import simplify

TANGENT_PAIR = TTuple((REAL, REAL))
TANGENT_ARRAY = TTuple((ARRAY, ARRAY))

def transform(e: c.Expr) -> c.Expr:
    """→D of a term (a source term, or a term →D already produced)."""
    return Forward(Fresh(variables_of(e), "x")).term(e)


class Forward(Homomorphism):
    real_pair = TANGENT_PAIR
    suffix = "_dot"
    second_type = REAL

    def constant(self, value: c.Expr) -> c.Expr:
        """r  ->  (r, 0): a constant's tangent is the symbolic zero (lang/model/zeros.py)."""
        return c.Tuple((value, zero()), ty=TANGENT_PAIR, span=value.span)

    def contribution_sum(self, pairs: list[tuple[c.Expr, c.Expr]]) -> c.Expr:
        """∂1 f * x1_dot + ... + ∂k f * xk_dot, or 0."""
        terms = [scale(d, x_dot) for x_dot, d in pairs]
        if not terms:
            return zero()
        tangent = terms[0]
        for more in terms[1:]:
            tangent = c.Prim("+", (tangent, more), ty=REAL)
        return tangent

    # ---- arrays
    def array_type(self, t: Type) -> Type:
        return TANGENT_ARRAY

    def second_of(self, t: Type) -> Type:
        return t

    def mode_name(self) -> str:
        return "forward"

    def array_constant(self, e: c.Expr) -> c.Expr:
        """a  ->  (a, 0.0): a constant's tangent (a literal is a 0-d array, so is its zero tangent)."""
        tangent = c.Lit(0.0, ty=ARRAY) if isinstance(e, c.Lit) else c.Prim("azerosLike", (e,), ty=ARRAY)
        return c.Tuple((e, tangent), ty=TANGENT_ARRAY, span=e.span)

    def array_primitive(self, e: c.Prim, prim, ty: Type) -> c.Expr:
        return arrays.forward_rule(self, e, prim, ty)


def transformed_type(t):
    """→D on types."""
    return Forward(Fresh(set())).type(t)


FORWARD = TermTransform("→D", transform, transformed_type, simplify, custom_rules=True)
