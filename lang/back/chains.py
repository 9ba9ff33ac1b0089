"""Sum chains: the records of a fold that adds into its accumulator, one record per loop instead of one per step.

A fold like W4's `sum (map (fun x -> sin x * x) xs)` (map/fold fused) records, at step k, the
backpropagator of its new accumulator, preaccumulated:

    fun a -o acc' (1.0 * a) + x' (w * a)           record r_k = (r_(k-1), 1.0, x_k', w_k)

When the accumulator's backpropagator `acc'` occurs once in the step (the fold's lambda takes its
accumulator apart once, and uses `acc'` in this one place, not under a loop of its own), r_(k-1) is
reached only from r_k: the sweep hands it `1.0 * ct`, which it passes down the same way. So the
records of steps j .. m of one loop run, created one after the other with nothing in between, are
one record, a *chain*:

    [r_(j-1), 1, x_j', w_j, x_(j+1)', w_(j+1), ..., x_m', w_m]       (prev, width, pairs: `chain`)

at identity r_j, the identity the later steps' accumulators share. A step that finds its
accumulator's backpropagator to be the chain this loop is growing, and the chain the last record,
appends its pairs (two appends, no tuple, no identity); any other step starts a chain (where nothing but the
step's own record can be written, the test that the chain is the last record goes: `FoldChain.alone`). This is
linear β for backpropagators used once (docs/transforms.md, Preaccumulation), done while the loop
runs rather than on the term: a loop's length is known only then.

The sweep of a chain does what the sweep of r_m .. r_j did, in the same order: step m's pairs
with ct, then `ct = 1.0 * ct` down to step j, whose record first adds `1.0 * ct` into prev. For a
float ct that is not nan, `1.0 * ct` is ct to the bit (inf and -0.0 included), so a chain is one
loop over its steps from the last, ct unchanged, prev added after step j's pairs (the order of
additions into different slots is free; where prev is one of step j's parents the steps are run as
above). Past 64 steps on distinct consecutive parents nothing has reached yet (a list input's sinks),
their arguments are one comprehension `[w * ct for w in weights]` stored as a slice: the same
products, each into an empty slot, so the same values. Nothing else is changed: the counting
machine (`--cost`), `backprop-naive` and `dl watch` record step by step, and the order-free pass's
float sweep gives a chain to the object sweep (which runs the steps exactly, as above).

Where the loop numbers a [Real]'s floats (lang/back/streams.py) and a step's only other parent is the
element's sink, the parents of a chain's steps are consecutive sinks (a chain grows only at the step right
after the one that grew it last), and the chain is `[prev, 0, x_j', w_j, w_(j+1), ..., w_m]` (width 0): the
first parent, then one weight a step. Its sweep is the width-1 chain's with the parents written out
(`chain_pairs`); a tape that is the sinks and one such chain over all of them is swept into the gradient
list directly (`sinks_of_chain`, called by lang/back/quick.py's sweep).

Example (W4 at n = 10^4, docs/transforms.md): 10^4 + 1 records instead of 2 * 10^4, and the loop
appends two numbers a step instead of building a 4-tuple; the compiled step is `Gen`'s code with
`LinearBackend._chain_step` at the record site (lang/back/linear.py).

Scaled steps. A step that scales its accumulator, `acc' (w * a) + p' (u * a) + q' (v * a)` in any field
order, where every other parent is *fixed* for the loop's run (a variable the step does not bind, or takes
apart from one: `_fixed_at`), records r_k = (.., r_(k-1), w_k, .., p, u_k, .., q, v_k) with the same p and q
at every step. Its steps make a *chain of scaled steps* (`scaled`):

    [r_(j-1), (k, (p, q)), u_j, v_j, w_j, u_(j+1), v_(j+1), w_(j+1), ...]

the fixed parents once, each step's weights alone (the accumulator's last; k is its place in the field
order). W7's `iterate n (step a b) x`, whose step fusion makes `step`'s body (lang/transforms/fusion.py,
`specialise`), is one: 10^4 steps are one list extended by three floats a step (`LinearBackend._scaled_step`)
instead of 10^4 six-tuples. Its sweep (`sweep_scaled`) is what the records' sweep does: from the last step,
each adds u * ct and v * ct into p and q and hands w * ct to the step below, into an empty slot (the
accumulator's backpropagator is used once), the first step to prev; with one or two fixed parents, distinct
and not prev, their pending arguments stay in locals through the loop (the same products added in the same
order into each), otherwise the steps run field by field. The counting machine records step by step.
"""
from __future__ import annotations

