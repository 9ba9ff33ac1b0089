"""The order-free pass of an overflowing loop, replayed from a checkpoint: ←D's own term on the loop's last steps.

W2's `logistic n x` (benchmarks/workloads/w2_logistic.dl) records, preaccumulated, one weight a step: the
step's two contributions to x', `3.7 * (v4 * a)` and `-(v3 * a)` in ←D's own term, merged into
`(3.7 * v4 - v3) * a` (lang/transforms/preaccumulate.py). From n = 10^4 the product of these weights
overflows, and the gradient is not finite. ←D's own term then decides it (docs/transforms.md, Zeros and
infinities): its two contributions meet as inf - inf, nan, where the merged weight gives -inf. The pass that
decides it used to run ←D's own term over the whole loop again: about six times the primal for the forward
pass and as much for the sweep, so 14-20 times the primal in all.

But the sweep runs from the last step to the first, and the adjoint overflows about 2,000 steps from the end
(where the merged product does); below that a nan stays nan. So:

1. The preaccumulated loop notes where it is every 32 records (`EVERY`, `checkpoint_site`): the record of the new
   state's backpropagator and the new parameters' values. A note costs a comparison a step.
2. The entry that finds the product of its links not finite keeps the tape (lang/back/entries.py), and the
   order-free pass first asks `overflowed_gradient`. That finds, from the end, the first note whose adjoint
   (the product of the weights after it) is not finite, and runs ←D's own term of the loop from that note to
   the note after it (`stoppable_body`: the loop compiled again, stopping where a predicate says), swept from
   the merged adjoint there with `Paths` seeds, settled; where that gives no nan (←D's own adjoint may
   overflow a few steps below the merged one), once more from the note before.
3. Where that gives nan, the gradient is nan, whatever the steps before the replayed ones. A nan they give
   comes from a nan path, from paths of both signs (+inf meeting -inf: with finite weights a float -inf needs a
   negative path), or from an infinity meeting a zero weight (a zero path). Times the paths before them —
   finite, infinite or nan — there is still a nan path, infinite paths of both signs, a zero path meeting an
   infinite one, or finite paths whose float total, nan, stays nan in every order. Anything else (inf, a finite
   value, a note missing) goes to the whole order-free pass, as before.

What the replay takes from the preaccumulated pass is the adjoint at the note where it stops: finite, and
equal to ←D's own adjoint there up to rounding (the rounding the issue allows the preaccumulated term). Its
one kind, the sign, is among those of ←D's own paths there, so the replay can only find fewer nans than ←D's
own adjoint would: never one it would not. Not so for 0.0, whose kind is zero where ←D's own paths may have
underflowed to it: then the whole pass decides (a review found `sqrt` at 0 after such an underflow: inf, not
nan). Where
it is ←D's own decision, the gradient is the one the whole pass gives; the sign bit of a nan (which dl never
prints) may differ.

It applies where the function differentiated is a top-level function g, or g given all its arguments but the
last, the input; g's body is a self tail loop of primitives only (no other call, no lambda, no function
argument to a primitive), whose parameters are Ints, Bools and Strings, and one Real, the last, unboxed; and
the tape is the input's sink and links (floats) alone. W2 at n = 10^4 replays 32 of its 10^4 steps: the stop
bounds them by the notes, not by the loop's end.

The same loops write their Real's link on top of the tape (`on_top`): a link whose identity is its parent's plus
one, with no test a step, since nothing else in the loop writes a record.
"""
from __future__ import annotations

import math
from math import prod

from ..model import core as c
from ..model.types import BOOL, INT, REAL, STRING, prune
from ..model.zeros import Paths
from .chains import calls_in, naming_the_tape

EVERY = 32  # records between two notes (a note costs about a step; the replay runs up to two intervals)


