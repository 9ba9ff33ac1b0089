"""The primitive table: one row per built-in (docs/reference.md §5, §7).

A row says everything any stage needs to know about a primitive: its type
scheme, what kind of thing it is to the transforms, its implementation (at
Real and, for Num-overloaded operators, at Int), its partial derivatives as
core terms, and its cost class. No stage tests a primitive's name: they read
its row, and a row that lacks what a stage needs is an error naming it.

Partial derivatives are written as functions from the argument terms and the
result term to one term per argument (docs/transforms.md, backprop: On terms):

    "*":   lambda x, y, r: [y, x]          x * y  ->  (x*y, fun a -o x' (y * a) + y' (x * a))
    "exp": lambda x, r: [r]                exp x  ->  (r, fun a -o x' (r * a))

A partial derivative that is 0 by construction is written `zero()`, the
symbolic zero (lang/model/zeros.py, docs/transforms.md, Zeros and
infinities): a contribution that it multiplies is dropped, never computed,
so it stays nothing even where what it meets is infinite. A primitive that
is locally constant on a branch has that zero there: relu for x <= 0, the
unselected argument of min and max, sign everywhere, the base of x^y where
y = 0 (x^0 is the constant 1). Conventions where a derivative does not
exist are zeros of the same kind: relu'(0) = 0, abs'(0) = 0
(docs/reference.md §7), a tie in min/max goes to the first argument, and
the derivative of x^y with respect to the exponent is 0 where x <= 0 (x^y
is not a differentiable function of y there). A partial that merely
evaluates to 0.0 at a point (`y` in `x * y` at y = 0) is a number: 0 * inf
is nan there, as in IEEE arithmetic.

Kinds: `real` Real^k -> Real, differentiable (plain at Int when overloaded);
`compare` reads primal values only; `toint` Real -> Int (no derivative);
`toreal` Int -> Real (a constant); `int`/`bool` no reals at all;
`structural` parametric (every transform maps it to itself); `ad` the
differentiation kernel (lang/ad.py); `custom` a function applied with its
own derivative rule, which each target language runs its own way
(lang/back/kernel.py, custom rules); `array` an operation on Arrays (lang/model/array_rows.py,
which also gives the real rows their Array kernels); `effect` a statement of a backpropagator's
body (target languages only); `delta` the constructors of Delta
expressions, target-only rows whose implementation is the delta runtime's
(lang/modes/delta.py: how a Delta is represented is that module's choice);
`linear` the zero, sum, scaling and application of linear maps between
cotangent types, and `chad` the constructs of the chad modes' target language
(docs/transforms.md, chad): target-only rows whose implementation is the
mode's (lang/modes/chad.py), each saying in `linear` the argument positions in
which it is linear, for the target checker (lang/transforms/check.py);
and `target` a construct of another transform's target language only (never in
a program; its target's runtime implements it).
"""
from __future__ import annotations

import math
import operator
import os
import resource
import sys
from functools import cached_property, lru_cache
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any, Callable

from . import array_rows
from . import realmath as rm
from .core import If, Lit, Prim
from .core import children
from .zeros import ZERO
from .errors import DlRuntimeError
from .values import call1, call2
from .types import (BASE_TYPES, TARGET_TYPES, ARRAY, BOOL, INT, REAL, UNIT, Scheme, TCtor, TFun, TList, TNeg, TTuple,
                    TVar, Type, linear, prune)
from .nodes import node, replace


@node(slots=False)  # a frozen dataclass, made quickly (start-up), with a __dict__ as before
class Primitive:
    name: str
    signature: str                     # the type scheme as written in the table (parsed on first use: `scheme`)
    kind: str
    impl: Callable | None = None       # at Real, or the only implementation
    int_impl: Callable | None = None   # at Int, for Num-overloaded operators
    partials: Callable | None = None   # (x1, ..., xk, r) -> [d1, ..., dk] core terms, at Real
    fails: bool = False                # may raise a run-time error (call sites add the span)
    cost: str = "arith"                # cost class, for reports
    pyop: str | None = None            # the Python operator (comparisons, arithmetic)
    py: str | None = None              # inline Python for the compiler: "{0} * {1}" (every instance)
    raw: Callable | None = None        # a faster implementation that may raise ArithmeticError or
                                       # ValueError where `impl` gives inf or nan; the compiler falls
                                       # back to `impl` when it does
    doc: str = ""
    target: bool = False               # a primitive of a transform's target language only (Delta
                                       # constructors, ...): never resolved in a user's program
    linear: tuple[int, ...] | None = None  # the argument positions in which it is (jointly) a linear map: fst,
                                       # snd, chad's linear rows, the array rows (target checker, jvp)
    params: int | None = None          # how many arguments it takes, when its result is a function
                                       # (default: every arrow of its type)
    # Arrays (lang/model/array_rows.py):
    array: str | None = None           # the function of lang/model/arrays.py that implements its Array
                                       # instance (named, not imported: numpy only for array programs)
    vjp: Callable | None = None        # (x1, ..., xk, r, c) -> [cotangent term or None per argument]
    jvp: Callable | None = None        # (x1, ..., xk, t1, ..., tk, r) -> tangent term
    bilinear: bool = False             # linear in each of its two arguments separately (matmul)
    unlist: Callable | None = None     # list-valued rows: (x1, ..., xk, i) -> (count, element i,
                                       # c -> [cotangent per argument] of element i)
    per_element: bool = False          # applies its function argument to each element (amap)
    site: str | None = None            # "module:factory": its implementation made per compiler
    effect: bool = False               # a statement of type d in a backpropagator's body

    @cached_property
    def scheme(self) -> Scheme:
        """The type scheme, parsed from `signature` when a stage first asks (start-up: a run reads a
        handful of the table's ~240 rows; parsing all of them cost more than the rest of the import)."""
        return parse_scheme(self.signature)

    @property
    def arity(self) -> int:
        if self.params is not None:
            return self.params
        n, t = 0, self.scheme.body
        while isinstance(t, TFun):
            n, t = n + 1, t.result
        return n

    def uses_result(self) -> bool:
        """Whether the partial derivatives mention the result (the transform then names it)."""
        if self.partials is None:
            return False
        marker = Lit("result-marker")
        args = [Lit(f"arg{i}") for i in range(self.arity)]
        return any(_mentions(d, marker) for d in self.partials(*args, marker))


