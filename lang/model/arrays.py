"""The Array kernels: every function that touches numpy (docs/reference.md §5, Arrays).

An `Array` value is a `numpy.ndarray` of float64, never mutated once made
(reshape and transpose may return views; nothing writes through them). This
module is imported only when a program uses arrays — on the first compile of
an Array instance of a primitive (lang/model/primitives.py `array_kernel`), or
when an array is printed — so a program without arrays never imports numpy.

What the kernels promise, so that every mode agrees:

- Shapes are checked by numpy's rules (broadcasting); a mismatch, a bad axis
  or an index out of range is a `DlRuntimeError` naming the operation and the
  shapes (the compiler adds the span of the call).
- Real arithmetic follows IEEE as for `Real` (lang/model/realmath.py): `log` of a
  negative element is nan, `1.0 / 0.0` is inf. numpy's floating-point
  warnings are switched off when this module is imported (`np.seterr`), so
  none reaches a user's terminal.
- An Array-typed result is always an ndarray (a 0-d one for a scalar: numpy's
  ufuncs return numpy scalars for 0-d inputs, which are wrapped back); a
  Real-typed result is always a Python float.

Cotangents may also be `Scatter` values: an array that is zero except at an
index, a slice or a gathered set of rows, kept sparse until it is added into
an accumulator (`accumulate`), so that reading one element of an array in a
loop costs O(1) per read in the backward pass, never a one-hot array
(docs/transforms.md, Arrays).
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DlRuntimeError

np.seterr(all="ignore")  # IEEE values (nan, inf) without warnings: the semantics of Real, elementwise

ndarray = np.ndarray
_EMPTY = ()


# ---- helpers -------------------------------------------------------------------------


def is_array(v) -> bool:
    """Whether a run-time value is an Array (or a sparse cotangent of one)."""
    return type(v) is ndarray or type(v) is Scatter


def arr(x) -> ndarray:
    """`x` as a float64 ndarray (numpy scalars and Scatter cotangents made into arrays)."""
    if type(x) is ndarray:
        return x
    if type(x) is Scatter:
        return x.dense()
    return np.asarray(x, dtype=np.float64)


def show_shape(x) -> str:
    """A shape as dl writes a list of Ints: [2, 3]."""
    return "[" + ", ".join(str(n) for n in np.shape(x)) + "]"


def _fail(message: str) -> DlRuntimeError:
    return DlRuntimeError(message)


def _axis(axis: int, ndim: int, op: str, x) -> int:
    """A numpy axis from a dl axis (negative counts from the end), or a runtime error."""
    if -ndim <= axis < ndim:
        return axis % ndim
    raise _fail(f"`{op}`: axis {axis} is out of range for an array of shape {show_shape(x)}")


def _dims(shape, op: str) -> tuple:
    """A dl shape ([Int]) as a tuple, checked (no negative sizes; reshape allows one -1)."""
    out = tuple(int(n) for n in shape)
    for n in out:
        if n < -1 or (n == -1 and op != "reshape"):
            raise _fail(f"`{op}`: {show_list(out)} is not a shape (sizes must be >= 0)")
    return out


def show_list(xs) -> str:
    return "[" + ", ".join(str(x) for x in xs) + "]"


def touched(*values) -> int:
    """Elements touched by an array operation: the sizes of its array arguments and result (the
    `elements` cost counter, docs/transforms.md, Cost counters). A value carried by a tape node (an
    object with a `value`) counts as its value."""
    n = 0
    for v in values:
        if type(v) is list:  # toList's Reals, unstack's arrays, aconcat's arguments
            n += sum(_size(x) if type(x) is not float else 1 for x in v)
        else:
            n += _size(v)
    return n


def _size(v) -> int:
    if type(v) is ndarray:
        return v.size
    if type(v) is Scatter:
        return int(np.size(v.value))
    inner = getattr(v, "value", None)  # a tape node
    return inner.size if type(inner) is ndarray else 0


# ---- elementwise: the Real functions lifted (Array instances of the real rows) --------------


def _unary(ufunc):
    def kernel(x):
        r = ufunc(x)
        return r if type(r) is ndarray else np.asarray(r)
    kernel.__name__ = getattr(ufunc, "__name__", "kernel")
    return kernel


def _binary(op: str, ufunc):
    def kernel(x, y):
        try:
            r = ufunc(x, y)
        except ValueError:
            raise _fail(f"shape mismatch in `{op}`: {show_shape(x)} and {show_shape(y)} do not broadcast") from None
        return r if type(r) is ndarray else np.asarray(r)
    kernel.__name__ = op
    return kernel


add = _binary("+", np.add)
sub = _binary("-", np.subtract)
mul = _binary("*", np.multiply)
div = _binary("/", np.true_divide)
power = _binary("^", np.power)
pow_ = _binary("pow", np.power)
atan2 = _binary("atan2", np.arctan2)
minimum = _binary("min", np.minimum)   # nan if either is nan, as Real's min
maximum = _binary("max", np.maximum)
neg = _unary(np.negative)
exp = _unary(np.exp)
log = _unary(np.log)
sin = _unary(np.sin)
cos = _unary(np.cos)
tan = _unary(np.tan)
tanh = _unary(np.tanh)
sqrt = _unary(np.sqrt)
abs_ = _unary(np.abs)
sign = _unary(np.sign)
log1p = _unary(np.log1p)
expm1 = _unary(np.expm1)
sinh = _unary(np.sinh)
cosh = _unary(np.cosh)
asinh = _unary(np.arcsinh)
acosh = _unary(np.arccosh)
atanh = _unary(np.arctanh)
asin = _unary(np.arcsin)
acos = _unary(np.arccos)
atan = _unary(np.arctan)
hypot = _binary("hypot", np.hypot)


def _elementwise(fn):
    """A kernel from a scalar function numpy lacks (erf, erfc: math's, correctly rounded), element by element."""
    ufunc = np.frompyfunc(fn, 1, 1)

    def kernel(x):
        return np.asarray(ufunc(x), dtype=np.float64)
    kernel.__name__ = fn.__name__
    return kernel


erf = _elementwise(math.erf)
erfc = _elementwise(math.erfc)


def sigmoid(x):
    """1 / (1 + e^-x), computed without overflow on either side."""
    e = np.exp(-np.abs(x))
    return arr(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


def relu(x):
    """max(x, 0), and nan for nan (as Real's relu)."""
    return arr(np.where(x <= 0, 0.0, x))


def softplus(x):
    """log(1 + e^x), stably."""
    return arr(np.logaddexp(0.0, x))


# elementwise comparisons: masks of 0.0 and 1.0 (no Bool arrays)
greater = _binary("greater", lambda x, y: np.greater(x, y).astype(np.float64))
less = _binary("less", lambda x, y: np.less(x, y).astype(np.float64))
greaterEq = _binary("greaterEq", lambda x, y: np.greater_equal(x, y).astype(np.float64))
lessEq = _binary("lessEq", lambda x, y: np.less_equal(x, y).astype(np.float64))
equal = _binary("equal", lambda x, y: np.equal(x, y).astype(np.float64))


def where(mask, x, y):
    """x where the mask is not 0, else y (broadcasting the three)."""
    try:
        return arr(np.where(arr(mask) != 0.0, x, y))
    except ValueError:
        raise _fail(f"shape mismatch in `where`: {show_shape(mask)}, {show_shape(x)} and {show_shape(y)} do "
                    "not broadcast") from None


# ---- construction ----------------------------------------------------------------------


def literal(value) -> ndarray:
    """A number literal at type Array: a 0-d array, which broadcasts."""
    return np.array(float(value))


def array(xs) -> ndarray:
    """A nested list of reals as an array; every row of a level must have the same length."""
    shape: list[int] = []
    level = xs
    while type(level) is list:
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    _check_rectangular(xs, shape, 0, [])
    return np.array(xs, dtype=np.float64).reshape(shape)


def _check_rectangular(xs, shape: list[int], depth: int, where_: list[int]) -> None:
    if depth == len(shape):
        return
    if len(xs) != shape[depth]:
        at = "".join(f"[{i}]" for i in where_)
        first = "".join("[0]" for _ in where_)
        raise _fail(f"`array`: ragged rows: row {at} has {len(xs)} element{'s' if len(xs) != 1 else ''}, but row "
                    f"{first} has {shape[depth]}")
    if depth + 1 < len(shape):
        for i, row in enumerate(xs):
            _check_rectangular(row, shape, depth + 1, where_ + [i])


def fromList(xs) -> ndarray:
    return np.array(xs, dtype=np.float64).reshape(len(xs))


def toList(a) -> list:
    """The elements in row-major order, as Reals."""
    return arr(a).ravel().tolist()


def zeros(shape) -> ndarray:
    return np.zeros(_dims(shape, "zeros"))


def ones(shape) -> ndarray:
    return np.ones(_dims(shape, "ones"))


def full(shape, r) -> ndarray:
    return np.full(_dims(shape, "full"), float(r))


def scalar(r) -> ndarray:
    return np.array(float(r))


def azerosLike(a) -> ndarray:
    return np.zeros(np.shape(a))


def eye(n) -> ndarray:
    if n < 0:
        raise _fail(f"`eye`: negative size {n}")
    return np.eye(n)


def arange(n) -> ndarray:
    if n < 0:
        raise _fail(f"`arange`: negative count {n}")
    return np.arange(n, dtype=np.float64)


def alinspace(a, b, n) -> ndarray:
    if n < 0:
        raise _fail(f"`alinspace`: negative count {n}")
    return np.linspace(float(a), float(b), n)


def _rng(seed: int, op: str):
    if seed < 0:
        raise _fail(f"`{op}`: the seed must be a non-negative Int, not {seed}")
    return np.random.default_rng(seed)


def permutation(seed, n) -> list:
    """0 .. n-1 in a random order: numpy's PCG64 seeded with `seed` (`permutation`)."""
    if n < 0:
        raise _fail(f"`permutation`: negative count {n}")
    return _rng(seed, "permutation").permutation(n).tolist()


def normalArray(seed, shape) -> ndarray:
    return _rng(seed, "normalArray").standard_normal(_dims(shape, "normalArray"))


def uniformArray(seed, shape) -> ndarray:
    return _rng(seed, "uniformArray").random(_dims(shape, "uniformArray"))


# ---- shape -----------------------------------------------------------------------------


def shape(a) -> list:
    return list(np.shape(a))


def size(a) -> int:
    return int(np.size(a))


def ndim(a) -> int:
    return int(np.ndim(a))


def dim(axis, a) -> int:
    a = arr(a)
    return int(a.shape[_axis(axis, a.ndim, "dim", a)])


def reshape(shape_, a) -> ndarray:
    a = arr(a)
    dims = _dims(shape_, "reshape")
    try:
        return a.reshape(dims)
    except ValueError:
        raise _fail(f"`reshape`: an array of shape {show_shape(a)} ({a.size} elements) cannot take the shape "
                    f"{show_list(dims)}") from None


def reshapeLike(like, a) -> ndarray:
    """`a` (as many elements as `like`) in the shape of `like` (the transpose of a reshape)."""
    return arr(a).reshape(np.shape(like))


def expandDims(axis, a) -> ndarray:
    a = arr(a)
    return np.expand_dims(a, _axis(axis, a.ndim + 1, "expandDims", a))


def atranspose(a) -> ndarray:
    return arr(a).T


def swapaxes(i, j, a) -> ndarray:
    a = arr(a)
    return np.swapaxes(a, _axis(i, a.ndim, "swapaxes", a), _axis(j, a.ndim, "swapaxes", a))


def broadcastTo(shape_, a) -> ndarray:
    a = arr(a)
    dims = _dims(shape_, "broadcastTo")
    try:
        return np.broadcast_to(a, dims)
    except ValueError:
        raise _fail(f"`broadcastTo`: an array of shape {show_shape(a)} does not broadcast to "
                    f"{show_list(dims)}") from None


def sum_to(c, shape_: tuple) -> ndarray:
    """Sum `c` over the axes broadcasting added or stretched, back to `shape_` (un-broadcasting)."""
    c = arr(c)
    if c.shape == shape_:
        return c
    lead = c.ndim - len(shape_)
    if lead:
        c = c.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape_) if n == 1 and c.shape[i] != 1)
    if stretched:
        c = c.sum(axis=stretched, keepdims=True)
    return c


