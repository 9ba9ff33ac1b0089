"""Running the linear fragment of the target language: linear factoring, or naive.

A backpropagator `fun a -o t` is given an increasing *identity* when it is
created: its index in a list of records. Its body is almost always what ←D
writes for a primitive, a sum of contributions `x1' (∂1 * a) + ... +
xk' (∂k * a)` with the ∂i not mentioning `a`; such a backpropagator is
recorded *defunctionalised*, as the flat tuple (x1', ∂1, ..., xk', ∂k) of
its parents' identities and its partial derivatives, computed when it is
created (the compiler writes that inline: one tuple and one append). A
parent that is the zero backpropagator `fun a -o 0` (`None`) is left out.
A body that is an `if` whose test does not mention `a` — what a partial
that is zero on one branch gives, `fun a -o if x > 0.0 then x' a else 0`
for relu (docs/transforms.md, Zeros and infinities) — is recorded from the branch its
test selects, the test being evaluated when the backpropagator is created
(it reads values only, which do not change). Any other body is recorded
as (GENERIC, compiled body, captured values). The inputs' sinks are the
first records: the k-th input real's identity is k. A sink that nothing
reached holds the symbolic zero (lang/model/zeros.py), not 0.0. Factoring
writes a record of one parent that is the record just below it, (i - 1, w),
as its weight w alone: a *link* (a scalar loop's tape is a list of floats,
swept in runs at C speed: see "links" below).

Values of the answer type d are never built. A d-typed term, inside a
generic body, is compiled to an *effect*: applying a backpropagator to an
argument, and summing, are what the two backends do differently — the rest
is shared:

factoring (docs/transforms.md, Linear factoring)
    `x' e` adds e to the pending argument of x' (an array indexed by
    identity, None where nothing is pending): a second call merges into the
    first, which is the rule `t u + t v -> t (u + v)`. The driver sweeps
    identities from the largest down, running each pending body once on its
    summed argument; since a backpropagator only calls older ones,
    everything that can call it has run by then. Cost: one body run per
    backpropagator created.

naive
    `x' e` runs the body of x' on e at once, recursively down to the
    inputs' sinks, which add into the gradient. A backpropagator reached by
    k paths runs k times: repeated squaring n times makes 2^(n+1) - 1 calls.

Arrays (docs/transforms.md, Arrays). An array's backpropagator is one record,
its pending argument an ndarray: the first contribution is stored as it is,
the second adds into a fresh accumulator that the sweep owns, and later ones
add into it in place (`+=`) — summing pending calls is the factoring rule.
A sparse contribution (reading one element, a slice, gathered rows) adds
only where it is non-zero. An array input's sink is one identity.
"""
from __future__ import annotations

import math

from ..model import core as c
from ..model.primitives import PRIMITIVES, array_kernel
from ..model.types import REAL, TNeg, prune
from ..model.values import Code
from ..model.zeros import REAL_TYPES, ZERO, Paths, Zero, kind
from ..model.zeros import _PRODUCT, NAN as _NAN, NEG as _NEG, NIL as _NIL, NINF as _NINF, PINF as _PINF, \
    POS as _POS  # (the kinds of a sum over paths, for the order-free sweep)
from ..transforms.preaccumulate import contributions, summands
from .chains import chain_site, chain_weights, fold_chain, scaled_site, sweep_chain
from .compiler import Gen
from .replay import on_top

GENERIC = "generic"  # first element of a generic record: (GENERIC, body, captured)
SINK = ()            # the record of an input's sink: the first n identities are the n inputs' sinks


def _by_cases(body: c.Expr, a: str) -> bool:
    """`if c then t else u` with c not mentioning a, down to bodies that are sums of contributions."""
    return isinstance(body, c.If) and not _mentions(body.cond, a) and all(
        _by_cases(b, a) or contributions(b, a) is not None for b in (body.then, body.else_))


def _mentions(e: c.Expr, name: str) -> bool:
    return (name, ()) in c.free_locals(e)


def _applied(body: c.Expr) -> list[tuple[str, c.Expr]] | None:
    """The backpropagators a body applies, when it is only applications and sums: ("one", x') for
    `x' e`, ("many", xs') for an effect applying a list of them; None for any other body."""
    out: list = []
    for t in summands(body):
        match t:
            case c.LinApp(fn, _):
                out.append(("one", fn))
            case c.Prim(op, (fns, _)) if PRIMITIVES[op].effect:
                out.append(("many", fns))
            case _:
                return None
    return out


