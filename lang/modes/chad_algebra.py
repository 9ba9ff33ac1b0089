"""The chad modes' cotangents at run time: zero, sum, the list and copower operations, calls.

What the target-only rows of the chad language (lang/model/primitives.py, kinds `linear` and `chad`)
do when they run. A cotangent is

    None                 zero, at any type (a *token*: the zero of a type not known here — a list's,
                         whose length is the primal's, or one met inside polymorphic code)
    float                Dr2(Real) (ZERO, the symbolic zero, where it is zero by construction: every
                         zero the rules write is; a `Paths` sum in the kernel's order-free pass)
                         ()   Dr2(Int), Dr2(Bool), Dr2(Unit)
    tuple                a tuple's, and an environment's: one slot per variable of Γ
    list                 a list's, one entry per element (None entries: zero)
    SparseList           chad-efficient only: a list's, as a dict index -> cotangent of its non-zero entries
    One(a, ct), Cat      chad only: a copower, a formal sum of (argument, cotangent) pairs, as a rope
                         (`lplus` of copowers is O(1), as the reference's lazy (++) is)
    Env (a tuple)        chad-efficient only: a closure's environment cotangent, `lpack`ed

`DenseAlgebra` (chad) follows the reference: `lzero` is written out (a tuple of
zeros, 0.0), `lplus` builds new values (a list sum walks both lists), a
one-hot list has all its entries, and every linear map runs on whatever it is
given, zero included. `SparseAlgebra` (chad-efficient) is the POPL 2024 paper's first
and third optimisations in dl's terms: a zero is the token and a linear map
applied to it is not run (it would give zero); a one-hot list is one entry;
and `lplus` *accumulates*: it adds the smaller operand into the larger one in
place. That is sound because every cotangent object is used once (the rules
never copy one: a linear map's parameter goes to one place, and only floats,
which cannot be changed, are used twice), and a cotangent that comes from
outside (a pullback's argument) is copied first.

The zeros rule (docs/transforms.md, Zeros and infinities) holds because
every zero the rules write is a zero by construction: chad's dense zero of
Real is the symbolic zero `ZERO`, which a partial derivative multiplies
into `ZERO` and a sum drops, so a one-hot environment's zeros never meet an
infinite partial; chad-efficient's is the token, on which no map runs.

Counting (docs/transforms.md, Cost counters): `merges` the additions of two
non-zero reals by `lplus`; the extra `ct_leaves` the floats and list entries the operations
write; `recomputed` the calls run again in the backward pass (copower
entries folded by running the function again, `lfix`'s worklist, the
curried calls of a function applied one argument at a time).
"""
from __future__ import annotations

from typing import Any

from ..model.errors import DlRuntimeError
from ..model.types import ENV, TCon, TCtor, TList, TTuple, TVar, Type, prune
from ..model.values import Code, Fun
from ..model.zeros import REAL_TYPES, ZERO, Zero


class One:
    """A copower entry (a, ct)."""

    __slots__ = ("a", "ct")

    def __init__(self, a: Any, ct: Any):
        self.a, self.ct = a, ct


class Cat:
    """The sum of two copowers."""

    __slots__ = ("left", "right")

    def __init__(self, left: Any, right: Any):
        self.left, self.right = left, right


class SparseList(dict):
    """A list cotangent given by its non-zero entries (chad-efficient)."""

    __slots__ = ()


def _linear_body(captured, x):
    return captured[0](x)


LINEAR_CODE = Code(1, _linear_body, name="<linear map>", mode="chad")  # a linear map made by the runtime


def linear_map(fn) -> Fun:
    """A Python function as a linear map value (what `lapp` applies)."""
    return Fun(LINEAR_CODE, (fn,))


def entries(cp: Any):
    """The (a, ct) entries of a copower, left to right (iterative: a rope can be deep)."""
    stack = [cp]
    while stack:
        t = stack.pop()
        if t is None:
            continue
        if type(t) is One:
            yield t.a, t.ct
        else:
            stack.append(t.right)
            stack.append(t.left)


