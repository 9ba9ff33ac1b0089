"""The Array rows of the primitive table: schemes, kernels and derivative rules (docs/reference.md §5, Arrays).

Each row is (name, scheme, fields) and becomes a `Primitive` of kind `array`
in lang/model/primitives.py. Its kernel is named, not imported (`array`: a
function of lang/model/arrays.py, the only module that imports numpy), so
that reading the table costs nothing to a program without arrays.

Derivative rules are core terms, as the real rows' partial derivatives are:

    vjp(x1, ..., xk, r, c) -> [cotangent of x1, ..., of xk]   (None: not differentiable)
    jvp(x1, ..., xk, t1, ..., tk, r) -> tangent of r          (ti None: xi has no tangent)

with `r` the result and `c` its cotangent. The cost class says what the `elements` counter
counts for one application: "array" the sizes of its array arguments and result,
"index" the size of its result only (reading part of an array touches that
part), "shape" nothing (a shape query). A row that is linear in some of its
arguments says so (`linear`, jointly; `bilinear`: in each one separately), which
gives its jvp when none is written (the operation applied to the tangents) and
lets the target checker accept it inside a backpropagator. Indexing's
cotangents are *sparse* (`agetCt`, `sliceCt`, `atakeCt`, ...: zero but at the
positions read), added into the backward pass's accumulators in place — never
a one-hot array. A row whose result is a list of reals or arrays (`toList`,
`unstack`) says how to read one element (`unlist`), so each element gets its
own backpropagator (one scatter into the array's accumulator).

The real rows (+, *, sin, ...) are elementwise on arrays: their Array kernels
are `ELEMENTWISE` below, and their derivative rules are their partial
derivatives at Real, re-typed at Array (`REAL_TO_ARRAY`: `if x > 0 then 1 else
0` becomes `where (greater x 0) 1 0`), with the cotangent summed back over
broadcast axes (`unbroadcastLike`).
"""
from __future__ import annotations

from .core import Lit, Prim
from .types import ARRAY, INT, REAL, TList

# ---- term builders -------------------------------------------------------------------------


def A(op: str, *args) -> Prim:
    """An Array-valued primitive application."""
    return Prim(op, tuple(args), ty=ARRAY)


def R(op: str, *args) -> Prim:
    """A Real-valued one."""
    return Prim(op, tuple(args), ty=REAL)


def N(op: str, *args) -> Prim:
    """An Int-valued one."""
    return Prim(op, tuple(args), ty=INT)


def shape_of(x) -> Prim:
    return Prim("shape", (x,), ty=TList(INT))


def real(x: float) -> Lit:
    return Lit(float(x), ty=REAL)


def alit(x: float) -> Lit:
    """A number literal at Array: a 0-d array that broadcasts."""
    return Lit(float(x), ty=ARRAY)


def zero_like(x) -> Prim:
    return A("azerosLike", x)


# ---- the real rows at Array ------------------------------------------------------------------

# real row -> its Array kernel in lang/model/arrays.py
ELEMENTWISE = {
    "+": "add", "-": "sub", "*": "mul", "/": "div", "^": "power", "neg": "neg", "exp": "exp", "log": "log",
    "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "sqrt": "sqrt", "sigmoid": "sigmoid",
    "relu": "relu", "softplus": "softplus", "abs": "abs_", "sign": "sign", "pow": "pow_", "atan2": "atan2",
    "min": "minimum", "max": "maximum", "log1p": "log1p", "expm1": "expm1", "sinh": "sinh", "cosh": "cosh",
    "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "asin": "asin", "acos": "acos", "atan": "atan",
    "erf": "erf", "erfc": "erfc", "hypot": "hypot",
}

# a comparison in a Real partial derivative -> the elementwise mask it becomes at Array
REAL_TO_ARRAY = {">": "greater", "<": "less", ">=": "greaterEq", "<=": "lessEq", "==": "equal"}


# ---- the rows ----------------------------------------------------------------------------------
#
# Schemes are written as in docs/reference.md. `'b -> Array -> d` (dScatter) and `~T` occur in
# target-only rows: they exist in the transforms' output only.