def _all_zero(bps) -> bool:
    """Whether a (nested) list of backpropagators holds only zero ones (None)."""
    stack = [bps]
    while stack:
        x = stack.pop()
        if type(x) is list:
            stack.extend(x)
        elif x is not None:
            return False
    return True


_CASES = 3  # up to this many parents, one branch per combination of absent ones (2^k branches, no list)


def _grow_or_start(gen, present: bool, acc: str, g: str, rec: str, grow: list[str], start: str, v: str,
                   records: str, ind: int) -> None:
    """A chain's record site: where acc' is present, the lines `grow` extend the chain when acc' is the chain
    this site grows (identity g, list rec) and that chain is still the last record; otherwise, and where acc'
    is absent, rec starts a chain, the list display `start`, and is recorded (its identity the site's and v's)."""
    if present:
        gen.chain.checks.append((len(gen.lines), "    " * ind + f"if {acc} == {g}:"))  # (`FoldChain.alone`)
        gen.line(ind, f"if {acc} == {g} and {records}[-1] is {rec}:")
        for line in grow:
            gen.line(ind + 1, line)
        gen.line(ind + 1, f"{v} = {acc}")
        gen.line(ind, "else:")
        ind += 1
    gen.line(ind, f"{rec} = {start}")
    gen.line(ind, f"{g} = {v} = len({records})")
    gen.line(ind, f"{records}.append({rec})")


