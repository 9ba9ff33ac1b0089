"""←D, the backpropagation transform of Brunel, Mazza and Pagani (POPL 2020).

On types it is a homomorphism except at Real (docs/transforms.md, Notation: the target language):

    ←D(Real) = Real * ¬Real        ←D(A -> B) = ←D(A) -> ←D(B)
    ←D(Array) = Array * ¬Array     (one backpropagator per array: lang/transforms/arrays.py)
    ←D(A * B) = ←D(A) * ←D(B)      ←D([A]) = [←D(A)]      ←D(Int) = Int, ...

On terms it is the identity on everything that does not touch a real
(variables, lambdas, application, lets, tuples, lists, `if`, and the
parametric built-ins map/fold/... — which is why higher-order programs need
no rules of their own; see common.py). A real constant gets the zero
backpropagator, and a real primitive f(t1, ..., tk) with partial
derivatives ∂i f (read from its row of the primitive table) becomes

    let (x1, x1') = ←D(t1) in ... let (xk, xk') = ←D(tk) in
    (f(x1, ..., xk), fun a -o x1' (∂1 f * a) + ... + xk' (∂k f * a))

for example `x * y` becomes `(x * y, fun a -o x' (y * a) + y' (x * a))`.
Comparisons and conversions to Int read the primal component only
(`fst x < fst y`), so `if` takes the branch the source takes (docs/transforms.md, Almost everywhere).

The result is a term of the target language (the linear fragment of
lang/core.py); lang/target_check.py checks ←D(Γ) ⊢ ←D(t) : ←D(A) on it.
"""
from __future__ import annotations

from ..model import core as c
from ..front.desugar import Fresh
from ..model.types import ARRAY, D, REAL, TNeg, TTuple, Type
from . import arrays
from .common import Homomorphism, TermTransform, scale, variables_of
from .preaccumulate import preaccumulate
from .simplify import simplify

DUAL_REAL = TTuple((REAL, TNeg(REAL)))
BACKPROPAGATOR = TNeg(REAL)
DUAL_ARRAY = TTuple((ARRAY, TNeg(ARRAY)))


def zero_backpropagator(lin: str) -> c.LinLam:
    """fun a -o 0, the backpropagator of a constant."""
    return c.LinLam(lin, c.DZero(ty=D), ty=BACKPROPAGATOR)


def transform(e: c.Expr) -> c.Expr:
    """←D of a specialised core term."""
    avoid = variables_of(e)
    lin = "a" if "a" not in avoid else next(n for n in ("ct", "ct1", "ct2", "ct3", "ct4") if n not in avoid)
    avoid.add(lin)
    return Backprop(Fresh(avoid, "x"), lin).term(e)


def d_type(t: Type) -> Type:
    """←D on types."""
    return Backprop(Fresh(set()), "a").type(t)


class Backprop(Homomorphism):
    real_pair = DUAL_REAL
    suffix = "'"
    second_type = BACKPROPAGATOR

    def __init__(self, fresh: Fresh, lin: str):
        super().__init__(fresh)
        self.lin = lin  # the name of every backpropagator's parameter (fresh for the whole term)

    def constant(self, value: c.Expr) -> c.Expr:
        """r  ->  (r, fun a -o 0)."""
        return c.Tuple((value, zero_backpropagator(self.lin)), ty=DUAL_REAL, span=value.span)

    def derivative_part(self, seconds: list[c.Expr], partials: list[c.Expr]) -> c.Expr:
        """fun a -o x1' (∂1 f * a) + ... + xk' (∂k f * a)."""
        return c.LinLam(self.lin, super().derivative_part(seconds, partials), ty=BACKPROPAGATOR)

    def contribution_sum(self, pairs: list[tuple[c.Expr, c.Expr]]) -> c.Expr:
        """x1' (∂1 f * a) + ... + xk' (∂k f * a), or 0."""
        a = c.Var(self.lin, ty=REAL)
        contributions = [c.LinApp(back, scale(d, a), ty=D) for back, d in pairs]
        if not contributions:
            return c.DZero(ty=D)
        body = contributions[0]
        for more in contributions[1:]:
            body = c.DSum(body, more, ty=D)
        return body

    # ---- arrays
    def array_type(self, t: Type) -> Type:
        return DUAL_ARRAY

    def second_of(self, t: Type) -> Type:
        return TNeg(t)

    def mode_name(self) -> str:
        return "backprop"

    def array_constant(self, e: c.Expr) -> c.Expr:
        """a  ->  (a, fun c -o 0)."""
        return c.Tuple((e, c.LinLam(self.lin, c.DZero(ty=D), ty=TNeg(ARRAY))), ty=DUAL_ARRAY, span=e.span)

    def array_primitive(self, e: c.Prim, prim, ty: Type) -> c.Expr:
        return arrays.backprop_rule(self, e, prim, ty)


BACKPROP = TermTransform("←D", transform, d_type, simplify, custom_rules=True)

# What backprop mode runs: ←D's term simplified, then preaccumulated (lang/transforms/preaccumulate.py);
# `dl transform --simplify` prints it, its source's folds over maps fused first (lang/transforms/fusion.py).
# backprop-naive runs BACKPROP's.
PREACCUMULATED = TermTransform("←D", transform, d_type, lambda e: preaccumulate(simplify(e)),
                               custom_rules=True, fuses=True)