def checkpointed(compiler, gen, body: c.Expr) -> bool:
    """Whether the loop `gen` writes for `body` notes where it is (see the module's docstring)."""
    if not getattr(compiler, "preaccumulated", False) or compiler.counting or gen.self_ref is None \
            or gen.self_ref[0] != "global" or not getattr(compiler.linear, "links", False):
        return False
    unboxed = [i for i, parts in enumerate(gen.loop_targets) if parts is not None]
    if unboxed != [len(gen.params) - 1] or len(gen.loop_targets[-1]) != 2:
        return False
    tails = {id(e) for e in gen.self_tail_calls(body)}  # (a self call elsewhere runs the body, recording, in
    calls = calls_in(body, lambda e: id(e) in tails)    # the middle of a step: found by review, helper-50)
    if not calls:
        return False
    return all(a.ty is not None and prune(a.ty) in (INT, BOOL, STRING)
               for call in calls for a in c.spine(call)[1][:-1])


def checkpoint_site(gen, targets: list[str], values: list[str], ind: int) -> None:
    """At a self tail call, where the new state's backpropagator is a link (`gen.link_ids`): every EVERY records,
    the note (its identity, the new parameters' values, the Real's last), in a list the loop starts at its first
    note with the tape's identity and itself (on entry it forgets any other loop's, so that the list on the backend
    is always this run's):

        if v6 == N:                      (on entry: CP = k0.checkpoints = None; N = len(R) + 32)
            if CP is None:
                CP = k0.checkpoints = [id(R), body]
            CP.append((v6, v2, v5))
            N = v6 + 32
    """
    parts = gen.loop_targets[-1]
    at = targets.index(parts[0])
    value, ident = values[at], values[at + 1]
    if ident not in gen.link_ids:
        return
    plain = [v for t, v in zip(targets, values) if t not in parts]
    backend = gen.const(gen.compiler.linear)
    records = gen.entry("R", f"{backend}.records")
    notes = gen.entry("CP", f"{backend}.checkpoints = None")
    due = gen.entry("N", f"len({records}) + {EVERY}")
    gen.line(ind, f"if {ident} == {due}:")
    gen.line(ind + 1, f"if {notes} is None:")
    start = f"{notes} = {backend}.checkpoints = [id({records}), body]"
    gen.line(ind + 2, start)
    gen.tape_lines.add(start)
    gen.line(ind + 1, f"{notes}.append(({ident}, {', '.join(plain + [value])}))")
    gen.line(ind + 1, f"{due} = {ident} + {EVERY}")


def on_top(gen, v: str, parent: str, weight: str, records: str, ind: int) -> None:
    """The link site of a self tail loop's one Real (`gen.top_link`, its backpropagator at the step's head) where
    that backpropagator is always the last record: its parent is the record just below, so the link is its
    weight alone, with no test, and its identity one more than the parent's,

        v6 = a1_1 + 1                       (on entry, where a1_1 is not the last record:
        R.append(v8)                         R.append((a1_1, 1.0)); a1_1 = len(R) - 1)

    instead of `v6 = len(R)` and a test of `a1_1 == v6 - 1` a step (W2's step: 12 % of its gradient's time at
    n = 10^5). Right where the loop writes no other record and every self tail call passes on this link, the
    Real's own backpropagator or none (`top_kept`, checked once the body is written); `Compiler.written`
    writes the body again without it where that fails. On entry a backpropagator below the top is lifted by
    one record of weight 1.0, which changes no adjoint's bits (x * 1.0 is x for every float)."""
    gen.line(ind, f"{v} = {parent} + 1")
    site = f"{records}.append({weight})"
    gen.line(ind, site)
    gen.top_sites.add(v)
    gen.tape_lines.add(site)
    gen.entry(parent, f"{parent} if {parent} is None or {parent} == len({records}) - 1 else "
                      f"{gen.const(lift_on_top)}({records}, {parent})")


def lift_on_top(records: list, parent: int) -> int:
    """A record of weight 1.0 on `parent`, on top of the tape: its identity (`on_top`'s entry)."""
    records.append((parent, 1.0))
    return len(records) - 1