class LinearBackend:
    """What the two modes share: creating backpropagators (compiled inline), and effects."""

    factoring = True
    links = False  # whether a one-parent record on the record just below it is its weight alone (a float)

    def __init__(self, counters, counting: bool = False):
        self.counters = counters
        self.counting = counting
        self.records: list = []      # the backpropagators of the evaluation under way
        self.checkpoints = None      # the notes of the last loop that took them (lang/back/replay.py)
        self.adj: list = []          # the pending arguments of the sweep under way (factoring)
        self.grad: list = []         # the gradient being accumulated (naive)

    # ---- compiling (called by lang/evaluator.py's Gen)
    def create(self, gen, e: c.LinLam, ind: int) -> str:
        """Statements creating a backpropagator; a Python expression for its identity. For the
        backpropagator of `x * y`, `fun a -o x' (y * a) + y' (x * a)`, with x' and y' in v2 and v4:

            if v2 is None:                       (one branch per absent parent: a constant's
                if v4 is None: v9 = None          backpropagator is None, and contributes nothing)
                else: v9 = len(R); R.append((v4, v1))
            else:
                if v4 is None: v9 = len(R); R.append((v2, v3))
                else: v9 = len(R); R.append((v2, v3, v4, v1))
        R, the list of records, is read once on entry. Up to three parents are written by cases (eight
        branches for three: a closure's two captured reals and its argument, W7); more build a list.
        Any other body is `create_generic`. The lines written write one record at most, whichever branch runs
        (a fold's chain sites among them: `FoldChain.alone`)."""
        chain = gen.chain
        start, checks = len(gen.lines), chain and len(chain.checks)
        v = self._create(gen, e, ind)
        if chain is not None and len(chain.checks) > checks:
            chain.steps.append((start, len(gen.lines)))
        return v

    def _create(self, gen, e: c.LinLam, ind: int) -> str:
        if _by_cases(e.body, e.param):
            v = gen.local()
            gen.branches(e.body, ind, lambda branch, i: gen.line(
                i, f"{v} = {self._create(gen, c.LinLam(e.param, branch, ty=e.ty, span=e.span), i)}"))
            return v
        pairs = contributions(e.body, e.param)
        if pairs is None:
            return self.create_generic(gen, e, ind)
        if not pairs:
            return "None"
        backend = gen.const(self)
        parents = [gen.atom(p, ind) for p, _ in pairs]
        v = gen.local()
        if len(pairs) <= _CASES:
            links = self.links and gen.compiler.depth == 0 and e.ty is not None and prune(e.ty) == TNeg(REAL)
            self._create_cases(gen, pairs, parents, v, backend, ind, [], links)
            return v
        gen.line(ind, f"{v} = []")  # many parents: build the record
        for (_, w), p in zip(pairs, parents):
            gen.line(ind, f"if {p} is not None:")
            weight = gen.atom(w, ind + 1)
            gen.line(ind + 1, f"{v} += ({p}, {weight})")
        gen.line(ind, f"if {v}:")
        self._append(gen, f"tuple({v})", v, backend, ind + 1)
        gen.line(ind, "else:")
        gen.line(ind + 1, f"{v} = None")
        return v

    def _create_cases(self, gen, pairs, parents, v, backend, ind, present, links=False) -> None:
        """One branch per combination of absent (zero) parents: weights computed only where needed.
        `links`: a record of one parent that is the record just below it is written as its weight alone
        (a *link*, `Factoring._sweep`): the weights are floats."""
        k = len(present)
        if k == len(pairs):
            fields = []
            for (_, w), p, here in zip(pairs, parents, present):
                if here:
                    fields += [p, gen.atom(w, ind)]
            chain = chain_site(gen, pairs, present) if links else None
            scaled = scaled_site(gen, pairs, present) if links and chain is None else None
            if chain is not None:  # a step of a sum's fold: grows the loop's chain (lang/back/chains.py)
                self._chain_step(gen, chain, pairs, present, fields, v, ind)
            elif scaled is not None:  # a step scaling its accumulator, on fixed parents: the same
                self._scaled_step(gen, *scaled, pairs, present, fields, v, ind)
            elif len(fields) == 2 and links:
                records = gen.entry("R", f"{backend}.records")
                gen.link_ids.add(v)
                if fields[0] == gen.top_link:  # (a self tail loop's Real's, on the record just below: `on_top`)
                    on_top(gen, v, fields[0], fields[1], records, ind)
                    return
                gen.line(ind, f"{v} = len({records})")
                gen.line(ind, f"if {fields[0]} == {v} - 1:")
                gen.line(ind + 1, f"{records}.append({fields[1]})")
                gen.line(ind, "else:")
                gen.line(ind + 1, f"{records}.append(({fields[0]}, {fields[1]}))")
            elif fields:
                self._append(gen, f"({', '.join(fields)})", v, backend, ind)
            else:
                gen.line(ind, f"{v} = None")
            return
        if parents[k] in gen.sinks:  # (a sink's identity, never absent: lang/back/streams.py)
            self._create_cases(gen, pairs, parents, v, backend, ind, present + [True], links)
            return
        gen.line(ind, f"if {parents[k]} is None:")
        self._create_cases(gen, pairs, parents, v, backend, ind + 1, present + [False], links)
        gen.line(ind, "else:")
        self._create_cases(gen, pairs, parents, v, backend, ind + 1, present + [True], links)

    def _chain_step(self, gen, chain, pairs: list, present: list, fields: list[str], v: str, ind: int) -> None:
        """A step's record (acc', 1.0, x', w, ...) added to the chain this site grows, when acc' is that chain
        and the chain the last record; else the start of a chain (lang/back/chains.py); where acc' is absent
        (zero: the first step from a constant) a chain starts with prev None:

            if v5 == v18 and R[-1] is v19:            (v18: the site's chain's identity, -1 before the loop)
                v19.append(v7); v19.append(v17); v11 = v5
            else:
                v19 = [v5, 1, v7, v17]; v18 = v11 = len(R); R.append(v19)

        Where the loop numbers a [Real]'s floats and the step's other parent is the element's sink (v7), the
        parents are consecutive: `v19.append(v17)` alone, and the chain is [v5, 0, v7, v17] (width 0)."""
        records = gen.entry("R", f"{gen.const(self)}.records")
        g, rec = chain.site(gen, (id(pairs), tuple(present[1:])))
        acc, rest = (fields[0], fields[2:]) if present[0] else ("None", fields)
        if chain.sink is not None and len(rest) == 2 and rest[0] == chain.sink:
            # the parents are the loop's consecutive sinks: the first one, then the weights alone
            width, grow, rest = 0, rest[1:], [chain.index, rest[1]]  # (the sink computed at a start only)
        else:
            width, grow = len(rest) // 2, rest
        _grow_or_start(gen, present[0], acc, g, rec, [f"{rec}.append({f})" for f in grow],
                       f"[{acc}, {width}, {', '.join(rest)}]", v, records, ind)

    def _scaled_step(self, gen, chain, k: int, pairs: list, present: list, fields: list[str], v: str, ind: int) -> None:
        """A step's record (.., acc', w_acc, .., p, w, ..) added to the chain of scaled steps this site grows (its
        weights alone, in field order), when acc' is that chain and the chain the last record; else the start of
        one, with its fixed parents (lang/back/chains.py, `scaled`); where acc' is absent, with prev None and
        0.0 in place of its weight (never used):

            if v9 == v28 and R[-1] is v29:            (v28: the site's chain's identity, -1 before the loop)
                v29 += (v26, v18, v27); v19 = v9
            else:
                v29 = [v9, (1, (v11, v14)), v26, v18, v27]; v28 = v19 = len(R); R.append(v29)"""
        records = gen.entry("R", f"{gen.const(self)}.records")
        g, rec = chain.site(gen, ("scaled", id(pairs), tuple(h for i, h in enumerate(present) if i != k)))
        here = [i for i, h in enumerate(present) if h]  # fields holds their (parent, weight) in order
        at = sum(1 for i in here if i < k)  # the accumulator's place among the weights
        parents = [fields[2 * j] for j, i in enumerate(here) if i != k]
        weights = [fields[2 * j + 1] for j, i in enumerate(here) if i != k]  # the parents', then acc's
        if present[k]:
            acc = fields[2 * at]
            weights.append(fields[2 * at + 1])
        else:
            acc = "None"
            weights.append("0.0")
        _grow_or_start(gen, present[k], acc, g, rec, [f"{rec} += ({', '.join(weights)},)"],
                       f"[{acc}, ({at}, ({', '.join(parents)},)), {', '.join(weights)}]", v, records, ind)

    def _append(self, gen, record: str, v: str, backend: str, ind: int) -> None:
        # the list of records does not change while one evaluation runs: read it on entry
        records = gen.entry("R", f"{backend}.records")
        import re  # (compiling a gradient: not at start-up)
        if re.search(rf"\b{v}\b", record):  # (the record is built in v: append it first)
            gen.line(ind, f"{records}.append({record})")
            gen.line(ind, f"{v} = len({records}) - 1")
        else:  # its identity is the length before the append (no subtraction)
            gen.line(ind, f"{v} = len({records})")
            gen.line(ind, f"{records}.append({record})")
        gen.count(ind, "bp_created")

    def create_generic(self, gen, e: c.LinLam, ind: int) -> str:
        """Any other body: compiled as an effect, run later on its captured values."""
        inner = Gen(gen.compiler, [e.param], None)
        self.effect(inner, e.body, 0)
        inner.line(0, "return None")
        code = Code(1, name="<backpropagator>", mode=gen.compiler.name)
        code.free = tuple(inner.free)
        code.body = inner.build("<backpropagator>")
        captured = [gen.lookup(key) for key in code.free]
        v = gen.local()
        parents = _applied(e.body)
        if parents is not None:
            # a body that only applies backpropagators: when every one of them is the zero one (a
            # constant's), so is this one, and no record is made — as for the defunctionalised records
            # (a top-level constant computed once must not hold an identity of one evaluation's tape)
            tests = []
            for kind, p in parents:
                atom = gen.atom(p, ind)
                tests.append(f"{atom} is None" if kind == "one" else f"{gen.const(_all_zero)}({atom})")
            gen.line(ind, f"if {' and '.join(tests) or 'True'}:")
            gen.line(ind + 1, f"{v} = None")
            gen.line(ind, "else:")
            ind += 1
        gen.line(ind, f"{v} = ({gen.const(GENERIC)}, {gen.const(code)}, ({', '.join(captured)}{',' if captured else ''}))")
        self._append(gen, v, v, gen.const(self), ind)
        return v

    def effect(self, gen, e: c.Expr, ind: int) -> None:
        """Statements that add the value of a d-typed term into the backward pass."""
        match e:
            case c.DZero():
                gen.line(ind, "pass")
            case c.DSum(l, r):
                self.effect(gen, l, ind)
                self.effect(gen, r, ind)
            case c.LinApp(fn, arg):
                p = gen.atom(fn, ind)
                gen.line(ind, f"if {p} is not None:")
                value = gen.atom(arg, ind + 1)
                gen.line(ind + 1, f"{gen.const(self)}.contribute({p}, {value})")
            case c.Prim(op, args) if PRIMITIVES[op].effect:  # dApplyList bps cts: many applications at once
                values = [gen.atom(a, ind) for a in args]
                gen.line(ind, f"{gen.const(array_kernel(PRIMITIVES[op].array))}({gen.const(self)}, "
                              f"{', '.join(values)})")
            case c.If():
                gen.branches(e, ind, lambda branch, i: self.effect(gen, branch, i))
            case c.Let() | c.LetTuple():
                gen.scoped(e, ind, lambda body: self.effect(gen, body, ind))
            case _:
                raise AssertionError(f"cannot run the d-typed term {type(e).__name__} as a contribution")

    # ---- what the modes define
    def contribute(self, p: int, value: float) -> None:
        raise NotImplementedError

    def backward(self, records: list, seeds: list[tuple[int, float]], n_sinks: int) -> list:
        """Run the backward pass from `seeds`; the argument that reached each input's sink, in order."""
        raise NotImplementedError