def unbroadcastLike(x, c) -> ndarray:
    """The cotangent `c` of a broadcast result, summed back to the shape of the operand `x`."""
    return sum_to(c, np.shape(x))


# ---- reductions ------------------------------------------------------------------------


def asum(a) -> float:
    return float(np.sum(arr(a)))


def amean(a) -> float:
    a = arr(a)
    if a.size == 0:
        raise _fail("`amean` of an empty array")
    return float(np.mean(a))


def _reduce_check(a, op: str):
    a = arr(a)
    if a.size == 0:
        raise _fail(f"`{op}` of an empty array (shape {show_shape(a)})")
    return a


def amax(a) -> float:
    return float(np.max(_reduce_check(a, "amax")))


def amin(a) -> float:
    return float(np.min(_reduce_check(a, "amin")))


def aargmax(a) -> int:
    """The flat index of the first largest element."""
    return int(np.argmax(_reduce_check(a, "aargmax")))


def aargmin(a) -> int:
    return int(np.argmin(_reduce_check(a, "aargmin")))


def aargmaxAxis(axis, a) -> ndarray:
    """The position (as a Real) of the first largest element along the axis, that axis dropped."""
    a, k = _nonempty_axis(axis, a, "aargmaxAxis")
    return np.argmax(a, axis=k).astype(np.float64)


