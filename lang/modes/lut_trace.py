"""Tracing a function at a point into its JVP program (the first stage of the lut modes).

The untransformed program runs once more, compiled with its real primitives
overloaded (lang/modes/overloading.py, as tape and symbolic do), on *duals*:
a real becomes `Dual(p, t)`, a primal variable p (with its value at the
point) and a tangent variable t (or ZERO, the tangent of a constant). A real
primitive applied to duals records, in the current list of equations,

    p = op(p1, ..., pk)                   its primal equation
    d = ...                               the primal equations of each partial derivative it needs
    group t { u1 = d1 * t1; ...; t = u1 + ... }    its tangent: →D's rule, from the same table

and returns `Dual(p, t)`. Constants stay floats and contribute nothing (a
partial is computed only for an argument with a tangent). Comparisons,
`floor`, `if` and loop counts read values: the trace is the program *at this
point*, as every mode's derivative is.

Loops stay loops where they can. `map`, `fold`, `zipWith` and `build` are not
unrolled into the trace: each iteration's body is traced on its own, its
inputs fresh *parameters* (a primal variable for each real of the element and
of the state, a tangent variable where the actual one is not zero), and
compared with the first iteration's: the same equations, the same variables
read from outside, the same shape of result (`skeleton`). Iterations that
agree become one `Loop` equation of the trace, whose body is traced once;
a real literal that differs between them (`float i`) becomes a column of its
own. Where an iteration differs (an `if` that goes the other way, a state that
stops being constant), the loop is cut into *segments* of agreeing iterations;
a segment of one iteration is written out in place. Elements that are not
flat data (lists, functions) make the loop run unrolled, as a plain loop.
Under the store policy, the values a body's tangent equations read are kept
per iteration (`Loop.saved`); everything else a discarded iteration traced is
dropped at once, so a loop of n iterations keeps one body and its residuals.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from ..back.compiler import Gen, PrimCode
from ..model import core as c
from ..model.errors import DlError, DlRuntimeError
from ..model import zeros
from ..model.primitives import PRIMITIVES, Primitive, is_zero
from ..model.zeros import Zero as SymbolicZero
from ..model.types import ARRAY, REAL, prune
from ..model.values import Fun, apply, call1, call2
from ..transforms.lut import RECOMPUTE, STORE, _primal_reads, _split
from ..transforms.lut_ir import (ZERO, Add, Copy, Group, Loop, Neg, Pack, Prim, Scale, Sub, Var, Zero, defined, elem)
from .overloading import OverloadingCompiler


MIN_LOOP = 3  # a loop of fewer iterations is traced unrolled: a Loop equation would cost more than it saves


class Dual:
    """A real as the traced program sees it: its primal variable and its tangent (a Var, or ZERO)."""

    __slots__ = ("p", "t")

    def __init__(self, p: Var, t: Any):
        self.p = p
        self.t = t

    def __repr__(self) -> str:
        return f"Dual({self.p.value!r})"


def value_of(v: Any) -> Any:
    """The primal value of a traced value (duals replaced by their values, everything else as it is)."""
    t = type(v)
    if t is Dual:
        return v.p.value
    if t is tuple:
        return tuple(value_of(x) for x in v)
    if t is list:
        return [value_of(x) for x in v]
    return v


def _element(xs: Var, i: int) -> Var:
    """Element i of a primal list variable, with its value."""
    e = elem(xs, i)
    if e.value is None and xs.value is not None:
        e.value = xs.value[i]
    return e


# ---- the tracer --------------------------------------------------------------------------------


class Tracer:
    """Where equations go while a function runs (the current list: a trace, or one loop iteration)."""

    def __init__(self, counters, counting: bool, policy: str):
        self.eqs: list = []
        self.counters = counters
        self.counting = counting
        self.policy = policy

    def count(self, name: str, k: int = 1) -> None:
        if self.counting:
            if name in ("prims", "betas", "bp_created"):
                setattr(self.counters, name, getattr(self.counters, name) + k)
            else:
                extra = self.counters.extra
                extra[name] = extra.get(name, 0) + k

    # ---- a real primitive applied to duals
    def apply(self, prim: Primitive, impl: Callable, args: tuple) -> Any:
        values = [a.p.value if type(a) is Dual else a for a in args]
        out = Var("p", impl(*values))
        self.eqs.append(Prim(out, prim.name, tuple(a.p if type(a) is Dual else a for a in args)))
        moving = [k for k, a in enumerate(args) if type(a) is Dual and a.t is not ZERO]
        if not moving:
            return Dual(out, ZERO)
        partials = prim.partials(*[_Quote(a.p if type(a) is Dual else a) for a in args], _Quote(out))
        terms = []
        for k in moving:
            w = self.build(partials[k])
            if type(w) is SymbolicZero:
                continue  # zero by construction (sign, relu left of 0): no contribution, as →D drops it
            terms.append((w, args[k].t))
        return Dual(out, self.tangent(terms))

    def tangent(self, terms: list) -> Any:
        """∂1 * t1 + ... + ∂k * tk as one group of tangent equations (a lone `1 * t` is just t)."""
        if not terms:
            return ZERO
        eqs: list = []
        parts = []
        for w, t in terms:
            if type(w) is float and w == 1.0:
                parts.append((t, False))
            elif type(w) is float and w == -1.0:
                parts.append((t, True))
            else:
                u = Var("t")
                eqs.append(Scale(u, w, t))
                parts.append((u, False))
        acc, negative = parts[0]
        if negative:
            u = Var("t")
            eqs.append(Neg(u, acc))
            acc = u
        for x, negative in parts[1:]:
            u = Var("t")
            eqs.append(Sub(u, acc, x) if negative else Add(u, acc, x))
            acc = u
        if not eqs:
            return acc  # the tangent of an argument, unchanged: no work for the backward pass
        self.eqs.append(Group(acc, tuple(eqs)))
        self.count("bp_created")
        self.count("equations", len(eqs))
        return acc

    def build(self, term: c.Expr) -> Any:
        """A partial-derivative term of the primitive table, as primal equations (or a float)."""
        match term:
            case _Quote(value=a):
                return a
            case c.Lit(value):
                return float(value)
            case c.Prim() if is_zero(term):
                return zeros.ZERO  # the symbolic zero: dropped, never multiplied (lang/model/zeros.py)
            case c.If(cond, then, else_):
                return self.build(then) if self.build(cond) else self.build(else_)
            case c.Prim(op, args):
                built = [self.build(a) for a in args]
                prim = PRIMITIVES[op]
                self.count("prims")
                values = [b.value if type(b) is Var else b for b in built]
                if prim.kind == "compare" or not any(type(b) is Var for b in built):
                    return prim.impl(*values)
                out = Var("p", prim.impl(*values))
                self.eqs.append(Prim(out, op, tuple(built)))
                return out
        raise AssertionError(f"cannot build the partial derivative {term!r}")

    # ---- loops
    def loop(self, kind: str, f: Fun, lists: list | None, init: Any, n: int, literal: bool) -> Any:
        """map/zipWith (kind "map", one element of each list per call), fold, build (lists None: i).

        See the module docstring; `literal`: f is a lambda written in place (each call counts as an
        application, as the compiled loop of the other modes counts it)."""
        if n == 0:
            return init if kind == "fold" else []
        if n < MIN_LOOP:
            return self.unrolled(kind, f, lists, init, n, literal)
        shapes = []
        for xs in lists or []:
            first = _shape(xs[0], [])
            if first is None or any(_shape(x, []) != first for x in xs[1:n]):
                return self.unrolled(kind, f, lists, init, n, literal)
            shapes.append(first)
        if kind == "fold" and _shape(init, []) is None:
            return self.unrolled(kind, f, lists, init, n, literal)
        return _LoopTrace(self, kind, f, lists, init, n, literal).run()

    def unrolled(self, kind: str, f: Fun, lists, init, n: int, literal: bool) -> Any:
        """The loop run as the primal program runs it: each call traced in place."""
        if literal:
            self.count("betas", n)
        if kind == "fold":
            acc = init
            for x in lists[0]:
                acc = call2(f, acc, x)
            return acc
        if lists is None:
            return [call1(f, i) for i in range(n)]
        return [apply(f, tuple(xs[i] for xs in lists)) for i in range(n)]


class _Quote(c.Lit):
    """An atom standing as a term inside a partial-derivative rule."""

    __slots__ = ()

    def __init__(self, a: Any):
        object.__setattr__(self, "value", a)
        object.__setattr__(self, "ty", REAL)


def _shape(v: Any, leaves: list) -> Any:
    """The shape of flat data (tuples of reals and Int/Bool/Unit), its reals appended to `leaves`; None for
    anything else (a list, a function), which a traced loop cannot take element by element."""
    t = type(v)
    if t is Dual or t is float:
        leaves.append(v)
        return "r"
    if t is tuple:
        parts = []
        for x in v:
            s = _shape(x, leaves)
            if s is None:
                return None
            parts.append(s)
        return tuple(parts)
    if t is int or t is bool:
        return "d"
    return None


def _rebuild(v: Any, leaves: list, pos: list) -> Any:
    """`v` with its reals replaced, in order, by leaves[pos[0]], leaves[pos[0] + 1], ..."""
    t = type(v)
    if t is Dual or t is float:
        out = leaves[pos[0]]
        pos[0] += 1
        return out
    if t is tuple:
        return tuple(_rebuild(x, leaves, pos) for x in v)
    return v


class _Iteration:
    """One traced iteration: its parameters, equations, result, and the skeleton that compares them."""

    __slots__ = ("params", "eqs", "result", "outs", "skel", "lits", "order")

    def __init__(self, params: tuple, eqs: list, result: Any, outs: tuple, shape: Any):
        self.params = params      # per real of the state, then of each element: primal Var, tangent Var or ZERO
        self.eqs = eqs
        self.result = result      # the value f returned (duals inside)
        self.outs = outs          # its reals as atoms: primal, tangent, primal, tangent, ...
        skel, self.lits, self.order = skeleton(params, eqs, outs)
        self.skel = (skel, shape)


class _LoopTrace:
    """One map/zipWith/build/fold, traced an iteration at a time and written a segment at a time."""

    def __init__(self, tracer: Tracer, kind: str, f: Fun, lists, init, n: int, literal: bool):
        self.tracer = tracer
        self.kind = kind
        self.f = f
        self.lists = lists
        self.n = n
        self.literal = literal
        self.state = init          # fold: the state the next iteration starts from
        self.results: list = []    # map: the elements made so far
        self.ref: _Iteration | None = None
        self.start = 0             # the segment under way: its first iteration,
        self.start_state = None    # (fold) the state it starts from,
        self.holes: dict[int, list] = {}     # literal position -> its value in each of its iterations,
        self.kept: dict[int, list] = {}      # (store) body variable number -> its value in each iteration,
        self.values: list = []               # the values of each iteration's result's reals,
        self.pending: list = []              # (map) each iteration's result (its Int/Bool leaves are read)
        # A fold over elements that carry variables takes its state as variables from the first iteration
        # on (a tangent starting at zero): otherwise the first iteration, on a constant state, would differ
        # from the others and be cut off from the loop.
        self.vary_state = kind == "fold" and any(_moving(x) for xs in lists for x in xs[:n])

    def run(self) -> Any:
        for i in range(self.n):
            it = self.trace(i)
            if self.ref is not None and not (it.skel == self.ref.skel and len(it.lits) == len(self.ref.lits)):
                self.close(i)
            if self.ref is None:
                self.open(it, i)
            self.record(it)
            if self.kind == "fold":
                self.state = it.result  # values only, until the segment is written (close)
        self.close(self.n)
        return self.state if self.kind == "fold" else self.results

    def trace(self, i: int) -> _Iteration:
        """Iteration i on fresh parameters, in a list of equations of its own."""
        tracer = self.tracer
        params: list = []
        state = _parameters(self.state, params, self.vary_state) if self.kind == "fold" else None
        if self.lists is None:
            elements = [i]
        else:
            elements = [_parameters(xs[i], params) for xs in self.lists]
        saved, tracer.eqs = tracer.eqs, []
        try:
            if self.literal:
                tracer.count("betas")
            result = call2(self.f, state, elements[0]) if self.kind == "fold" else apply(self.f, tuple(elements))
            eqs = tracer.eqs
        finally:
            tracer.eqs = saved
        leaves: list = []
        shape = _shape(result, leaves)
        outs: list = []
        for leaf in leaves:
            outs.extend((leaf.p, leaf.t) if type(leaf) is Dual else (leaf, ZERO))
        if shape is None:  # a result that is not flat data: this iteration agrees with none
            shape = ("not flat", id(result))
        return _Iteration(tuple(params), eqs, result, tuple(outs), shape)

    def open(self, it: _Iteration, i: int) -> None:
        """Iteration i starts a segment: the next ones are compared with it."""
        self.ref, self.start, self.start_state = it, i, self.state
        self.holes, self.kept, self.values, self.pending = {}, {}, [], []
        if self.tracer.policy == STORE:
            n_state = 0
            if self.kind == "fold":
                n_state = len(_atoms_list(self.state))
            self.kept = {k: [] for k in _residual_positions(it, set(it.params[n_state:]))}

    def record(self, it: _Iteration) -> None:
        """What a segment keeps of an iteration: its differing literals, its residuals, its result."""
        ref = self.ref
        done = len(self.values)
        for k, (a, b) in enumerate(zip(it.lits, ref.lits)):
            column = self.holes.get(k)
            if column is None and (a != b or a != a):
                column = self.holes[k] = [b] * done
            if column is not None:
                column.append(a)
        for k, column in self.kept.items():
            column.append(it.order[k].value)
        self.values.append(tuple(o.value if type(o) is Var else o for o in it.outs[0::2]))
        if self.kind == "map":
            self.pending.append(it.result)

    def close(self, end: int) -> None:
        """Write the segment [start, end): in place when it is one iteration, else as a Loop."""
        ref = self.ref
        if ref is None:
            return
        self.ref = None
        eqs = self.tracer.eqs
        params = set(p for p in ref.params if type(p) is Var)
        if not ref.eqs and not any(type(o) is Var and o in params for o in ref.outs):
            # nothing traced: each result is made of constants and what the body read from outside
            if self.kind == "map":
                self.results.extend(self.pending)
            return
        if end - self.start == 1:  # the reference itself, its parameters bound to what they stand for
            for p, a in zip(ref.params, self._actuals(self.start)):
                if type(p) is Var:
                    eqs.append(Copy(p, a))
            eqs.extend(ref.eqs)
            if self.kind == "map":
                self.results.append(ref.result)
            else:
                self.state = ref.result
            return
        self._write_loop(ref, end)

    def _actuals(self, i: int) -> list:
        """The atoms iteration i's parameters stand for, in the order of its parameters."""
        atoms: list = []
        if self.kind == "fold":
            _atoms(self.start_state if i == self.start else None, atoms)
        for xs in self.lists or []:
            _atoms(xs[i], atoms)
        return atoms

    def _write_loop(self, ref: _Iteration, end: int) -> None:
        tracer, eqs = self.tracer, self.tracer.eqs
        start, count = self.start, end - self.start
        n_state = 0
        if self.kind == "fold":
            state_leaves: list = []
            _shape(self.start_state, state_leaves)
            n_state = 2 * len(state_leaves)
        init_atoms: list = []
        if self.kind == "fold":
            _atoms(self.start_state, init_atoms)
        per_iteration = [self._actuals_of_elements(i) for i in range(start, end)]
        carry_params, carry_init, col_params, columns = [], [], [], []
        for j, p in enumerate(ref.params):
            if type(p) is not Var:
                continue
            if j < n_state:
                carry_params.append(p)
                carry_init.append(init_atoms[j])
            else:
                col_params.append(p)
                columns.append(_column([atoms[j - n_state] for atoms in per_iteration], p.kind, eqs))
        holes = {}
        for k in sorted(self.holes):
            p = Var("p", ref.lits[k])
            holes[k] = p
            col_params.append(p)
            columns.append(_column(self.holes[k], "p", eqs))
        body, outs = fill_holes(ref.eqs, ref.outs, holes)
        last = self.values[-1]
        carry_out, carry_vars, col_out, out_vars = [], [], [], []
        if self.kind == "fold":
            finals = []
            for j in range(0, n_state, 2):
                p, t = ref.params[j], ref.params[j + 1]
                value = last[j // 2]
                pv = Var("p", value)
                carry_out.append(outs[j])
                carry_vars.append(pv)
                tv = ZERO
                if t is not ZERO:
                    tv = Var("t")
                    carry_out.append(outs[j + 1])
                    carry_vars.append(tv)
                finals.append(Dual(pv, tv))
            self.state = _rebuild(ref.result, finals, [0])
        else:
            made = []
            for r in range(0, len(outs), 2):
                column = Var("P", [v[r // 2] for v in self.values], length=count)
                col_out.append(outs[r])
                out_vars.append(column)
                tcol = None
                if outs[r + 1] is not ZERO:
                    tcol = Var("T", length=count)
                    col_out.append(outs[r + 1])
                    out_vars.append(tcol)
                made.append((column, tcol))
            for k, result in enumerate(self.pending):
                duals = [Dual(_element(col, k), ZERO if tcol is None else elem(tcol, k)) for col, tcol in made]
                self.results.append(_rebuild(result, duals, [0]))
        saved = tuple((ref.order[k], Var("P", column, length=count)) for k, column in self.kept.items())
        eqs.append(Loop(self.kind, count, False, tuple(carry_params), tuple(carry_init), tuple(col_params),
                        tuple(columns), tuple(body), tuple(carry_out), tuple(col_out), tuple(carry_vars),
                        tuple(out_vars), saved))
        tracer.count("loops")

    def _actuals_of_elements(self, i: int) -> list:
        atoms: list = []
        for xs in self.lists or []:
            _atoms(xs[i], atoms)
        return atoms


def _moving(v: Any) -> bool:
    """Whether flat data has a real with a tangent."""
    leaves: list = []
    _shape(v, leaves)
    return any(type(x) is Dual and x.t is not ZERO for x in leaves)


def _parameters(v: Any, params: list, vary: bool = False) -> Any:
    """`v` with each dual replaced by a dual of fresh parameters (a tangent one only where it has a
    tangent, or everywhere with `vary`); its constants stay constants (with `vary`, become parameters too).
    The parameters (ZERO for none, the constant itself for a constant) are appended to `params`."""
    leaves: list = []
    _shape(v, leaves)
    duals = []
    for leaf in leaves:
        if vary:
            p = Var("p", leaf.p.value if type(leaf) is Dual else leaf)
            t = Var("t")
            params.extend((p, t))
            duals.append(Dual(p, t))
            continue
        if type(leaf) is Dual:
            p, t = Var("p", leaf.p.value), (Var("t") if leaf.t is not ZERO else ZERO)
            duals.append(Dual(p, t))
        else:
            p, t = leaf, ZERO
            duals.append(leaf)
        params.extend((p, t))
    return _rebuild(v, duals, [0])


def _atoms(v: Any, out: list) -> None:
    """The atoms of v's reals, primal and tangent in turn."""
    leaves: list = []
    _shape(v, leaves)
    for leaf in leaves:
        out.extend((leaf.p, leaf.t) if type(leaf) is Dual else (leaf, ZERO))


def _column(atoms: list, kind: str, eqs: list) -> Var:
    """A list variable holding the atoms: the list they are the elements of, in order, when there is one;
    else a new list packed from them."""
    first = atoms[0]
    whole = first.list if type(first) is Var else None
    if whole is not None and whole.length == len(atoms) and \
            all(type(a) is Var and a.list is whole and a.index == k for k, a in enumerate(atoms)):
        return whole
    if kind == "p":
        out = Var("P", [a.value if type(a) is Var else a for a in atoms], length=len(atoms))
    else:
        out = Var("T", length=len(atoms))
    eqs.append(Pack(out, tuple(atoms)))
    return out


def _atoms_list(v: Any) -> list:
    out: list = []
    _atoms(v, out)
    return out


def _residual_positions(it: _Iteration, columns: set) -> list[int]:
    """The numbers of the body variables its tangent equations read (store keeps them per iteration):
    not its column parameters, whose columns are at hand."""
    _, _, linear = _split(it.eqs, STORE)
    index = {v: k for k, v in enumerate(it.order)}
    return [index[v] for v in _primal_reads(linear) if v in index and v not in columns]


# ---- skeletons ---------------------------------------------------------------------------------


def skeleton(params, eqs, outs):
    """(the shape of an iteration's equations, with variables numbered in order of definition, variables
    from outside by identity and literals left out; the literals in order; the variables by number). Two
    iterations with equal skeletons do the same thing, up to the values of their literals."""
    w = _Walker()
    skel = (tuple(w.param(p) for p in params), tuple(w.eq(e) for e in eqs), tuple(w.ref(a) for a in outs))
    return skel, w.lits, w.order


def fill_holes(eqs, outs, holes: dict) -> tuple[list, list]:
    """The equations and outputs with the literal at each position of `holes` (numbered as `skeleton`
    numbers them) replaced by that position's variable."""
    f = _Fill(holes)
    body = [f.eq(e) for e in eqs]
    outs = [f.atom(a) for a in outs]
    return body, outs


class _Walker:
    """Numbers variables and collects literals, in one fixed order (that `_Fill` follows)."""

    def __init__(self):
        self.local: dict = {}
        self.order: list = []
        self.lits: list = []

    def define(self, v: Var) -> None:
        self.local[v] = len(self.order)
        self.order.append(v)

    def param(self, p) -> Any:
        if type(p) is not Var:
            return "c"  # no parameter: the zero tangent, or a constant (its uses are literals)
        self.define(p)
        return p.kind

    def ref(self, a) -> Any:
        t = type(a)
        if t is Var:
            k = self.local.get(a)
            if k is not None:
                return k
            if a.list is not None:
                return ("e", self.ref(a.list), a.index)
            return ("o", id(a))
        if t is float:
            self.lits.append(a)
            return "#"
        if a is ZERO:
            return "0"
        raise AssertionError(a)

    def eq(self, e) -> Any:
        match e:
            case Prim(out, op, args):
                s = ("P", op, tuple(self.ref(a) for a in args))
            case Copy(out, src):
                s = ("C", out.kind, self.ref(src))
            case Zero(out):
                s = ("Z", out.kind, out.length)
            case Scale(out, w, x):
                s = ("S", self.ref(w), self.ref(x))
            case Add(out, x, y):
                s = ("+", self.ref(x), self.ref(y))
            case Sub(out, x, y):
                s = ("-", self.ref(x), self.ref(y))
            case Neg(out, x):
                s = ("N", self.ref(x))
            case Group(_, inner):
                return ("G", tuple(self.eq(q) for q in inner))
            case Pack(out, items):
                s = ("K", out.kind, tuple(self.ref(a) for a in items))
            case Loop():
                init = tuple(self.ref(a) for a in e.carry_init)
                cols = tuple(self.ref(a) for a in e.columns)
                params = tuple(self.param(p) for p in (*e.carry_params, *e.col_params))
                body = tuple(self.eq(q) for q in e.body)
                outs = tuple(self.ref(a) for a in (*e.carry_out, *e.col_out))
                saved = tuple(self.ref(v) for v, _ in e.saved)
                for v in (*e.carry_vars, *e.out_vars, *(col for _, col in e.saved)):
                    self.define(v)
                return ("L", e.kind, e.n, e.reverse, init, cols, params, body, outs, saved)
            case _:
                raise AssertionError(e)
        self.define(e.out)
        return s


class _Fill:
    """The walk of `_Walker` over the same equations, rebuilding them with some literals replaced."""

    def __init__(self, holes: dict):
        self.holes = holes
        self.k = 0

    def atom(self, a):
        if type(a) is float:
            k = self.k
            self.k += 1
            return self.holes.get(k, a)
        return a

    def atoms(self, xs) -> tuple:
        return tuple(self.atom(a) for a in xs)

    def eq(self, e):
        match e:
            case Prim(out, op, args):
                return Prim(out, op, self.atoms(args))
            case Copy(out, src):
                return Copy(out, self.atom(src))
            case Zero():
                return e
            case Scale(out, w, x):
                return Scale(out, self.atom(w), x)
            case Add() | Sub() | Neg():
                return e
            case Group(out, inner):
                return Group(out, tuple(self.eq(q) for q in inner))
            case Pack(out, items):
                return Pack(out, self.atoms(items))
            case Loop():
                init = self.atoms(e.carry_init)
                body = tuple(self.eq(q) for q in e.body)
                carry_out = self.atoms(e.carry_out)
                col_out = self.atoms(e.col_out)
                return replace(e, carry_init=init, body=body, carry_out=carry_out, col_out=col_out)
        raise AssertionError(e)


__all__ = ["Dual", "Tracer", "value_of", "skeleton", "fill_holes"]