class Factoring(LinearBackend):
    """Linear factoring: pending arguments merged per identity, swept from the largest identity down."""

    links = True  # (not when counting: that sweep goes record by record, and keeps the general records)

    def __init__(self, counters, counting: bool = False):
        super().__init__(counters, counting)
        self.links = type(self).links and not counting
        self.owned: set = set()  # identities whose pending argument is an accumulator of this sweep's own
        self.n_sinks = 0         # the inputs' sinks of the sweep under way (for the sink_updates counter)

    def fold_chain(self, fn: c.Expr, depth: int):
        """Whether a fold on fn, compiled at loop depth `depth`, may chain its steps' records (not when counting:
        the counters count records step by step)."""
        return fold_chain(fn, depth) if self.links else None

    def contribute(self, p: int, value) -> None:
        adj = self.adj
        old = adj[p]
        if self.counting and p < self.n_sinks:
            self.counters.sink_updates += 1
        if old is None:
            adj[p] = value
        else:
            if type(old) in REAL_TYPES or value is ZERO:  # (a real, the symbolic zero, a sum over paths)
                adj[p] = old + value
            else:  # an array: added into an accumulator of the sweep's own, in place from the second time
                adj[p] = array_kernel("accumulate")(old, value, p in self.owned)
                self.owned.add(p)
                if self.counting:
                    self.counters.elements += array_kernel("touched")(value)
            if self.counting:
                self.counters.merges += 1

    def backward(self, records: list, seeds: list[tuple[int, float]], n_sinks: int) -> list:
        saved, saved_owned, saved_sinks = self.adj, self.owned, self.n_sinks
        adj = self.adj = [None] * len(records)
        self.owned, self.n_sinks = set(), 0
        try:
            for p, v in seeds:  # (an output's own seed is not a sink update, even where it is an input)
                self.contribute(p, v)
            self.n_sinks = n_sinks
            if self.counting:
                self._sweep_counting(records, adj, n_sinks)
            elif seeds and type(seeds[0][1]) is Paths and type(self)._sweep is Factoring._sweep:
                # the kernel's order-free pass: sums over paths as floats and kind sets, not objects
                out = _sweep_paths(records, seeds, n_sinks)
                if out is not None:
                    return out
                self._sweep(records, adj, n_sinks)  # (adj holds the seeds: _sweep_paths kept its own lists)
            else:
                self._sweep(records, adj, n_sinks)
        finally:
            self.adj, self.owned, self.n_sinks = saved, saved_owned, saved_sinks
        return [ZERO if g is None else g for g in adj[:n_sinks]]

    def sweep_one(self, records: list, p: int, ct: float, n_sinks: int) -> list:
        """`backward(records, [(p, ct)], n_sinks)` for one float seed when not counting, with less around it:
        the pending arguments are returned as they are (the first n_sinks are the inputs' sinks, None where
        nothing reached one). For the kernel's scalar entries (lang/back/entries.py)."""
        saved, saved_owned, saved_sinks = self.adj, self.owned, self.n_sinks
        adj = self.adj = [None] * len(records)
        self.owned, self.n_sinks = set(), n_sinks
        adj[p] = ct  # (the seed: not a sink update, even where the output is an input)
        try:
            self._sweep(records, adj, n_sinks)
        finally:
            self.adj, self.owned, self.n_sinks = saved, saved_owned, saved_sinks
        return adj

    def paths_values(self, records: list, seeds: list, n_sinks: int) -> list | None:
        """The values (`Paths.value`) of what `backward` gives for `Paths` seeds, by a sweep on floats, where
        the kinds cannot matter: every seed's kinds finite and every record the sweep runs of the shape
        (parent, weight, ...) with finite float or int weights or the symbolic zero (checked as it runs them:
        `_sweep_finite`), so every kind set met is finite and each value is its float total — the same
        operations in the same order as `backward`'s. None where that does not hold (the caller asks
        `backward`). For the kernel's order-free pass, which settles what it gets at once."""
        if self.counting or type(self)._sweep is not Factoring._sweep:
            return None
        for _, v in seeds:
            if type(v) is not Paths or v.kinds & _INFINITE:
                return None
        saved, saved_owned, saved_sinks = self.adj, self.owned, self.n_sinks
        adj = self.adj = [None] * len(records)
        self.owned, self.n_sinks = set(), 0
        try:
            for p, v in seeds:
                self.contribute(p, v.total)
            self.n_sinks = n_sinks
            if not _sweep_finite(records, adj, n_sinks):
                return None
        finally:
            self.adj, self.owned, self.n_sinks = saved, saved_owned, saved_sinks
        return [ZERO if g is None else g for g in adj[:n_sinks]]

    def _sweep(self, records: list, adj: list, n_sinks: int) -> None:
        # from the last identity down to the first after the sinks (which run no body), reading each
        # pending argument when it gets there, after everything above has added to it
        i = len(records) - 1
        unchained = i + 1  # no run of links is looked for from here up (one was looked for already)
        while i >= n_sinks:
            for i in range(i, n_sinks - 1, -1):
                ct = adj[i]
                if ct is None:
                    continue
                rec = records[i]
                if type(rec) is not tuple:  # a link: one parent, i - 1
                    if type(rec) is list:  # (or the steps of a fold: a chain, lang/back/chains.py)
                        sweep_chain(rec, adj, ct)
                        continue
                    if i < unchained and type(ct) is float and type(records[i - 1]) is not tuple:  # (a run)
                        below = _sweep_links(records, adj, i, ct, n_sinks)
                        if below is not None:  # records i down to below + 1 swept at once: go on there
                            break
                        unchained = i - _LINKS_MIN
                    old = adj[i - 1]
                    adj[i - 1] = rec * ct if old is None else old + rec * ct
                    continue
                n = len(rec)
                if n == 2:
                    p, w = rec
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
                elif n == 4:
                    p, w, q, u = rec
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
                    old = adj[q]
                    adj[q] = u * ct if old is None else old + u * ct
                elif n == 6:  # (three parents: a closure's captured reals and its argument, W7)
                    p, w, q, u, r, t = rec
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
                    old = adj[q]
                    adj[q] = u * ct if old is None else old + u * ct
                    old = adj[r]
                    adj[r] = t * ct if old is None else old + t * ct
                elif rec[0] is GENERIC:
                    rec[1].body(rec[2], ct)
                else:
                    for k in range(0, n, 2):
                        p = rec[k]
                        old = adj[p]
                        adj[p] = rec[k + 1] * ct if old is None else old + rec[k + 1] * ct
            else:
                return
            i = below

    def _sweep_counting(self, records: list, adj: list, n_sinks: int) -> None:
        counters = self.counters
        pending = sum(1 for v in adj[n_sinks:] if v is not None)
        peak = pending
        for i in range(len(records) - 1, n_sinks - 1, -1):
            ct = adj[i]
            if ct is None:
                continue
            rec = records[i]
            if type(rec) is not tuple:  # a link (a machine that counts writes none; read it all the same)
                rec = (i - 1, rec)
            n = len(rec)
            pending -= 1
            counters.bp_run += 1
            if rec[0] is GENERIC:
                before = sum(1 for v in adj if v is not None)  # generic bodies are rare: count the slow way
                rec[1].body(rec[2], ct)
                pending += sum(1 for v in adj if v is not None) - before
            else:
                for k in range(0, n, 2):
                    p, w = rec[k], rec[k + 1]
                    old = adj[p]
                    sink = p < n_sinks
                    if sink:
                        counters.sink_updates += 1
                    if old is None:
                        adj[p] = w * ct
                        if not sink:
                            pending += 1
                    else:
                        adj[p] = old + w * ct
                        counters.merges += 1
            peak = max(peak, pending)
        counters.peak_pending = max(counters.peak_pending, peak)


