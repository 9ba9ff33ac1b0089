"""Scalar entries: `grad f x`, `value_and_grad f x` and `vjp f x` of primal code in one generated function.

The general path of such a call (lang/back/kernel.py) goes through ten Python
calls — the site's function, `guard`, `value_and_grad`, `vjp`, the runtime's
`vjp`, `vjp_reverse`, `vjp_recorded`, the pullback and its settling wrapper,
`Factoring.backward` — and the walks of the input and output types; on a
function of a few reals that glue costs ten times the function itself. For
the commonest call a site instead gets an entry generated for its input type
that does the same steps in straight-line code. It applies when

    the mode's runtime says so (`scalar_entries`: ←D with linear factoring,
    lang/modes/runtimes.py), the machine is not counting (`--cost`),
    the site is primal code (not nested inside a function being differentiated),
    the input type is fixed (Real, or a tuple, nested or not, of Real, Int, Bool
    and Unit: lang/back/shapes.py) and the output type Real.

For `value_and_grad` on Real * Real the entry is

    def entry(f, x):
        try:
            dual_f = f.code.info.get(compiler)        (a top-level function's transform)
            if dual_f is None:
                dual_f = lift_fun(f, compiler, {})    (a closure: its captured values lifted)
            (a0, a1) = x
            saved = backend.records
            records = backend.records = [SINK, SINK]  (the inputs' sinks: identities 0 and 1)
            ... the collector off (as in `vjp_recorded`) ...
                y, b = body(captured, ((a0, 0), (a1, 1)))    (←D(f) on the injected input)
                backend.records = saved
                adj = None if b is None else backend.sweep_one(records, b, 1.0, 2)
            g0 = adj[0] ...; if g0 is None or type(g0) is Zero: g0 = 0.0   (settled)
            elif type(g0) is not float or g0 - g0 != 0.0: return general(f, x)
            ...
            return (y, (g0, g1))
        except DlRuntimeError as err:
            raise err.with_span(span)

It gives what the general path gives, bit for bit: the same transformed code
on the same injected input, the same records, the same sweep (the backend's
own, `Factoring.sweep_one`), the same settling of a plain finite gradient (a
sink nothing reached, or reached by the symbolic zero only, is 0.0). A
gradient real that is not a finite float — inf or nan, which the kernel's
order-free pass must decide (docs/transforms.md, Zeros and infinities) — is
handed to the general path, which runs the call again from the start: a call
is deterministic (a data file it reads is read again), so it records the same
tape, and it gives today's value and counts its order-free pass. (`g - g != 0.0` is true exactly for inf and nan.)

`vjp f x` gets an entry of the same forward pass whose pullback sweeps the
records from the cotangent it is given, settled the same way; where that
gradient is not finite, the general path's vjp is made (the call run again)
and its pullback applied to the same cotangent.
"""
from __future__ import annotations

import gc
from typing import Any, Callable

from ..model.errors import DlRuntimeError
from ..model.types import REAL, Type, resolve
from ..model.values import call1, native
from ..model.zeros import Zero
from .linear import SINK
from .shapes import FIXED_LEAVES, fixed_shape

OPS = ("grad", "value_and_grad", "vjp")  # the primitives that have scalar entries

# the forward pass: ←D(f) on the injected input, recording on the backend with the collector off, as in
# `vjp_recorded` (the tape only grows meanwhile), and `sweep` (grad: with the collector still off); then
# `tail`, and after the guarded part `after`
_FORWARD = """\
def entry(f, x):
    try:
        dual_f = f.code.info.get(compiler)
        if dual_f is None:
            dual_f = lift_fun(f, compiler, {{}})
        {pattern} = x
        saved = backend.records
        records = backend.records = [{sinks}]
        x_dual = {injected}
        collecting = isenabled()
        disable()
        try:
            try:
                y_dual = dual_f.body(dual_f.captured, x_dual) if dual_f.arity == 1 else call1(dual_f, x_dual)
            finally:
                backend.records = saved
            y, b = y_dual
{sweep}
        finally:
            if collecting:
                enable()
{tail}
    except DlRuntimeError as err:
        raise err.with_span(span)
{after}"""

