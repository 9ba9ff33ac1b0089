"""Types of the source and target languages, type variables with constraints, printing.

    T ::= Real | Int | Bool | Unit | Array | String | T -> T | T * T * ... | [T] | 'a   (source, docs/reference.md §4)
        | ~T | d | Delta | Env                                   (target, docs/transforms.md, Notation)
        | Staged | ID | Supply | Contrib                         (target of the dualrev stages)
        | T -o U | Name(T, ...)                                  (target: a linear map, a target type constructor)

A type variable carries a *constraint*: the set of classes its type must
belong to. A class is the set of base types in it (`CLASSES`):

    Diff   — differentiable data: Real, Int, Bool, Unit, Array, and tuples and lists of them
    Eq     — Int, Real, Bool (what == compares)
    Ord    — Int, Real (what < compares)
    Num    — Int, Real, Array (+ - * ^ neg abs min max; an integer literal `2` starts here)
    Float  — Real, Array (/ and the real functions sin, exp, ...; a literal `2.5` starts here)
    Nested — Real, and lists of Nested: [Real], [[Real]], ... (what `array` makes an Array of)

so `sin x * x + 2.0` has one type, `Float 'a => 'a -> 'a`, and runs on a Real
or, elementwise, on an Array. Every class contains Real: a variable no type
fixes defaults to Real. Variables are mutable during inference (union-find
links) and print as 'a, 'b, ... with Haskell-style constraints, the classes
the others imply left out: `Num 'a => 'a -> 'a`, `(Num 'a, Ord 'a) => ...`.
"""
from __future__ import annotations

from .nodes import node  # dataclass(frozen=True, slots=True), made quickly (start-up)

# class -> the base types in it (Diff also holds tuples and lists of its members: see `is_differentiable_data`)
CLASSES: dict[str, frozenset[str]] = {
    "Diff": frozenset({"Real", "Int", "Bool", "Unit", "Array"}),
    "Eq": frozenset({"Int", "Real", "Bool"}),
    "Ord": frozenset({"Int", "Real"}),
    "Num": frozenset({"Int", "Real", "Array"}),
    "Float": frozenset({"Real", "Array"}),
    "Nested": frozenset({"Real"}),
}
STRUCTURAL = "Diff"  # the class that also holds tuples and lists of its members
LIST_CLASSES = frozenset({"Diff", "Nested"})  # the classes that also hold lists of their members
CLASS_ORDER = ("Diff", "Eq", "Ord", "Num", "Float", "Nested")  # how constraints print
NONE: frozenset[str] = frozenset()
DIFF, EQ, ORD, NUM, FLOAT, NESTED = (frozenset({name}) for name in CLASS_ORDER)


def members(constraint: frozenset[str]) -> frozenset[str]:
    """The base types a constrained variable may stand for (every class holds Real, so never empty)."""
    out = CLASSES["Diff"]
    for name in constraint:
        out = out & CLASSES[name]
    return out


def essential(constraint: frozenset[str]) -> list[str]:
    """The classes of a constraint worth printing: those the others do not imply, in CLASS_ORDER."""
    out = []
    for name in CLASS_ORDER:
        if name not in constraint:
            continue
        others = constraint - {name}
        if not (others and members(others) <= CLASSES[name]):
            out.append(name)
    return out


@node
class TCon:  # Real | Int | Bool | Unit | d | Delta
    name: str


@node
class TFun:  # T -> U
    arg: Type
    result: Type


@node
class TTuple:  # T * U * ...
    items: tuple[Type, ...]


@node
class TList:  # [T]
    item: Type


@node
class TNeg:  # ~T, linear negation: T -o d (target language)
    item: Type


@node
class TCtor:  # T -o U | Copow(T, U) | ...: a type constructor of a transform's target language
    """A target language's type constructor applied to types, compared by name and arguments.

    `T -o U` (`linear(T, U)`, printed `T ⊸ U`) is a linear map between cotangent types; `¬T` is the
    special case `T ⊸ d` (the unifier treats the two as one type). Other names print `Name(T, U)`:
    the chad modes' copowers `Copow(A, B)` (lang/transforms/chad.py)."""
    name: str
    args: tuple[Type, ...]


LINEAR = "-o"  # the name of the linear arrow


def linear(arg: Type, result: Type) -> TCtor:
    """T ⊸ U: a linear map from T to U."""
    return TCtor(LINEAR, (arg, result))


class TVar:
    """A type variable: unbound, or linked to the type it was unified with."""

    __slots__ = ("level", "constraint", "link")

    def __init__(self, level: int = 0, constraint: frozenset[str] = NONE):
        self.level = level
        self.constraint = constraint  # the classes its type must belong to (CLASSES)
        self.link: Type | None = None

    def __repr__(self) -> str:
        return f"TVar({id(self) % 10000}{', ' + ', '.join(essential(self.constraint)) if self.constraint else ''})"


