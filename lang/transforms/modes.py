"""The non-reverse modes (forward, tape, symbolic, numeric): filled in by the workbench."""
from __future__ import annotations

from ..errors import DlRuntimeError


def vjp(kernel, mode, f, x, in_t, out_t):
    raise DlRuntimeError(f"the {mode} mode is not available yet")


def jvp(kernel, f, x, v, in_t, out_t):
    raise DlRuntimeError("forward mode (jvp, derivative) is not available yet")


def compiler(machine, mode):
    raise DlRuntimeError(f"the {mode} mode is not available yet")