from itertools import islice

from ..model import core as c
from ..model.types import TFun, prune

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Callable


def chain(prev: int | None, width: int, pairs: list) -> list:
    """A chain record: the list [prev, width, parent, weight, parent, weight, ...], step after step. prev: the
    identity the first step's `acc' (1.0 * a)` went to (None: acc' was zero); width: the (parent, weight)
    pairs each step appends. A list, which no other record is: the sweep tells it apart by its type, and
    the compiled step writes it as a list display and appends to it."""
    return [prev, width, *pairs]


def sinks_of_chain(rec: list, n_sinks: int, ct) -> list | None:
    """The sinks' pending arguments after sweeping, from ct, a tape that is the sinks and this one chain, when the
    chain's steps are the sinks 0 .. n_sinks - 1 each once (width 0) and its prev None: each sink gets its
    weight times ct, in an empty slot, as `sweep_chain` stores them (for a float ct that is not nan); else None.

    From ct = 1.0 (the seed of `grad` and `value_and_grad`) the weights themselves: w * 1.0 is w to the bit for
    every float w (multiplication by one is exact; inf, -0.0 and a nan come back as they are). The weights are
    floats (reals of ←D's language at depth 0); were one a number of another type (numpy's, the symbolic zero), the
    entries' check of the gradient they read this from (lang/back/entries.py, `_SETTLE_LIST`) would fail and the
    general path recompute it or the real be settled."""
    if rec[1] == 0 and rec[0] is None and rec[2] == 0 and len(rec) - 3 == n_sinks and type(ct) is float \
            and ct == ct:
        return rec[3:] if ct == 1.0 else [w * ct for w in islice(rec, 3, None)]
    return None


def chain_pairs(first: int, weights) -> list:
    """The (parent, weight) fields of a consecutive chain's steps: first, first + 1, ... with the weights."""
    out = []
    for p, w in enumerate(weights, first):
        out += (p, w)
    return out


_SLICE_MIN = 64  # a shorter chain is swept pair by pair (the checks would cost what they save)


def sweep_chain(rec: list, adj: list, ct) -> None:
    """Run a chain on its pending argument ct: what the sweep of its steps' records, one by one, does."""
    prev, width = rec[0], rec[1]
    if type(width) is tuple:  # (a chain of scaled steps on fixed parents)
        sweep_scaled(rec, adj, ct)
        return
    if width == 0:  # one parent a step, consecutive sinks from rec[2]: [prev, 0, p, w_1, ..., w_m]
        p, m = rec[2], len(rec) - 3
        if m > _SLICE_MIN and type(ct) is float and ct == ct and not (prev is not None and p <= prev < p + m) \
                and adj[p:p + m].count(None) == m:  # (the short cut below, without the parents' list)
            adj[p:p + m] = [w * ct for w in islice(rec, 3, None)]
            return
        rec = [prev, 1, *chain_pairs(p, islice(rec, 3, None))]  # the chain with its parents written out
        width = 1
    step = 2 * width
    if type(ct) is float and ct == ct and (prev is None or prev not in rec[2:step + 2:2]):
        # 1.0 * ct is ct (see the module's docstring): the steps from the last, ct unchanged, then prev (after
        # step 1's pairs: they are other parents, the order of additions into different slots is free)
        if width == 1:
            m = (len(rec) - 2) >> 1
            parents = rec[2::2] if m > _SLICE_MIN else None
            if parents is not None and not (prev is not None and parents[0] <= prev < parents[0] + m) \
                    and parents == list(range(parents[0], parents[0] + m)) \
                    and adj[parents[0]:parents[0] + m].count(None) == m:
                # distinct consecutive parents nothing has reached: the products stored as one slice
                adj[parents[0]:parents[0] + m] = [w * ct for w in rec[3::2]]
            else:
                it = islice(reversed(rec), 2 * m)
                for w, p in zip(it, it):
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
        elif width == 2:  # (a dot product of two varying lists)
            for p, w, q, u in zip(rec[-4:1:-4], rec[-3:1:-4], rec[-2:1:-4], rec[-1:1:-4]):
                old = adj[p]
                adj[p] = w * ct if old is None else old + w * ct
                old = adj[q]
                adj[q] = u * ct if old is None else old + u * ct
        else:
            for k in range(len(rec) - step, 1, -step):
                for i in range(k, k + step, 2):
                    p, w = rec[i], rec[i + 1]
                    old = adj[p]
                    adj[p] = w * ct if old is None else old + w * ct
        if prev is not None:
            old = adj[prev]
            adj[prev] = 1.0 * ct if old is None else old + 1.0 * ct
        return
    k = len(rec)
    while k > step + 2:  # steps m down to 2: their pairs, then `1.0 * ct` to the step below
        k -= step
        for i in range(k, k + step, 2):
            p, w = rec[i], rec[i + 1]
            old = adj[p]
            adj[p] = w * ct if old is None else old + w * ct
        ct = 1.0 * ct
    if prev is not None:  # step 1: its record (prev, 1.0, pairs...) in its field order
        old = adj[prev]
        adj[prev] = 1.0 * ct if old is None else old + 1.0 * ct
    for i in range(2, step + 2, 2):
        p, w = rec[i], rec[i + 1]
        old = adj[p]
        adj[p] = w * ct if old is None else old + w * ct


