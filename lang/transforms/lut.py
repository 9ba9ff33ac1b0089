"""Unzip and transpose: reverse mode as forward mode, partial evaluation and transposition.

Radul, Paszke, Frostig, Johnson, Maclaurin, "You only linearize once: tangents
transpose to gradients" (POPL 2023) decompose reverse-mode AD into three
program transformations; the lut modes run them on programs traced at a point
(docs/transforms.md, lut; the language is lang/transforms/lut_ir.py):

1. *Linearize* (JVP): every real carries a primal and a tangent variable, and
   each primitive application records its primal equation, the equations of
   its partial derivatives, and a Group of tangent equations
   `t = ∂1 * t1 + ... + ∂k * tk` — the rule →D writes (lang/transforms/forward.py),
   from the same primitive table. lang/modes/lut.py does this as the function runs.

2. *Unzip* (`unzip`): split the JVP program by binding time. Primal equations
   (known at the point) go to the primal program, tangent ones (linear in the
   unknown input tangent) to the linear program. The primal variables the
   linear program reads are the *residuals*, and which of them to keep is the
   free choice the paper points out:

       store      the primal program returns every residual; the linear program
                  reads them (JAX's default, `everything_saveable`)
       recompute  the primal program returns only its input; the linear program
                  starts by recomputing what it reads (`nothing_saveable`)

   A loop is split into a primal loop and a linear loop; a residual made inside
   the body becomes a column: under store the primal loop returns one element
   of it per iteration, under recompute the linear loop's body recomputes it
   from its own inputs (for a fold, the state of each iteration, which the
   recomputing prefix returns as a column).

3. *Transpose* (`transpose`): the linear program read backwards, each
   equation replaced by its transpose, a cotangent per tangent variable:

       t = w * u        ct[u] += w * ct[t]
       t = u + v        ct[u] += ct[t];  ct[v] += ct[t]
       t = u - v        ct[u] += ct[t];  ct[v] += -ct[t]
       t = -u           ct[u] += -ct[t]
       t = u            ct[u] += ct[t]
       X = [u1, .., un] ct[ui] += ct[X][i]
       u read k times   k contributions: the first binds ct[u], each later one is an Acc (a merge)
       map              map, each iteration's body transposed; what the body reads from outside
                        (the same tangent in every iteration) gets the sum of the iterations'
                        contributions
       fold (left)      fold from the last element to the first (right), the state's cotangent
                        carried backwards; contributions to what the body reads from outside
                        carried along
       scan             a scan in the other direction, generally

   Reading backwards is all the scheduling needed: in a program in A-normal
   form, every use of a variable comes after its definition, so by the time
   the definition is reached, every contribution to its cotangent has been
   made. A variable with no contribution is dead: its equations are dropped.

Everything here is a pure function on the data of lut_ir.py; nothing runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .lut_ir import (ZERO, Acc, Add, AddList, Copy, Group, Loop, Neg, Pack, Prim, Program, Scale, Sub, Sum, Var,
                     Zero, atoms_read, base, defined, elem, free_reads)

STORE, RECOMPUTE = "store", "recompute"
POLICIES = (STORE, RECOMPUTE)


@dataclass
class Trace:
    """What tracing a function at a point records (lang/modes/lut.py): the JVP program.

    The inputs and outputs are the *components* of the function's input and output: its reals, and its
    lists of reals (a list of tuples of reals has one list per real field), in a fixed order."""

    inputs: tuple        # primal input components (Vars)
    tangents: tuple      # their tangents (Vars), in the same order
    eqs: tuple           # the JVP program
    outputs: tuple       # primal output components (atoms)
    out_tangents: tuple  # their tangents (atoms; ZERO for a constant)


@dataclass
class Unzipped:
    """The two programs unzipping makes, and the residuals the first hands the second."""

    primal: Program
    linear: Program
    policy: str


# ---- unzip ----------------------------------------------------------------------------------


def unzip(trace: Trace, policy: str) -> Unzipped:
    """Split a JVP program into a primal program (value and residuals) and a linear program."""
    assert policy in POLICIES, policy
    primal_eqs, prefix_eqs, linear_eqs = _split(trace.eqs, policy)
    needs = _primal_reads(linear_eqs)
    if policy == STORE:
        residuals = tuple(needs)
        primal = Program(trace.inputs, tuple(primal_eqs), (*trace.outputs, *residuals))
        linear = Program(trace.tangents, tuple(linear_eqs), trace.out_tangents, res=residuals)
    else:
        kept, free = _slice(prefix_eqs, needs)
        assert free <= set(trace.inputs), "recompute needs only the input"
        primal = Program(trace.inputs, tuple(primal_eqs), (*trace.outputs, *trace.inputs))
        linear = Program(trace.tangents, tuple(linear_eqs), trace.out_tangents, res=trace.inputs,
                         prefix=tuple(kept))
    return Unzipped(primal, linear, policy)


def _split(eqs, policy: str) -> tuple[list, list, list]:
    """(the primal program's equations, the equations recompute may slice from, the linear ones)."""
    primal, prefix, linear = [], [], []
    for e in eqs:
        if isinstance(e, Loop):
            p, pre, lin = _split_loop(e, policy)
            primal.append(p)
            prefix.append(pre)
            if lin is not None:
                linear.append(lin)
        elif _linear(e):
            linear.append(e)
        else:
            primal.append(e)
            prefix.append(e)
    return primal, prefix, linear


def _linear(e) -> bool:
    """Whether an equation of a split program is a tangent (or cotangent) one rather than a primal one."""
    match e:
        case Prim():
            return False
        case Copy(out) | Pack(out) | Zero(out):
            return out.is_tangent
        case Loop(carry_vars=cv, out_vars=ov):
            return any(v.is_tangent for v in (*cv, *ov))
    return True  # Group, Scale, ..., Sum, AddList


def _split_loop(loop: Loop, policy: str) -> tuple[Loop, Loop, Loop | None]:
    """A traced loop as (its primal loop, the primal loop recompute runs, its linear loop or None)."""
    body_p, body_pre, body_l = _split(loop.body, policy)
    carries = list(zip(loop.carry_params, loop.carry_init, loop.carry_out, loop.carry_vars))
    pc = [c for c in carries if not c[0].is_tangent]
    tc = [c for c in carries if c[0].is_tangent]
    cols = list(zip(loop.col_params, loop.columns))
    pcols = [c for c in cols if not c[0].is_tangent]
    tcols = [c for c in cols if c[0].is_tangent]
    outs = list(zip(loop.col_out, loop.out_vars))
    pouts = [o for o in outs if not o[1].is_tangent]
    touts = [o for o in outs if o[1].is_tangent]
    column_of = dict(pcols)
    needs = _primal_reads(body_l)
    lin_cols = list(tcols)
    extra_out: list = []  # (body variable, column) the primal loop also returns, per iteration
    if policy == STORE:
        saved = dict(loop.saved)
        local = set(loop.carry_params) | set(loop.col_params)
        for q in loop.body:
            local.update(defined(q))
        for r in needs:
            if r in column_of:
                lin_cols.append((r, column_of[r]))
            elif r in saved:
                lin_cols.append((r, saved[r]))
            else:
                assert r not in local, "a residual made inside a loop was not kept per iteration"
        primal_saved = loop.saved
        body_lin = tuple(body_l)
    else:
        kept, free = _slice(body_pre, needs)
        carry_params = {c[0] for c in pc}
        for r in free:
            if r in column_of:
                lin_cols.append((r, column_of[r]))
            elif r in carry_params:  # the state of each iteration, returned by the recomputing loop
                states = Var("P", length=loop.n)
                extra_out.append((r, states))
                lin_cols.append((r, states))
        primal_saved = ()
        body_lin = (*kept, *body_l)

    def primal_loop(body, more) -> Loop:
        return Loop(loop.kind, loop.n, loop.reverse,
                    tuple(c[0] for c in pc), tuple(c[1] for c in pc), tuple(c[0] for c in pcols),
                    tuple(c[1] for c in pcols), tuple(body), tuple(c[2] for c in pc),
                    tuple(o[0] for o in pouts), tuple(c[3] for c in pc), tuple(o[1] for o in pouts), more)
    primal = primal_loop(body_p, primal_saved)
    prefix = primal_loop(body_pre, tuple(extra_out)) if policy == RECOMPUTE else primal
    if not tc and not touts:
        return primal, prefix, None
    linear = Loop(loop.kind, loop.n, loop.reverse,
                  tuple(c[0] for c in tc), tuple(c[1] for c in tc), tuple(c[0] for c in lin_cols),
                  tuple(c[1] for c in lin_cols), body_lin, tuple(c[2] for c in tc),
                  tuple(o[0] for o in touts), tuple(c[3] for c in tc), tuple(o[1] for o in touts))
    return primal, prefix, linear


def _primal_reads(eqs) -> list[Var]:
    """The primal variables (lists for elements) the equations read from outside them, in order."""
    seen: dict[Var, None] = {}
    local: set = set()
    for e in eqs:
        for a in atoms_read(e):
            if type(a) is Var and not a.is_tangent:
                b = base(a)
                if b not in local:
                    seen.setdefault(b)
        local.update(defined(e))
    return list(seen)


def _slice(eqs, needs) -> tuple[list, set]:
    """The equations that compute `needs` (whole loops), in order, and the variables they read that they
    do not define."""
    need = {base(v) for v in needs}
    kept = []
    for e in reversed(eqs):
        outs = set(defined(e))
        if outs & need:
            kept.append(e)
            need -= outs
            need.update(base(a) for a in atoms_read(e) if type(a) is Var)
    kept.reverse()
    return kept, need


# ---- transpose ----------------------------------------------------------------------------------


@dataclass
class Transposed:
    """The transposed program and what it costs, counted as it is made (docs/transforms.md, Cost counters)."""

    program: Program
    sink_updates: int = 0   # contributions that reach a cotangent of an input
    peak_pending: int = 0   # most cotangents holding a value not yet consumed, between equations


def transpose(linear: Program) -> Transposed:
    """The transpose of a linear program: cotangents of its outputs in, of its inputs out (module docstring).

    The residuals and the recomputing prefix are the linear program's own: transposing leaves the
    primal part alone."""
    t = _Transposer(inputs=set(linear.params))
    ct_params = []
    for o in linear.outs:
        c = _cotangent_var(o)
        ct_params.append(c)
        t.seed(o, c)
    t.measure()
    for e in reversed(linear.eqs):
        t.equation(e)
        t.measure()
    outs = []
    for p in linear.params:
        c = t.take(p)
        if c is None:
            c = Var(p.kind, length=p.length, of=p)
            t.emit(Zero(c))
        outs.append(c)
    assert not t.ct and not t.lists and not t.elems, "a cotangent reached a variable that is never defined"
    program = Program(tuple(ct_params), tuple(t.out), tuple(outs), res=linear.res, prefix=linear.prefix)
    return Transposed(program, t.sinks, t.peak)


def _cotangent_var(v) -> Var:
    """A fresh cotangent variable for the atom v (a real for a real, a list for a list)."""
    if type(v) is Var and v.kind == "T":
        return Var("T", length=v.length, of=v)
    return Var("t", of=v if type(v) is Var else ZERO)


@dataclass
class _Transposer:
    """The state of transposing one program (or one loop body): the cotangents made so far."""

    inputs: set                                   # the program's linear inputs (their contributions are sinks)
    ct: dict = field(default_factory=dict)        # a real tangent (or list element) -> its cotangent so far
    lists: dict = field(default_factory=dict)     # a list tangent -> the whole-list cotangent so far
    elems: dict = field(default_factory=dict)     # a list tangent -> {index: its element's cotangent so far}
    out: list = field(default_factory=list)       # the transposed equations, in the order they run
    sinks: int = 0
    pending: int = 0                              # cotangents holding a value now (see measure)
    peak: int = 0
    inner_peak: int = 0                           # a loop body's own peak, added while it runs

    def emit(self, e) -> None:
        self.out.append(e)

    def measure(self) -> None:
        """The cotangents pending now (not the inputs'; a list counts its length), against the peak."""
        self.peak = max(self.peak, self.pending + self.inner_peak)
        self.inner_peak = 0

    def _held(self, v: Var) -> int:
        """How much a pending cotangent of v counts: 0 for an input's, a list's length, else 1."""
        if base(v) in self.inputs:
            return 0
        return v.length if v.kind == "T" else 1

    # ---- contributions
    def contribute(self, v, c: Var, w=None, negate: bool = False) -> None:
        """ct[v] += w * c (w None: c; negate: -c). Constants and the zero tangent take nothing."""
        if type(v) is not Var:
            return
        if base(v) in self.inputs:
            self.sinks += v.length if v.kind == "T" else 1
        if v.kind == "T":
            assert w is None and not negate
            old = self.lists.get(v)
            if old is None:
                self.lists[v] = c
                self.pending += self._held(v)
            else:
                new = Var("T", length=v.length, of=v)
                self.emit(AddList(new, old, c))
                self.lists[v] = new
            return
        if v.list is not None:
            self.elems.setdefault(v.list, set()).add(v)
        old = self.ct.get(v)
        new = Var("t", of=v)
        if old is None:
            self.emit(Scale(new, w, c) if w is not None else Neg(new, c) if negate else Copy(new, c))
            self.pending += self._held(v)
        else:
            self.emit(Acc(new, old, w, c, negate))
        self.ct[v] = new

    def seed(self, v, c: Var) -> None:
        """ct[v] += c, where c is a cotangent given from outside (a parameter): it becomes ct[v] itself
        when v has none yet."""
        if type(v) is Var and v.kind != "T" and v.list is None and v not in self.ct:
            if base(v) in self.inputs:
                self.sinks += 1
            self.ct[v] = c
            self.pending += self._held(v)
        elif type(v) is Var and v.kind == "T" and v not in self.lists:
            if v in self.inputs:
                self.sinks += v.length
            self.lists[v] = c
            self.pending += self._held(v)
        else:
            self.contribute(v, c)

    def take(self, v: Var) -> Var | None:
        """The cotangent of v, complete (every use of v is behind us), or None: v is dead."""
        if v.kind != "T":
            c = self.ct.pop(v, None)
            if c is not None:
                self.pending -= self._held(v)
            return c
        whole = self.lists.pop(v, None)
        if whole is not None:
            self.pending -= self._held(v)
        members = self.elems.pop(v, None)
        if not members:
            return whole
        items = []
        for i in range(v.length):
            e = v.elems.get(i) if v.elems else None
            c = self.ct.pop(e, None) if e is not None and e in members else None
            if c is not None:
                self.pending -= self._held(e)
            items.append(ZERO if c is None else c)
        packed = Var("T", length=v.length, of=v)
        self.emit(Pack(packed, tuple(items)))
        if whole is None:
            return packed
        new = Var("T", length=v.length, of=v)
        self.emit(AddList(new, whole, packed))
        return new

    def drop(self, v: Var) -> None:
        """Forget the cotangent of a variable whose value is zero (nothing flows through it)."""
        for d in (self.ct, self.lists):
            if d.pop(v, None) is not None:
                self.pending -= self._held(v)
        for e in self.elems.pop(v, ()):
            if self.ct.pop(e, None) is not None:
                self.pending -= self._held(e)

    # ---- equations
    def equation(self, e) -> None:
        match e:
            case Group(out, eqs):
                if out not in self.ct:
                    return  # dead: nothing it computes reaches an output
                saved, self.out = self.out, []
                for q in reversed(eqs):
                    self.step(q)
                inner, self.out = self.out, saved
                self.emit(Group(None, tuple(inner)))
            case Zero(out):
                self.drop(out)
            case Copy() | Scale() | Add() | Sub() | Neg():
                self.step(e)
            case Pack(out, items):
                c = self.take(out)
                if c is not None:
                    for i, item in enumerate(items):
                        self.contribute(item, elem(c, i))
            case Loop():
                self.loop(e)
            case Prim():
                raise AssertionError("a primal equation in a linear program is transposed by staying put")
            case _:
                raise AssertionError(f"no transpose for {type(e).__name__}")

    def step(self, q) -> None:
        """One tangent equation, inside or outside a group."""
        c = self.take(q.out)
        if c is None:
            return
        match q:
            case Scale(_, w, x):
                self.contribute(x, c, w=w)
            case Add(_, x, y):
                self.contribute(x, c)
                self.contribute(y, c)
            case Sub(_, x, y):
                self.contribute(x, c)
                self.contribute(y, c, negate=True)
            case Neg(_, x):
                self.contribute(x, c, negate=True)
            case Copy(_, x):
                self.contribute(x, c)
            case _:
                raise AssertionError(q)

    def loop(self, L: Loop) -> None:
        """A scan, transposed into the scan the other way (module docstring)."""
        cc = [self.take(v) for v in L.carry_vars]
        cy = [self.take(v) for v in L.out_vars]
        if all(c is None for c in cc) and all(c is None for c in cy):
            return
        local = set(L.carry_params) | set(L.col_params)
        for q in L.body:
            local.update(defined(q))
        body = _Transposer(inputs=set())
        carry_params, carry_init = [], []
        for v, c in zip(L.carry_vars, cc):
            p = Var("t", of=v)
            if c is None:  # no cotangent for this part of the final state: it starts at zero
                c = Var("t", of=v)
                self.emit(Zero(c))
            carry_params.append(p)
            carry_init.append(c)
        col_params, columns = [], []
        seeds = []
        for v, o, c in zip(L.carry_vars, L.carry_out, carry_params):
            seeds.append((o, c))
        for v, o, c in zip(L.out_vars, L.col_out, cy):
            if c is not None:
                p = Var("t", of=o if type(o) is Var else ZERO)
                col_params.append(p)
                columns.append(c)
                seeds.append((o, p))
        for o, p in seeds:
            body.seed(o, p)
        body.measure()
        primal = [q for q in L.body if not _linear(q)]
        for q in reversed([q for q in L.body if _linear(q)]):
            body.equation(q)
            body.measure()
        carry_out = []
        for p in L.carry_params:
            c = body.take(p)
            carry_out.append(ZERO if c is None else c)
        col_out, out_vars, after = [], [], []
        for p, column in zip(L.col_params, L.columns):
            if not p.is_tangent:  # a residual or primal column: read as it is
                col_params.append(p)
                columns.append(column)
                continue
            c = body.take(p)
            if c is not None:
                col_out.append(c)
                out_vars.append(Var("T", length=L.n, of=column))
                after.append((column, out_vars[-1], None))
        # what is left is what the body read from outside, a contribution per iteration: reals (elements of
        # outside lists among them, kept as reals: a list read whole only by a nested loop)
        free = list(body.ct.items()) + list(body.lists.items())
        body.ct.clear()
        body.lists.clear()
        body.elems.clear()
        assert not (set(base(v) for v, _ in free) & local), "a body cotangent outlived its definition"
        carry_vars = [Var("t", of=v) for v in L.carry_params]
        for v, c in free:
            if L.carry_params or v.kind == "T":  # a fold: carry the sum backwards
                total = Var(v.kind, length=v.length, of=v)
                start = Var(v.kind, length=v.length, of=v)
                self.emit(Zero(start))
                carried = Var(v.kind, length=v.length, of=v)
                nxt = Var(v.kind, length=v.length, of=v)
                body.emit(AddList(nxt, carried, c) if v.kind == "T" else Acc(nxt, carried, None, c))
                carry_params.append(carried)
                carry_init.append(start)
                carry_out.append(nxt)
                carry_vars.append(total)
                after.append((v, total, None))
            else:  # a map: one contribution per iteration, summed after the loop
                column = Var("T", length=L.n, of=v)
                col_out.append(c)
                out_vars.append(column)
                total = Var("t", of=v)
                after.append((v, total, Sum(total, column)))
        self.inner_peak = body.peak
        self.emit(Loop(L.kind, L.n, not L.reverse, tuple(carry_params), tuple(carry_init), tuple(col_params),
                       tuple(columns), (*primal, *body.out), tuple(carry_out), tuple(col_out), tuple(carry_vars),
                       tuple(out_vars)))
        for init, final in zip(L.carry_init, carry_vars):
            self.contribute(init, final)
        for target, value, summing in after:
            if summing is not None:
                self.emit(summing)
            self.contribute(target, value)


def counts_of(program: Program) -> dict:
    """What one run of a transposed (or linear) program does, by construction: Groups run (bp_run),
    merges (an Acc is one, an AddList one per element), primal equations recomputed."""
    out = {"groups": 0, "merges": 0, "prims": 0, "equations": 0}

    def walk(eqs, times: int) -> None:
        for e in eqs:
            match e:
                case Group(_, inner):
                    out["groups"] += times
                    walk(inner, times)
                case Acc():
                    out["merges"] += times
                    out["equations"] += times
                case AddList(out=v):
                    out["merges"] += times * v.length
                case Prim():
                    out["prims"] += times
                case Scale() | Add() | Sub() | Neg():
                    out["equations"] += times
                case Loop(n=n, body=body):
                    walk(body, times * n)
    walk(program.prefix, 1)
    walk(program.eqs, 1)
    return out


__all__ = ["Trace", "Unzipped", "Transposed", "unzip", "transpose", "counts_of", "STORE", "RECOMPUTE", "POLICIES"]