class Algebra:
    """The operations of one mode; counting when the machine counts."""

    sparse = False

    def __init__(self, counters, counting: bool):
        self.counters = counters
        self.counting = counting

    def _count(self, name: str, k: int = 1) -> None:
        extra = self.counters.extra
        extra[name] = extra.get(name, 0) + k

    def _count_sum(self, ta: type, b: Any) -> None:
        """A sum of two reals: a leaf written; a merge when neither is the symbolic zero."""
        self._count("ct_leaves")
        if ta is not Zero and type(b) is not Zero:
            self.counters.merges += 1

    # ---- zero and sum
    def zero(self, t: Type) -> Any:
        """The value `lzero` at the type t compiles to (a constant)."""
        return None

    def plus(self, a: Any, b: Any) -> Any:
        """`lplus`: the sum of two cotangents of one type (None is zero); reals and tuples alike in both
        algebras, lists and copowers by `plus_lists`."""
        if a is None:
            return b
        if b is None:
            return a
        ta = type(a)
        if ta in REAL_TYPES:
            if self.counting:
                self._count_sum(ta, b)
            return a + b
        if ta is tuple:
            return tuple([self.plus(x, y) for x, y in zip(a, b)]) if a else a
        return self.plus_lists(a, b)

    def plus_lists(self, a: Any, b: Any) -> Any:
        """The sum of two cotangents of lists (dense, sparse) or of copowers, neither zero."""
        raise NotImplementedError

    # ---- applying linear maps
    def apply(self, f: Fun, x: Any) -> Any:
        """lapp f x (the runtime's own applications: the copower folds, lbackmap, lfoldback, calls)."""
        if self.counting:
            self.counters.bp_run += 1
        return f.body(f.captured, x)

    # ---- list cotangents
    def onehot(self, n: int, i: int, ct: Any) -> Any:
        raise NotImplementedError

    def cons(self, h: Any, t: Any) -> Any:
        """lcons h t. The rules write it with a zero head (the cotangent of a list from its tail's), so a zero
        tail gives zero; a non-zero head on a zero tail, whose length is unknown, is a sparse list."""
        if t is None:
            if _zeroish(h):
                return None
            return SparseList({0: h})
        out = [h, *t] if type(t) is list else SparseList({k + 1: v for k, v in t.items()})
        if type(out) is SparseList and h is not None:
            out[0] = h
        if self.counting:
            self._count("ct_leaves", len(out))
        return out

    def head(self, ct: Any) -> Any:
        if ct is None:
            return None
        return ct[0] if type(ct) is list else ct.get(0)

    def tail(self, ct: Any) -> Any:
        if ct is None:
            return None
        out = ct[1:] if type(ct) is list else SparseList({k - 1: v for k, v in ct.items() if k})
        if self.counting:
            self._count("ct_leaves", len(out))
        return out

    def take(self, n: int, ct: Any) -> Any:
        if ct is None:
            return None
        out = ct[:n] if type(ct) is list else SparseList({k: v for k, v in ct.items() if k < n})
        if self.counting:
            self._count("ct_leaves", len(out))
        return out

    def drop(self, n: int, ct: Any) -> Any:
        if ct is None:
            return None
        out = ct[n:] if type(ct) is list else SparseList({k - n: v for k, v in ct.items() if k >= n})
        if self.counting:
            self._count("ct_leaves", len(out))
        return out

    def reverse(self, n: int, ct: Any) -> Any:
        if ct is None:
            return None
        out = ct[::-1] if type(ct) is list else SparseList({n - 1 - k: v for k, v in ct.items()})
        if self.counting:
            self._count("ct_leaves", len(out))
        return out

    def at(self, ct: Any, i: int) -> Any:
        if ct is None:
            return None
        return ct[i] if type(ct) is list else ct.get(i)

    def unzip(self, ct: Any) -> Any:
        if ct is None:
            return (None, None)
        if type(ct) is list:
            firsts = [None if p is None else p[0] for p in ct]
            seconds = [None if p is None else p[1] for p in ct]
        else:
            firsts = SparseList({k: p[0] for k, p in ct.items() if p is not None})
            seconds = SparseList({k: p[1] for k, p in ct.items() if p is not None})
        if self.counting:
            self._count("ct_leaves", len(firsts) + len(seconds))
        return (firsts, seconds)

    # ---- copowers (chad) and packed environments (chad-efficient)
    def singleton(self, a: Any, ct: Any) -> Any:
        return One(a, ct)

    def copowfold(self, f: Fun, cp: Any, zero: Any) -> Any:
        """lcopowfold f cp: Σ lapp (f a) ct over the entries; each entry runs f's body again."""
        acc = zero
        for a, ct in entries(cp):
            if self.counting:
                self.counters.betas += 1
                self._count("recomputed")
            acc = self.plus(acc, self.apply(f.body(f.captured, a), ct))
        return acc

    def fix(self, f: Fun, cp: Any, zero: Any) -> Any:
        """lfix f cp: each entry gives (g, more entries); the g are summed, the new entries folded in turn."""
        acc = zero
        work = [cp]
        while work:
            for a, ct in entries(work.pop()):
                if self.counting:
                    self.counters.betas += 1
                    self._count("recomputed")
                out = self.apply(f.body(f.captured, a), ct)
                if out is None:
                    continue
                g, more = out
                acc = self.plus(acc, g)
                if more is not None:
                    work.append(more)
        return acc

    @staticmethod
    def pack(g: Any) -> Any:
        return g

    @staticmethod
    def unpack(env: Any) -> Any:
        return env

    # ---- map and fold
    def backmap(self, calls: list, ct: Any) -> Any:
        """lbackmap ys ct: each call's linear map on its entry of ct; ([the element cotangents], Σ f's)."""
        raise NotImplementedError

    def foldback(self, steps: list, ct: Any) -> Any:
        """lfoldback steps ct: through the steps from the last; (initial accumulator's, [elements'], f's)."""
        raise NotImplementedError

    @staticmethod
    def split(r: Any) -> tuple[Any, Any]:
        """A call's map's result (x1, .., xk, f) as (x1 or (x1, .., xk), f); a zero token as zeros."""
        if r is None:
            return None, None
        if len(r) == 2:
            return r[0], r[1]
        return r[:-1], r[-1]

    # ---- values in and out
    def from_value(self, u: Any, t: Type) -> Any:
        """A dl value given as a cotangent (a pullback's argument): a fresh copy in this representation."""
        t = prune(t)
        if isinstance(t, TTuple):
            return tuple(self.from_value(x, i) for x, i in zip(u, t.items))
        if isinstance(t, TList):
            return [self.from_value(x, t.item) for x in u]
        if t == TCon("Real"):
            return u if type(u) in REAL_TYPES else float(u)  # ZERO and Paths seeds kept (lang/model/zeros.py)
        return ()

    def to_value(self, ct: Any, x: Any, t: Type) -> Any:
        """A cotangent of the value x of type t as a dl value: zeros written out (0, false, () where the
        value is an Int, Bool or Unit)."""
        t = prune(t)
        if t == TCon("Real"):
            return ZERO if ct is None else ct  # nothing reached it: the kernel settles ZERO to 0.0
        if isinstance(t, TTuple):
            return tuple(self.to_value(None if ct is None else ct[k], x[k], it) for k, it in enumerate(t.items))
        if isinstance(t, TList):
            return [self.to_value(self.at(ct, k) if ct is not None else None, xk, t.item) for k, xk in enumerate(x)]
        return {"Int": 0, "Bool": False}.get(t.name, ()) if isinstance(t, TCon) else ()


