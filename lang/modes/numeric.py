"""The numeric mode: central finite differences on the untransformed program.

For each input real xi, with step h = ε^(1/3) · max(1, |xi|) (ε the machine
epsilon; the step that balances truncation error O(h²) against rounding
error O(ε/h) for central differences),

    ∂f/∂xi ≈ (f(x + h ei) - f(x - h ei)) / 2h

Two evaluations per input real (plus one for the value): the cost grows with
the number of inputs, and the accuracy is about ε^(2/3) ≈ 1e-11 relative at
best — worse where f is badly scaled or chaotic (the logistic map).
"""
from __future__ import annotations

import sys
from typing import Any, Callable

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

    def vjp(self, kernel, f, x, in_t, out_t):
        return vjp_numeric(kernel, f, x, in_t, out_t)


NUMERIC = NumericRuntime()


def vjp_numeric(kernel, f, x, in_t, out_t) -> tuple[Any, Callable]:
    counters = kernel.machine.counters
    shapes = kernel.shapes
    y = call1(f, x)
    xs = shapes.flatten(x, in_t)
    columns = []
    for i, xi in enumerate(xs):
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
