"""amap in reverse mode: a dl function's value and derivative per element, one backpropagator per array.

←D(amap f a) is `amapReverse fd a a'` with fd = ←D(f) (lang/transforms/arrays.py). Its
implementation runs, for each element x, the function one language deeper,
←D(→D(f)) — the language a `derivative` inside a function being
differentiated runs in (lang/back/languages.py) — on ((x, 0), (1, 0)): the
forward level gives f'(x), and whatever f captured from the program being
differentiated (a weight w in `fun v -> w * v`) keeps its backpropagator, so
its contributions are recorded on the same tape, one per element that uses it.
The array's own backpropagator is one record: `a' (c * f'(a))` plus, for each
element i whose value depends on captured reals, that element's
backpropagator applied to c[i].

The loop over elements is in Python: f is arbitrary dl code (with `if`
inside, recursion, ...), so there is no vectorised form of it.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model.primitives import array_kernel
from ..model.values import Code, call1
from .linear import GENERIC


def amap_reverse(compiler, e) -> Callable:
    """The implementation of `amapReverse` for code of `compiler` (a reverse language)."""
    import numpy as np  # only a program with arrays gets here (start-up of the others stays quick)
    kernel = compiler.machine.ad
    backend = compiler.linear
    apply_code = Code(1, _apply_rest, name="<amap backpropagator>", mode=compiler.name)

    def run(fd, a, a_bp) -> tuple[Any, Any]:
        deeper = kernel.deeper(compiler)
        f = kernel.lift_fun(fd, deeper, {})
        a = np.asarray(a, dtype=np.float64)
        y, dy = np.empty(a.shape), np.empty(a.shape)
        fy, fd_ = y.reshape(-1), dy.reshape(-1)
        rest: list = []  # (flat index, backpropagator) of elements that depend on captured reals
        for i, x in enumerate(a.flat):
            (value, bp), (slope, _) = call1(f, ((float(x), None), (1.0, None)))
            fy[i], fd_[i] = value, slope
            if bp is not None:
                rest.append((i, bp))
        if a_bp is None and not rest:
            return (y, None)
        record = (GENERIC, apply_code, (backend, a_bp, dy, rest))
        backend.records.append(record)
        if compiler.counting:
            compiler.counters.bp_created += 1
        return (y, len(backend.records) - 1)
    return run


def _apply_rest(captured, ct) -> None:
    """The body of amap's backpropagator: a' (c * f'(a)), and each element's own backpropagator c[i]."""
    backend, a_bp, slopes, rest = captured
    ct = array_kernel("arr")(ct)
    if a_bp is not None:
        backend.contribute(a_bp, slopes * ct)
    if rest:
        flat = ct.reshape(-1)
        for i, bp in rest:
            backend.contribute(bp, float(flat[i]))
