"""Differentiable data, walked by its type: flatten, rebuild, inject, unlift.

The inputs and outputs of `grad`, `vjp` and `jvp` are differentiable data
of a concrete type (Real, Int, Bool, Unit, tuples and lists of them, nested;
the specialiser made the type concrete). Each walk is compiled once per
type into a Python function (`Shapes` memoises them), so a list of ten
thousand reals is flattened by one `list()` and its gradient rebuilt by one
slice, rather than by a recursive walk per element.

    flatten(v)              the reals of v, in a fixed order (an Array's elements, row-major)
    rebuild(shape, reals)   a value shaped like `shape` whose reals come from `reals`
                            (other leaves zero: 0, false, ())
    map_reals(v, fn)        each real r replaced by fn(r) (an Array's elements too)
    leaves(v)               like flatten, but an Array is one leaf (reverse mode, tape: one
                            backpropagator, one cotangent per array)
    rebuild_leaves(shape, leaves)   the inverse of leaves (an Array leaf 0.0: zeros of its shape)
    map_leaves(v, fn, array_fn)     each real r replaced by fn(r), each Array a by array_fn(a)
    inject(v, first)        v with its k-th leaf x paired with the identity first + k
    unlift(dual, out)       the primal part of a ←D value, its backpropagators appended to out

Walks of a type with no Array never touch numpy. A *fixed* type — a tuple, nested or not, of Real,
Int, Bool and Unit — has a fixed number of leaves in fixed places, so its walks are generated as
straight-line Python (one unpacking, one tuple built): the per-call cost of `grad` on a function of
a few reals is mostly these walks. A *nested* type — lists and tuples of those leaves, with a list
that is not [Real] alone (an MLP's parameters `[[[Real]] * [Real]]`) — has its `inject` and `rebuild`
walks generated too, as one nested comprehension (`_nested_walk`): no Python call per list or tuple.
"""
from __future__ import annotations

from itertools import count
from typing import Any, Callable

from ..model.primitives import array_kernel
from ..model.errors import DlRuntimeError
from ..model.types import ARRAY, BOOL, INT, REAL, UNIT, TFun, TList, TTuple, Type, prune, resolve
from ..transforms.common import mentions_array

_ZERO = {INT: 0, BOOL: False, UNIT: ()}


class IOWalks:
    """The walks of one vjp's input and output types (Shapes.io); each is the function `Shapes` memoises
    for its kind and type, called as the methods of the same name call it."""

    __slots__ = ("inject", "unlift", "leaves_out", "rebuild_leaves_in", "flatten_in", "arrays", "real_out")

    def __init__(self, **walks: Any) -> None:
        for k, v in walks.items():
            setattr(self, k, v)


