"""The programs of the lut modes: first-order A-normal form, traced at a point (docs/transforms.md, lut).

The lut modes (lang/modes/lut.py) run a function once at its input point with
every real carrying a primal variable and a tangent variable, and record what
the forward-mode rule of each primitive does: that record is the *JVP
program*. Unzipping splits it into a primal program and a linear program
(lang/transforms/lut.py), and transposing the linear program gives the
cotangent program. All of them are written in this one small language:

    atom ::= x                       a variable (Var): a real or a list of reals, primal or tangent
           | x[i]                    element i of a list variable (also a Var: `elem(x, i)`)
           | r                       a real literal
           | 0                       the zero tangent (ZERO)

    eq ::= x = op(atom, ...)         Prim     a primitive applied to primal atoms
         | x = atom                  Copy     (primal or tangent)
         | t = 0                     Zero     a zero tangent (a zero list for a list variable)
         | t = w * u                 Scale    w primal, u tangent
         | t = u + v | t = u - v     Add, Sub
         | t = -u                    Neg
         | t = s + w * u | t = s - u Acc      a cotangent accumulated into s (transposed programs)
         | group t { eq ... }        Group    the tangent equations of one primitive application
         | X = [atom, ...]           Pack
         | t = sum X                 Sum      (transposed programs: a value read in every iteration)
         | T = X + Y                 AddList  elementwise (two contributions to one list's cotangent)
         | loop ...                  Loop     a scan: see below

A Loop is a scan, the one loop form: `n` iterations, forwards or backwards;
each iteration binds its *carry* parameters to the state and its *column*
parameters to element i of each column (a list variable), runs the body's
equations, and yields the next state (`carry_out`) and one element of each
output column (`col_out`). After the loop, `carry_vars` hold the final state
and `out_vars` the output columns. `map` is a scan without a carry, a left
`fold` one without output columns; the body may read the variables of the
programs around it (their values are the same in every iteration).

Variables are compared by identity. A Var's `kind` says what it holds: "p" a
primal real, "t" a tangent real, "P" a list of primal reals, "T" a list of
tangent reals; `value` is a primal variable's value at the point (a float, or
a list for "P"), kept where a program needs it. Everything here is data: no
module in this file runs, prints or checks a program.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator


class _Zero:
    """The zero tangent: the tangent of a constant, never written into a program as a variable."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "0"


ZERO = _Zero()


class Var:
    """A variable of a traced program (see the module docstring)."""

    __slots__ = ("kind", "value", "list", "index", "elems", "length", "of")

    def __init__(self, kind: str, value: Any = None, length: int = 0, of: Var | None = None):
        self.kind = kind        # "p", "t", "P" or "T"
        self.value = value      # a primal variable's value at the point (None when not kept)
        self.list: Var | None = None   # an element variable: the list it belongs to ...
        self.index = -1                # ... and its position
        self.elems: dict[int, Var] | None = None  # a list variable: its element variables, made on demand
        self.length = length    # a list variable: its length
        self.of = of            # a cotangent: the tangent variable it is the cotangent of (for names)

    def __repr__(self) -> str:
        if self.list is not None:
            return f"{self.list!r}[{self.index}]"
        return f"{self.kind}{id(self) % 10007}"

    @property
    def is_list(self) -> bool:
        return self.kind in "PT"

    @property
    def is_tangent(self) -> bool:
        return self.kind in "tT"


def elem(xs: Var, i: int) -> Var:
    """The variable standing for element i of the list variable `xs` (one per element, made once)."""
    if xs.elems is None:
        xs.elems = {}
    found = xs.elems.get(i)
    if found is None:
        found = Var("p" if xs.kind == "P" else "t")
        found.list, found.index = xs, i
        xs.elems[i] = found
    return found


def base(v: Any) -> Any:
    """The variable a read of `v` depends on: the list of an element variable, else `v` itself."""
    return v.list if type(v) is Var and v.list is not None else v


# ---- equations ---------------------------------------------------------------------------

eq = dataclass(frozen=True, slots=True)


@eq
class Prim:  # x = op(a1, ..., ak)
    out: Var
    op: str
    args: tuple


@eq
class Copy:  # x = a
    out: Var
    src: Any


@eq
class Zero:  # t = 0
    out: Var


@eq
class Scale:  # t = w * u
    out: Var
    w: Any
    x: Var


@eq
class Add:  # t = u + v
    out: Var
    x: Var
    y: Var


@eq
class Sub:  # t = u - v
    out: Var
    x: Var
    y: Var


@eq
class Neg:  # t = -u
    out: Var
    x: Var