ROWS: list[tuple[str, str, dict]] = [
    # -- construction
    ("array", "Nested 'a => ['a] -> Array",
     dict(array="array", linear=(0,), vjp=lambda xs, r, c: [c], doc="an array from a nested list of Reals")),
    ("fromList", "[Real] -> Array",
     dict(array="fromList", linear=(0,), vjp=lambda xs, r, c: [c], doc="a 1-d array from a list")),
    ("toList", "Array -> [Real]",
     dict(cost="index", array="toList", linear=(0,),
          unlist=lambda a, i: (N("size", a), R("agetFlat", a, i), lambda c: [A("agetFlatCt", a, i, c)]),
          doc="the elements, row-major")),
    ("zeros", "[Int] -> Array", dict(array="zeros", vjp=lambda s, r, c: [None])),
    ("ones", "[Int] -> Array", dict(array="ones", vjp=lambda s, r, c: [None])),
    ("full", "[Int] -> Real -> Array",
     dict(array="full", linear=(1,), vjp=lambda s, x, r, c: [None, R("asum", c)])),
    ("scalar", "Real -> Array",
     dict(array="scalar", linear=(0,), vjp=lambda x, r, c: [R("asum", c)], doc="a Real as a 0-d array")),
    ("azerosLike", "Array -> Array", dict(array="azerosLike", vjp=lambda a, r, c: [None])),
    ("eye", "Int -> Array", dict(array="eye", vjp=lambda n, r, c: [None])),
    ("arange", "Int -> Array", dict(array="arange", vjp=lambda n, r, c: [None])),
    ("alinspace", "Real -> Real -> Int -> Array",
     dict(array="alinspace", linear=(0, 1),
          vjp=lambda a, b, n, r, c: [R("adot", c, A("alinspace", real(1), real(0), n)),
                                     R("adot", c, A("alinspace", real(0), real(1), n)), None])),
    ("loadCsv", "String -> Array",
     dict(array="lang.model.array_data:loadCsv", vjp=lambda p, r, c: [None], doc="a CSV file of numbers")),
    ("loadNpy", "String -> Array",
     dict(array="lang.model.array_data:loadNpy", vjp=lambda p, r, c: [None], doc="a .npy file")),
    ("permutation", "Int -> Int -> [Int]",
     dict(cost="shape", array="permutation", doc="a random order of 0 .. n-1 from a seed")),
    ("normalArray", "Int -> [Int] -> Array", dict(array="normalArray", vjp=lambda s, d, r, c: [None, None])),
    ("uniformArray", "Int -> [Int] -> Array", dict(array="uniformArray", vjp=lambda s, d, r, c: [None, None])),
    # -- shape
    ("shape", "Array -> [Int]", dict(cost="shape", array="shape")),
    ("size", "Array -> Int", dict(cost="shape", array="size")),
    ("ndim", "Array -> Int", dict(cost="shape", array="ndim")),
    ("dim", "Int -> Array -> Int", dict(cost="shape", array="dim")),
    ("reshape", "[Int] -> Array -> Array",
     dict(array="reshape", linear=(1,), vjp=lambda s, a, r, c: [None, A("reshapeLike", a, c)])),
    ("reshapeLike", "Array -> Array -> Array",
     dict(array="reshapeLike", linear=(1,), vjp=lambda like, a, r, c: [None, A("reshapeLike", a, c)])),
    ("expandDims", "Int -> Array -> Array",
     dict(array="expandDims", linear=(1,), vjp=lambda k, a, r, c: [None, A("reshapeLike", a, c)],
          doc="a new axis of length 1 at the position")),
    ("atranspose", "Array -> Array",
     dict(array="atranspose", linear=(0,), vjp=lambda a, r, c: [A("atranspose", c)])),
    ("swapaxes", "Int -> Int -> Array -> Array",
     dict(array="swapaxes", linear=(2,), vjp=lambda i, j, a, r, c: [None, None, A("swapaxes", i, j, c)])),
    ("broadcastTo", "[Int] -> Array -> Array",
     dict(array="broadcastTo", linear=(1,), vjp=lambda s, a, r, c: [None, A("unbroadcastLike", a, c)])),
    ("unbroadcastLike", "Array -> Array -> Array",
     dict(array="unbroadcastLike", linear=(1,),
          vjp=lambda x, g, r, c: [None, A("broadcastTo", shape_of(g), c)],
          doc="sum over the axes broadcasting added, back to the shape of the first argument")),
    # -- reductions
    ("asum", "Array -> Real", dict(array="asum", linear=(0,), vjp=lambda a, r, c: [A("full", shape_of(a), c)])),
    ("amean", "Array -> Real",
     dict(array="amean", linear=(0,),
          vjp=lambda a, r, c: [A("full", shape_of(a), R("/", c, R("float", N("size", a))))])),
    # a tie splits the derivative evenly among the tied elements (as `max` at a tie; JAX's reduce_max)
    ("amax", "Array -> Real",
     dict(array="amax", vjp=lambda a, r, c: [A("*", A("amaxMask", a), A("scalar", c))],
          jvp=lambda a, t, r: R("adot", A("amaxMask", a), t))),
    ("amin", "Array -> Real",
     dict(array="amin", vjp=lambda a, r, c: [A("*", A("aminMask", a), A("scalar", c))],
          jvp=lambda a, t, r: R("adot", A("aminMask", a), t))),
    ("aargmax", "Array -> Int", dict(cost="shape", array="aargmax")),
    ("aargmin", "Array -> Int", dict(cost="shape", array="aargmin")),
    ("aargmaxAxis", "Int -> Array -> Array", dict(array="aargmaxAxis", vjp=lambda k, a, r, c: [None, None],
                                                    doc="the position of the first largest along the axis")),
    ("alogsumexp", "Array -> Real",
     dict(array="alogsumexp",
          vjp=lambda a, r, c: [A("*", A("exp", A("-", a, A("scalar", r))), A("scalar", c))],
          jvp=lambda a, t, r: R("adot", A("exp", A("-", a, A("scalar", r))), t))),
    ("asumAxis", "Int -> Array -> Array",
     dict(array="asumAxis", linear=(1,), vjp=lambda k, a, r, c: [None, A("unreduce", k, a, c)])),
    ("ameanAxis", "Int -> Array -> Array",
     dict(array="ameanAxis", linear=(1,),
          vjp=lambda k, a, r, c: [None, A("unreduce", k, a,
                                          A("/", c, A("scalar", R("float", N("dim", k, a)))))])),
    ("amaxAxis", "Int -> Array -> Array",
     dict(array="amaxAxis",
          vjp=lambda k, a, r, c: [None, A("*", A("argmaxMask", k, a), A("unreduce", k, a, c))],
          jvp=lambda k, a, tk, t, r: A("asumAxis", k, A("*", A("argmaxMask", k, a), t)))),
    ("aminAxis", "Int -> Array -> Array",
     dict(array="aminAxis",
          vjp=lambda k, a, r, c: [None, A("*", A("argminMask", k, a), A("unreduce", k, a, c))],
          jvp=lambda k, a, tk, t, r: A("asumAxis", k, A("*", A("argminMask", k, a), t)))),
    ("alogsumexpAxis", "Int -> Array -> Array",
     dict(array="alogsumexpAxis",
          vjp=lambda k, a, r, c: [None, A("*", A("exp", A("-", a, A("unreduce", k, a, r))),
                                          A("unreduce", k, a, c))],
          jvp=lambda k, a, tk, t, r: A("asumAxis", k, A("*", A("exp", A("-", a, A("unreduce", k, a, r))), t)))),
    ("cumsum", "Int -> Array -> Array",
     dict(array="cumsum", linear=(1,), vjp=lambda k, a, r, c: [None, A("cumsumRev", k, c)])),
    # -- products
    ("adot", "Array -> Array -> Real",
     dict(array="adot", bilinear=True,
          vjp=lambda a, b, r, c: [A("*", A("scalar", c), b), A("*", A("scalar", c), a)])),
    ("amatmul", "Array -> Array -> Array",
     dict(array="amatmul", bilinear=True,
          vjp=lambda a, b, r, c: [A("matmulCtA", a, b, c), A("matmulCtB", a, b, c)])),
    ("aouter", "Array -> Array -> Array",
     dict(array="aouter", bilinear=True, vjp=lambda a, b, r, c: [A("outerCtA", a, b, c), A("outerCtB", a, b, c)])),
    # -- indexing
    ("aget", "Array -> [Int] -> Real",
     dict(cost="index", array="aget", linear=(0,), vjp=lambda a, i, r, c: [A("agetCt", a, i, c), None])),
    ("agetFlat", "Array -> Int -> Real",
     dict(cost="index", array="agetFlat", linear=(0,), vjp=lambda a, i, r, c: [A("agetFlatCt", a, i, c), None])),
    ("index", "Int -> Int -> Array -> Array",
     dict(cost="index", array="index", linear=(2,), vjp=lambda k, i, a, r, c: [None, None, A("indexCt", k, i, a, c)])),
    ("slice", "Int -> Int -> Int -> Array -> Array",
     dict(cost="index", array="slice_", linear=(3,),
          vjp=lambda k, lo, hi, a, r, c: [None, None, None, A("sliceCt", k, lo, hi, a, c)])),
    ("atake", "Int -> [Int] -> Array -> Array",
     dict(cost="index", array="atake", linear=(2,), vjp=lambda k, ix, a, r, c: [None, None, A("atakeCt", k, ix, a, c)])),
    ("aconcat", "Int -> [Array] -> Array",
     dict(array="aconcat", linear=(1,), vjp=lambda k, xs, r, c: [None, Prim("unconcat", (k, xs, c),
                                                                            ty=TList(ARRAY))])),
    ("stack", "Int -> [Array] -> Array",
     dict(array="stack", linear=(1,), vjp=lambda k, xs, r, c: [None, Prim("unstack", (k, c), ty=TList(ARRAY))])),
    ("unstack", "Int -> Array -> [Array]",
     dict(cost="index", array="unstack", linear=(1,),
          unlist=lambda k, a, i: (N("dim", k, a), A("index", k, i, a), lambda c: [None, A("indexCt", k, i, a, c)]))),
    ("where", "Array -> Array -> Array -> Array",
     dict(array="where", linear=(1, 2),
          vjp=lambda m, x, y, r, c: [None, A("unbroadcastLike", x, A("where", m, c, alit(0))),
                                     A("unbroadcastLike", y, A("where", m, alit(0), c))])),
    ("greater", "Array -> Array -> Array", dict(array="greater", vjp=lambda x, y, r, c: [None, None])),
    ("less", "Array -> Array -> Array", dict(array="less", vjp=lambda x, y, r, c: [None, None])),
    ("greaterEq", "Array -> Array -> Array", dict(array="greaterEq", vjp=lambda x, y, r, c: [None, None])),
    ("lessEq", "Array -> Array -> Array", dict(array="lessEq", vjp=lambda x, y, r, c: [None, None])),
    ("equal", "Array -> Array -> Array", dict(array="equal", vjp=lambda x, y, r, c: [None, None])),
    # -- a dl function per element (the transforms give it rules of its own: lang/transforms/arrays.py)
    ("amap", "(Real -> Real) -> Array -> Array", dict(array="lang.model.array_map:amap", per_element=True)),
]

