"""Two short cuts of the scalar entries (lang/back/entries.py), for the fixed cost of a gradient call.

A `value_and_grad f x` on a few reals, or a short loop (W2 `value_and_grad (logistic n) x` at n = 10), spends
most of its time around the transformed code rather than in it: lifting f into ←D's language and
sweeping a tape of a dozen records through the machinery built for long ones. Both short cuts give
what the general code gives, bit for bit; where they do not apply, the entry takes the general code
(the kernel's `lift_fun`, the backend's `sweep_one`).

Lifting a closure (`plain_lifter`). The kernel's `lift_fun` lifts a function value by walking its
captured values with a memo, whatever they are. Most closures a derivative is taken of at the top
capture little: `logistic n` is a partial application of a top-level function to an Int. For a
closure whose captured values are, recursively, Ints, Bools, Strings, Units, Reals, tuples and lists
of those, top-level functions and closures of the same kind, lifting is
a direct rebuild: the transformed code the kernel has already made for it (kept on its code:
`Code.info`; the first call goes the general way and makes it), its captured values lifted as `lift`
lifts them at depth 0 — a Real r becomes the constant (r, None) (a list of Reals by one comprehension),
a top-level function its transform, the rest stays as it is. A partial application of a top-level
function to such values, whose transform takes all its arguments at once, is not even rebuilt: the
entry calls the transform with them, lifted (as they are, where they hold no Real and no function),
and the injected input, the call the lifted partial application's code (`partial_code`) makes: W5's
`loss x t`, x a list of 16 Reals, costs 16 tuples rather than the kernel's walk with its memo.
Where the site writes the partial application itself (`value_and_grad (logistic n) x`), the entry takes the
function and its arguments and lifts them alike itself, without a closure (`partial_lifter`, entries.py).
Nothing is cached between calls: a captured Real that changes between two calls is lifted afresh
each time, so there is no identity argument to get wrong. A closure that captures itself (a local
recursive function) is met again within `_DEPTH` levels and handed to the general lift, whose memo
ties the knot; so is anything else (a Paths sum, an array, a pullback, a function of another
language).

Sweeping a short tape (`sweep_short`). `Factoring.sweep_one` saves and restores the backend's sweep
state (needed only by generic records, whose bodies add through `backend.contribute`) and looks for
runs of links to multiply at C speed (which pays on long runs only). A tape of at most `SHORT`
records after the sinks is swept here by the same record-by-record loop as `Factoring._sweep` — a
link w at i adds w * ct to i - 1, a record (p, w, ...) adds w * ct to each p, in the same order, so the
same floats — without either. The first record of another shape (a generic body, more than three
parents) restarts the whole sweep with `sweep_one` from a fresh array: nothing has run that it would
see (records are only read), so its result is `sweep_one`'s.

A tape that is the sinks and one chain (lang/back/chains.py) whose steps are the sinks in order, each once
(W4 on a [Real]'s floats: lang/back/streams.py), is swept straight into the gradient list, the products
each sink's empty slot would get (`sinks_of_chain`); from the seed 1.0, the weights themselves.

A tape that is one chain of links from the seed down to a sink (W2's and W3's loops, at any length:
the seed on the last record, the first after the sinks a link) is swept by one `math.prod` from the seed
over the records after the sinks, top down, kept where it is a float (a record that is not a number
raises TypeError; another kind of number gives another type, and the loop below runs): the
multiplications the record-by-record loop makes, in its order (ct * w is w * ct in IEEE arithmetic),
so the same float, inf and nan included — as `Factoring._sweep_links` does for runs of links. As there, the pending arguments in between, which nobody reads, are not stored: the list
returned holds the sinks' only (the entries read no others). So for a tape of one record of two or
three parents, the seed's (a function of a few reals preaccumulated into one record: W1, W6).
"""
from __future__ import annotations

from math import prod
from operator import countOf
from typing import Any, Callable