def alogsumexp(a) -> float:
    """log Σ exp aᵢ, shifted by the maximum (exact at any scale); -inf for an empty array."""
    a = arr(a)
    if a.size == 0:
        return -math.inf
    m = float(np.max(a))
    if not math.isfinite(m):
        return m
    return m + float(np.log(np.sum(np.exp(a - m))))


def _axis_of(axis, a, op):
    a = arr(a)
    return a, _axis(axis, a.ndim, op, a)


def asumAxis(axis, a) -> ndarray:
    a, k = _axis_of(axis, a, "asumAxis")
    return arr(a.sum(axis=k))


def _nonempty_axis(axis, a, op: str):
    """The array and the numpy axis of a reduction that has no value over an empty axis."""
    a, k = _axis_of(axis, a, op)
    if a.shape[k] == 0:
        raise _fail(f"`{op}` over an empty axis {axis} (shape {show_shape(a)})")
    return a, k


def ameanAxis(axis, a) -> ndarray:
    a, k = _nonempty_axis(axis, a, "ameanAxis")
    return arr(a.mean(axis=k))


def amaxAxis(axis, a) -> ndarray:
    a, k = _nonempty_axis(axis, a, "amaxAxis")
    return arr(a.max(axis=k))


def aminAxis(axis, a) -> ndarray:
    a, k = _nonempty_axis(axis, a, "aminAxis")
    return arr(a.min(axis=k))