Type = TCon | TFun | TTuple | TList | TNeg | TCtor | TVar

REAL, INT, BOOL, UNIT, ARRAY, D = TCon("Real"), TCon("Int"), TCon("Bool"), TCon("Unit"), TCon("Array"), TCon("d")
STRING = TCon("String")  # a string literal: a file name for the data loaders (in no class)
DELTA = TCon("Delta")  # a first-order description of a linear map Real -o d (lang/transforms/delta.py)
ENV = TCon("Env")  # the sensitivities of a closure's captured variables (lang/transforms/ps.py), and the
                   # cotangent of a closure's environment (chad-efficient, lang/transforms/chad.py)
BASE_TYPES = {t.name: t for t in (REAL, INT, BOOL, UNIT, ARRAY, STRING)}
# The dual-numbers stages (docs/transforms.md, dualrev): pending backpropagator calls, the identity of a
# real, the state of the identity supply, and a defunctionalised backpropagator.
STAGED, ID, SUPPLY, CONTRIB = TCon("Staged"), TCon("ID"), TCon("Supply"), TCon("Contrib")
CELL = TCon("Cell")  # shift-reset: a real's adjoint cell (docs/transforms.md, shift-reset)
# Types of the transforms' target languages only, by the name they print with (d, the answer type of
# backpropagators; a transform that needs a type of its own adds it here): never in a user's program.
TARGET_TYPES = {t.name: t for t in (D, DELTA, ENV, STAGED, ID, SUPPLY, CONTRIB, CELL)}


def fun(*types: Type) -> Type:
    """fun(A, B, C) is A -> B -> C."""
    *args, result = types
    for a in reversed(args):
        result = TFun(a, result)
    return result


def function_arity(t: Type) -> int:
    """How many arrows a function type has at its top: 2 for A -> B -> C."""
    n, t = 0, prune(t)
    while isinstance(t, TFun):
        n, t = n + 1, prune(t.result)
    return n


def prune(t: Type) -> Type:
    """Follow links to the representative type (with path compression)."""
    if isinstance(t, TVar) and t.link is not None:
        t.link = prune(t.link)
        return t.link
    return t


def resolve(t: Type) -> Type:
    """The type with every linked variable replaced by what it stands for."""
    t = prune(t)
    match t:
        case TCon() | TVar():
            return t
        case TFun(a, r):
            return TFun(resolve(a), resolve(r))
        case TTuple(items):
            return TTuple(tuple(resolve(i) for i in items))
        case TList(item):
            return TList(resolve(item))
        case TNeg(item):
            return TNeg(resolve(item))
        case TCtor(name, args):
            return TCtor(name, tuple(resolve(a) for a in args))
    raise AssertionError(t)


def free_vars(t: Type) -> list[TVar]:
    """The unbound variables of `t`, in order of first appearance."""
    out: list[TVar] = []
    seen: set[TVar] = set()  # `t not in out` would be quadratic in the number of variables (issue 19 item 9)

    def walk(t: Type) -> None:
        t = prune(t)
        match t:
            case TVar():
                if t not in seen:
                    seen.add(t)
                    out.append(t)
            case TCon():
                pass
            case TFun(a, r):
                walk(a)
                walk(r)
            case TTuple(items):
                for i in items:
                    walk(i)
            case TList(item) | TNeg(item):
                walk(item)
            case TCtor(_, args):
                for a in args:
                    walk(a)

    walk(t)
    return out


def map_vars(t: Type, fn, memo: dict | None = None) -> Type:
    """`t` with each unbound variable v replaced by fn(v), resolving links on the way.

    `memo` (id -> (type, result)), kept by a caller across calls, maps each shared part once: the types
    of a term's nodes share their parts (a pair's type holds its components'), so mapping every
    node's type without it is quadratic in the term's depth."""
    t = prune(t)
    if memo is not None:
        hit = memo.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
    match t:
        case TVar():
            out = fn(t)
        case TCon():
            out = t
        case TFun(a, r):
            out = TFun(map_vars(a, fn, memo), map_vars(r, fn, memo))
        case TTuple(items):
            out = TTuple(tuple([map_vars(i, fn, memo) for i in items]))
        case TList(item):
            out = TList(map_vars(item, fn, memo))
        case TNeg(item):
            out = TNeg(map_vars(item, fn, memo))
        case TCtor(name, args):
            out = TCtor(name, tuple(map_vars(a, fn, memo) for a in args))
        case _:
            raise AssertionError(t)
    if memo is not None:
        memo[id(t)] = (t, out)
    return out