from ..model.values import Fun, Text
from .chains import sinks_of_chain, sweep_chain
from .compiler import Compiler

SHORT = 32  # records after the sinks swept by `sweep_short` (a longer tape: `sweep_one`, which runs links in C)
_DEPTH = 4  # closures inside closures lifted directly; deeper (or a closure that captures itself): the kernel


class _General(Exception):
    """A captured value `plain_lifter` leaves to the kernel's general lift."""


_AS_IS = frozenset({int, bool, str, Text})  # values with no real and no function in them: lifted as they are


def plain_lifter(compiler) -> Callable[[Fun], tuple[Fun | None, tuple | None]]:
    """`lift(f)`: (f lifted into `compiler`'s language (←D at depth 0) as the kernel's `lift_fun` lifts it, None), or
    where f is a partial application `g a1 .. ak` of a top-level function to values lifted as they are, whose
    transform takes k + 1 arguments, (g's transform, (a1, .., ak)): the call the lifted partial application's
    code would make, made by the entry itself; (None, None) where f's captured values need the general lift
    (see the module's docstring)."""
    if compiler.depth != 0 or hasattr(compiler, "lift_partial") or \
            type(compiler).lifted_partial is not Compiler.lifted_partial:  # (partial applications of its own)
        return lambda f: _GENERAL
    info_key = compiler

    def lift(f: Fun) -> tuple[Fun | None, tuple | None]:
        code = f.code
        if code.mode == "partial":  # the commonest: a top-level function applied to Ints (W2 `logistic n`)
            g, args = f.captured    # or to data (W5 `loss x t`: a list of reals and a real)
            dual_g = g.code.info.get(info_key)
            if dual_g is not None and dual_g.arity == len(args) + 1:
                for a in args:
                    if type(a) not in _AS_IS:
                        break
                else:
                    return dual_g, args
                try:
                    return dual_g, tuple([_lift(a, compiler, _DEPTH - 1) for a in args])
                except _General:
                    return _GENERAL
        try:
            return _lift_fun(f, compiler, _DEPTH), None
        except _General:
            return _GENERAL
    return lift


_GENERAL = (None, None)  # what `plain_lifter`'s lift gives for a closure it leaves to the kernel


def partial_lifter(compiler) -> bool:
    """Whether `plain_lifter`'s lift gives a partial application `g a1 .. ak` as g's transform and its arguments as
    they are (where g's transform takes k + 1 arguments and each ai's type is in `PLAIN`): the entries' own lift of
    a partial application written at the site (lang/back/entries.py, `entry_partial`) does the same."""
    return not (compiler.depth != 0 or hasattr(compiler, "lift_partial") or
                type(compiler).lifted_partial is not Compiler.lifted_partial)


PLAIN = _AS_IS  # (for the entries)


def _lift_fun(f: Fun, compiler, depth: int) -> Fun:
    code = f.code
    dual = code.info.get(compiler)  # a top-level function's transform
    if dual is not None:
        return dual
    if depth == 0:
        raise _General
    if code.mode == "partial":  # (g, args): the same code in ←D's language, g and args lifted
        if hasattr(compiler, "lift_partial"):
            raise _General
        return Fun(compiler.lifted_partial(code), _lift(f.captured, compiler, depth - 1))
    made = code.info.get(("transformed", compiler))  # (the kernel's `transformed_code`, made on a first call)
    if made is None or code.mode != compiler.source_name or "global" in code.info:  # (a global: lifted by the kernel)
        raise _General
    dual_code, where = made
    captured = f.captured
    return Fun(dual_code, tuple([_lift(captured[i], compiler, depth - 1) for i in where]))