class Shapes:
    """The walks of one type each, compiled on first use."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, Type], Callable] = {}
        # by the identity of the type object a call site passes (kept alive here, so the id
        # cannot be reused): no resolving and hashing of the type on every call
        self.by_id: dict[tuple[str, int], tuple[Type, Callable]] = {}

    def _get(self, kind: str, t: Type, make: Callable[[Type], Callable]) -> Callable:
        hit = self.by_id.get((kind, id(t)))
        if hit is not None and hit[0] is t:
            return hit[1]
        resolved = resolve(t)
        key = (kind, resolved)
        fn = self.cache.get(key)
        if fn is None:
            fn = self.cache[key] = _fixed_walk(kind, resolved) or _nested_walk(kind, resolved) or make(resolved)
        self.by_id[(kind, id(t))] = (t, fn)
        return fn

    # ---- the walks one reverse-mode call makes, fetched at once
    def io(self, in_t: Type, out_t: Type) -> "IOWalks":
        """The walks a vjp from `in_t` to `out_t` makes on every call (cached by the two types' identities:
        one lookup per call instead of one per walk)."""
        hit = self.by_id.get(("io", id(in_t), id(out_t)))
        if hit is not None and hit[0] is in_t and hit[1] is out_t:
            return hit[2]
        walks = IOWalks(
            inject=self._get("inject", in_t, self._make_inject),
            unlift=self._get("unlift", out_t, self._make_unlift),
            leaves_out=self._get("leaves", out_t, self._make_leaves),
            rebuild_leaves_in=self._get("rebuild_leaves", in_t, self._make_rebuild_leaves),
            flatten_in=self._get("flatten", in_t, self._make_flatten),
            arrays=mentions_array(in_t) or mentions_array(out_t),
            real_out=resolve(out_t) == REAL)
        self.by_id[("io", id(in_t), id(out_t))] = (in_t, out_t, walks)
        return walks

    # ---- flatten: value -> list of reals
    def flatten(self, v: Any, t: Type) -> list:
        out: list = []
        self._get("flatten", t, self._make_flatten)(v, out)
        return out

    def _make_flatten(self, t: Type) -> Callable:
        if t == REAL:
            return lambda v, out: out.append(v)
        if t == ARRAY:
            elements = array_kernel("elements")
            return lambda v, out: out.extend(elements(v))
        if isinstance(t, TList) and prune(t.item) == REAL:
            return lambda v, out: out.extend(v)
        if isinstance(t, TList):
            item = self._get("flatten", t.item, self._make_flatten)

            def walk_list(v, out):
                for x in v:
                    item(x, out)
            return walk_list
        if isinstance(t, TTuple):
            parts = [self._get("flatten", i, self._make_flatten) for i in t.items]

            def walk_tuple(v, out):
                for part, x in zip(parts, v):
                    part(x, out)
            return walk_tuple
        return lambda v, out: None

    # ---- rebuild: (shape, reals) -> value
    def rebuild(self, shape: Any, t: Type, reals: list, start: int = 0) -> Any:
        return self._get("rebuild", t, self._make_rebuild)(shape, reals, start)[0]

    def _make_rebuild(self, t: Type) -> Callable:
        return self._rebuilder(t, "rebuild", self._make_rebuild, elements=True)

    def _rebuilder(self, t: Type, kind: str, make: Callable, elements: bool) -> Callable:
        """rebuild (elements: an Array from its elements) and rebuild_leaves (an Array is one leaf)."""
        if t == REAL:
            return lambda shape, reals, i: (reals[i], i + 1)
        if t == ARRAY and elements:
            from_elements, size = array_kernel("from_elements"), array_kernel("size")
            return lambda shape, reals, i: (from_elements(shape, reals, i), i + size(shape))
        if t == ARRAY:
            dense_or = array_kernel("dense_or")  # 0.0 (nothing reached the sink): zeros of the shape
            return lambda shape, leaves, i: (dense_or(leaves[i], shape), i + 1)
        if t in _ZERO:
            zero = _ZERO[t]
            return lambda shape, reals, i: (zero, i)
        if isinstance(t, TList) and prune(t.item) == REAL:
            return lambda shape, reals, i: (list(reals[i:i + len(shape)]), i + len(shape))
        if isinstance(t, TList):
            item = self._get(kind, t.item, make)

            def rebuild_list(shape, reals, i):
                out = []
                for x in shape:
                    y, i = item(x, reals, i)
                    out.append(y)
                return out, i
            return rebuild_list
        if isinstance(t, TTuple):
            parts = [self._get(kind, it, make) for it in t.items]

            def rebuild_tuple(shape, reals, i):
                out = []
                for part, x in zip(parts, shape):
                    y, i = part(x, reals, i)
                    out.append(y)
                return tuple(out), i
            return rebuild_tuple
        return lambda shape, reals, i: (shape, i)

    # ---- map_reals: each real r replaced by fn(r), in order (the tape's nodes, symbolic's variables)
    def map_reals(self, v: Any, t: Type, fn: Callable[[float], Any]) -> Any:
        return self._get("map_reals", t, self._make_map_reals)(v, fn)

    def _make_map_reals(self, t: Type) -> Callable:
        if t == REAL:
            return lambda v, fn: fn(v)
        if t == ARRAY:
            elements, from_elements = array_kernel("elements"), array_kernel("from_elements")
            return lambda v, fn: from_elements(v, [fn(x) for x in elements(v)], 0)
        if isinstance(t, TList):
            item = self._get("map_reals", t.item, self._make_map_reals)
            return lambda v, fn: [item(x, fn) for x in v]
        if isinstance(t, TTuple):
            parts = [self._get("map_reals", it, self._make_map_reals) for it in t.items]
            return lambda v, fn: tuple(part(x, fn) for part, x in zip(parts, v))
        return lambda v, fn: v

    # ---- leaves, rebuild_leaves, map_leaves: an Array is one leaf (reverse mode and tape)
    def leaves(self, v: Any, t: Type) -> list:
        out: list = []
        self._get("leaves", t, self._make_leaves)(v, out)
        return out

    def _make_leaves(self, t: Type) -> Callable:
        if t == REAL or t == ARRAY:
            return lambda v, out: out.append(v)
        if isinstance(t, TList):
            item = self._get("leaves", t.item, self._make_leaves)

            def walk_list(v, out):
                for x in v:
                    item(x, out)
            return walk_list
        if isinstance(t, TTuple):
            parts = [self._get("leaves", i, self._make_leaves) for i in t.items]

            def walk_tuple(v, out):
                for part, x in zip(parts, v):
                    part(x, out)
            return walk_tuple
        return lambda v, out: None

    def rebuild_leaves(self, shape: Any, t: Type, leaves: list) -> Any:
        return self._get("rebuild_leaves", t, self._make_rebuild_leaves)(shape, leaves, 0)[0]

    def _make_rebuild_leaves(self, t: Type) -> Callable:
        return self._rebuilder(t, "rebuild_leaves", self._make_rebuild_leaves, elements=False)

    def map_leaves(self, v: Any, t: Type, fn: Callable, array_fn: Callable) -> Any:
        return self._get("map_leaves", t, self._make_map_leaves)(v, fn, array_fn)

    def _make_map_leaves(self, t: Type) -> Callable:
        if t == REAL:
            return lambda v, fn, afn: fn(v)
        if t == ARRAY:
            return lambda v, fn, afn: afn(v)
        if isinstance(t, TList):
            item = self._get("map_leaves", t.item, self._make_map_leaves)
            return lambda v, fn, afn: [item(x, fn, afn) for x in v]
        if isinstance(t, TTuple):
            parts = [self._get("map_leaves", it, self._make_map_leaves) for it in t.items]
            return lambda v, fn, afn: tuple(part(x, fn, afn) for part, x in zip(parts, v))
        return lambda v, fn, afn: v

    # ---- inject: the k-th real r becomes (r, first + k)
    def inject(self, v: Any, t: Type, first: int) -> tuple[Any, int]:
        """v with identities first, first + 1, ... paired with its reals; the next free identity."""
        return self._get("inject", t, self._make_inject)(v, first)

    def _make_inject(self, t: Type) -> Callable:
        if t == REAL or t == ARRAY:  # an Array is one input: one sink
            return lambda v, i: ((v, i), i + 1)
        if isinstance(t, TList) and prune(t.item) == REAL:
            return lambda v, i: (list(zip(v, range(i, i + len(v)))), i + len(v))
        if isinstance(t, TList):
            item = self._get("inject", t.item, self._make_inject)

            def inject_list(v, i):
                out = []
                for x in v:
                    y, i = item(x, i)
                    out.append(y)
                return out, i
            return inject_list
        if isinstance(t, TTuple):
            parts = [self._get("inject", it, self._make_inject) for it in t.items]

            def inject_tuple(v, i):
                out = []
                for part, x in zip(parts, v):
                    y, i = part(x, i)
                    out.append(y)
                return tuple(out), i
            return inject_tuple
        return lambda v, i: (v, i)

    # ---- unlift: ←D value -> primal value, collecting backpropagators
    def unlift(self, dual: Any, t: Type, backprops: list) -> Any:
        return self._get("unlift", t, self._make_unlift)(dual, backprops)

    def _make_unlift(self, t: Type) -> Callable:
        if t == REAL or t == ARRAY:
            def real(d, out):
                out.append(d[1])
                return d[0]
            return real
        if isinstance(t, TList) and prune(t.item) == REAL:
            def reals(d, out):
                out.extend(b for _, b in d)
                return [x for x, _ in d]
            return reals
        if isinstance(t, TList):
            item = self._get("unlift", t.item, self._make_unlift)
            return lambda d, out: [item(x, out) for x in d]
        if isinstance(t, TTuple):
            parts = [self._get("unlift", it, self._make_unlift) for it in t.items]
            return lambda d, out: tuple(part(x, out) for part, x in zip(parts, d))
        return lambda d, out: d


def check_shape(cotangent: Any, value: Any, t: Type, what: str) -> None:
    """A cotangent must have the shape of the value it belongs to (list lengths and array shapes included)."""
    t = prune(t)
    if t == ARRAY:
        if array_kernel("shape")(cotangent) != array_kernel("shape")(value):
            show = array_kernel("show_shape")
            raise DlRuntimeError(f"{what} has an array of shape {show(cotangent)} where the value has shape "
                                 f"{show(value)}")
    elif isinstance(t, TTuple):
        for x, y, ti in zip(cotangent, value, t.items):
            check_shape(x, y, ti, what)
    elif isinstance(t, TList):
        if len(cotangent) != len(value):
            raise DlRuntimeError(f"{what} has a list of length {len(cotangent)} where the value has length {len(value)}")
        for x, y in zip(cotangent, value):
            check_shape(x, y, t.item, what)


def io_types(fn_type: Type) -> tuple[Type, Type]:
    t = prune(fn_type)
    assert isinstance(t, TFun), t
    return prune(t.arg), prune(t.result)


# ---- fixed types: straight-line walks ---------------------------------------------------------------

FIXED_LEAVES = {REAL: "0.0", INT: "0", BOOL: "False", UNIT: "()"}  # a leaf type and its zero
_FIXED_TEMPLATES = {  # kind: (parameters, body); P the unpacking pattern, the rest per leaf
    "flatten": ("v, out", "{P} = v\n    out.extend(({R}))"),
    "leaves": ("v, out", "{P} = v\n    out.extend(({R}))"),
    "rebuild": ("shape, reals, i", "return {REBUILT}, i + {N}"),
    "rebuild_leaves": ("shape, reals, i", "return {REBUILT}, i + {N}"),
    "map_reals": ("v, fn", "{P} = v\n    return {MAPPED}"),
    "map_leaves": ("v, fn, afn", "{P} = v\n    return {MAPPED}"),
    "inject": ("v, i", "{P} = v\n    return {INJECTED}, i + {N}"),
    "unlift": ("d, out", "{DP} = d\n    out.extend(({B}))\n    return {P}"),
}


def fixed_shape(t: Type, leaf: Callable[[int, Type], str]) -> str | None:
    """A value of a *fixed* type (a tuple, nested or not, of Real, Int, Bool and Unit; or one of those leaf
    types alone) as Python source: leaf k written `leaf(k, its type)`, tuples as tuples. None for any other
    type. For Real * (Int * Real) and leaf(k, _) = f"a{k}": "(a0, (a1, a2))"."""
    count = [0]

    def shape(t: Type) -> str | None:
        if isinstance(t, TTuple):
            if len(t.items) < 2:
                return None
            parts = [shape(i) for i in t.items]
            return None if None in parts else "(" + ", ".join(parts) + ")"
        if t not in FIXED_LEAVES:
            return None
        count[0] += 1
        return leaf(count[0] - 1, t)
    return shape(t)


def _fixed_walk(kind: str, t: Type) -> Callable | None:
    """The walk `kind` of a tuple type of Real, Int, Bool and Unit leaves as generated straight-line code
    (None for any other type: the general walks). For Real * Int, `inject` is

        def walk(v, i):
            (a0, a1) = v
            return ((a0, i + 0), a1), i + 1
    """
    if not isinstance(t, TTuple) or kind not in _FIXED_TEMPLATES:
        return None
    pattern = fixed_shape(t, lambda k, _: f"a{k}")
    if pattern is None:
        return None
    leaves: list[tuple[str, Type]] = []
    fixed_shape(t, lambda k, lt: leaves.append((f"a{k}", lt)) or "")
    reals = [v for v, lt in leaves if lt == REAL]
    index = {v: k for k, v in enumerate(reals)}

    def again(leaf: Callable[[str, Type], str]) -> str:
        return fixed_shape(t, lambda k, lt: leaf(f"a{k}", lt))
    fill = {
        "P": pattern, "N": str(len(reals)), "R": "".join(f"{v}, " for v in reals),
        "B": "".join(f"b{v}, " for v in reals),
        "REBUILT": again(lambda v, lt: f"reals[i + {index[v]}]" if lt == REAL else FIXED_LEAVES[lt]),
        "MAPPED": again(lambda v, lt: f"fn({v})" if lt == REAL else v),
        "INJECTED": again(lambda v, lt: f"({v}, i + {index[v]})" if lt == REAL else v),
        "DP": again(lambda v, lt: f"({v}, b{v})" if lt == REAL else v),
    }
    params, body = _FIXED_TEMPLATES[kind]
    src = f"def walk({params}):\n    " + body.format(**fill) + "\n"
    namespace: dict = {}
    exec(compile(src, f"<shape {kind}>", "exec"), namespace)
    return namespace["walk"]


# ---- nested types: one comprehension ----------------------------------------------------------------

_NESTED_DEPTH = 24  # lists and tuples inside each other: deeper, the general walks (Python's parser nests so far)


def _nested_leaves(t: Type) -> bool:
    """Whether t is built of lists and tuples from Real, Int, Bool and Unit, with a list in it (and not
    nested deeper than _NESTED_DEPTH)."""
    def ok(t: Type, depth: int) -> bool:
        match t:
            case TList(item) if depth < _NESTED_DEPTH:
                return ok(item, depth + 1)
            case TTuple(items) if len(items) >= 2 and depth < _NESTED_DEPTH:
                return all(ok(i, depth + 1) for i in items)
            case _:
                return t in FIXED_LEAVES
    return ok(t, 0) and any(isinstance(u, TList) for u in _subtypes(t))


def _subtypes(t: Type):
    yield t
    if isinstance(t, TList):
        yield from _subtypes(t.item)
    elif isinstance(t, TTuple):
        for i in t.items:
            yield from _subtypes(i)


# kind: (parameters, the set-up, Real leaf, [Real] list, other leaf, the result). inject: `c` counts the
# identities (zip stops at its first iterable's end without drawing from the second, so `zip(a, c)` draws
# len(a) of them); rebuild: `i` is the next real's index, moved on as the display is evaluated (a slice per
# [Real]: `reals[i:(i := i + n)]` reads i, then moves it)
_NESTED_TEMPLATES = {
    "inject": ("v, i", "c = count(i)", "({v}, next(c))", "list(zip({v}, c))", "{v}", "{out}, next(c)"),
    "rebuild": ("v, reals, i", "", "reals[(i := i + 1) - 1]", "reals[i:(i := i + len({v}))]", "{zero}",
                "{out}, i"),
}
_NESTED_TEMPLATES["rebuild_leaves"] = _NESTED_TEMPLATES["rebuild"]  # (no Array in a nested type: the same walk)


def _nested_walk(kind: str, t: Type) -> Callable | None:
    """The walk `kind` (inject, rebuild, rebuild_leaves) of a nested type (see the module's docstring) as
    generated code; None for another kind or type. The leaves are visited in the general walks' order (lists
    from the first element, tuples from the left: Python evaluates a display left to right), so identities
    and indices are theirs. For [[Real] * Int], `inject` is

        def walk(v, i):
            c = count(i)
            return [(list(zip(a0, c)), a1) for (a0, a1) in v], next(c)
    """
    if kind not in _NESTED_TEMPLATES or not _nested_leaves(t) or t == TList(REAL):
        return None
    params, setup, real, reals, other, result = _NESTED_TEMPLATES[kind]
    names = iter(range(1 << 30))

    def bind(t: Type) -> tuple[str, str]:
        """(a pattern binding a value of type t, an expression of the walked value from its names)."""
        if isinstance(t, TTuple):
            parts = [bind(i) for i in t.items]
            return "(" + ", ".join(p for p, _ in parts) + ")", "(" + ", ".join(e for _, e in parts) + ")"
        v = f"a{next(names)}"
        return v, walk(t, v)

    def walk(t: Type, v: str) -> str:
        if t == REAL:
            return real.format(v=v)
        if t == TList(REAL):
            return reals.format(v=v)
        if isinstance(t, TList):
            pattern, expr = bind(t.item)
            return f"[{expr} for {pattern} in {v}]"
        return other.format(v=v, zero=FIXED_LEAVES[t])
    if isinstance(t, TTuple):
        pattern, expr = bind(t)
        unpack = f"{pattern} = v\n    "
    else:
        unpack, expr = "", walk(t, "v")
    setup = f"{setup}\n    " if setup else ""
    src = f"def walk({params}):\n    {setup}{unpack}return {result.format(out=expr)}\n"
    namespace: dict = {"count": count}
    exec(compile(src, f"<shape {kind}>", "exec"), namespace)
    walk_fn = namespace["walk"]
    walk_fn.source = src
    return walk_fn