@eq
class Acc:  # t = s + w * u   (w None: s + u; negate: s - u)
    out: Var
    prev: Var
    w: Any
    x: Var
    negate: bool = False


@eq
class Group:  # the tangent equations of one primitive application (out: its tangent; None once transposed)
    out: Var | None
    eqs: tuple


@eq
class Pack:  # X = [a1, ..., an]
    out: Var
    items: tuple


@eq
class Sum:  # t = sum X
    out: Var
    xs: Var


@eq
class AddList:  # T = X + Y, elementwise
    out: Var
    x: Var
    y: Var


@eq
class Loop:  # a scan (module docstring)
    kind: str            # "map" or "fold" as the program wrote it; "scan" for what unzipping makes
    n: int
    reverse: bool
    carry_params: tuple  # body variables bound to the state
    carry_init: tuple    # atoms outside: the initial state
    col_params: tuple    # body variables bound to element i of each column
    columns: tuple       # list variables outside, one per column parameter
    body: tuple          # equations
    carry_out: tuple     # body atoms: the next state
    col_out: tuple       # body atoms: element i of each output column
    carry_vars: tuple    # variables outside: the final state
    out_vars: tuple      # list variables outside: the output columns
    saved: tuple = ()    # (body variable, column outside): values kept per iteration (store residuals)


Eq = Prim | Copy | Zero | Scale | Add | Sub | Neg | Acc | Group | Pack | Sum | AddList | Loop
LINEAR_STEPS = (Scale, Add, Sub, Neg, Copy, Acc)  # what a Group holds


@dataclass
class Program:
    """A program of this language: parameters, equations and outputs.

    The primal program has `params` (the primal input's real leaves) and returns its value's leaves
    followed by the residuals. The linear and transposed programs take `res` (the residuals, or in
    recompute the primal input), run `prefix` (primal equations: what recompute recomputes), then take
    `params` (tangents or cotangents) linearly and return `outs`."""

    params: tuple
    eqs: tuple
    outs: tuple
    res: tuple = ()
    prefix: tuple = ()


# ---- reading equations --------------------------------------------------------------------


def defined(e: Eq) -> Iterator[Var]:
    """The variables an equation defines (a group's and a loop's, the ones visible after it)."""
    match e:
        case Group(_, eqs):
            for q in eqs:
                yield q.out
        case Loop(carry_vars=cv, out_vars=ov, saved=saved):
            yield from cv
            yield from ov
            for _, column in saved:
                yield column
        case _:
            yield e.out


def atoms_read(e: Eq) -> Iterator[Any]:
    """The atoms an equation reads (a loop: its initial state, its columns, and whatever its body reads
    from outside it)."""
    match e:
        case Prim(_, _, args) | Pack(_, args):
            yield from args
        case Copy(_, src):
            yield src
        case Zero():
            pass
        case Scale(_, w, x):
            yield w
            yield x
        case Add(_, x, y) | Sub(_, x, y) | AddList(_, x, y):
            yield x
            yield y
        case Neg(_, x) | Sum(_, x):
            yield x
        case Acc(_, prev, w, x, _):
            yield prev
            yield w
            yield x
        case Group(_, eqs):
            inner = set()
            for q in eqs:
                for a in atoms_read(q):
                    if base(a) not in inner:
                        yield a
                inner.add(q.out)
        case Loop():
            yield from e.carry_init
            yield from e.columns
            yield from free_reads(e)
        case _:
            raise AssertionError(e)


def free_reads(loop: Loop) -> Iterator[Any]:
    """The atoms a loop's body reads from the programs around it."""
    local = set(loop.carry_params) | set(loop.col_params)
    for q in loop.body:
        for a in atoms_read(q):
            if type(a) is Var and base(a) not in local:
                yield a
        local.update(defined(q))
    for a in (*loop.carry_out, *loop.col_out):
        if type(a) is Var and base(a) not in local:
            yield a


def is_linear(e: Eq) -> bool:
    """Whether an equation belongs to a linear (tangent or cotangent) program rather than a primal one."""
    match e:
        case Prim():
            return False
        case Group() | Zero() | Scale() | Add() | Sub() | Neg() | Acc() | Sum() | AddList():
            return True
        case Copy(out) | Pack(out):
            return out.is_tangent
        case Loop():
            raise AssertionError("a traced loop is split by unzipping, not classified")
    raise AssertionError(e)


__all__ = ["ZERO", "Var", "elem", "base", "Prim", "Copy", "Zero", "Scale", "Add", "Sub", "Neg", "Acc", "Group",
           "Pack", "Sum", "AddList", "Loop", "Eq", "Program", "defined", "atoms_read", "free_reads", "is_linear",
           "LINEAR_STEPS"]