def substitute(t: Type, sub: dict[TVar, Type]) -> Type:
    """Replace the variables in `sub` (by identity), resolving links on the way.

    `map_vars(t, lambda v: sub.get(v, v))`, written out: every use of a polymorphic name or a built-in
    instantiates its scheme here, so it is the type checker's innermost loop (issue 19 item 9)."""
    while isinstance(t, TVar):
        if t.link is None:
            return sub.get(t, t)
        t = prune(t)
    match t:
        case TCon():
            return t
        case TFun(a, r):
            return TFun(substitute(a, sub), substitute(r, sub))
        case TTuple(items):
            return TTuple(tuple([substitute(i, sub) for i in items]))
        case TList(item):
            return TList(substitute(item, sub))
        case TNeg(item):
            return TNeg(substitute(item, sub))
        case TCtor(name, args):
            return TCtor(name, tuple([substitute(a, sub) for a in args]))
    raise AssertionError(t)


def is_differentiable_data(t: Type) -> bool:
    """Real, Int, Bool, Unit, Array, and tuples and lists of them (docs/reference.md §7)."""
    t = prune(t)
    match t:
        case TCon(name):
            return name in CLASSES["Diff"]
        case TTuple(items):
            return all(is_differentiable_data(i) for i in items)
        case TList(item):
            return is_differentiable_data(item)
        case TVar():
            return bool(t.constraint) and members(t.constraint) <= CLASSES["Diff"]
    return False


@node
class Scheme:
    """∀ qvars. body — the qvars are the generic variables of `body`."""

    qvars: tuple[TVar, ...]
    body: Type

    @property
    def constrained(self) -> tuple[TVar, ...]:
        """The quantified variables with a class constraint: these are specialised per use."""
        return tuple(v for v in self.qvars if v.constraint)


def mono(t: Type) -> Scheme:
    return Scheme((), t)


# ---- printing ------------------------------------------------------------


class Namer:
    """Gives type variables the names 'a, 'b, ... in order of first appearance."""

    def __init__(self) -> None:
        self.names: dict[TVar, str] = {}

    def __call__(self, v: TVar) -> str:
        if v not in self.names:
            n = len(self.names)
            self.names[v] = "'" + (chr(ord("a") + n % 26) + (str(n // 26) if n >= 26 else ""))
        return self.names[v]


def show(t: Type, namer: Namer | None = None, ascii_neg: bool = False) -> str:
    """The type in the concrete syntax of docs/reference.md §4 (no constraint prefix)."""
    namer = namer or Namer()
    return _show(t, namer, 0, ascii_neg)


def _show(t: Type, namer: Namer, prec: int, ascii_neg: bool) -> str:
    # prec: 0 = anywhere, 1 = argument of ->, 2 = tuple component or atom.
    # `*` binds tighter than `->`, so `'a * 'b -> 'c` needs no parentheses (docs/transforms.md writes
    # `Real * ¬Real -> Real * ¬Real`).
    t = prune(t)
    match t:
        case TCon(name):
            return name
        case TVar():
            return namer(t)
        case TList(item):
            return "[" + _show(item, namer, 0, ascii_neg) + "]"
        case TNeg(item):
            return ("~" if ascii_neg else "¬") + _show(item, namer, 2, ascii_neg)
        case TTuple(items):
            text = " * ".join(_show(i, namer, 2, ascii_neg) for i in items)
            return f"({text})" if prec >= 2 else text
        case TFun(a, r):
            text = _show(a, namer, 1, ascii_neg) + " -> " + _show(r, namer, 0, ascii_neg)
            return f"({text})" if prec >= 1 else text
        case TCtor(name, (a, r)) if name == LINEAR:  # binds like ->
            text = _show(a, namer, 1, ascii_neg) + (" -o " if ascii_neg else " ⊸ ") + _show(r, namer, 0, ascii_neg)
            return f"({text})" if prec >= 1 else text
        case TCtor(name, args):
            return name + "(" + ", ".join(_show(a, namer, 0, ascii_neg) for a in args) + ")"
    raise AssertionError(t)


def instance_name(name: str, inst: tuple) -> str:
    """How an instance of a polymorphic definition prints: `sq@Int`, `f@Real@Int`."""
    return name + "".join("@" + _instance_atom(t) for t in inst)


def _instance_atom(t: Type) -> str:
    text = show(t)
    return text if isinstance(t, (TCon, TList, TVar)) else f"({text})"


def show_scheme(t: Type | Scheme, ascii_neg: bool = False, namer: Namer | None = None) -> str:
    """The type with its constraints first, Haskell-style: `Num 'a => 'a -> 'a`."""
    body = t.body if isinstance(t, Scheme) else t
    namer = namer or Namer()
    text = show(body, namer, ascii_neg)
    constrained = [v for v in free_vars(body) if v.constraint]
    if not constrained:
        return text
    parts = [f"{name} {namer(v)}" for v in constrained for name in essential(v.constraint)]
    prefix = parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"
    return f"{prefix} => {text}"