# ---- links: a scalar loop's tape
#
# A loop like the logistic map's records one backpropagator per step whose only parent is the step
# before. Such a record, (i - 1, w) at identity i, is written as w alone — a *link* — so that the
# tape of a scalar loop is a list of floats. The sweep of a run of links from i down to lo, with nothing
# else pending on it, only multiplies: identity lo - 1 receives ct * w_i * w_(i-1) * ... * w_lo.
# `math.prod` computes that product in C with the same float multiplications in the same order (IEEE
# multiplication commutes: ct * w is w * ct), so the result is the record-by-record sweep's to the
# bit, inf and nan included; the pending arguments in between, read by nobody, are not stored. Runs are
# taken in blocks that double while they hold only links and nothing pending.

_LINKS_MIN = 8  # the first block; a run shorter than this is swept record by record


def _sweep_links(records: list, adj: list, i: int, ct: float, n_sinks: int, floats=None) -> int:
    """Sweep the run of links from i (pending ct, a float) down; the identity the run's product was added
    to, where the sweep goes on (None: nothing swept, the run is short or holds other numbers). `floats`
    decides which blocks of links are taken at once (`all_floats`, or `_finite_floats` for `_sweep_finite`)."""
    floats = floats or all_floats
    size, j = _LINKS_MIN, i
    while True:
        size = min(size, j - n_sinks + 1)  # (record j is a link: j >= n_sinks)
        k = j - size + 1  # the block k .. j: links with nothing pending below j
        block = records[k:j + 1]
        if not floats(block) or adj[k:j].count(None) != j - k:
            if size <= _LINKS_MIN:
                break
            size //= 2
            continue
        ct = math.prod(reversed(block), start=ct)  # what identity k - 1 receives
        j = k - 1
        if adj[j] is not None or type(records[j]) is tuple:  # the run stops here: ct is added in
            break
        size *= 2
    if j == i:
        return None
    old = adj[j]
    adj[j] = ct if old is None else old + ct
    return j