def _mentions(term, marker) -> bool:
    return term is marker or any(_mentions(c, marker) for c in children(term))


# ---- a small parser for the schemes written in the table ------------------


def parse_scheme(text: str) -> Scheme:
    """`(Num 'a, Diff 'b) => 'a -> ['b] * Real` into a Scheme (table strings only)."""
    variables: dict[str, TVar] = {}
    constraints, _, body = text.rpartition("=>")
    for part in constraints.replace("(", " ").replace(")", " ").split(","):
        if part.strip():
            cls, var = part.split()
            old = variables.get(var)
            variables[var] = TVar(0, (old.constraint if old else frozenset()) | {cls})
    tokens = body.replace("->", " -> ").replace("-o", " -o ").replace("*", " * ").replace("(", " ( ") \
        .replace(")", " ) ").replace("[", " [ ").replace("]", " ] ").replace(",", " , ").replace("~", " ~ ").split()
    pos = 0

    def arrow() -> Type:
        nonlocal pos
        left = product()
        if pos < len(tokens) and tokens[pos] == "->":
            pos += 1
            return TFun(left, arrow())
        if pos < len(tokens) and tokens[pos] == "-o":
            pos += 1
            return linear(left, arrow())
        return left

    def product() -> Type:
        nonlocal pos
        items = [atom()]
        while pos < len(tokens) and tokens[pos] == "*":
            pos += 1
            items.append(atom())
        return items[0] if len(items) == 1 else TTuple(tuple(items))

    def atom() -> Type:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            t = arrow()
            pos += 1
            return t
        if tok == "[":
            t = arrow()
            pos += 1
            return TList(t)
        if tok == "~":
            return TNeg(atom())
        if tok.startswith("'"):
            return variables.setdefault(tok, TVar(0))
        if pos < len(tokens) and tokens[pos] == "(" and tok not in TARGET_TYPES:  # Copow('a, 'b)
            pos += 1
            args = [arrow()]
            while tokens[pos] == ",":
                pos += 1
                args.append(arrow())
            pos += 1
            return TCtor(tok, tuple(args))
        return {**BASE_TYPES, **TARGET_TYPES}[tok]

    t = arrow()
    return Scheme(tuple(variables.values()), t)


# ---- term builders for the derivative rules --------------------------------


def _r(x: float) -> Lit:
    return Lit(float(x), ty=REAL)


def _p(op: str, *args) -> Prim:
    return Prim(op, tuple(args), ty=REAL)


def _if(cond, a, b) -> If:
    return If(cond, a, b, ty=REAL)


def _cmp(op: str, a, b) -> Prim:
    return Prim(op, (a, b), ty=BOOL)


ZERO_NAME = "0"  # the symbolic zero's row: printed `0`, read back as `0` where a Real is expected


def zero() -> Prim:
    """The symbolic zero as a term: a partial derivative or a tangent that is 0 by construction."""
    return Prim(ZERO_NAME, (), ty=REAL)


def is_zero(e) -> bool:
    """Whether a term is the symbolic zero (never a 0.0 the program wrote or computed)."""
    return isinstance(e, Prim) and e.op == ZERO_NAME


def _chooser_partials(wins: str, x, y) -> list:
    """∂/∂x and ∂/∂y of max (wins ">") or min (wins "<"): 1 to the argument chosen, 0 to the other, 0.5 to each
    at a tie; a nan argument (no tie, no winner) gives its 1 to y, as before the tie rule."""
    def partial(first: bool):
        win, lose = (_r(1), zero()) if first else (zero(), _r(1))
        return _if(_cmp(wins, x, y), win, _if(_cmp("==", x, y), _r(0.5), lose))
    return [partial(True), partial(False)]


def _pow_base_partial(op: str, x, y) -> If:
    """∂(x^y)/∂x = y x^(y-1), and zero where y = 0 (x^0 is the constant 1; the formula is 0 · ∞ at x = 0)."""
    return _if(_cmp("==", y, _r(0)), zero(), _p("*", y, _p(op, x, _p("-", y, _r(1)))))


def _exponent_partial(x, r) -> If:
    """∂(x^y)/∂y = x^y log x where x > 0, and zero elsewhere (x^y is not differentiable in y there)."""
    return _if(_cmp(">", x, _r(0)), _p("*", r, _p("log", x)), zero())


TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)  # erf'(0)


def _sqrt_product(a, b) -> Prim:
    """√a · √b as a term: acosh' is 1 / (√(x-1) √(x+1)) and asin' 1 / (√(1-x) √(1+x)), never through
    x² - 1 or 1 - x², which overflow for large x and lose the digits near ±1 where the derivative is large."""
    return _p("*", _p("sqrt", a), _p("sqrt", b))


