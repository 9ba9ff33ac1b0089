"""amap's kernels: a dl function applied to each element of an Array (docs/reference.md §5, Arrays).

A module of its own because it calls dl function values (lang/model/values.py), which print arrays
through lang/model/arrays.py: kept apart, the two import in one direction only.
"""
from __future__ import annotations

import numpy as np

from .arrays import arr
from .values import call1


def amap(f, a) -> np.ndarray:
    """f applied to each element (a Python loop: f is dl code)."""
    a = arr(a)
    out = np.empty(a.shape)
    flat = out.reshape(-1)
    for i, x in enumerate(a.flat):
        flat[i] = call1(f, float(x))
    return out


def amapForward(f_dot, a, a_dot):
    """→D(amap f a): →D(f) on each (element, tangent), which accounts for what f captures too."""
    a, a_dot = arr(a), np.broadcast_to(arr(a_dot), np.shape(a))
    y, y_dot = np.empty(a.shape), np.empty(a.shape)
    fy, fd = y.reshape(-1), y_dot.reshape(-1)
    for i, (x, t) in enumerate(zip(a.flat, a_dot.flat)):
        fy[i], fd[i] = call1(f_dot, (float(x), float(t)))
    return (y, y_dot)