def all_floats(block: list) -> bool:
    """Whether a block of records holds only links whose weights are floats (ints would do): their sum
    is a float, computed at C speed, where a record (a tuple) raises — or, added to another kind of number
    (a numpy scalar), gives another type."""
    try:
        return type(sum(block, 0.0)) is float
    except TypeError:
        return False


_INFINITE = _PINF | _NINF | _NAN  # the kinds that make a sum over paths other than its float total


def _sweep_paths(records: list, seeds: list, n_sinks: int) -> list | None:
    """The factoring sweep with `Paths` seeds (the kernel's order-free pass), each pending sum kept as its
    float total and its set of kinds in two lists rather than as a `Paths` object per contribution: the
    same float operations in the same order, and the kinds `Paths` arithmetic would give
    (lang/model/zeros.py), so the sinks' `Paths` are equal to the object sweep's. A record of another
    shape than (parent, weight, ...) with float weights — a generic body, an array — gives None: the
    caller sweeps with objects."""
    totals: list = [None] * len(records)
    kinds = [0] * len(records)
    for p, v in seeds:
        if type(v) is not Paths:
            return None
        old = totals[p]
        totals[p] = v.total if old is None else old + v.total
        kinds[p] |= v.kinds
    product, inf = _PRODUCT, math.inf
    POS, NEG = _POS, _NEG
    for i in range(len(records) - 1, n_sinks - 1, -1):  # sinks run no body
        ct = totals[i]
        if ct is None:
            continue
        rec = records[i]
        if type(rec) is not tuple:  # a link: (i - 1, weight)
            if type(rec) is list:  # (a fold's steps, a chain: the caller's object sweep runs them)
                return None
            rec = (i - 1, rec)
        if len(rec) == 2 and type(ct) is float and type(rec[1]) is float:  # the common record, inline
            p, w = rec
            kw = POS if 0.0 < w < inf else NEG if -inf < w < 0.0 else kind(w)  # (kind, inlined)
            old = totals[p]
            totals[p] = w * ct if old is None or type(old) is Zero else old + w * ct
            kinds[p] |= product[kinds[i]][kw]
            continue
        if rec[0] is GENERIC:
            return None
        zero = type(ct) is Zero  # the symbolic zero times a real is itself, and adds nothing
        ck = product[kinds[i]]
        for k in range(0, len(rec), 2):
            p, w = rec[k], rec[k + 1]
            tw = type(w)
            if tw is float and not zero:
                kw = POS if 0.0 < w < inf else NEG if -inf < w < 0.0 else kind(w)
                old = totals[p]
                totals[p] = w * ct if old is None or type(old) is Zero else old + w * ct
                kinds[p] |= ck[kw]
            elif tw is Zero or tw is float:
                if totals[p] is None:
                    totals[p] = ZERO
            else:
                return None
    return [ZERO if g is None else g if type(g) is Zero else Paths(g, kinds[i])
            for i, g in enumerate(totals[:n_sinks])]


