"""Total real functions: IEEE results (inf, nan) where Python's math raises.

docs/reference.md §11–12 prints `inf` and `nan`, so real arithmetic never stops a program:
`1.0 / 0.0` is `inf`, `log 0.0` is `-inf`, `sqrt (-1.0)` is `nan`. Only the
conversions to Int (floor, ceil, round) fail, on inf and nan.
"""
from __future__ import annotations

import math

from .errors import DlRuntimeError

inf, nan = math.inf, math.nan


def div(x: float, y: float) -> float:
    try:
        return x / y
    except ZeroDivisionError:
        if x == 0.0 or x != x:
            return nan
        return math.copysign(inf, x) * math.copysign(1.0, y)


def exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return inf


def log(x: float) -> float:
    if x > 0.0:
        return math.log(x)
    return -inf if x == 0.0 else nan


def sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0.0 else nan


def _guarded(f):
    def g(x: float) -> float:
        try:
            return f(x)
        except ValueError:
            return nan
    g.__name__ = f.__name__
    return g


sin, cos, tan = _guarded(math.sin), _guarded(math.cos), _guarded(math.tan)
tanh, atan2 = math.tanh, math.atan2


# The inverse and hyperbolic functions, log1p, expm1, erf: math's, made total. Outside a domain
# the result is the IEEE one (numpy's): the limit where there is one (log1p (-1) = -inf, atanh 1 = inf),
# nan where there is none (asin 2, acosh 0.5); past the largest float, an infinity of the right sign.


def log1p(x: float) -> float:
    """log(1 + x), exact near 0 (log1p 1e-20 = 1e-20, where log (1 + 1e-20) is 0)."""
    if x > -1.0:
        return math.log1p(x)
    return -inf if x == -1.0 else nan


def expm1(x: float) -> float:
    """e^x - 1, exact near 0 (expm1 1e-15 = 1e-15 to the last digit, where exp x - 1 is off by 11%)."""
    try:
        return math.expm1(x)
    except OverflowError:
        return inf


def sinh(x: float) -> float:
    try:
        return math.sinh(x)
    except OverflowError:
        return math.copysign(inf, x)


def cosh(x: float) -> float:
    try:
        return math.cosh(x)
    except OverflowError:
        return inf


def acosh(x: float) -> float:
    return math.acosh(x) if x >= 1.0 else nan


def atanh(x: float) -> float:
    if -1.0 < x < 1.0:
        return math.atanh(x)
    return math.copysign(inf, x) if abs(x) == 1.0 else nan


asinh, atan, erf, erfc, hypot = math.asinh, math.atan, math.erf, math.erfc, math.hypot
asin, acos = _guarded(math.asin), _guarded(math.acos)


def sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = exp(x)
    return e / (1.0 + e)


def relu(x: float) -> float:
    return x if x > 0.0 or x != x else 0.0


def softplus(x: float) -> float:
    if x > 30.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(exp(x))


def sign(x: float) -> float:
    return 1.0 if x > 0.0 else -1.0 if x < 0.0 else x * 0.0


def pow(x: float, y: float) -> float:
    try:
        return math.pow(x, y)
    except OverflowError:
        return inf if x > 0.0 or float(y).is_integer() and y % 2 == 0 else -inf
    except ValueError:
        if x == 0.0:  # 0 ^ negative
            return inf
        return nan


def fmin(x: float, y: float) -> float:
    """The smaller, the first on a tie, and nan if either is nan (as numpy's minimum, not Python's min)."""
    return x if x <= y else y if y < x else nan


def fmax(x: float, y: float) -> float:
    return x if x >= y else y if y > x else nan


def to_real(n: int) -> float:
    """An Int as the nearest Real; past the largest float, an infinity (as IEEE conversion does)."""
    try:
        return float(n)
    except OverflowError:
        return inf if n > 0 else -inf


def _short(n: int) -> str:
    """An Int for a message: its digits, or for a huge one its first digits and its length."""
    text = str(n)
    return text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"


def int_pow(x: int, y: int) -> int:
    if y < 0:
        raise DlRuntimeError(f"negative exponent in Int power: {x} ^ {y} (use Real numbers)")
    if y > 1_000_000 and abs(x) > 1:
        raise DlRuntimeError(f"Int power {_short(x)} ^ {_short(y)} is too large to compute")
    return x ** y


def int_div(x: int, y: int) -> int:
    if y == 0:
        raise DlRuntimeError("division by zero (div)")
    return x // y


def int_mod(x: int, y: int) -> int:
    if y == 0:
        raise DlRuntimeError("division by zero (mod)")
    return x % y


def _to_int(f, name):
    def g(x: float) -> int:
        if x != x or x in (inf, -inf):
            raise DlRuntimeError(f"{name} of {x!r} is not an Int")
        return int(f(x))
    g.__name__ = name
    return g


floor, ceil = _to_int(math.floor, "floor"), _to_int(math.ceil, "ceil")


def _round_half_away(x: float) -> float:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


round_ = _to_int(_round_half_away, "round")