# ---- scaled chains: a step that scales its accumulator, on parents fixed for the loop -------------------------

def scaled(prev: int | None, k: int, parents: tuple, weights: list) -> list:
    """A chain of scaled steps: [prev, (k, parents), w, .., w_acc, w, .., w_acc, ...]: each step's weights for
    `parents` (identities fixed for the loop's run) in its record's field order, then its accumulator's weight;
    k is the accumulator's place in that field order (the order in which a step's record adds)."""
    return [prev, (k, parents), *weights]


def chain_weights(rec: list) -> list:
    """The weights a chain's steps multiply by (the order-free pass's finite check sums them): a scaled chain's
    after its head, a consecutive chain's (width 0) after its first parent, else every other field's."""
    width = rec[1]
    return rec[2:] if type(width) is tuple else rec[3:] if width == 0 else rec[3::2]


def sweep_scaled(rec: list, adj: list, ct) -> None:
    """Run a chain of scaled steps on ct: what the sweep of its steps' records (p, w, .., prev_i, w_acc, .., q, u)
    does, from the last step down: each step adds w * ct to each of its fixed parents, in field order, and hands
    w_acc * ct to the step below (into an empty slot: the accumulator's backpropagator is used once), the first
    step to prev. Where the parents are one or two, distinct, and not prev, their pending arguments are kept in
    locals while the loop runs (each receives the same products in the same order; `x += y` is `x = x + y` on
    the numbers a sweep adds); otherwise the steps run field by field."""
    prev, (k, parents) = rec[0], rec[1]
    if type(ct) is float and prev not in parents:
        if len(parents) == 2:
            p, q = parents
            if p != q:
                sp, sq = adj[p], adj[q]
                w, u, wacc = rec[-3], rec[-2], rec[-1]  # (the last step: where p, q may have nothing pending)
                sp = w * ct if sp is None else sp + w * ct
                sq = u * ct if sq is None else sq + u * ct
                ct = wacc * ct
                it = iter(rec[-4:1:-1])  # the other steps' weights, last to first, from the last step
                for wacc, u, w in zip(it, it, it):
                    sp += w * ct
                    sq += u * ct
                    ct = wacc * ct
                adj[p], adj[q] = sp, sq
                if prev is not None:  # (ct: the first step's w_acc * ct)
                    old = adj[prev]
                    adj[prev] = ct if old is None else old + ct
                return
        elif len(parents) == 1:
            p, = parents
            sp = adj[p]
            w, wacc = rec[-2], rec[-1]
            sp = w * ct if sp is None else sp + w * ct
            ct = wacc * ct
            it = iter(rec[-3:1:-1])
            for wacc, w in zip(it, it):
                sp += w * ct
                ct = wacc * ct
            adj[p] = sp
            if prev is not None:
                old = adj[prev]
                adj[prev] = ct if old is None else old + ct
            return
    s = len(parents) + 1
    for base in range(len(rec) - s, 1, -s):  # each step from the last: its fields in order
        below = None
        for f in range(s):
            if f == k:
                w = rec[base + s - 1]
                if base > 2:  # (the step below's pending argument)
                    below = w * ct
                    continue
                if prev is None:
                    continue
                p = prev
            else:
                p, w = (parents[f], rec[base + f]) if f < k else (parents[f - 1], rec[base + f - 1])
            old = adj[p]
            adj[p] = w * ct if old is None else old + w * ct
        ct = below