def top_kept(gen) -> bool:
    """Whether the links `on_top` wrote are right: one site; every self tail call passes on its identity, the
    Real's own backpropagator or None (`gen.top_tails`); and no other line of the body names the tape or the
    backend (no other record is written: the lines `gen.tape_lines`, the site's and the notes', alone), nor
    is any part of it written elsewhere (a spilled function's lines are its own)."""
    if len(gen.top_sites) != 1 or gen.spills \
            or any(t not in gen.top_sites | {gen.top_link, "None"} for t in gen.top_tails):
        return False
    return all(line.strip() in gen.tape_lines for line in naming_the_tape(gen, gen.lines))


class _Stop:
    """The predicate a stoppable loop asks at the head of each step, given its parameters (a Real's as its dual
    pair): true at the state whose values are `target`'s, compared by bits (so -0.0 is not 0.0, and a nan
    never stops it); that state is kept. `target` None: never."""

    def __init__(self, target: tuple | None):
        self.target = target
        self.x = target[-1] if target is not None else None  # (the Real: it tells most steps apart at once)
        self.state = None

    def __call__(self, state: tuple) -> bool:
        if state[-1][0] != self.x or self.target is None:
            return False
        for s, t in zip(state, self.target):
            v = s[0] if type(s) is tuple else s
            if not (v == t and (type(v) is not float or math.copysign(1.0, v) == math.copysign(1.0, t))):
                return False
        self.state = state
        return True


class _Missed(Exception):
    """The replay did not stop where the preaccumulated pass had been (it never does, by determinism)."""


def overflowed_gradient(kernel, f, x, runtime, tape: list, checkpoints: list | None) -> float | None:
    """The order-free gradient of f at x, decided by replaying ←D's own term on the steps around the overflow
    (module docstring), where that gives nan; else None (the whole pass decides). `tape`: the entry's records,
    the input's sink then links, whose product was not finite; `checkpoints`: the notes the loop left, to which
    the loop's start is one more (its Real the input, whose sink is record 0)."""
    partial = f.code.mode == "partial"
    g = f.captured[0] if partial else f
    key = g.code.info.get("global")
    dual = g.code.info.get(kernel.top_reverse(runtime))
    if key is None or dual is None or not checkpoints or len(checkpoints) < 3 \
            or checkpoints[0] != id(tape) or checkpoints[1] is not dual.body:
        return None
    notes = [(0, *(f.captured[1] if partial else ()), x), *checkpoints[2:]]
    if any(len(note) != g.arity + 1 for note in notes[:2]):
        return None
    # the merged adjoint at each note's state, from the end (the entry's product, taken in pieces), down to the
    # first that is not finite
    run, hi, last = 1.0, len(tape) - 1, None
    for i in range(len(notes) - 1, -1, -1):
        run = prod(tape[hi:notes[i][0]:-1], start=run)
        hi = notes[i][0]
        if run - run != 0.0:
            break
        last = (notes[i], run)
    else:
        return None
    if last is not None and last[1] == 0.0:
        return None  # (a product that underflowed: ←D's own adjoint there has the kinds of its paths, not zero's)
    faithful = kernel.top_reverse(runtime, faithful=True)
    body = faithful.stoppable_body(key)
    if body is None:
        return None
    seed = Paths.seed(last[1] if last else 1.0)
    for start in notes[i::-1][:2]:  # (from the last note the overflow reached, then one note earlier)
        stop = _Stop(last[0][1:] if last else None)
        given, state = start[1:-1], start[-1]

        def run_replay(dual_f, x_dual):
            out = body((), stop, *given, x_dual)
            if last is None:
                return out  # (to the loop's end: its value, swept from 1.0)
            if stop.state is None:
                raise _Missed
            return stop.state[-1]
        try:
            _, pullback = kernel.vjp_recorded(g, state, REAL, REAL, faithful, kernel.backends[runtime.name], run_replay)
        except _Missed:
            return None
        r = kernel.settle(pullback.settling(seed), REAL)
        if r != r:
            return r
    return None
