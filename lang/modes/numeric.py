"""The numeric mode: central finite differences on the untransformed program.

For each input real xi, with step h = ε^(1/3) · max(1, |xi|) (ε the machine
epsilon; the step that balances truncation error O(h²) against rounding
error O(ε/h) for central differences),

    ∂f/∂xi ≈ (f(x + h ei) - f(x - h ei)) / 2h

Two evaluations per input real (plus one for the value): the cost grows with
the number of inputs, and the accuracy is about ε^(2/3) ≈ 1e-11 relative at
best — worse where f is badly scaled or chaotic (the logistic map).

`jvp f x v` (and `derivative`) is one central difference in the direction v,

    J v ≈ (f(x + h v) - f(x - h v)) / 2h,     h = ε^(1/3) · max(1, max |xi|) / max |vi|

two evaluations whatever the number of inputs, the step scaled so that x
moves by about ε^(1/3) · max(1, |x|) as for a gradient.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

from ..back.kernel import passes
from ..model.values import call1
from .runtimes import Untransformed

STEP = sys.float_info.epsilon ** (1 / 3)


def step(x: float) -> float:
    return STEP * max(1.0, abs(x))


def with_reals(shapes, x: Any, t, reals: list) -> Any:
    """x with its reals replaced, in order; its Ints, Bools and Units kept (not a cotangent's zeros)."""
    it = iter(reals)
    return shapes.map_reals(x, t, lambda _: next(it))


class NumericRuntime(Untransformed):
    name = "numeric"
    exact = False  # an approximation: there are no paths to sum in another order

    def vjp(self, kernel, f, x, in_t, out_t):
        return vjp_numeric(kernel, f, x, in_t, out_t)

    def jvp(self, kernel, f, x, v, in_t, out_t):
        return jvp_numeric(kernel, f, x, v, in_t, out_t)


NUMERIC = NumericRuntime()


def vjp_numeric(kernel, f, x, in_t, out_t) -> tuple[Any, Callable]:
    counters = kernel.machine.counters
    shapes = kernel.shapes
    y = call1(f, x)
    xs = shapes.flatten(x, in_t)
    columns = []
    report = passes(kernel.machine, "numeric", 2 * len(xs), per=2)
    for i, xi in enumerate(xs):
        report(2 * i)
        h = step(xi)
        up, down = list(xs), list(xs)
        up[i], down[i] = xi + h, xi - h
        f_up = shapes.flatten(call1(f, with_reals(shapes, x, in_t, up)), out_t)
        f_down = shapes.flatten(call1(f, with_reals(shapes, x, in_t, down)), out_t)
        h2 = up[i] - down[i]  # the step actually taken, after rounding
        columns.append([(a - b) / h2 for a, b in zip(f_up, f_down)])
    counters.extra["evaluations"] = counters.extra.get("evaluations", 0) + 1 + 2 * len(xs)

    def pullback(u: Any) -> Any:
        us = shapes.flatten(u, out_t)
        grads = [sum(ui * dij for ui, dij in zip(us, column)) for column in columns]
        return shapes.rebuild(x, in_t, grads)
    return y, pullback


def jvp_numeric(kernel, f, x, v, in_t, out_t) -> tuple[Any, Any]:
    """(f x, J v) by one central difference in the direction v."""
    counters = kernel.machine.counters
    shapes = kernel.shapes
    y = call1(f, x)
    xs, vs = shapes.flatten(x, in_t), shapes.flatten(v, in_t)
    scale = max((abs(vi) for vi in vs), default=0.0)
    counters.extra["evaluations"] = counters.extra.get("evaluations", 0) + 1
    if scale == 0.0 or scale != scale:  # no direction (or no number): the tangent is 0 or nan
        return y, shapes.rebuild(y, out_t, [0.0 * scale] * len(shapes.flatten(y, out_t)))
    h = step(max((abs(xi) for xi in xs), default=0.0)) / scale
    up = [xi + h * vi for xi, vi in zip(xs, vs)]
    down = [xi - h * vi for xi, vi in zip(xs, vs)]
    f_up = shapes.flatten(call1(f, with_reals(shapes, x, in_t, up)), out_t)
    f_down = shapes.flatten(call1(f, with_reals(shapes, x, in_t, down)), out_t)
    counters.extra["evaluations"] += 2
    return y, shapes.rebuild(y, out_t, [(a - b) / (2 * h) for a, b in zip(f_up, f_down)])