class DenseAlgebra(Algebra):
    """chad: the reference's dense cotangents (module docstring)."""

    def zero(self, t: Type) -> Any:
        t = prune(t)
        match t:
            case TCon("Real"):
                return ZERO  # a zero by construction: dropped, never multiplied (lang/model/zeros.py)
            case TCon("Array"):
                return None
            case TCon(name) if name != ENV.name:
                return ()
            case TTuple(items):
                return tuple(self.zero(i) for i in items)
        return None  # a list (its length is the primal's), a copower (empty), a type variable

    def plus_lists(self, a: Any, b: Any) -> Any:
        if type(a) is list:
            if len(a) != len(b):
                raise DlRuntimeError(f"cotangents of lists of lengths {len(a)} and {len(b)} added")
            return [self.plus(x, y) for x, y in zip(a, b)]
        return Cat(a, b)  # copowers

    def onehot(self, n: int, i: int, ct: Any) -> Any:
        out = [ZERO if type(ct) in REAL_TYPES else None] * n
        out[i] = ct
        if self.counting:
            self._count("ct_leaves", n)
        return out

    def backmap(self, calls: list, ct: Any) -> Any:
        cts = ct if ct is not None else [None] * len(calls)
        xs, fs = [], None
        split = self.split
        for (_, bp), c in zip(calls, cts):
            x, f = split(self.apply(bp, c))
            xs.append(x)
            fs = self.plus(fs, f)
        if self.counting:
            self._count("ct_leaves", len(xs))
        return (xs, fs)

    def foldback(self, steps: list, ct: Any) -> Any:
        xs: list = [None] * len(steps)
        fs = None
        for k in range(len(steps) - 1, -1, -1):
            r = self.apply(steps[k], ct)
            if r is None:
                ct = None
                continue
            ct, xs[k], f = r
            fs = self.plus(fs, f)
        if self.counting:
            self._count("ct_leaves", len(xs))
        return (ct, xs, fs)