def alogsumexpAxis(axis, a) -> ndarray:
    a, k = _axis_of(axis, a, "alogsumexpAxis")
    if a.shape[k] == 0:
        return np.full(a.shape[:k] + a.shape[k + 1:], -math.inf)
    m = a.max(axis=k, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return arr(np.log(np.sum(np.exp(a - m), axis=k)) + np.squeeze(m, axis=k))


def cumsum(axis, a) -> ndarray:
    a, k = _axis_of(axis, a, "cumsum")
    return np.cumsum(a, axis=k)


def cumsumRev(axis, a) -> ndarray:
    """Σ over positions at or after each position along the axis (the transpose of cumsum)."""
    a, k = _axis_of(axis, a, "cumsumRev")
    return np.flip(np.cumsum(np.flip(a, axis=k), axis=k), axis=k)


def unreduce(axis, a, c) -> ndarray:
    """`c`, reduced over `axis` of `a`, broadcast back to the shape of `a` (the transpose of a sum)."""
    a, k = _axis_of(axis, a, "unreduce")
    return np.broadcast_to(np.expand_dims(arr(c), k), a.shape)


def _tie_mask(a, k, extreme, arg):
    """Where a reduction's derivative goes (JAX's rule for reduce_max/reduce_min, and `max`'s at a tie):
    1/n at each of the n elements equal to the extreme along axis k (all axes: k None), 0 elsewhere. Where
    the extreme is nan no element equals it: the first nan, as np.argmax finds it, gets the 1."""
    top = extreme(a, axis=k, keepdims=True)
    hits = (a == top)
    count = hits.sum(axis=k, keepdims=True)
    mask = hits / np.maximum(count, 1)
    if (count == 0).any():  # a nan extreme
        first = np.zeros(a.shape)
        if k is None:
            first.flat[arg(a)] = 1.0
        else:
            np.put_along_axis(first, np.expand_dims(arg(a, axis=k), k), 1.0, axis=k)
        mask = np.where(count == 0, first, mask)
    return mask


def argmaxMask(axis, a) -> ndarray:
    """1/n at each of the n largest elements along the axis, 0.0 elsewhere (where amaxAxis's derivative goes)."""
    a, k = _axis_of(axis, a, "mask")
    return _tie_mask(a, k, np.max, np.argmax)


def argminMask(axis, a) -> ndarray:
    a, k = _axis_of(axis, a, "mask")
    return _tie_mask(a, k, np.min, np.argmin)


def amaxMask(a) -> ndarray:
    """1/n at each of the n largest elements of the whole array (where amax's derivative goes)."""
    a = _reduce_check(a, "amax")
    return _tie_mask(a, None, np.max, np.argmax)


def aminMask(a) -> ndarray:
    a = _reduce_check(a, "amin")
    return _tie_mask(a, None, np.min, np.argmin)


# ---- products ---------------------------------------------------------------------------


def adot(a, b) -> float:
    """Σ aᵢ bᵢ of two arrays of the same shape."""
    a, b = arr(a), arr(b)
    if a.shape != b.shape:
        raise _fail(f"shape mismatch in `adot`: {show_shape(a)} and {show_shape(b)} (the same shape is needed)")
    return float(np.vdot(a, b))


def amatmul(a, b) -> ndarray:
    a, b = arr(a), arr(b)
    if a.ndim == 0 or b.ndim == 0:
        raise _fail(f"`amatmul` needs arrays of at least one axis: shapes {show_shape(a)} and {show_shape(b)}")
    try:
        return arr(np.matmul(a, b))
    except ValueError:
        raise _fail(f"shape mismatch in `amatmul`: {show_shape(a)} and {show_shape(b)}") from None


def _mm_promote(a, b, c):
    """Operands and cotangent of a matmul with 1-d operands promoted to matrices (as numpy does)."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    c2 = arr(c)
    if a.ndim == 1:
        c2 = np.expand_dims(c2, -2)
    if b.ndim == 1:
        c2 = np.expand_dims(c2, -1)
    return a2, b2, c2


def matmulCtA(a, b, c) -> ndarray:
    """The cotangent of `a` in `amatmul a b` for the result's cotangent `c`: c bᵀ, batch axes summed."""
    a, b = arr(a), arr(b)
    a2, b2, c2 = _mm_promote(a, b, c)
    return sum_to(np.matmul(c2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)


def matmulCtB(a, b, c) -> ndarray:
    """The cotangent of `b`: aᵀ c, batch axes summed."""
    a, b = arr(a), arr(b)
    a2, b2, c2 = _mm_promote(a, b, c)
    return sum_to(np.matmul(np.swapaxes(a2, -1, -2), c2), b2.shape).reshape(b.shape)


def aouter(a, b) -> ndarray:
    return np.outer(arr(a), arr(b))


def outerCtA(a, b, c) -> ndarray:
    return (arr(c) @ arr(b).ravel()).reshape(np.shape(a))


def outerCtB(a, b, c) -> ndarray:
    return (arr(a).ravel() @ arr(c)).reshape(np.shape(b))


# ---- indexing ---------------------------------------------------------------------------


def _index(a, idx: list, op: str) -> tuple:
    if len(idx) != a.ndim:
        raise _fail(f"`{op}`: an index of {len(idx)} Int{'s' if len(idx) != 1 else ''} {show_list(idx)} for an "
                    f"array of shape {show_shape(a)} ({a.ndim} ax{'es' if a.ndim != 1 else 'is'})")
    out = []
    for i, n in zip(idx, a.shape):
        if not -n <= i < n:
            raise _fail(f"`{op}`: index {show_list(idx)} is out of range for an array of shape {show_shape(a)}")
        out.append(i % n)
    return tuple(out)


def aget(a, idx) -> float:
    a = arr(a)
    return float(a[_index(a, idx, "aget")])


def agetCt(a, idx, c):
    """The cotangent of `a` in `aget a idx`: c at idx, zero elsewhere (sparse)."""
    a = arr(a)
    return Scatter(a.shape, _index(a, idx, "aget"), float(c))


def agetFlat(a, i) -> float:
    return float(arr(a).flat[i])


def agetFlatCt(a, i, c):
    a = arr(a)
    return Scatter(a.shape, np.unravel_index(i, a.shape), float(c))


def _slice_key(axis, k, ndim, item):
    return (slice(None),) * k + (item,)


def index(axis, i, a) -> ndarray:
    """The sub-array at position i along the axis (that axis dropped): `index 0 i m` is row i."""
    a, k = _axis_of(axis, a, "index")
    n = a.shape[k]
    if not -n <= i < n:
        raise _fail(f"`index`: index {i} is out of range for axis {axis} of an array of shape {show_shape(a)}")
    return a[_slice_key(axis, k, a.ndim, i % n)]


def indexCt(axis, i, a, c):
    a, k = _axis_of(axis, a, "index")
    return Scatter(a.shape, _slice_key(axis, k, a.ndim, i % a.shape[k]), arr(c))


def _bounds(start, stop, n, axis, a, op):
    if not (0 <= start <= stop <= n):
        raise _fail(f"`{op}`: {start}..{stop} is not a range within axis {axis} of an array of shape "
                    f"{show_shape(a)} (0 <= start <= stop <= {n})")


def slice_(axis, start, stop, a) -> ndarray:
    """Positions start .. stop-1 along the axis."""
    a, k = _axis_of(axis, a, "slice")
    _bounds(start, stop, a.shape[k], axis, a, "slice")
    return a[_slice_key(axis, k, a.ndim, slice(start, stop))]


def sliceCt(axis, start, stop, a, c):
    a, k = _axis_of(axis, a, "slice")
    return Scatter(a.shape, _slice_key(axis, k, a.ndim, slice(start, stop)), arr(c))


def _take_index(idx, n, axis, a, op):
    ix = np.asarray(idx, dtype=np.intp).reshape(len(idx))
    if ix.size and (ix.min() < -n or ix.max() >= n):
        bad = next(i for i in idx if not -n <= i < n)
        raise _fail(f"`{op}`: index {bad} is out of range for axis {axis} of an array of shape {show_shape(a)}")
    return ix % n if n else ix


def atake(axis, idx, a) -> ndarray:
    """The positions `idx` along the axis, in that order (numpy's take; repeats allowed)."""
    a, k = _axis_of(axis, a, "atake")
    return np.take(a, _take_index(idx, a.shape[k], axis, a, "atake"), axis=k)


def atakeCt(axis, idx, a, c):
    """The transpose of a gather: c's slices added at the positions (repeats add up)."""
    a, k = _axis_of(axis, a, "atake")
    ix = _take_index(idx, a.shape[k], axis, a, "atake")
    return Scatter(a.shape, _slice_key(axis, k, a.ndim, ix), arr(c), accumulate=True)


def aconcat(axis, xs) -> ndarray:
    if not xs:
        raise _fail("`aconcat` of an empty list (its shape would be unknown)")
    try:
        return np.concatenate([arr(x) for x in xs], axis=_axis(axis, np.ndim(xs[0]), "aconcat", xs[0]))
    except ValueError:
        raise _fail("shape mismatch in `aconcat`: " + ", ".join(show_shape(x) for x in xs)
                    + f" do not join along axis {axis}") from None


def unconcat(axis, xs, c) -> list:
    """`c` split along the axis into pieces the sizes of the xs (the transpose of aconcat)."""
    c = arr(c)
    k = axis % c.ndim
    cuts = np.cumsum([np.shape(x)[k] for x in xs])[:-1]
    return np.split(c, cuts, axis=k)


def stack(axis, xs) -> ndarray:
    if not xs:
        raise _fail("`stack` of an empty list (its shape would be unknown)")
    try:
        return np.stack([arr(x) for x in xs], axis=_axis(axis, np.ndim(xs[0]) + 1, "stack", xs[0]))
    except ValueError:
        raise _fail("shape mismatch in `stack`: " + ", ".join(show_shape(x) for x in xs)
                    + " (every array must have the same shape)") from None


def unstack(axis, a) -> list:
    a, k = _axis_of(axis, a, "unstack")
    return [a[_slice_key(axis, k, a.ndim, i)] for i in range(a.shape[k])]


# ---- sparse cotangents and accumulation ----------------------------------------------------


class Scatter:
    """A cotangent that is zero but at `key` (an index, a slice, or gathered positions) where it is
    `value`: the transpose of reading part of an array. It is added into an accumulator in place
    (`add_into`) and becomes a dense array only when something needs one."""

    __slots__ = ("shape", "key", "value", "repeats")
    sparse = True

    def __init__(self, shape, key, value, accumulate: bool = False):
        self.shape = tuple(shape)
        self.key = key
        self.value = value
        self.repeats = accumulate  # the key may name a position twice: np.add.at

    def add_into(self, out: ndarray) -> None:
        if self.repeats:
            np.add.at(out, self.key, self.value)
        else:
            out[self.key] += self.value

    def dense(self) -> ndarray:
        out = np.zeros(self.shape)
        self.add_into(out)
        return out

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __array__(self, dtype=None, copy=None):
        return self.dense()

    def __add__(self, other):
        out = self.dense()
        out += other  # a float, an array of this shape, or another Scatter (made dense by numpy)
        return out

    __radd__ = __add__

    def __mul__(self, other):
        return np.multiply(self.dense(), other)

    __rmul__ = __mul__

    def __neg__(self):
        return -self.dense()


def accumulate(old, value, owned: bool):
    """old + value for cotangents of one array, in place when `old` is an accumulator of the backward
    pass's own (`owned`); the result is always such an accumulator (the caller marks it owned)."""
    if owned:
        if type(value) is Scatter:
            value.add_into(old)
        else:
            np.add(old, value, out=old)
        return old
    if type(old) is Scatter:
        old, value = value, old
    if type(old) is Scatter:  # both sparse
        out = old.dense()
        value.add_into(out)
        return out
    if type(value) is Scatter:
        out = np.array(old, dtype=np.float64)  # a copy: `old` may be shared
        value.add_into(out)
        return out
    return np.add(old, value)  # one pass, into a new array


def dense_or(v, like):
    """A gradient leaf as an array: 0.0 (nothing reached the sink) is zeros in the shape of `like`."""
    if type(v) is ndarray:
        return v
    if type(v) is Scatter:
        return v.dense()
    if isinstance(v, float) and v == 0.0:
        return np.zeros(np.shape(like))
    return np.broadcast_to(arr(v), np.shape(like)).copy()


def elements(a) -> list:
    """The elements of an array as Reals, row-major (numeric and forward modes work per element)."""
    return arr(a).ravel().tolist()


def from_elements(like, reals: list, start: int) -> ndarray:
    """An array shaped like `like` from reals[start:start + size]."""
    n = int(np.size(like))
    return np.array(reals[start:start + n], dtype=np.float64).reshape(np.shape(like))


# ---- printing ------------------------------------------------------------------------------

SUMMARY = 1000   # arrays with more elements print their first and last EDGE items per axis
EDGE = 3


def show_array(a) -> str:
    """array([[1.0, 2.0], [3.0, 4.0]]): nested lists of Reals as dl prints them (docs/reference.md §11)."""
    a = arr(a)
    if a.ndim == 0:
        return f"array({_real(float(a))})"
    summarise = a.size > SUMMARY
    text = _nested(a, summarise)
    if summarise:
        return f"array({text}, shape {show_shape(a)})"
    return f"array({text})"


def _real(x: float) -> str:
    return repr(x)


def _nested(a, summarise: bool) -> str:
    if a.ndim == 1:
        items = a.tolist()
        if summarise and len(items) > 2 * EDGE:
            return "[" + ", ".join(map(_real, items[:EDGE])) + ", ..., " + ", ".join(map(_real, items[-EDGE:])) + "]"
        return "[" + ", ".join(map(_real, items)) + "]"
    n = a.shape[0]
    if summarise and n > 2 * EDGE:
        parts = [_nested(a[i], summarise) for i in range(EDGE)] + ["..."] + \
                [_nested(a[i], summarise) for i in range(n - EDGE, n)]
    else:
        parts = [_nested(a[i], summarise) for i in range(n)]
    return "[" + ", ".join(parts) + "]"


# ---- effects of a backpropagator's body that apply many backpropagators --------------------


def dApplyList(backend, bps: list, cts: list) -> None:
    """Each backpropagator of `bps` (None: the zero one) applied to its cotangent (aconcat, stack)."""
    for p, v in zip(bps, cts):
        if p is not None:
            backend.contribute(p, v)


def dScatter(backend, bps: list, c) -> None:
    """The backpropagators of a nested list of Reals, each applied to its element of the array `c`,
    row-major (the transpose of `array` and `fromList`)."""
    values = arr(c).ravel().tolist()
    flat: list = []
    stack = [bps]
    while stack:
        level = stack.pop()
        if type(level) is list:
            stack.extend(reversed(level))
        else:
            flat.append(level)
    for p, v in zip(flat, values):
        if p is not None:
            backend.contribute(p, v)