# Rows of the transforms' target languages only (never written in a program): sparse cotangents,
# the transposes of concatenation and reduction, the matmul and outer cotangents, amap's
# transformed forms, and the two effects that apply a list of backpropagators.
TARGET_ROWS: list[tuple[str, str, dict]] = [
    ("argmaxMask", "Int -> Array -> Array", dict(array="argmaxMask", vjp=lambda k, a, r, c: [None, None])),
    ("argminMask", "Int -> Array -> Array", dict(array="argminMask", vjp=lambda k, a, r, c: [None, None])),
    ("amaxMask", "Array -> Array", dict(array="amaxMask", vjp=lambda a, r, c: [None])),
    ("aminMask", "Array -> Array", dict(array="aminMask", vjp=lambda a, r, c: [None])),
    ("cumsumRev", "Int -> Array -> Array",
     dict(array="cumsumRev", linear=(1,), vjp=lambda k, a, r, c: [None, A("cumsum", k, c)])),
    ("agetCt", "Array -> [Int] -> Real -> Array", dict(cost="index", array="agetCt", linear=(2,))),
    ("agetFlatCt", "Array -> Int -> Real -> Array", dict(cost="index", array="agetFlatCt", linear=(2,))),
    ("indexCt", "Int -> Int -> Array -> Array -> Array", dict(cost="index", array="indexCt", linear=(3,))),
    ("sliceCt", "Int -> Int -> Int -> Array -> Array -> Array", dict(cost="index", array="sliceCt", linear=(4,))),
    ("atakeCt", "Int -> [Int] -> Array -> Array -> Array", dict(cost="index", array="atakeCt", linear=(3,))),
    ("unconcat", "Int -> [Array] -> Array -> [Array]", dict(array="unconcat", linear=(2,))),
    ("unreduce", "Int -> Array -> Array -> Array",
     dict(array="unreduce", linear=(2,), vjp=lambda k, a, g, r, c: [None, None, A("asumAxis", k, c)])),
    ("matmulCtA", "Array -> Array -> Array -> Array", dict(array="matmulCtA", linear=(2,))),
    ("matmulCtB", "Array -> Array -> Array -> Array", dict(array="matmulCtB", linear=(2,))),
    ("outerCtA", "Array -> Array -> Array -> Array", dict(array="outerCtA", linear=(2,))),
    ("outerCtB", "Array -> Array -> Array -> Array", dict(array="outerCtB", linear=(2,))),
    ("amapForward", "(Real * Real -> Real * Real) -> Array -> Array -> Array * Array",
     dict(array="lang.model.array_map:amapForward")),
    ("amapReverse", "(Real * ~Real -> Real * ~Real) -> Array -> ~Array -> Array * ~Array",
     dict(site="lang.back.array_runtime:amap_reverse")),
    # effects (kind "effect"): statements of a backpropagator's body, of type d
    ("dApplyList", "[~'t] -> ['t] -> d", dict(array="dApplyList", effect=True)),
    ("dScatter", "'b -> Array -> d", dict(array="dScatter", effect=True)),
]

