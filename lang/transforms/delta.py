"""Δ, the Delta-expression transform of Krawiec, Peyton Jones, Krishnaswami, Ellis, Eisenberg and
Fitzgibbon (POPL 2022) (docs/transforms.md, delta).

A real is paired with a *Delta*: first-order data that describes the linear
map from the real's cotangent to the inputs' — a defunctionalised
backpropagator. The target language is dl's own terms plus one base type and
the target-only rows of the primitive table (lang/model/primitives.py):

    Delta ::= dzero                  the zero map (a constant's)
            | dscale w d             d scaled by the real w (a partial derivative)
            | dadd d d               the sum of two maps
            | dshare d               d with a fresh identity: walked once by the backward pass
            | dmark d                d as one primitive's part, no identity (delta-noshare only)
            | (input k)              made by the kernel for the k-th input real, never written

On types Δ is a homomorphism except at Real:

    Δ(Real) = Real * Delta     Δ(A -> B) = Δ(A) -> Δ(B)     Δ(A * B) = Δ(A) * Δ(B)
    Δ([A]) = [Δ(A)]            Δ(Int) = Int, Δ(Bool) = Bool, Δ(Unit) = Unit, Δ('a) = 'a

On terms it is the identity on everything that does not touch a real
(common.py: variables, lambdas, application, lets, `if`, map/fold/...). A
real constant r becomes (r, dzero), and a real primitive f(t1, ..., tk) with
partial derivatives ∂i f (from its row of the primitive table)

    let (x1, x1') = Δ(t1) in ... let (xk, xk') = Δ(tk) in
    (f(x1, ..., xk), dshare (dadd (dscale ∂1 x1') ... (dscale ∂k xk')))

so `x * y` is `(x * y, dshare (dadd (dscale y x') (dscale x y')))`: the
backpropagator `fun a -o x' (y * a) + y' (x * a)` of ←D, written as data and
named. `dscale 1.0 d` is written `d` (`x + y` gives `dshare (dadd x' y')`).
Every primitive's Delta is shared, as horde-ad's `dD` shares every dual number
it makes: a λ parameter used twice (`def sq y = y * y`) then reuses one
identity, where sharing only at `let` would duplicate the caller's tree.

`delta-noshare` writes `dmark` where `delta` writes `dshare`: the same data
without identities, so a node reached by k paths is walked k times — what
`Share` buys, made visible (exponential on repeated squaring).

A Delta has no class (not Eq, not Num): it can be built and passed, never
compared or inspected, so it cannot reach primal control flow, and there is no
linearity to check — a Delta denotes a linear map by construction.
"""
from __future__ import annotations

from dataclasses import replace

from ..front.desugar import Fresh
from ..model import core as c
from ..model.primitives import is_zero
from ..model.types import DELTA, REAL, TTuple, Type
from .common import Homomorphism, TermTransform, variables_of
from .simplify import Simplifier
from .simplify import simplify as simplify_with

DELTA_REAL = TTuple((REAL, DELTA))

SHARE, MARK = "dshare", "dmark"  # the node each primitive's Delta is wrapped in: delta, delta-noshare


def dzero() -> c.Prim:
    return c.Prim("dzero", (), ty=DELTA)


def dscale(w: c.Expr, d: c.Expr) -> c.Expr:
    """dscale w d, written d when w is the literal 1 (the paper's `x'` for ∂ = 1)."""
    if isinstance(w, c.Lit) and w.value == 1.0 and not isinstance(w.value, bool):
        return d
    return c.Prim("dscale", (w, d), ty=DELTA)


def dadd(a: c.Expr, b: c.Expr) -> c.Prim:
    return c.Prim("dadd", (a, b), ty=DELTA)


class Delta(Homomorphism):
    real_pair = DELTA_REAL
    suffix = "'"
    second_type = DELTA

    def __init__(self, fresh: Fresh, node: str):
        super().__init__(fresh)
        self.node = node  # dshare (delta) or dmark (delta-noshare)

    def mode_name(self) -> str:
        """The mode named in the refusal of arrays (arrays_unsupported, lang/transforms/common.py)."""
        return "delta" if self.node == SHARE else "delta-noshare"

    def constant(self, value: c.Expr) -> c.Expr:
        """r  ->  (r, dzero)."""
        return c.Tuple((value, dzero()), ty=DELTA_REAL, span=value.span)

    def contribution_sum(self, pairs: list[tuple[c.Expr, c.Expr]]) -> c.Expr:
        """dshare (dadd (dscale ∂1 x1') ... (dscale ∂k xk')), or dzero when every partial is a symbolic
        zero (a partial zero on a branch is dropped by `by_cases`, docs/transforms.md, Zeros and
        infinities)."""
        if not pairs:
            return dzero()
        terms = [dscale(d, x2) for x2, d in pairs]
        body = terms[0]
        for more in terms[1:]:
            body = dadd(body, more)
        return c.Prim(self.node, (body,), ty=DELTA)


def _transform(node: str):
    def transform(e: c.Expr) -> c.Expr:
        """Δ of a specialised core term (or of →D^k of one: nesting)."""
        return Delta(Fresh(variables_of(e), "x"), node).term(e)
    return transform


def d_type(t: Type) -> Type:
    """Δ on types (the same for both node kinds)."""
    return Delta(Fresh(set()), SHARE).type(t)


# ---- simplification ----------------------------------------------------------------


class DeltaSimplifier(Simplifier):
    """simplify.py's rules, with dzero a constant that patterns substitute away, and

        dscale w dzero -> dzero    dscale 1.0 d -> d    (not dscale 0.0 d -> dzero: a 0.0 the program wrote is a
                                                       number, and 0.0 times an infinite cotangent is nan)
        dadd dzero d -> d          dadd d dzero -> d
        dshare dzero -> dzero      dshare (dshare d) -> dshare d      dshare x' -> x'   (and dmark alike)

    `dshare x'` is `x'` because every Delta a variable holds is zero, an input or a node shared already
    (the only way a Delta reaches a variable is as a real's second component). A `dshare` is an effect
    (a fresh identity): the rules move none and never copy one — duplicating would still be correct, but
    would walk its body twice.
    """

    def constant(self, e: c.Expr) -> bool:
        return super().constant(e) or _is_zero(e)

    def primitive(self, e: c.Prim) -> c.Expr:
        match e:
            case c.Prim("dscale", (w, d)):
                if _is_zero(d) or is_zero(w):
                    return replace(dzero(), span=e.span)
                if isinstance(w, c.Lit) and w.value == 1.0 and not isinstance(w.value, bool):
                    return d
            case c.Prim("dadd", (a, b)):
                if _is_zero(a):
                    return b
                if _is_zero(b):
                    return a
            case c.Prim("dshare" | "dmark" as node, (d,)):
                if _is_zero(d) or isinstance(d, c.Var):
                    return d
                if isinstance(d, c.Prim) and d.op == node:
                    return d
        return super().primitive(e)


def _is_zero(e: c.Expr) -> bool:
    return isinstance(e, c.Prim) and e.op == "dzero"


def simplify(e: c.Expr) -> c.Expr:
    """The rules above, everywhere."""
    return simplify_with(e, DeltaSimplifier)


DELTA = TermTransform("Δ", _transform(SHARE), d_type, simplify, custom_rules=True)
DELTA_NOSHARE = TermTransform("Δ", _transform(MARK), d_type, simplify, custom_rules=True)

__all__ = ["DELTA", "DELTA_NOSHARE", "DELTA_REAL", "Delta", "SHARE", "MARK", "d_type", "simplify"]