class SparseAlgebra(Algebra):
    """chad-efficient: sparse cotangents, accumulated in place (module docstring)."""

    sparse = True

    def plus_lists(self, a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta is list and tb is list:
            if len(a) != len(b):
                raise DlRuntimeError(f"cotangents of lists of lengths {len(a)} and {len(b)} added")
            plus = self.plus
            for k, y in enumerate(b):  # into a, in place
                if y is not None:
                    a[k] = plus(a[k], y)
            return a
        if tb is list:  # a Sparse into a list
            a, b = b, a
        if type(a) is list or len(a) >= len(b):  # the smaller into the larger, in place
            plus = self.plus
            for k, y in b.items():
                a[k] = plus(a[k], y) if (type(a) is list or k in a) else y
            return a
        return self.plus(b, a)

    def onehot(self, n: int, i: int, ct: Any) -> Any:
        if ct is None:
            return None
        if self.counting:
            self._count("ct_leaves")
        return SparseList({i: ct})

    def singleton(self, a: Any, ct: Any) -> Any:
        return None if ct is None else One(a, ct)

    def apply(self, f: Fun, x: Any) -> Any:
        if x is None:  # a linear map sends zero to zero: not run
            return None
        if self.counting:
            self.counters.bp_run += 1
        return f.body(f.captured, x)

    def backmap(self, calls: list, ct: Any) -> Any:
        if ct is None:
            return (None, None)
        fs = None
        split = self.split
        if type(ct) is list:
            xs: Any = []
            for (_, bp), c in zip(calls, ct):
                x, f = split(self.apply(bp, c))
                xs.append(x)
                fs = self.plus(fs, f)
        else:
            xs = SparseList()
            for k, c in ct.items():
                x, f = split(self.apply(calls[k][1], c))
                if x is not None:
                    xs[k] = x
                fs = self.plus(fs, f)
        if self.counting:
            self._count("ct_leaves", len(xs))
        return (xs, fs)

    def foldback(self, steps: list, ct: Any) -> Any:
        xs: list = [None] * len(steps)
        fs = None
        for k in range(len(steps) - 1, -1, -1):
            if ct is None:  # nothing reaches the earlier steps
                break
            r = self.apply(steps[k], ct)
            if r is None:
                ct = None
                break
            ct, xs[k], f = r
            fs = self.plus(fs, f)
        if self.counting:
            self._count("ct_leaves", len(xs))
        return (ct, xs, fs)


def _zeroish(v: Any) -> bool:
    """A cotangent that is zero as written: the token, 0.0, (), or a tuple of those."""
    if v is None or v is ZERO or v == () or (type(v) is float and v == 0.0):
        return True
    return type(v) is tuple and all(_zeroish(x) for x in v)


__all__ = ["Algebra", "DenseAlgebra", "SparseAlgebra", "SparseList", "One", "Cat", "entries", "linear_map",
           "LINEAR_CODE"]
