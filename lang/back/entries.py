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
and the same sink identity at each step); the gradient is the first n pending arguments, `adj[:n]`
(the list itself where it holds the sinks only, as a chain on them in order gives it),
checked at C speed (a finite float sum, and the types counted where a real
equals 0.0, as the symbolic zero does: then nothing needs settling, as
`all_plain_finite` decides on the general path) and settled one by one
(`settled`) only where a sink holds None or the symbolic zero, or the sum
overflowed; any other input with lists (a list
of pairs, an MLP's `[[[Real]] * [Real]]`) uses the general path's walks
`inject` and `rebuild_leaves` (lang/back/shapes.py) around the same sweep,
which for such a type are generated too: one nested comprehension each
(`_nested_walk`), identities drawn from one counter, the gradient's lists
sliced from the pending arguments.
Per element the entry adds no Python-level work to the forward pass and
the sweep: the comprehension, the slice and the checks run in C.

The [Real] entry of `grad` and `value_and_grad` looks for that body first, before any lifting or injecting.
And from its first call with a top-level function f that has one, the site calls a function of its own made
for f (`fuse`; the site's code calls `site.call(f, x)`, Gen.primitive): the body's statements written inside
the entry's pass itself (`streams.raw_list_lines`), so that a call is one Python frame with no lookup of f's
transform or body; a fold's chain over all the sinks from nothing, the commonest tape, is taken first and its
weights returned as they are when they are finite floats none equal to 0.0, otherwise the same sweep and
settling as the entry's. Called with another function, it calls the entry. Below GC_INPUTS inputs it leaves the
collector as it is: the pass allocates about a record a step, too few for a collection, and switching it costs
a twentieth of W4's call at n = 10. The same operations in the same order: the entry's bits and counters.

Where the site writes a partial application of a top-level function (`value_and_grad (recur n) y`), its
code calls `entry.partial(k)(g, a1, .., ak, x)` (Gen.primitive): the same entry, with g's transform called on
a1 .. ak and the injected input where `plain_lifter` would do that (the transform made, the arguments Ints,
Bools or Strings), else the entry on the closure `g a1 .. ak` made then; the closure is made only where the
general path or the order-free pass needs it. The entry with seed 1.0 also sweeps the two commonest tapes
itself, as `sweep_short` does: a chain of links from the seed (one product), one fold's chain after the
sinks (`sweep_chain`).

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
from ..model.values import Fun, call1, native, partial_code
from ..model.zeros import Paths, Zero
from .chains import sweep_chain, sweep_scaled
from .compiler import RUNTIME_NAMES
from .linear import SINK
from .replay import overflowed_gradient
from .quick import PLAIN, partial_lifter, plain_lifter, sweep_short
from .shapes import FIXED_LEAVES, fixed_shape
from .streams import RAW_KEY, raw_list_body, raw_list_lines

OPS = ("grad", "value_and_grad", "vjp")  # the primitives that have scalar entries

# the forward pass: ←D(f) on the injected input, recording on the backend with the collector off, as in
# `vjp_recorded` (the tape only grows meanwhile), and `sweep` (grad: with the collector still off); then
# `tail`, and after the guarded part `after`
_FORWARD = """\
{head}
    try:
{lift}
{forward}
{tail}
    except DlRuntimeError as err:
        raise err.with_span(span)
{after}"""
_PASS = """\
        collecting = isenabled()
        disable()
        try:
            {inject}
            saved = backend.records
            records = backend.records = {sinks}
            try:
{call}
            finally:
                backend.records = saved
            y, b = y_dual
{sweep}
        finally:
            if collecting:
                enable()"""

# a [Real] whose ←D(f) has a body that folds over x's floats (lang/back/streams.py; compiled by the general
# path's first call, below): that body called at once, without the lifting, the injection and the choice of
# call, as W4's gradient is at small n; the same pass, sweep and settling as the general path
_RAW_FIRST = """\
{lookup}        raw = None if dual_f is None else dual_f.code.info.get(RAW)
        if raw is not None:
            if site.fresh:  # (the site's first such call: its own function of f, `fuse`, called from now on)
                fuse(f, dual_f)
{raw_pass}
        else:
{lift}
{forward}"""
_RAW_CALL = "                y_dual = raw(dual_f.captured, x)"

# a site's own function of the one function F it has been called with that has such a body: the body's lines
# written where the entry calls it (one Python frame fewer, and no lookup of the transform or the body), in the
# same pass, with the same sweep and settling (the general sweep's first case, a fold's chain on the sinks in
# order, taken first and its gradient returned where the settling would return it as it is); called with another
# function, the site's entry. The collector is switched off for GC_INPUTS inputs or more: below, the pass
# allocates too few objects for a collection to walk (a fold's loop over n floats: about one record a step), and
# switching it costs a twentieth of the call (W4 at n = 10)
_FUSED = """\
def fused(f, x):
    if f is not F:
        return entry(f, x)
    try:
        n = len(x)
        collecting = n >= GC_INPUTS and isenabled()
        if collecting:
            disable()
        try:
            saved = backend.records
            records = backend.records = [SINK] * n
            try:
{call}
            finally:
                backend.records = saved
            y, b = y_dual
            if b == n and type(chain := records[b]) is list and chain[1] == 0 and chain[0] is None \\
                    and chain[2] == 0 and len(chain) - 3 == n:
                del chain[:3]
                records = y_dual = None
                try:
                    total = sum(chain)
                except TypeError:
                    total = None
                if type(total) is float and total - total == 0.0 \\
                        and (0.0 not in chain or count(map(type, chain), float) == n):
                    return {result}
                adj, overflowed = chain, None
            else:
{sweep}
        finally:
            if collecting:
                enable()
{tail}
    except DlRuntimeError as err:
        raise err.with_span(span)
"""


GC_INPUTS = 256


class Site:
    """What a site's code calls, `site.call(f, x)` (Gen.primitive): the site's entry, until the entry has made the
    site's own function of the function it is called with (`_FUSED`); `fresh` until the entry has tried."""
    __slots__ = ("call", "fresh")

    def __init__(self, call: Callable):
        self.call, self.fresh = call, True


_LOOKUP = """\
        dual_f = f.code.info.get(compiler)
"""
_LIFT = _LOOKUP + """\
        given = None
        if dual_f is None:  # a closure of Ints, Reals, ... lifted directly (lang/back/quick.py); given: the
            dual_f, given = lift_plain(f)  # arguments of a partial application that dual_f takes with x
            if dual_f is None:
                dual_f = lift_fun(f, compiler, {})"""

_CALL = """\
                if raw is not None:  # (x's floats for its dual pairs: lang/back/streams.py)
                    y_dual = raw(dual_f.captured, x)
                elif given is None:
                    y_dual = dual_f.body(dual_f.captured, x_dual) if dual_f.arity == 1 else call1(dual_f, x_dual)
                else:
                    y_dual = dual_f.body(dual_f.captured, *given, x_dual)"""

# the entry of a site whose function is a partial application of a top-level function written there
# (`value_and_grad (recur n) y`): the function (`head`) and the arguments, no closure made; where `lift_plain`
# would not give head's transform and the arguments as they are, the entry on the closure (made then, as where
# it is needed below: `whole`)
_LIFT_PARTIAL = """\
        dual_f = head.code.info.get(compiler)  # (`partial_lifter`, written out)
        if dual_f is None or dual_f.arity != {arity} or {plain}:
            return entry(whole(head, ({given},)), x)
        given = ({given},)  # (read by the input's injection: no raw floats for a partial application)"""
_CALL_PARTIAL = """\
                y_dual = dual_f.body(dual_f.captured, {given}, x_dual)"""

# the sweep from the seed (the backend's `sweep_one`, bound once); the gradient settled and returned
_SWEEP = "adj = None if b is None else sweep_one(records, b, {seed}, n)"

# the same where the seed is 1.0, with the commonest tapes written out (what a scalar loop's gradient costs at
# small n): a fold's chain after the sinks, swept as `sweep_short`'s loop sweeps it — where it is the sinks' in
# order from nothing (a sum over a [Real]'s floats: lang/back/streams.py), its weights are the gradient, as
# `sinks_of_chain` gives them, taken from the chain itself; one chain of links from the seed down to the last
# sink, its product at once (as `sweep_short`)
_SWEEP_ONE = """\
            if b == n and type(chain := records[b]) is list:  # (one chain after the sinks, a fold's, whose parents
                # are the sinks; a record after it is none of b's)
                if chain[1] == 0 and chain[0] is None and chain[2] == 0 and len(chain) - 3 == n:
                    del chain[:3]  # (on the sinks 0 .. n - 1 in order, each once, from nothing: from the seed 1.0
                    adj = chain    # the weights are the gradient, as `sinks_of_chain` gives them; the tape is
                else:              # dropped below)
                    adj = [None] * n
                    if type(chain[1]) is tuple:
                        sweep_scaled(chain, adj, 1.0)
                    else:
                        sweep_chain(chain, adj, 1.0)
            elif b is None:
                adj = None
            elif b == n == len(records) - 1 and type(rec := records[b]) is tuple and len(rec) in (4, 6):
                adj = [None] * n  # (one record after the sinks, the seed's, of two or three parents: a preaccumulated
                if len(rec) == 4:  # function of a few reals, W1, W6; swept as `sweep_short` sweeps it)
                    q, w, r, u = rec
                else:
                    q, w, r, u, s, t = rec
                adj[q] = w * 1.0
                old = adj[r]
                adj[r] = u * 1.0 if old is None else old + u * 1.0
                if len(rec) == 6:
                    old = adj[s]
                    adj[s] = t * 1.0 if old is None else old + t * 1.0
            elif type(records[-1]) is tuple:  # (a record, or a sink: not one of the two)
                adj = sweep_one(records, b, 1.0, n)
            elif b == len(records) - 1 >= n and type(records[b]) is float and type(records[n]) is float:
                try:
                    run = prod(records[:n - 1:-1], start=1.0)
                except TypeError:  # (a record: a tuple, or a chain's list)
                    run = None
                if type(run) is float:
                    if run - run != 0.0:  # (not finite: the order-free pass may replay the loop's steps around the
                        overflowed = records  # overflow from this tape's notes: lang/back/replay.py)
                    adj = [None] * n
                    adj[n - 1] = run
                else:
                    adj = sweep_one(records, b, 1.0, n)
            else:
                adj = sweep_one(records, b, 1.0, n)"""
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
            if type(g{k}) is not float or g{k} - g{k} != 0.0:
                if g{k} is None or type(g{k}) is Zero:
                    g{k} = 0.0
                else:
                    return {fallback}
"""


# a list input: the gradient's reals are the first n pending arguments, checked at C speed, else settled one by
# one (`settled`). Nothing to settle where their sum is a finite float: a None makes `sum` raise, a numpy number
# or a `Paths` makes the sum one, an inf or a nan makes it inf or nan (or a finite sum too large, which settles
# the same way) — and where no real equals 0.0, which the symbolic zero does (a float subclass that `sum` adds as
# its value): only then are the types counted (by identity, twice as fast as `set(map(type, g)) <= {float}`).
# An int would pass as a float, which no real of ←D's language at depth 0 is (the reals the entries read are
# products and sums of the input's floats and the program's; `float` makes one of an Int).
_SETTLE_LIST = """\
        if adj is None:
            g = [0.0] * n
        else:
            g = adj if len(adj) == n else adj[:n]  # (a list of the sinks only is the sweep's own: no copy)
            try:
                total = sum(g)
            except TypeError:  # (a None: a sink nothing reached)
                total = None
            if type(total) is not float or total - total != 0.0 or 0.0 in g and count(map(type, g), float) != n:
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


def order_free_gradient(kernel, f, x, in_t: Type, out_t: Type, u: float, tape: list | None = None) -> Any:
    """The gradient the general path gives where the entry's is not finite, without running the entry's own pass
    again: the general path (`ADKernel.vjp`) runs f's preaccumulated term a second time — the same records, the
    same non-finite reals, by determinism — and then the order-free pass, ←D's own term run on x and swept from
    the `Paths` seed u (its `settling` pullback: lang/back/kernel.py, `vjp_recorded`), outside the counters
    and counted as one `order_free_passes`, settled. This is that pass. Without preaccumulation the entry's
    records are ←D's own already; they are recorded once more here, as the general path's second run does.
    `tape`: the entry's records where they are the input's sink and links whose product overflowed: ←D's own
    term is replayed first on the loop's steps around the overflow only (lang/back/replay.py), which decides
    a nan (a nan, settled, is settled)."""
    runtime = kernel.machine.runtime

    def again() -> Any:
        if tape is not None:
            backend = kernel.backends[runtime.name]
            notes, backend.checkpoints = backend.checkpoints, None
            decided = overflowed_gradient(kernel, f, x, runtime, tape, notes)
            if decided is not None:
                return decided
        _, pullback = kernel.vjp_reverse(f, x, in_t, out_t, runtime, faithful=True)
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


# where the general path compiles f's body on floats, the site's own function of f made (`fuse`), as the raw-first
# path does on a later call (so that the first call, not the second, pays for compiling it)
_FUSE_FIRST = "                if raw is not None and site.fresh and dual_f is f.code.info.get(compiler):\n" \
              "                    fuse(f, dual_f)\n"


def _list_parts(in_t: Type, fallback: str, fusing: bool) -> tuple[str, str, str, str] | None:
    """The same for an input type with lists: [Real] injected by one comprehension and its gradient the
    pending arguments' list itself (`fusing`: the site's own function of f made where f's body is compiled on
    floats); any other (a tuple of lists, a list of tuples, ...) by the general path's own walks, `inject` and
    `rebuild` (lang/back/shapes.py)."""
    if REAL not in (leaf_types(in_t) or ()):
        return None
    settle = _SETTLE_LIST.format(fallback=fallback)
    if in_t == TList(REAL):
        return "n = len(x)\n            raw = None if given is not None else dual_f.code.info.get(RAW, False)\n" \
               "            if raw is False:\n" \
               "                raw = raw_list(compiler, dual_f.code)\n" + (_FUSE_FIRST if fusing else "") + \
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
    done = {"grad": "order_free(f, x, 1.0, overflowed)", "value_and_grad": "(y, order_free(f, x, 1.0, overflowed))",
            "vjp": "order_free(f, x, u)"}
    fallback = _FALLBACK.format(done=done[op], general="again(u)" if op == "vjp" else "general(f, x)")
    parts = _fixed_parts(in_t, fallback) or _list_parts(in_t, fallback, op != "vjp")
    if parts is None:
        return None
    inject, sinks, settle, gradient = parts
    inject_partial = inject.replace(_FUSE_FIRST, "")  # (a partial application's entry has no f: no fusing)
    compiler = kernel.top_reverse(runtime)
    backend = kernel.backends[runtime.name]
    quick_sweep = sweep_short(backend.sweep_one)  # (a test makes it the backend's own sweep)
    if op == "vjp":
        sweep, tail = "            " + _DROP_INPUT, ""
        after = _PULLBACK.format(sweep=_SWEEP.format(seed="u"), tail=_RETURN.format(settle=settle, result=gradient))
    else:
        # (the two tapes `sweep_short` sweeps at once, written out: not where a test gives the backend's own sweep)
        sweep = "            overflowed = None\n" + (_SWEEP_ONE if quick_sweep is not backend.sweep_one else "            " + _SWEEP.format(seed="1.0")) + "\n            " + _DROP
        tail = _RETURN.format(settle=settle, result=f"(y, {gradient})" if op == "value_and_grad" else gradient)
        after = ""
    forward = _PASS.format(inject=inject, sinks=sinks, call=_CALL, sweep=sweep)
    lift = _LIFT
    if in_t == TList(REAL) and op != "vjp":
        raw_pass = _PASS.format(inject="n = len(x)", sinks=sinks, call=_RAW_CALL, sweep=sweep)
        lift, forward = _RAW_FIRST.format(lookup=_LOOKUP, raw_pass=_indent(raw_pass),
                                          lift=_indent(lift.removeprefix(_LOOKUP)), forward=_indent(forward)), ""
    src = _FORWARD.format(head="def entry(f, x):", lift=lift, forward=forward, tail=tail, after=after)
    walks = kernel.shapes.io(in_t, out_t)
    namespace = {"compiler": compiler, "backend": backend, "sweep_one": quick_sweep,
                 "lift_fun": kernel.lift_fun, "lift_plain": plain_lifter(compiler),
                 "whole": whole, "prod": math.prod, "sweep_chain": sweep_chain, "sweep_scaled": sweep_scaled,
                 "as_is": PLAIN if partial_lifter(compiler) else frozenset(),
                 "SINK": SINK, "Zero": Zero, "call1": call1, "native": native, "isenabled": gc.isenabled,
                 "disable": gc.disable, "enable": gc.enable, "DlRuntimeError": DlRuntimeError, "span": span,
                 "general": general, "inject": walks.inject, "rebuild": walks.rebuild_leaves_in,
                 "settled": settled, "count": countOf, "isfinite": math.isfinite, "nonfinite": nonfinite,
                 "raw_list": raw_list_body, "RAW": RAW_KEY,
                 "order_free": lambda f, x, u, tape=None: order_free_gradient(kernel, f, x, in_t, out_t, u, tape)}
    exec(compile(src, f"<{op} entry>", "exec"), namespace)
    entry = namespace["entry"]
    entry.source = src  # (what a test or a curious reader can print)
    entry.site = namespace["site"] = site = Site(entry)
    made: dict = {}

    def fuse(f, dual_f) -> None:
        """The site's own function of f (`_FUSED`), called from now on, where ←D(f)'s raw body can be written as
        statements (not where Python refuses its nesting)."""
        site.fresh = False
        gen = raw_list_lines(compiler, dual_f.code, "y_dual")
        if gen is None:
            return
        lines = ["c = captured", f"{gen.params[0]} = x", *(f"{k} = {v}" for k, v in gen.prologue.items()), *gen.lines]
        call = "\n".join(" " * 16 + ln for ln in lines)
        fused_src = _FUSED.format(call=call, sweep=_indent(sweep), tail=tail,
                                  result="(y, chain)" if op == "value_and_grad" else "chain")
        names = {**namespace, **RUNTIME_NAMES, **gen.consts, "F": f, "captured": dual_f.captured, "entry": entry,
                 "GC_INPUTS": GC_INPUTS}
        try:
            code = compile(fused_src, f"<{op} entry of {dual_f.code.name}>", "exec")
        except (SyntaxError, RecursionError, MemoryError):  # (too deeply nested: the entry goes on calling the body)
            return
        exec(code, names)
        site.call = names["fused"]
        site.call.source = fused_src
    namespace["fuse"] = fuse

    def partial(k: int) -> Callable:
        """The same entry for a partial application `g a1 .. ak` written at the site (Gen.primitive):
        `entry_partial(g, given0, .., x)`, the closure made only where the general path or the order-free pass
        needs it, or where `plain_lifter` would not lift it as g's transform and the arguments."""
        if k not in made:
            given = ", ".join(f"given{i}" for i in range(k))
            plain = " or ".join(f"type(given{i}) not in as_is" for i in range(k))
            whole_f = f"whole(head, ({given},))"
            part = _FORWARD.format(head=f"def entry_partial(head, {given}, x):",
                                   lift=_LIFT_PARTIAL.format(arity=k + 1, plain=plain, given=given),
                                   forward=_PASS.format(inject=inject_partial, sinks=sinks, sweep=sweep,
                                                        call=_CALL_PARTIAL.format(given=given)),
                                   tail=tail.replace("(f, x", f"({whole_f}, x"),
                                   after=after.replace("(f, x", f"({whole_f}, x"))
            exec(compile(part, f"<{op} entry of a partial application>", "exec"), namespace)
            made[k] = namespace.pop("entry_partial")
            made[k].source = part
        return made[k]
    entry.partial = partial  # (Gen.primitive calls partial(k) where a partial application is written)
    return entry


def _indent(src: str) -> str:
    """Generated lines one level deeper (under the raw-first path's `if` and `else`)."""
    return "\n".join("    " + ln if ln else ln for ln in src.split("\n"))


def whole(g, given: tuple):
    """The closure `g a1 .. ak` (given = (a1, .., ak)): the Fun the compiler makes for a partial application."""
    return Fun(partial_code(len(given), g.arity - len(given)), (g, given))


__all__ = ["scalar_entry", "OPS"]