class FoldChain:
    """A fold loop being compiled whose steps may chain: the accumulator's backpropagator variable, the
    loop depth of the step's body, and the locals (one per record site) holding the identity of the chain
    each site grows (set to -1 before the loop)."""

    def __init__(self, bp: tuple, depth: int, fixed: dict | None = None):
        self.bp = bp
        self.depth = depth
        self.fixed = fixed or {}  # where acc' is used: the variables bound in the step, fixed for the loop or not
        self.sites: list[str] = []  # the locals holding each site's chain identity (-1 before the loop)
        self.locals: dict = {}      # a site's key -> its locals (the chain's identity, the chain)
        self.sink = None  # the local of the element's sink, where the loop numbers a [Real]'s floats (consecutive)
        self.index = None  # and an expression of the element's sink for a chain's start (from the loop's iterator)
        self.checks: list[tuple[int, str]] = []  # each site's test (its line's place; the line without the tape's)
        self.steps: list[tuple[int, int]] = []  # the lines of each backpropagator written with sites (`alone`)

    def site(self, gen, key) -> tuple[str, str]:
        """The locals of the record site `key`: the branches of one backpropagator with the same other parents
        present share them, so that a chain started where acc' is absent (the first step) grows where it is
        present (the next ones)."""
        names = self.locals.get(key)
        if names is None:
            names = self.locals[key] = (gen.local(), gen.local())
            self.sites.append(names[0])
        return names


    def alone(self, gen, fn: c.Lam, start: int) -> None:
        """Where the step writes no record but the one backpropagator with this chain's sites, the sites' test that
        the chain is the last record goes: a step that finds acc' to be the chain a site grows follows the step
        that grew it last (acc' is that step's record), and neither wrote another record since. So

            if v9 == v19 and R[-1] is v20:        becomes        if v9 == v19:

        (W5's dot: 6 of its step's 54 bytecodes.) The step must call nothing and make no closure (`calls_in`: no
        record written by code other than these lines), be written in these lines (`_fold_loop`: nothing spilled),
        and the lines from the loop's `for` (line `start`) on that name the tape or the backend must all be the one
        backpropagator's (`steps`), which writes one record at most (`LinearBackend.create`)."""
        if not self.checks or len(self.steps) != 1 or calls_in(fn.body.body) != []:
            return
        lo, hi = self.steps[0]
        if naming_the_tape(gen, gen.lines[start:lo] + gen.lines[hi:]):
            return
        for i, line in self.checks:
            gen.lines[i] = line


def naming_the_tape(gen, lines: list[str]) -> list[str]:
    """Those of `lines` (of `gen`'s body) that name the tape (`R`, the records read on entry) or the backend: the
    only lines that can write a record, in a body that calls nothing (`calls_in`) and spilled nothing."""
    import re  # (compiling a gradient: not at start-up)
    names = re.compile(rf"\b(R|{gen.const(gen.compiler.linear)})\b")
    return [line for line in lines if names.search(line)]


def calls_in(e: c.Expr, own: Callable[[c.App], bool] = lambda app: False) -> list[c.App] | None:
    """The applications in e that `own` accepts (a self tail loop's calls of itself, whose arguments are looked
    into, not the head); None where e has any other application, a lambda, a local recursive definition, a
    global or a primitive given a function: anything whose code the lines written for e do not show."""
    calls, stack = [], [e]
    while stack:
        e = stack.pop()
        match e:
            case c.App() if own(e):
                calls.append(e)
                stack += c.spine(e)[1]  # (not the head: g given fewer arguments is no call of its own)
                continue
            case c.App() | c.Lam() | c.LetRec() | c.Global():
                return None
            case c.Prim(args=args) if any(a.ty is not None and isinstance(prune(a.ty), TFun) for a in args):
                return None
        stack += c.children(e)
    return calls


