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
    and Unit: lang/back/shapes.py) or built of lists and tuples of those (no
    arrays, at least one Real), and the output type Real.

For `value_and_grad` on Real * Real the entry is

    def entry(f, x):
        try:
            dual_f = f.code.info.get(compiler)        (a top-level function's transform)
            if dual_f is None:                        (a closure: its captured values lifted, directly where
                dual_f, given = lift_plain(f)         they are Ints, Reals, ..., lang/back/quick.py, else by
                ... or lift_fun(f, compiler, {})      the kernel; given: a partial application's arguments)
            ... the collector off (as in `vjp_recorded`) ...
                (a0, a1) = x
                saved = backend.records
                records = backend.records = [SINK, SINK]  (the inputs' sinks: identities 0 and 1)
                y, b = body(captured, ((a0, 0), (a1, 1)))    (←D(f) on the injected input)
                backend.records = saved
                adj = None if b is None else sweep_one(records, b, 1.0, 2)   (the backend's, or on a chain
                                                      or a short tape its result by a shorter way: quick.py)
            g0 = adj[0] ...; if g0 is None or type(g0) is Zero: g0 = 0.0   (settled)
            elif type(g0) is not float or g0 - g0 != 0.0:
                return (y, order_free(f, x, 1.0)) if nonfinite(adj, n) else general(f, x)
            ...
            return (y, (g0, g1))
        except DlRuntimeError as err:
            raise err.with_span(span)

It gives what the general path gives, bit for bit: the same transformed code
on the same injected input, the same records, the same sweep (the backend's
own, `Factoring.sweep_one`, or its result computed by the same operations:
lang/back/quick.py), the same settling of a plain finite gradient (a
sink nothing reached, or reached by the symbolic zero only, is 0.0). A
gradient real that is a float and not finite — inf or nan, which the kernel's
order-free pass must decide (docs/transforms.md, Zeros and infinities) — takes
that pass (`order_free_gradient`): the general path would run the entry's own
pass again first, to the same records (a call is deterministic: a data file
it reads is read again) and the same non-finite reals, then run ←D's own term
on x and sweep it from `Paths` seeds; the entry goes straight to the second
run, and counts it as the general path does (`order_free_passes`). A real of
another type (none today) is handed to the general path whole. (`g - g != 0.0`
is true exactly for inf and nan.)

A list input has as many sinks as reals, known at the call. For `[Real]`
(W4's `value_and_grad loss xs`) the entry injects with one comprehension,
`x_dual = list(zip(x, range(n)))` — the general path's own `inject` walk,
inlined — or, where ←D(f)'s body only folds over its parameter, builds no
pairs at all and calls that body compiled for the floats themselves, whose
loops number them (`raw_list_body`, lang/back/streams.py: the same element
and the same sink identity at each step); the gradient is the first n pending arguments, `adj[:n]`,
checked at C speed (`countOf(map(type, g), float) == n` and a finite sum: then
nothing needs settling, as `all_plain_finite` decides on the general path)
and settled one by one (`settled`) only where a sink holds None or the
symbolic zero, or the sum overflowed; any other input with lists (a list
of pairs, an MLP's `[[[Real]] * [Real]]`) uses the general path's walks
`inject` and `rebuild_leaves` (lang/back/shapes.py) around the same sweep,
which for such a type are generated too: one nested comprehension each
(`_nested_walk`), identities drawn from one counter, the gradient's lists
sliced from the pending arguments.
Per element the entry adds no Python-level work to the forward pass and
the sweep: the comprehension, the slice and the checks run in C.

`vjp f x` gets an entry of the same forward pass whose pullback sweeps the
records from the cotangent it is given, settled the same way; where that
gradient is not finite, the order-free pass from the same cotangent (for a
real of another type, the general path's vjp, made by running the call again,
and its pullback applied to it).
"""
from __future__ import annotations

import gc
import math
from itertools import islice
from operator import countOf
from typing import Any, Callable

from ..model.errors import DlRuntimeError
from ..model.types import REAL, TList, TTuple, Type, resolve
from ..model.values import call1, native
from ..model.zeros import Paths, Zero
from .linear import SINK
from .quick import plain_lifter, sweep_short
from .shapes import FIXED_LEAVES, fixed_shape
from .streams import RAW_KEY, raw_list_body

OPS = ("grad", "value_and_grad", "vjp")  # the primitives that have scalar entries

# the forward pass: ←D(f) on the injected input, recording on the backend with the collector off, as in
# `vjp_recorded` (the tape only grows meanwhile), and `sweep` (grad: with the collector still off); then
# `tail`, and after the guarded part `after`
_FORWARD = """\
def entry(f, x):
    try:
        dual_f = f.code.info.get(compiler)
        given = None
        if dual_f is None:  # a closure of Ints, Reals, ... lifted directly (lang/back/quick.py); given: the
            dual_f, given = lift_plain(f)  # arguments of a partial application that dual_f takes with x
            if dual_f is None:
                dual_f = lift_fun(f, compiler, {{}})
        collecting = isenabled()
        disable()
        try:
            {inject}
            saved = backend.records
            records = backend.records = {sinks}
            try:
                if raw is not None:  # (x's floats for its dual pairs: lang/back/streams.py)
                    y_dual = raw(dual_f.captured, x)
                elif given is None:
                    y_dual = dual_f.body(dual_f.captured, x_dual) if dual_f.arity == 1 else call1(dual_f, x_dual)
                else:
                    y_dual = dual_f.body(dual_f.captured, *given, x_dual)
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
_SWEEP = "adj = None if b is None else sweep_one(records, b, {seed}, n)"
# grad and value_and_grad: the tape and the injected input let go while the collector is still off. Held on,
# the first allocation after `enable()` (the gradient's list) would start a collection that walks them all —
# every record and every injected pair, allocated while it was off (W5: a quarter of the call) — and keep
# them for the next generations' collections to walk again; let go, they are freed by their counts. (vjp: the
# injected input only, its pullback sweeps the records later.)
_DROP = "records = x_dual = y_dual = None"
_DROP_INPUT = "x_dual = y_dual = None"
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

# what the entry does with a gradient it does not settle: where a real is a float and not finite, the order-free
# pass from the entry's cotangent (`order_free_gradient`); otherwise (a real of another type) the general path
_FALLBACK = "{done} if nonfinite(adj, n) else {general}"

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


# a list input: the gradient's reals are the first n pending arguments, checked at C speed (every one a float —
# counted by identity, twice as fast as `set(map(type, g)) <= {float}` — and their sum finite: nothing to
# settle), else settled one by one (`settled`)
_SETTLE_LIST = """\
        if adj is None:
            g = [0.0] * n
        else:
            g = adj[:n]
            if not (count(map(type, g), float) == n and isfinite(sum(g))):
                g = settled(g)
                if g is None:
                    return {fallback}"""


def settled(g: list) -> list | None:
    """A list input's gradient reals settled one by one (None and the symbolic zero as 0.0), or None where one
    is not a finite float (the general path's order-free pass decides it)."""
    out = []
    for r in g:
        if r is None or type(r) is Zero:
            out.append(0.0)
        elif type(r) is not float or r - r != 0.0:
            return None
        else:
            out.append(r)
    return out


def nonfinite(adj: list, n: int) -> bool:
    """Whether one of the first n pending arguments (the gradient's reals) is a float that is inf or nan: then
    the general path would take the order-free pass (`finite`, lang/model/zeros.py, is false for it alone)."""
    return any(type(g) is float and g - g != 0.0 for g in islice(adj, n))


def order_free_gradient(kernel, f, x, in_t: Type, out_t: Type, u: float) -> Any:
    """The gradient the general path gives where the entry's is not finite, without running the entry's own pass
    again: the general path (`ADKernel.vjp`) runs f's preaccumulated term a second time — the same records, the
    same non-finite reals, by determinism — and then the order-free pass, ←D's own term run on x and swept from
    the `Paths` seed u (its `settling` pullback: lang/back/kernel.py, `vjp_recorded`), outside the counters
    and counted as one `order_free_passes`, settled. This is that pass. Without preaccumulation the entry's
    records are ←D's own already; they are recorded once more here, as the general path's second run does."""
    def again() -> Any:
        _, pullback = kernel.vjp_reverse(f, x, in_t, out_t, kernel.machine.runtime, faithful=True)
        return pullback.settling(Paths.seed(u))
    # The collector stays off from the forward pass to the end of the sweep, as in the entry: `vjp_recorded`
    # turns it on between them, and the first allocation then would walk the whole tape (young, and freed
    # by its last reference when `again` returns).
    collecting = gc.isenabled()
    gc.disable()
    try:
        g = kernel.uncounted(again)
    finally:
        if collecting:
            gc.enable()
    return kernel.settle(g, in_t)


def _fixed_parts(in_t: Type, fallback: str) -> tuple[str, str, str, str] | None:
    """(injecting, the sinks, settling, the gradient) as source for a fixed input type; None for another."""
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
    settle = _SETTLE.format(zeros=" = ".join(f"g{i}" for i in range(n)) + " = 0.0",
                            each="".join(_EACH.format(k=i, fallback=fallback) for i in range(n))).rstrip("\n")
    return (f"{pattern} = x\n            x_dual = {injected}\n            n = {n}\n            raw = None", "[" + ", ".join(["SINK"] * n) + "]",
            settle, gradient)


def leaf_types(t: Type) -> set | None:
    """The leaf types of t, if it is built of lists and tuples from Real, Int, Bool and Unit (no arrays, no
    functions); else None."""
    match t:
        case TList(item):
            return leaf_types(item)
        case TTuple(items) if len(items) >= 2:
            parts = [leaf_types(i) for i in items]
            return None if None in parts else set().union(*parts)
        case _:
            return {t} if t in FIXED_LEAVES else None


def _list_parts(in_t: Type, fallback: str) -> tuple[str, str, str, str] | None:
    """The same for an input type with lists: [Real] injected by one comprehension and its gradient the
    pending arguments' list itself; any other (a tuple of lists, a list of tuples, ...) by the general path's
    own walks, `inject` and `rebuild` (lang/back/shapes.py)."""
    if REAL not in (leaf_types(in_t) or ()):
        return None
    settle = _SETTLE_LIST.format(fallback=fallback)
    if in_t == TList(REAL):
        return "n = len(x)\n            raw = None if given is not None else dual_f.code.info.get(RAW, False)\n" \
               "            if raw is False:\n" \
               "                raw = raw_list(compiler, dual_f.code)\n" \
               "            x_dual = None if raw is not None else list(zip(x, range(n)))", "[SINK] * n", settle, "g"
    return "x_dual, n = inject(x, 0)\n            raw = None", "[SINK] * n", settle, "rebuild(x, g, 0)[0]"


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
    done = {"grad": "order_free(f, x, 1.0)", "value_and_grad": "(y, order_free(f, x, 1.0))",
            "vjp": "order_free(f, x, u)"}
    fallback = _FALLBACK.format(done=done[op], general="again(u)" if op == "vjp" else "general(f, x)")
    parts = _fixed_parts(in_t, fallback) or _list_parts(in_t, fallback)
    if parts is None:
        return None
    inject, sinks, settle, gradient = parts
    if op == "vjp":
        sweep, tail = "            " + _DROP_INPUT, ""
        after = _PULLBACK.format(sweep=_SWEEP.format(seed="u"), tail=_RETURN.format(settle=settle, result=gradient))
    else:
        sweep = "            " + _SWEEP.format(seed="1.0") + "\n            " + _DROP
        tail = _RETURN.format(settle=settle, result=f"(y, {gradient})" if op == "value_and_grad" else gradient)
        after = ""
    src = _FORWARD.format(inject=inject, sinks=sinks, sweep=sweep, tail=tail, after=after)
    compiler = kernel.top_reverse(runtime)
    backend = kernel.backends[runtime.name]
    walks = kernel.shapes.io(in_t, out_t)
    namespace = {"compiler": compiler, "backend": backend, "sweep_one": sweep_short(backend.sweep_one),
                 "lift_fun": kernel.lift_fun, "lift_plain": plain_lifter(compiler),
                 "SINK": SINK, "Zero": Zero, "call1": call1, "native": native, "isenabled": gc.isenabled,
                 "disable": gc.disable, "enable": gc.enable, "DlRuntimeError": DlRuntimeError, "span": span,
                 "general": general, "inject": walks.inject, "rebuild": walks.rebuild_leaves_in,
                 "settled": settled, "count": countOf, "isfinite": math.isfinite, "nonfinite": nonfinite,
                 "raw_list": raw_list_body, "RAW": RAW_KEY,
                 "order_free": lambda f, x, u: order_free_gradient(kernel, f, x, in_t, out_t, u)}
    exec(compile(src, f"<{op} entry>", "exec"), namespace)
    entry = namespace["entry"]
    entry.source = src  # (what a test or a curious reader can print)
    return entry


__all__ = ["scalar_entry", "OPS"]