# the sweep from the seed (the backend's `sweep_one`, bound once); the gradient settled and returned
_SWEEP = "adj = None if b is None else sweep_one(records, b, {seed}, {n})"
_RETURN = """\
{settle}
        return {result}"""

# vjp: the pullback sweeps the same records from the cotangent it is given (as many times as it is called).
# A gradient that is not finite: the general path's vjp, made by running the call again, and its pullback
# applied to the same cotangent (the order-free pass).
_PULLBACK = """\

    def pullback(u):
        collecting = isenabled()
        disable()
        try:
            {sweep}
        finally:
            if collecting:
                enable()
{tail}

    def again(u):
        return general(f, x)[1].body((), u)
    return (y, native(1, pullback, "<pullback>"))
"""

# each real of the gradient settled: None (nothing reached its sink) and the symbolic zero are 0.0; a float
# that is inf or nan (g - g != 0.0), or anything else, goes to the general path
_SETTLE = """\
        if adj is None:
            {zeros}
        else:
{each}"""
_EACH = """\
            g{k} = adj[{k}]
            if g{k} is None or type(g{k}) is Zero:
                g{k} = 0.0
            elif type(g{k}) is not float or g{k} - g{k} != 0.0:
                return {fallback}
"""


def scalar_entry(kernel, op: str, in_t: Type, out_t: Type, span, general: Callable[[Any, Any], Any]) \
        -> Callable[[Any, Any], Any] | None:
    """The generated entry of a `grad`, `value_and_grad` or `vjp` site of primal code from `in_t` to `out_t`,
    or None where the general path must run (see the module's docstring). `general(f, x)` is the kernel's
    general path, unguarded: the entry wraps it with the site's span as it wraps itself."""
    machine = kernel.machine
    runtime = machine.runtime
    if op not in OPS or machine.counting or not runtime.scalar_entries or resolve(out_t) != REAL:
        return None
    in_t = resolve(in_t)
    kinds: list[Type] = []
    pattern = fixed_shape(in_t, lambda k, t: kinds.append(t) or f"a{k}")
    if pattern is None:
        return None
    reals = [k for k, t in enumerate(kinds) if t == REAL]
    if not reals:
        return None
    sink = {k: i for i, k in enumerate(reals)}  # leaf k's identity, for a Real leaf
    injected = fixed_shape(in_t, lambda k, t: f"(a{k}, {sink[k]})" if t == REAL else f"a{k}")
    gradient = fixed_shape(in_t, lambda k, t: f"g{sink[k]}" if t == REAL else FIXED_LEAVES[t])
    n = len(reals)
    fallback = "again(u)" if op == "vjp" else "general(f, x)"
    settle = _SETTLE.format(zeros=" = ".join(f"g{i}" for i in range(n)) + " = 0.0",
                            each="".join(_EACH.format(k=i, fallback=fallback) for i in range(n))).rstrip("\n")
    if op == "vjp":
        sweep, tail = "", ""
        after = _PULLBACK.format(sweep=_SWEEP.format(seed="u", n=n), tail=_RETURN.format(settle=settle,
                                                                                          result=gradient))
    else:
        sweep = "            " + _SWEEP.format(seed="1.0", n=n)
        tail = _RETURN.format(settle=settle, result=f"(y, {gradient})" if op == "value_and_grad" else gradient)
        after = ""
    src = _FORWARD.format(pattern=pattern, sinks=", ".join(["SINK"] * n), injected=injected, sweep=sweep,
                          tail=tail, after=after)
    compiler = kernel.top_reverse(runtime)
    backend = kernel.backends[runtime.name]
    namespace = {"compiler": compiler, "backend": backend, "sweep_one": backend.sweep_one, "lift_fun": kernel.lift_fun,
                 "SINK": SINK, "Zero": Zero, "call1": call1, "native": native, "isenabled": gc.isenabled,
                 "disable": gc.disable, "enable": gc.enable, "DlRuntimeError": DlRuntimeError, "span": span,
                 "general": general}
    exec(compile(src, f"<{op} entry>", "exec"), namespace)
    entry = namespace["entry"]
    entry.source = src  # (what a test or a curious reader can print)
    return entry


__all__ = ["scalar_entry", "OPS"]
