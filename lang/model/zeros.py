"""Zeros by construction, and derivatives that do not depend on the order they are summed in.

Two run-time numbers that every mode's derivative arithmetic understands
(docs/transforms.md, Zeros and infinities).

`ZERO`, the *symbolic zero*. The tangent of a constant, the backpropagator
of a constant (`fun a -o 0`), a partial derivative that the primitive table
defines as 0 on a branch (relu for x <= 0, the unselected argument of min
and max, the base of x^0, ...): zeros that hold by construction, whatever
the point. Such a zero is dropped, never multiplied — JAX's symbolic
zeros, Haskell ad's `Zero` — so it contributes nothing even where the
factor it meets is infinite:

    ZERO * inf = ZERO        ZERO + x = x        -ZERO = ZERO

A 0.0 that the program computes or writes is a number like any other, and
0.0 * inf = nan. `ZERO` is a float (0.0 to every other operation), so the
compiled code of every mode uses it without knowing it is there; the
differentiation kernel turns it into 0.0 before a user sees it (`settle`).

`Paths`, a derivative as the chain rule writes it: the sum, over the paths
from an input to an output, of the product of the partial derivatives
along each path (Bauer 1974). Each mode adds these products in its own
order — forward mode from the inputs, reverse mode from the outputs,
backprop-naive path by path — and with finite partials the order changes
the last bits only. Where a partial is infinite it can change the answer:

    u = sqrt x - 1.0 at x = 0 (u = -1, u' = inf), f = u * u / u:
    reverse mode adds the finite partials first, -1 + 1 + 1 = 1, then 1 * inf = inf;
    forward mode multiplies by inf first, -inf + -inf, then inf + -inf = nan.

A `Paths` value keeps, besides the sum, which kinds of product it summed
(positive, negative, zero, +inf, -inf, nan); multiplying multiplies every
kind, adding takes the union. Kinds form a semiring, so the result is the
same in every order: nan when some path is nan (a zero partial times an
infinite one) or paths of +inf and -inf meet, ±inf when the infinite paths
agree, and otherwise the sum. A mode computes with plain floats first;
only where a derivative comes out infinite or nan does the kernel ask it
again with `Paths` seeds (lang/back/kernel.py).
"""
from __future__ import annotations

import math
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any


class Zero(float):
    """The symbolic zero: absorbs in products, the unit of sums, its own negation."""

    __slots__ = ()

    def __new__(cls) -> "Zero":
        return super().__new__(cls, 0.0)

    def __mul__(self, other: Any) -> "Zero":
        return self

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> "Zero":  # a cotangent divided (linear: a / y) stays zero
        return self

    def __add__(self, other: Any) -> Any:
        return other

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return -other

    def __rsub__(self, other: Any) -> Any:
        return other

    def __neg__(self) -> "Zero":
        return self

    def __pos__(self) -> "Zero":
        return self

    def __repr__(self) -> str:
        return "ZERO"


ZERO = Zero()

# ---- Paths: kinds of path products, and how they multiply ---------------------------------

POS, NEG, NIL, PINF, NINF, NAN = (1 << k for k in range(6))
_KINDS = (POS, NEG, NIL, PINF, NINF, NAN)


def kind(x: float) -> int:
    """The kind of a float: positive, negative, zero, +inf, -inf or nan."""
    if x != x:
        return NAN
    if x == 0.0:
        return NIL
    if math.isinf(x):
        return PINF if x > 0 else NINF
    return POS if x > 0 else NEG


def _times(a: int, b: int) -> int:
    """The kind of a product of two kinds (IEEE: 0 * inf is nan; overflow is not a kind)."""
    if NAN in (a, b) or {a, b} <= {NIL, PINF, NINF} and NIL in (a, b) and a != b:
        return NAN
    if NIL in (a, b):
        return NIL
    negative = (a in (NEG, NINF)) != (b in (NEG, NINF))
    if PINF in (a, b) or NINF in (a, b):
        return NINF if negative else PINF
    return NEG if negative else POS


# _PRODUCT[m][k]: the kinds of every product of a kind in the set m with the kind k — the set m's products
# are those of m without its lowest kind and that kind's (one row from another: start-up)
_PRODUCT = [[0] * (NAN << 1) for _ in range(NAN << 1)]
for _m in range(1, NAN << 1):
    _low = _m & -_m
    for _k in _KINDS:
        _PRODUCT[_m][_k] = _PRODUCT[_m ^ _low][_k] | _times(_low, _k)


class Paths:
    """A sum of path products: its value summed in the order it came, and the kinds of its terms."""

    __slots__ = ("total", "kinds")

    def __init__(self, total: float, kinds: int):
        self.total = total
        self.kinds = kinds

    @staticmethod
    def seed(x: Any) -> Any:
        """One path of value x (the symbolic zero stays what it is: no path at all)."""
        if type(x) is Zero or type(x) is Paths:
            return x
        x = float(x)
        return Paths(x, kind(x))

    def __mul__(self, other: Any) -> Any:
        t = type(other)
        if t is Zero:
            return other
        if t is Paths:
            kinds = 0
            for k in _KINDS:
                if other.kinds & k:
                    kinds |= _PRODUCT[self.kinds][k]
            return Paths(self.total * other.total, kinds)
        return Paths(self.total * other, _PRODUCT[self.kinds][kind(other)])

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> "Paths":  # a / y inside a backpropagator: times 1 / y
        return self * (1.0 / other if other != 0 else math.copysign(math.inf, other))

    def __add__(self, other: Any) -> "Paths":
        t = type(other)
        if t is Zero:
            return self
        if t is not Paths:
            other = Paths.seed(other)
        return Paths(self.total + other.total, self.kinds | other.kinds)

    __radd__ = __add__

    def __neg__(self) -> "Paths":
        return self * -1.0

    def __sub__(self, other: Any) -> "Paths":
        return self + (-other)

    def __rsub__(self, other: Any) -> "Paths":
        return (-self) + other

    def value(self) -> float:
        """The sum as a float: nan where the paths disagree, the common infinity, or the finite sum."""
        kinds = self.kinds
        if kinds & NAN or (kinds & PINF and kinds & NINF):
            return math.nan
        if kinds & PINF:
            return math.inf
        if kinds & NINF:
            return -math.inf
        return float(self.total)

    def __repr__(self) -> str:
        names = [n for n, k in zip(("+", "-", "0", "+inf", "-inf", "nan"), _KINDS) if self.kinds & k]
        return f"Paths({self.total!r}, {'|'.join(names)})"


REAL_TYPES = (float, Zero, Paths)  # what a real can be while derivatives are computed


def settle(x: Any) -> Any:
    """A real as a user sees it: the symbolic zero is 0.0, a sum over paths its value."""
    t = type(x)
    if t is Zero:
        return 0.0
    if t is Paths:
        return x.value()
    return x


def finite(x: Any) -> bool:
    """Whether a derivative real is finite (then the order of summation changed its last bits only)."""
    t = type(x)
    if t is Paths:
        return math.isfinite(x.value())
    return t is Zero or not isinstance(x, float) or math.isfinite(x)


__all__ = ["ZERO", "Zero", "Paths", "REAL_TYPES", "settle", "finite", "kind"]