def _gauss(x, scale: float) -> Prim:
    """scale · e^(-x²): the derivative of erf (scale 2/√π) and of erfc (-2/√π); 0 far out, as it should."""
    return _p("*", _r(scale), _p("exp", _p("neg", _p("*", x, x))))


# ---- structural implementations ----------------------------------------------


def _map(f, xs):
    return [call1(f, x) for x in xs]


def _fold(f, acc, xs):
    for x in xs:
        acc = call2(f, acc, x)
    return acc


def _zip_with(f, xs, ys):
    return [call2(f, x, y) for x, y in zip(xs, ys)]


def memory_ceiling() -> int:
    """Bytes this process could ever hold: the machine's memory, or less under an address-space limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return total if soft == resource.RLIM_INFINITY else min(total, soft)


BYTES_PER_ELEMENT = 8  # a list holds one pointer per element, whatever the element is


def _count(n: int, what: str) -> int:
    """`n`, checked as the length of a list about to be made: not negative, and not beyond what memory
    can hold (checked before allocating, so that an impossible count stops at once, at its call)."""
    if n < 0:
        raise DlRuntimeError(f"{what} of a negative count ({n})")
    if n > sys.maxsize:
        raise DlRuntimeError(f"{what} of {n} elements: no list can be that long")
    if n > 1_000_000 and n * BYTES_PER_ELEMENT > memory_ceiling():
        raise DlRuntimeError(f"{what} of {n} elements: a list that long needs at least "
                             f"{_size(n * BYTES_PER_ELEMENT)} of memory, more than this machine gives dl "
                             f"({_size(memory_ceiling())})")
    return n


def _size(n: int) -> str:
    """Bytes in words: 1.5 GB, 800 MB."""
    return f"{n / 1e9:.3g} GB" if n >= 1e9 else f"{n / 1e6:.3g} MB"


def out_of_memory(span) -> DlRuntimeError:
    """The error of a call that ran out of memory, at the call."""
    return DlRuntimeError("out of memory", span)


def _range(n):
    return list(range(_count(n, "range")))


def _build(n, f):
    return [call1(f, i) for i in range(_count(n, "build"))]


def _get(xs, i):
    if 0 <= i < len(xs):
        return xs[i]
    raise DlRuntimeError(f"index {i} out of range for a list of length {len(xs)}")


def _head(xs):
    if xs:
        return xs[0]
    raise DlRuntimeError("head of an empty list")


def _tail(xs):
    if xs:
        return xs[1:]
    raise DlRuntimeError("tail of an empty list")


# ---- the table ---------------------------------------------------------------


def _row(name: str, scheme: str, kind: str, **fields) -> Primitive:
    """A row: the name, its type scheme as text, its kind, and the fields it has (see Primitive)."""
    return Primitive(name, scheme, kind, **fields)


def _lin(name: str, scheme: str, positions: tuple[int, ...] | None, doc: str, kind: str = "chad",
         params: int | None = None) -> Primitive:
    """A target-only row of the chad language: linear in `positions` (None: not a linear operation)."""
    return _row(name, scheme, kind, target=True, cost="linear", linear=positions, doc=doc, params=params)


MAX_CURRY = 8  # lcurry2 .. lcurry8, lcall2 .. lcall8: the longest λ chain with an entry of its own


def _curried(j: int, k: int) -> str:
    """The curried type the chad modes give a function of the arguments a_j .. a_k (chad's Dr1):
    each argument's call returns the rest and a linear map from the rest's cotangent f_(j+1) to the
    argument's and the function's own, (x_j, f_j)."""
    if j == k:
        return f"'a{j} -> 'b * ('c -o 'x{j} * 'f{j})"
    return f"'a{j} -> ({_curried(j + 1, k)}) * ('f{j + 1} -o 'x{j} * 'f{j})"


def _entry(k: int) -> str:
    """An entry of k parameters: all of them at once, and a linear map to all their cotangents."""
    args = " -> ".join(f"'a{i}" for i in range(1, k + 1))
    cts = " * ".join(f"'x{i}" for i in range(1, k + 1))
    return f"{args} -> 'b * ('c -o {cts} * 'f1)"


_LINEAR_ROWS: list[Primitive] = [
    _lin("lzero", "'a", (), "the zero of a cotangent type", kind="linear"),
    _lin("lplus", "'a -> 'a -> 'a", (0, 1), "the sum of two cotangents", kind="linear"),
    _lin("lscale", "Real -> Real -> Real", (1,), "lscale w ct: a real cotangent times a partial derivative w",
         kind="linear"),
    _lin("lapp", "('a -o 'b) -> 'a -> 'b", (1,), "lapp f ct: the linear map f applied to ct", kind="linear"),
    _lin("lsingleton", "'a -> 'b -> Copow('a, 'b)", (1,), "the copower with the one entry (a, ct)"),
    _lin("lcopowfold", "('a -> ('b -o 'c)) -> Copow('a, 'b) -> 'c", (1,),
         "lcopowfold f cp: the sum of f a ct over the entries (a, ct) of cp"),
    _lin("lfix", "('a -> ('b -o 'g * Copow('a, 'b))) -> Copow('a, 'b) -> 'g", (1,),
         "lfix f cp: lcopowfold, where each entry's f may give new entries, folded in turn (let rec)"),
    _lin("lpack", "'g -> Env", (0,), "a closure's environment cotangent, packed (chad-efficient)"),
    _lin("lunpack", "Env -> 'g", (0,), "the environment cotangent a closure's Env packs (chad-efficient)"),
    _lin("lonehot", "Int -> Int -> 'a -> ['a]", (2,), "lonehot n i ct: the list cotangent with ct at index i"),
    _lin("lcons", "'a -> ['a] -> ['a]", (0, 1), "a list cotangent's head and tail joined"),
    _lin("lhead", "['a] -> 'a", (0,), "the head of a list cotangent"),
    _lin("ltail", "['a] -> ['a]", (0,), "the tail of a list cotangent"),
    _lin("ltake", "Int -> ['a] -> ['a]", (1,), "the first n entries of a list cotangent"),
    _lin("ldrop", "Int -> ['a] -> ['a]", (1,), "a list cotangent without its first n entries"),
    _lin("lreverse", "Int -> ['a] -> ['a]", (1,), "lreverse n ct: a list cotangent of length n reversed"),
    _lin("lat", "['a] -> Int -> 'a", (0,), "lat ct i: entry i of a list cotangent"),
    _lin("lunzip", "['a * 'b] -> ['a] * ['b]", (0,), "a list cotangent of pairs as a pair of list cotangents"),
    _lin("lbackmap", "['b * ('c -o 'x * 'f)] -> ['c] -> ['x] * 'f", (1,),
         "lbackmap ys ct: each call's linear map in ys applied to its entry of ct; the cotangents and the sum "
         "of the function's"),
    _lin("lbackmap2", "['b * ('c -o 'x * 'y * 'f)] -> ['c] -> ['x * 'y] * 'f", (1,),
         "lbackmap for the calls of a function of two arguments (zipWith)"),
    _lin("lfoldfwd", "('b -> ('a -> 'b * ('c -o 'x * 'f2)) * ('f2 -o 'c * 'f1)) -> 'b -> ['a] -> "
                     "'b * [('c -o 'c * 'x * 'f1)]", None,
         "lfoldfwd f z xs: fold, keeping each step's linear map"),
    _lin("lfoldback", "[('c -o 'c * 'x * 'f)] -> 'c -> 'c * ['x] * 'f", (1,),
         "lfoldback steps ct: the steps' linear maps from the last to the first: the cotangents of the initial "
         "accumulator, of the elements and of the function"),
    _lin("lnested", "'a -> 'b", (0,),
         "the derivative of a derivative call, which the chad modes do not compute (they refuse nesting)"),
    *(_lin(f"lcurry{k}", f"({_entry(k)}) -> {_curried(1, k)}", None,
           f"a function of {k} parameters as a curried value whose calls can also take all {k} at once", params=1)
      for k in range(2, MAX_CURRY + 1)),
    *(_lin(f"lcall{k}", f"({_curried(1, k)}) -> {' -> '.join(f'{chr(39)}a{i}' for i in range(1, k + 1))} -> "
                        f"'b * ('c -o {' * '.join(f'{chr(39)}x{i}' for i in range(1, k + 1))} * 'f1)", None,
           f"a call with {k} arguments at once: the function's entry when it has one of {k} parameters")
      for k in range(2, MAX_CURRY + 1)),
]

NUM2 = "Num 'a => 'a -> 'a -> 'a"
CMP = "Ord 'a => 'a -> 'a -> Bool"
EQ = "Eq 'a => 'a -> 'a -> Bool"
R1 = "Float 'a => 'a -> 'a"            # a real function: elementwise on an Array
R2 = "Float 'a => 'a -> 'a -> 'a"
I2 = "Int -> Int -> Int"

_ROWS: list[Primitive] = [
    _row("+", NUM2, "real", impl=operator.add, int_impl=operator.add,
         partials=lambda x, y, r: [_r(1), _r(1)],
         pyop="+", py="{0} + {1}"),
    _row("-", NUM2, "real", impl=operator.sub, int_impl=operator.sub,
         partials=lambda x, y, r: [_r(1), _r(-1)],
         pyop="-", py="{0} - {1}"),
    _row("*", NUM2, "real", impl=operator.mul, int_impl=operator.mul,
         partials=lambda x, y, r: [y, x],
         pyop="*", py="{0} * {1}"),
    _row("/", R2, "real", impl=rm.div,
         partials=lambda x, y, r: [_p("/", _r(1), y), _p("neg", _p("/", r, y))],
         raw=operator.truediv),
    _row("^", NUM2, "real", impl=rm.pow, int_impl=rm.int_pow,
         partials=lambda x, y, r: [_pow_base_partial("^", x, y), _exponent_partial(x, r)],
         fails=True, cost="transcendental", raw=math.pow),
    _row("neg", "Num 'a => 'a -> 'a", "real", impl=operator.neg, int_impl=operator.neg,
         partials=lambda x, r: [_r(-1)],
         py="-{0}"),
    _row("exp", R1, "real", impl=rm.exp, partials=lambda x, r: [r], cost="transcendental", raw=math.exp),
    _row("log", R1, "real", impl=rm.log,
         partials=lambda x, r: [_p("/", _r(1), x)],
         cost="transcendental", raw=math.log),
    _row("sin", R1, "real", impl=rm.sin, partials=lambda x, r: [_p("cos", x)], cost="transcendental", raw=math.sin),
    _row("cos", R1, "real", impl=rm.cos,
         partials=lambda x, r: [_p("neg", _p("sin", x))],
         cost="transcendental", raw=math.cos),
    _row("tan", R1, "real", impl=rm.tan,
         partials=lambda x, r: [_p("+", _r(1), _p("*", r, r))],
         cost="transcendental", raw=math.tan),
    _row("tanh", R1, "real", impl=rm.tanh,
         partials=lambda x, r: [_p("-", _r(1), _p("*", r, r))],
         cost="transcendental"),
    _row("sqrt", R1, "real", impl=rm.sqrt,
         partials=lambda x, r: [_p("/", _r(0.5), r)],
         cost="transcendental", raw=math.sqrt),
    # σ'(x) = σ(x) σ(-x): as σ(x) (1 - σ(x)) it would be 0 from x ≈ 37 on, where 1 - σ(x) rounds to 0
    _row("sigmoid", R1, "real", impl=rm.sigmoid,
         partials=lambda x, r: [_p("*", r, _p("sigmoid", _p("neg", x)))],
         cost="transcendental"),
    _row("relu", R1, "real", impl=rm.relu, partials=lambda x, r: [_if(_cmp(">", x, _r(0)), _r(1), zero())]),
    _row("softplus", R1, "real", impl=rm.softplus, partials=lambda x, r: [_p("sigmoid", x)], cost="transcendental"),
    _row("abs", "Num 'a => 'a -> 'a", "real", impl=math.fabs, int_impl=abs,
         partials=lambda x, r: [_if(_cmp(">", x, _r(0)), _r(1), _if(_cmp("<", x, _r(0)), _r(-1), zero()))]),
    _row("sign", R1, "real", impl=rm.sign, partials=lambda x, r: [zero()]),
    _row("pow", R2, "real", impl=rm.pow,
         partials=lambda x, y, r: [_pow_base_partial("pow", x, y), _exponent_partial(x, r)],
         cost="transcendental", raw=math.pow),
    _row("atan2", R2, "real", impl=rm.atan2,
         partials=lambda y, x, r: [_p("/", x, _p("+", _p("*", x, x), _p("*", y, y))),
                                   _p("neg", _p("/", y, _p("+", _p("*", x, x), _p("*", y, y))))],
         cost="transcendental"),
    # a tie splits the derivative evenly, 0.5 to each argument (JAX's _balanced_eq in lax.max_p's rule, PyTorch's
    # derivatives.yaml for maximum/minimum): the subgradient in the middle, and symmetric in the two arguments
    _row("min", NUM2, "real", impl=rm.fmin, int_impl=min, partials=lambda x, y, r: _chooser_partials("<", x, y)),
    _row("max", NUM2, "real", impl=rm.fmax, int_impl=max, partials=lambda x, y, r: _chooser_partials(">", x, y)),
    # log1p, expm1, the hyperbolic and inverse functions, erf: each partial written so that it stays
    # accurate where the textbook form cancels or overflows — 1 / sqrt (1 - x²) as 1 / (√(1-x) √(1+x)),
    # 1 / sqrt (x² + 1) as 1 / hypot x 1, expm1' as exp x (r + 1 loses everything below 1e-16 for x < -37)
    _row("log1p", R1, "real", impl=rm.log1p, partials=lambda x, r: [_p("/", _r(1), _p("+", _r(1), x))],
         cost="transcendental", doc="log (1 + x), exact near 0"),
    _row("expm1", R1, "real", impl=rm.expm1, partials=lambda x, r: [_p("exp", x)],
         cost="transcendental", doc="exp x - 1, exact near 0"),
    _row("sinh", R1, "real", impl=rm.sinh, partials=lambda x, r: [_p("cosh", x)], cost="transcendental"),
    _row("cosh", R1, "real", impl=rm.cosh, partials=lambda x, r: [_p("sinh", x)], cost="transcendental"),
    _row("asinh", R1, "real", impl=rm.asinh, partials=lambda x, r: [_p("/", _r(1), _p("hypot", x, _r(1)))],
         cost="transcendental"),
    _row("acosh", R1, "real", impl=rm.acosh,
         partials=lambda x, r: [_p("/", _r(1), _sqrt_product(_p("-", x, _r(1)), _p("+", x, _r(1))))],
         cost="transcendental"),
    _row("atanh", R1, "real", impl=rm.atanh,
         partials=lambda x, r: [_p("/", _r(1), _p("*", _p("-", _r(1), x), _p("+", _r(1), x)))],
         cost="transcendental"),
    _row("asin", R1, "real", impl=rm.asin,
         partials=lambda x, r: [_p("/", _r(1), _sqrt_product(_p("-", _r(1), x), _p("+", _r(1), x)))],
         cost="transcendental"),
    _row("acos", R1, "real", impl=rm.acos,
         partials=lambda x, r: [_p("/", _r(-1), _sqrt_product(_p("-", _r(1), x), _p("+", _r(1), x)))],
         cost="transcendental"),
    _row("atan", R1, "real", impl=rm.atan, partials=lambda x, r: [_p("/", _r(1), _p("+", _r(1), _p("*", x, x)))],
         cost="transcendental"),
    _row("erf", R1, "real", impl=rm.erf, partials=lambda x, r: [_gauss(x, TWO_OVER_SQRT_PI)],
         cost="transcendental"),
    _row("erfc", R1, "real", impl=rm.erfc, partials=lambda x, r: [_gauss(x, -TWO_OVER_SQRT_PI)],
         cost="transcendental", doc="1 - erf x, accurate where erf x is near 1"),
    # √(x² + y²) without overflow; at the origin the partials are 0 by convention, as abs'(0) (hypot x 0 = abs x)
    _row("hypot", R2, "real", impl=rm.hypot,
         partials=lambda x, y, r: [_if(_cmp("==", r, _r(0)), zero(), _p("/", x, r)),
                                   _if(_cmp("==", r, _r(0)), zero(), _p("/", y, r))],
         cost="transcendental"),
    _row("pi", "Float 'a => 'a", "toreal", impl=math.pi),
    # the symbolic zero (lang/model/zeros.py): a tangent or partial that is 0 by construction
    _row(ZERO_NAME, "Real", "toreal", impl=ZERO, target=True,
         doc="zero by construction: what it multiplies is dropped (docs/transforms.md, Zeros and infinities)"),
    _row("float", "Int -> Real", "toreal", impl=rm.to_real, raw=float),
    _row("floor", "Real -> Int", "toint", impl=rm.floor, fails=True),
    _row("ceil", "Real -> Int", "toint", impl=rm.ceil, fails=True),
    _row("round", "Real -> Int", "toint", impl=rm.round_, fails=True),
    _row("div", I2, "int", impl=rm.int_div, fails=True),
    _row("mod", I2, "int", impl=rm.int_mod, fails=True),
    _row("==", EQ, "compare", impl=operator.eq, pyop="==", py="{0} == {1}", cost="compare"),
    _row("!=", EQ, "compare", impl=operator.ne, pyop="!=", py="{0} != {1}", cost="compare"),
    _row("<", CMP, "compare", impl=operator.lt, pyop="<", py="{0} < {1}", cost="compare"),
    _row("<=", CMP, "compare", impl=operator.le, pyop="<=", py="{0} <= {1}", cost="compare"),
    _row(">", CMP, "compare", impl=operator.gt, pyop=">", py="{0} > {1}", cost="compare"),
    _row(">=", CMP, "compare", impl=operator.ge, pyop=">=", py="{0} >= {1}", cost="compare"),
    _row("not", "Bool -> Bool", "bool", impl=operator.not_, cost="compare", py="not {0}"),
    # structural: parametric, so every transform maps them to themselves
    _row("fst", "'a * 'b -> 'a", "structural", impl=operator.itemgetter(0), cost="structural", py="{0}[0]",
         linear=(0,)),
    _row("snd", "'a * 'b -> 'b", "structural", impl=operator.itemgetter(1), cost="structural", py="{0}[1]",
         linear=(0,)),
    _row("map", "('a -> 'b) -> ['a] -> ['b]", "structural", impl=_map, cost="structural"),
    _row("fold", "('b -> 'a -> 'b) -> 'b -> ['a] -> 'b", "structural", impl=_fold, cost="structural"),
    _row("zipWith", "('a -> 'b -> 'c) -> ['a] -> ['b] -> ['c]", "structural", impl=_zip_with, cost="structural"),
    _row("length", "['a] -> Int", "structural", impl=len, cost="structural", py="len({0})"),
    _row("range", "Int -> [Int]", "structural", impl=_range, cost="structural", fails=True),
    _row("build", "Int -> (Int -> 'a) -> ['a]", "structural", impl=_build, cost="structural", fails=True),
    _row("get", "['a] -> Int -> 'a", "structural", impl=_get, cost="structural", fails=True),
    _row("head", "['a] -> 'a", "structural", impl=_head, cost="structural", fails=True),
    _row("tail", "['a] -> ['a]", "structural", impl=_tail, cost="structural", fails=True),
    _row("reverse", "['a] -> ['a]", "structural", impl=lambda xs: xs[::-1], cost="structural"),
    _row("isEmpty", "['a] -> Bool", "structural", impl=lambda xs: not xs, cost="structural", py="not {0}"),
    _row("::", "'a -> ['a] -> ['a]", "structural", impl=lambda x, xs: [x, *xs], cost="structural", py="[{0}, *{1}]"),
    _row("++", "['a] -> ['a] -> ['a]", "structural", impl=operator.add, cost="structural", py="{0} + {1}"),
    # the differentiation kernel (lang/ad.py); the mode decides how
    _row("grad", "Diff 'a => ('a -> Real) -> 'a -> 'a", "ad", cost="ad", fails=True),
    _row("value_and_grad", "Diff 'a => ('a -> Real) -> 'a -> Real * 'a", "ad", cost="ad", fails=True),
    _row("vjp", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> 'b * ('b -> 'a)", "ad", cost="ad", fails=True),
    _row("jvp", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> 'a -> 'b * 'b", "ad", cost="ad", fails=True),
    _row("derivative", "(Real -> Real) -> Real -> Real", "ad", cost="ad", fails=True),
    # derivatives of any shape (docs/reference.md §7, Jacobians, Hessians and auxiliary outputs): the one-hot
    # seeds they push or pull are the kernel's, zero by construction off the diagonal, never the program's
    _row("jacrev", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> ['a]", "ad", cost="ad", fails=True,
         doc="the rows of the Jacobian, one gradient per output real: one vjp, one pullback per output real"),
    _row("jacfwd", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> ['a]", "ad", cost="ad", fails=True,
         doc="the rows of the Jacobian (as jacrev), from one jvp per input real"),
    _row("jacobianT", "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> ['b]", "ad", cost="ad", fails=True,
         doc="the columns of the Jacobian, one tangent per input real: one jvp per input real"),
    _row("value_and_grad_aux", "(Diff 'a, Diff 'c) => ('a -> Real * 'c) -> 'a -> (Real * 'c) * 'a", "ad",
         cost="ad", fails=True, doc="(f x, the gradient of its first component); the second is not differentiated"),
    # a function with its own reverse rule (docs/reference.md §7, Custom derivatives): `custom_vjp f rule x` is
    # f x; a mode that differentiates through it takes the value and the pullback from `rule x` instead
    _row("custom_vjp", "(Diff 'a, Diff 'b) => ('a -> 'b) -> ('a -> 'b * ('b -> 'a)) -> 'a -> 'b", "custom",
         cost="ad", fails=True, doc="f x, differentiated by the rule's pullback: rule x = (f x, fun u -> u J)"),
    # a function with its own forward rule: `custom_jvp f rule x` is f x; a mode that differentiates through it
    # takes the value and the tangent from `rule x x_dot` instead (linear in x_dot, so reverse modes use it too)
    _row("custom_jvp", "(Diff 'a, Diff 'b) => ('a -> 'b) -> ('a -> 'a -> 'b * 'b) -> 'a -> 'b", "custom",
         cost="ad", fails=True, doc="f x, differentiated by the rule's tangent: rule x x_dot = (f x, J x_dot)"),
    # the Delta expressions of the delta modes' target language (docs/transforms.md, delta): data that
    # describes a linear map; the runtime that builds and transposes them is lang/modes/delta.py
    _row("dzero", "Delta", "delta", target=True, cost="delta", doc="the zero map (a constant's Delta)"),
    _row("dscale", "Real -> Delta -> Delta", "delta", target=True, cost="delta",
         doc="dscale w d: d scaled by the partial derivative w"),
    _row("dadd", "Delta -> Delta -> Delta", "delta", target=True, cost="delta", doc="the sum of two maps"),
    _row("dshare", "Delta -> Delta", "delta", target=True, cost="delta",
         doc="d with a fresh identity, so that the backward pass walks it once however often it is used"),
    _row("dmark", "Delta -> Delta", "delta", target=True, cost="delta",
         doc="d marked as one primitive's derivative, without an identity (delta-noshare)"),
    # linear maps between cotangent types (docs/transforms.md, Notation): the target language of chad
    *_LINEAR_ROWS,
    # target-only rows of the dual-numbers stages (docs/transforms.md, dualrev; lang/transforms/dualrev.py);
    # their implementations belong to the stages' runtime (lang/modes/dualrev.py), which owns their data
    *[_row(name, scheme, "target", target=True, cost="target", doc=doc) for name, scheme, doc in [
        ("stage", "(Real -> Staged) -> Real -> Staged", "the pending call x' e, as data"),
        ("plusS", "Staged -> Staged -> Staged", "the union of pending calls, merging calls of one backpropagator"),
        ("zeroS", "Staged", "no pending call"),
        ("stageC", "(Real -> Staged -> Staged) -> Real -> Staged -> Staged", "add the call x' e to the pending ones"),
        ("stageAt", "ID -> (Real -> Staged -> Staged) -> Real -> Staged -> Staged",
         "add the call x' e of the backpropagator with that ID to the pending ones"),
        ("fresh", "Supply -> ID * Supply", "the next ID, and the supply after it"),
        ("noId", "ID", "the ID of every constant (never resolved)"),
        ("runConst", "(Supply -> 'a * Supply) -> 'a", "a closed computation run on the supply of constants"),
        ("applyI", "('a -> Supply -> 'b * Supply) * Supply -> 'a -> 'b * Supply",
         "the next argument of an application, given to the function a call returned with the supply"),
        ("mapI", "('a -> Supply -> 'b * Supply) -> ['a] -> Supply -> ['b] * Supply", "map, threading the supply"),
        ("foldI", "('b -> Supply -> ('a -> Supply -> 'b * Supply) * Supply) -> 'b -> ['a] -> Supply -> 'b * Supply",
         "fold, threading the supply"),
        ("zipWithI", "('a -> Supply -> ('b -> Supply -> 'c * Supply) * Supply) -> ['a] -> ['b] -> Supply -> "
                     "['c] * Supply", "zipWith, threading the supply"),
        ("buildI", "Int -> (Int -> Supply -> 'a * Supply) -> Supply -> ['a] * Supply", "build, threading the supply"),
        ("contrib0", "Contrib", "no parent: a constant's contribution"),
        ("contrib1", "ID -> Contrib -> Real -> Contrib", "one parent: its ID, its contribution, the partial"),
        ("contrib2", "ID -> Contrib -> Real -> ID -> Contrib -> Real -> Contrib", "two parents"),
    ]],
    # shift-reset's target language (lang/transforms/shift_reset.py): adjoint cells, the CPS versions of
    # the loops, and reset; run by lang/modes/shift_reset.py
    _row("shift", "(Real -> Unit) -> Cell", "target", target=True,
         doc="`let y' = shift (fun a -> P) in S`: a fresh adjoint cell y', holding 0, for the rest S; when S "
             "has returned, the post P runs with a = what y' holds"),
    _row("nocell", "Cell", "target", target=True, doc="the cell of a constant: adding into it does nothing"),
    _row("accum", "Cell -> Real -> Unit", "target", target=True, doc="add into a cell (posts only)"),
    _row("mapK", "('a -> ('b -> Unit) -> Unit) -> ['a] -> (['b] -> Unit) -> Unit", "target", target=True),
    _row("foldK", "('b -> (('a -> ('b -> Unit) -> Unit) -> Unit) -> Unit) -> 'b -> ['a] -> ('b -> Unit) -> Unit",
         "target", target=True),
    _row("zipWithK", "('a -> (('b -> ('c -> Unit) -> Unit) -> Unit) -> Unit) -> ['a] -> ['b] -> (['c] -> Unit) "
         "-> Unit", "target", target=True),
    _row("buildK", "Int -> (Int -> ('a -> Unit) -> Unit) -> (['a] -> Unit) -> Unit", "target", target=True,
         fails=True),
    _row("reset", "(('a -> Unit) -> Unit) -> 'a", "target", target=True,
         doc="run a CPS computation to its end; its value"),
]


# the sensitivity algebra and the structural rules of the ps mode's target language (docs/transforms.md, ps):
# implemented by its runtime (lang/modes/ps.py), which represents `zero` and Env as it chooses
_PS = [
    ("szero", "'a", "the zero sensitivity, at every type"),
    ("oplus", "'a -> 'a -> 'a", "a ⊕ b: the sum of two sensitivities, structural, zero its unit"),
    ("rho", "Real -> 'a -> 'a", "rho ct ∂ (or a tuple of ∂s): an inlined primitive's ρ, each ∂ times ct"),
    ("back", "Int -> ('s -> 'r) -> 's -> 'r", "back k bp ct: bp applied to ct (k zeros for a zero ct)"),
    ("backenv", "('s -> Env) -> 's -> Env", "an if's backpropagator applied (zero for a zero ct)"),
    ("split", "Int -> 'a -> 'a", "split n ct: a tuple's sensitivity taken apart (n zeros for zero)"),
    ("sget", "['a] -> Int -> 'a", "sget ct i: the i-th element of a list's sensitivity"),
    ("env", "Int -> 'a -> Env", "env k (s1, ..., sk): the sensitivities of a closure's k captured variables"),
    ("unenv", "Int -> Env -> 'a", "unenv k e: an Env's k slots"),
    ("unenvrec", "Int -> Int -> Env -> 'a",
     "unenvrec k j e: the slots of a recursive closure's Env other than its own (slot j), summed down the chain"),
    ("mapP", "('a -> 'b * ('sb -> Env * 'sa)) -> ['a] -> ['b] * (['sb] -> Env * ['sa])", "map, with ρ"),
    ("foldP", "('b -> ('a -> 'b * ('sb -> Env * 'sa)) * (Env -> Env * 'sb)) -> 'b -> ['a] -> "
              "'b * ('sb -> Env * 'sb * ['sa])", "fold, with ρ"),
    ("zipWithP", "('a -> ('b -> 'c * ('sc -> Env * 'sb)) * (Env -> Env * 'sa)) -> ['a] -> ['b] -> "
                 "['c] * (['sc] -> Env * ['sa] * ['sb])", "zipWith, with ρ"),
    ("buildP", "Int -> (Int -> 'a * ('s -> Env * Int)) -> ['a] * (['s] -> Int * Env)", "build, with ρ"),
    ("getP", "['a] -> Int -> 'a * ('s -> ['s] * Int)", "get, with ρ (a one-hot list)"),
    ("headP", "['a] -> 'a * ('s -> ['s])", "head, with ρ (a one-hot list)"),
    ("tailP", "['a] -> ['a] * (['s] -> ['s])", "tail, with ρ"),
    ("reverseP", "['a] -> ['a] * (['s] -> ['s])", "reverse, with ρ"),
    ("consP", "'a -> ['a] -> ['a] * (['s] -> 's * ['s])", ":: with ρ"),
    ("appendP", "['a] -> ['a] -> ['a] * (['s] -> ['s] * ['s])", "++ with ρ"),
]
_ROWS += [_row(name, scheme, "ps", target=True, cost="structural" if name.endswith("P") else "ps", doc=doc,
               fails=name in ("buildP", "getP", "headP", "tailP"))
          for name, scheme, doc in _PS]

# Arrays: the real rows' Array kernels, and the array rows (lang/model/array_rows.py)
_ROWS = [replace(p, array=array_rows.ELEMENTWISE[p.name]) if p.name in array_rows.ELEMENTWISE else p
         for p in _ROWS]
_ROWS += [_row(name, scheme, "effect" if fields.get("effect") else "array", fails=True, **{"cost": "array", **fields})
          for name, scheme, fields in array_rows.ROWS]
_ROWS += [_row(name, scheme, "effect" if fields.get("effect") else "array", fails=True, target=True,
               **{"cost": "array", **fields}) for name, scheme, fields in array_rows.TARGET_ROWS]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _ROWS}

# The spellings of binary operators in source text and their rows.
BINARY_OPERATORS = {"+", "-", "*", "/", "^", "==", "!=", "<", "<=", ">", ">=", "::", "++"}
# Operators that are syntax, not names: they cannot be shadowed or written bare.
OPERATOR_NAMES = BINARY_OPERATORS | {"neg"}


def lookup(name: str) -> Primitive:
    """The row for `name`; a missing row is an internal error that names the primitive."""
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r} in the primitive table") from None


def array_instance(prim: Primitive, arg_types, result_type) -> bool:
    """Whether an application runs on Arrays: an array row, or a real row at Array (elementwise)."""
    if prim.kind in ("array", "effect"):
        return True
    if prim.kind in ("real", "toreal"):
        return any(prune(t) == ARRAY for t in (result_type, *arg_types))
    return False


@lru_cache(maxsize=None)
def array_kernel(name: str) -> Callable:
    """The kernel `name` of lang/model/arrays.py, or `module:name` elsewhere (importing numpy, once, on
    first use)."""
    module, _, attr = name.rpartition(":")
    return imported(module or "lang.model.arrays", attr)


@lru_cache(maxsize=None)
def site_factory(path: str) -> Callable:
    """The factory `module:name` that makes a row's implementation for one compiler."""
    module, _, name = path.partition(":")
    return imported(module, name)


def imported(module: str, name: str) -> Any:
    """`getattr(importlib.import_module(module), name)`, without importing importlib and warnings (start-up)."""
    return getattr(__import__(module, fromlist=[name]), name)


def user_visible() -> list[str]:
    """The built-in names a program can write (operators excluded)."""
    return [n for n, p in PRIMITIVES.items() if n not in OPERATOR_NAMES and not p.target]


count = _count  # the length check of range and build, for the compiler's inlined build loop