def _finite_floats(block: list) -> bool:
    """`all_floats`, and every weight finite: their sum is (a sum with an inf or a nan in it is not; a sum of
    finite floats that overflows refuses a block that would do, and the sweep takes it record by record)."""
    try:
        total = sum(block, 0.0)
    except TypeError:
        return False
    return type(total) is float and -math.inf < total < math.inf


def _sweep_finite(records: list, adj: list, n_sinks: int) -> bool:
    """`Factoring._sweep` on float pending arguments that also checks the records it runs: False (the pending
    arguments then half swept or holding other numbers, for the caller to drop) unless every one of them is
    (parent, weight, ...) or a link, with weights that are finite floats, ints or the symbolic zero. Where it gives
    True — records nothing reached are not looked at: they run no body in any sweep, `Paths` included — every
    kind set met is finite and each sink's value is the float total computed here, with the same operations in
    the same order as `_sweep` (the order-free pass: `Factoring.paths_values`).

    The check costs one addition per weight: `seen` sums the weights run, and is a finite float at the end
    only if each was a finite float, an int or the symbolic zero (an inf or a nan makes every later sum inf or
    nan; a numpy number or an array makes it one; an int too large for a float raises). A sum of finite
    weights that overflows refuses a tape that would do (the sweep with kinds then decides, the same way)."""
    i = len(records) - 1
    unchained = i + 1
    seen = 0.0
    try:
        while i >= n_sinks:
            for i in range(i, n_sinks - 1, -1):
                ct = adj[i]
                if ct is None:
                    continue
                rec = records[i]
                if type(rec) is not tuple:  # a link: one parent, i - 1
                    if type(rec) is list:  # (or a fold's steps, a chain: its weights, and 1.0 between steps)
                        seen += sum(chain_weights(rec), 0.0)
                        sweep_chain(rec, adj, ct)
                        continue
                    seen += rec
                    if i < unchained and type(ct) is float and type(records[i - 1]) is not tuple:  # (a run)
                        below = _sweep_links(records, adj, i, ct, n_sinks, _finite_floats)
                        if below is not None:
                            break
                        unchained = i - _LINKS_MIN
                    old = adj[i - 1]
                    adj[i - 1] = rec * ct if old is None else old + rec * ct
                    continue
                n = len(rec)
                if n == 2:
                    p, w = rec
                    seen += w
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
                elif n == 4:
                    p, w, q, u = rec
                    seen += w + u
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
                    old = adj[q]
                    adj[q] = u * ct if old is None else old + u * ct
                elif rec[0] is GENERIC or n % 2:
                    return False
                else:
                    for k in range(0, n, 2):
                        p, w = rec[k], rec[k + 1]
                        seen += w
                        old = adj[p]
                        adj[p] = w * ct if old is None else old + w * ct
            else:
                break
            i = below
    except (TypeError, ValueError, OverflowError):  # (a weight no float sweep can run)
        return False
    return type(seen) is float and -math.inf < seen < math.inf


class Naive(LinearBackend):
    """Naive application: every call of a backpropagator runs its body at once (exponential on sharing)."""

    factoring = False

    def contribute(self, p: int, value: float) -> None:
        self.run(p, value)

    def run(self, p: int, ct: float) -> None:
        rec = self.records[p]
        n = len(rec)
        self.counters.bp_run += 1
        if n == 0:  # the sink of input p
            self.counters.sink_updates += 1
            if self.counting and type(self.grad[p]) is not float:  # an array merged into an array sink
                self.counters.elements += array_kernel("touched")(ct)
            self.grad[p] += ct
        elif rec[0] is GENERIC:
            rec[1].body(rec[2], ct)
        else:
            run = self.run
            for k in range(0, n, 2):
                run(rec[k], rec[k + 1] * ct)

    def backward(self, records: list, seeds: list[tuple[int, float]], n_sinks: int) -> list:
        saved_records, saved_grad = self.records, self.grad
        self.records = records
        self.grad = [ZERO] * n_sinks
        try:
            for p, v in seeds:
                self.run(p, v)
            return self.grad
        finally:
            self.records, self.grad = saved_records, saved_grad



__all__ = ["Factoring", "Naive", "GENERIC", "SINK", "contributions", "all_floats"]