def fold_chain(fn: c.Expr, depth: int) -> FoldChain | None:
    """A FoldChain for a fold on `fn` when its accumulator's backpropagator is used exactly once:
    `fun acc x -> let .. in let (v, v') = acc in e` with acc free nowhere else, v' occurring once in e
    and bound nowhere in e; None otherwise."""
    if not isinstance(fn, c.Lam) or not isinstance(fn.body, c.Lam) or fn.body.param == fn.param:
        return None
    acc, t = (fn.param, ()), fn.body.body
    while True:  # down the lets to the one taking the accumulator apart
        match t:
            case c.LetTuple(names, c.Var(name, inst), body) if (name, inst) == acc and len(names) == 2:
                break
            case c.Let(name, bound, body, inst) if (name, inst) != acc and acc not in c.free_locals(bound):
                t = body
            case c.LetTuple(names, bound, body) if acc[0] not in names and acc not in c.free_locals(bound):
                t = body
            case _:
                return None
    names, body = t.names, t.body
    bp = names[1]
    if bp == names[0] or acc[0] not in names and acc in c.free_locals(body):
        return None
    uses = 0
    for u in c.subterms(body):
        match u:
            case c.Var(name, ()) if name == bp:
                uses += 1
            case c.Lam(param) | c.LinLam(param) if param == bp:
                return None
            case c.Let(name) | c.LetRec(name) if name == bp:
                return None
            case c.LetTuple(bound_names) if bp in bound_names:
                return None
    return FoldChain((bp, ()), depth, _fixed_at(fn, bp)) if uses == 1 else None


def _fixed_at(fn: c.Lam, bp: str) -> dict:
    """Where the one occurrence of `bp` is (in the backpropagator that uses it, or bp itself), the variables the
    step binds on the way there: True for one that is fixed for the loop's run (another name for a variable the
    step does not bind, or for one fixed: `let (a, a') = a` of a captured a), False for any other (the step's
    parameters, what its lets compute). A variable the step does not bind is fixed (bound outside the loop)."""
    parent: dict = {}
    stack, target = [fn], None
    while stack:
        t = stack.pop()
        if isinstance(t, c.Var) and t.name == bp and t.inst == ():
            target = t
            break
        for k in c.children(t):
            parent[id(k)] = t
            stack.append(k)
    path = []
    while target is not None:
        path.append(target)
        target = parent.get(id(target))
    path.reverse()
    fixed: dict = {}

    def alias(e: c.Expr) -> bool:
        return isinstance(e, c.Var) and fixed.get((e.name, e.inst), True)
    for t, child in zip(path, path[1:]):
        match t:
            case c.LinLam():
                break
            case c.Lam(param):
                fixed[(param, ())] = False
            case c.Let(name, bound, body, inst) if child is body:
                fixed[(name, inst)] = alias(bound)
            case c.LetTuple(names, bound, body) if child is body:
                same = alias(bound)
                for n in names:
                    fixed[(n, ())] = same
            case c.LetRec(name, _, _, inst):
                fixed[(name, inst)] = False
    return fixed


def chain_site(gen, pairs: list, present: list) -> FoldChain | None:
    """The fold chain a record site of `gen` grows: its first parent is the fold's accumulator
    backpropagator with the literal weight 1.0 (present, or absent: the chain starts with prev None), at
    the depth of the step's body, and at least one other parent is present."""
    chain = getattr(gen, "chain", None)
    if chain is None or gen.loop_depth != chain.depth or not any(present[1:]):
        return None
    (p, w) = pairs[0]
    if not (isinstance(p, c.Var) and (p.name, p.inst) == chain.bp and isinstance(w, c.Lit)
            and type(w.value) is float and w.value == 1.0):
        return None
    return chain


def scaled_site(gen, pairs: list, present: list) -> tuple[FoldChain, int] | None:
    """The fold chain a record site of `gen` grows as a chain of scaled steps, and the index of the accumulator's
    backpropagator among its pairs: one of its parents is that backpropagator (present, or absent: the chain starts
    with prev None), with any weight, every other parent a variable fixed for the loop's run (`_fixed_at`), at
    least one of them present, at the depth of the step's body."""
    chain = getattr(gen, "chain", None)
    if chain is None or gen.loop_depth != chain.depth:
        return None
    k = None
    for i, (p, _) in enumerate(pairs):
        if not isinstance(p, c.Var):
            return None
        if (p.name, p.inst) == chain.bp:
            if k is not None:
                return None
            k = i
        elif not chain.fixed.get((p.name, p.inst), True):
            return None
    if k is None or not any(here for i, here in enumerate(present) if i != k):
        return None
    return chain, k


__all__ = ["chain", "scaled", "sweep_chain", "sweep_scaled", "chain_weights", "sinks_of_chain", "FoldChain",
           "fold_chain", "chain_site", "scaled_site"]