def _lift(v: Any, compiler, depth: int) -> Any:
    """A captured value as the kernel's `lift` makes it at depth 0 (where `lift_leaf` is None for every value)."""
    t = type(v)
    if t in _AS_IS:
        return v
    if t is float:
        return compiler.lift_real(v)
    if t is tuple:
        return tuple([_lift(x, compiler, depth) for x in v])
    if t is Fun:
        return _lift_fun(v, compiler, depth)
    if t is list:
        if not v or isinstance(v[0], (int, str)):  # (a list of Ints, Bools or Strings)
            return v
        if countOf(map(type, v), float) == len(v):  # (a list of Reals, checked at C speed)
            lift_real = compiler.lift_real
            return [lift_real(x) for x in v]
        return [_lift(x, compiler, depth) for x in v]
    raise _General


def sweep_short(sweep_one: Callable) -> Callable:
    """The entries' sweep: `sweep_one(records, p, ct, n_sinks)`'s pending arguments of the sinks (the first n_sinks
    of the list it returns: the entries read no others), by one product on a chain, a plain loop on a short tape."""

    def sweep(records: list, p: int, ct: Any, n_sinks: int) -> list:
        top = len(records) - 1
        if p == top == n_sinks and type(records[p]) is list:  # one chain, the seed's (W4: a sum over a [Real])
            adj = sinks_of_chain(records[p], n_sinks, ct)
            if adj is not None:
                return adj
        if p == top == n_sinks and type(records[p]) is tuple:  # one record, the seed's (W1, W6: preaccumulated)
            rec = records[p]
            n = len(rec)
            if n == 4:
                q, w, r, u = rec
                adj = [None] * n_sinks  # (the sinks only)
                adj[q] = w * ct
                old = adj[r]
                adj[r] = u * ct if old is None else old + u * ct
                return adj
            if n == 6:
                q, w, r, u, s, t = rec
                adj = [None] * n_sinks
                adj[q] = w * ct
                old = adj[r]
                adj[r] = u * ct if old is None else old + u * ct
                old = adj[s]
                adj[s] = t * ct if old is None else old + t * ct
                return adj
        if p == top >= n_sinks and type(ct) is float and type(records[p]) is float \
                and type(records[n_sinks]) is float:  # (a chain ends in links: then look at the rest)
            try:  # a chain of links from the seed down to a sink, if the product is a float
                g = prod(reversed(records[n_sinks:]), start=ct)
            except TypeError:  # (a record: a tuple, or a chain's list)
                g = None
            if type(g) is float:
                adj = [None] * n_sinks  # (the sinks only: nothing reads the pending arguments in between)
                adj[n_sinks - 1] = g
                return adj
        if top - n_sinks >= SHORT:
            return sweep_one(records, p, ct, n_sinks)
        adj = [None] * (top + 1)
        adj[p] = seed = ct
        for i in range(top, n_sinks - 1, -1):
            ct = adj[i]
            if ct is None:
                continue
            rec = records[i]
            if type(rec) is not tuple:  # a link: one parent, i - 1
                if type(rec) is list:  # (or a fold's steps, a chain: lang/back/chains.py)
                    sweep_chain(rec, adj, ct)
                    continue
                old = adj[i - 1]
                adj[i - 1] = rec * ct if old is None else old + rec * ct
                continue
            n = len(rec)
            if n == 2:
                q, w = rec
                old = adj[q]
                adj[q] = w * ct if old is None else old + w * ct
            elif n == 4:
                q, w, r, u = rec
                old = adj[q]
                adj[q] = w * ct if old is None else old + w * ct
                old = adj[r]
                adj[r] = u * ct if old is None else old + u * ct
            elif n == 6:
                q, w, r, u, s, t = rec
                old = adj[q]
                adj[q] = w * ct if old is None else old + w * ct
                old = adj[r]
                adj[r] = u * ct if old is None else old + u * ct
                old = adj[s]
                adj[s] = t * ct if old is None else old + t * ct
            else:  # a generic body or many parents: the backend's sweep, from the start
                return sweep_one(records, p, seed, n_sinks)
        return adj
    return sweep
