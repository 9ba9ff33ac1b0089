"""The transforms' target languages: what a real is in each, and their compilers.

A differentiation primitive met while a program runs is evaluated one
language deeper than the code that meets it:

    primal code                 the mode decides (backprop, forward, tape, ...)
    forward^k code  (→D^k t)    forward^(k+1):  →D applied once more
    reverse^k code  (←D(→D^k t))  reverse^(k+1): ←D(→D^(k+1) t)

→D's target is the source language (pairs of reals), so it composes with
itself and with ←D. In forward^k a source real is a depth-k tree of pairs
whose leaves are floats; in reverse^k the leaves are ←D reals (x, x'), so
a derivative taken inside a function being differentiated by ←D records
its backpropagators on the outer tape: `grad (fun x -> derivative f x)`
is reverse-over-forward, and a `grad` inside a `grad` computes the inner
gradient by forward passes in reverse^1. Each level's perturbation lives
in its own component of the nested pairs, kept apart by the types, so
there is no perturbation confusion.

Lifting a value one language deeper turns each leaf into a pair of it and
a zero tangent — the symbolic zero, since a lifted value is a constant
((x, ZERO), or (ℓ, (ZERO, None)) for a ←D leaf ℓ); a function value into its
transformed code, with its captured values lifted.
"""
from __future__ import annotations

from typing import Any

from ..model import core as c
from .compiler import Compiler
from ..transforms.backprop import BACKPROP
from ..transforms.fusion import fuse
from ..transforms.preaccumulate import preaccumulate
from ..transforms.check import TargetLanguage, check
from ..transforms.forward import FORWARD
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES, array_kernel
from ..model.types import ARRAY, REAL, TList, TTuple, Type, prune
from ..model.zeros import REAL_TYPES, ZERO, settle

# ---- the leaves of a language's reals ------------------------------------------------


class FloatLeaves:
    """Leaves of the primal and forward languages: floats."""

    @staticmethod
    def is_leaf(v: Any) -> bool:
        return type(v) in REAL_TYPES  # a float, the symbolic zero, or a sum over paths (kernel.py)

    @staticmethod
    def const(r: float) -> Any:
        return r

    @staticmethod
    def settle(v: Any) -> Any:
        return settle(v)

    @staticmethod
    def add(a: Any, b: Any) -> Any:
        return a + b

    @staticmethod
    def mul(a: Any, b: Any) -> Any:
        return a * b


class DualLeaves:
    """Leaves of the reverse languages: ←D reals (x, x'); arithmetic records backpropagators."""

    def __init__(self, backend, counters, counting: bool):
        self.backend = backend
        self.counters = counters
        self.counting = counting

    @staticmethod
    def is_leaf(v: Any) -> bool:
        return type(v) is tuple and len(v) == 2 and type(v[0]) in REAL_TYPES

    @staticmethod
    def const(r: float) -> Any:
        return (r if type(r) in REAL_TYPES else float(r), None)

    @staticmethod
    def settle(v: Any) -> Any:
        return (settle(v[0]), v[1])

    def record(self, value: float, fields: list) -> Any:
        if not fields:
            return (value, None)
        records = self.backend.records
        records.append(tuple(fields))
        if self.counting:
            self.counters.bp_created += 1
        return (value, len(records) - 1)

    def add(self, a: Any, b: Any) -> Any:
        (x, xb), (y, yb) = a, b
        fields = ([xb, 1.0] if xb is not None else []) + ([yb, 1.0] if yb is not None else [])
        return self.record(x + y, fields)

    def mul(self, a: Any, b: Any) -> Any:
        (x, xb), (y, yb) = a, b
        fields = ([xb, y] if xb is not None else []) + ([yb, x] if yb is not None else [])
        return self.record(x * y, fields)


def tree_const(r: float, depth: int, leaves) -> Any:
    """The real constant r in a language `depth` forward levels deep: r, (r, 0), ((r, 0), (0, 0)), ...
    (its tangents the symbolic zero: a constant's derivative is zero by construction)."""
    t = leaves.const(r)
    for _ in range(depth):
        t = (t, tree_map(t, leaves, lambda leaf: leaves.const(ZERO)))
    return t


def settle_real(x: Any, leaves) -> Any:
    """A real of a derivative's result as the program sees it: its value (the first leaf) a plain
    float, its tangents left as they are (a zero by construction stays one for the levels above)."""
    if leaves.is_leaf(x):
        return leaves.settle(x)
    return (settle_real(x[0], leaves), x[1])


def tree_map(x: Any, leaves, fn) -> Any:
    if leaves.is_leaf(x):
        return fn(x)
    return (tree_map(x[0], leaves, fn), tree_map(x[1], leaves, fn))


def tree_add(x: Any, y: Any, leaves) -> Any:
    """Addition of reals nested in dual numbers: componentwise."""
    if leaves.is_leaf(x):
        return leaves.add(x, y)
    return (tree_add(x[0], y[0], leaves), tree_add(x[1], y[1], leaves))


def tree_mul(x: Any, y: Any, leaves) -> Any:
    """Multiplication of reals nested in dual numbers: (a, a') (b, b') = (a b, a b' + a' b)."""
    if leaves.is_leaf(x):
        return leaves.mul(x, y)
    return (tree_mul(x[0], y[0], leaves),
            tree_add(tree_mul(x[0], y[1], leaves), tree_mul(x[1], y[0], leaves), leaves))


def attach_tangents(x: Any, v: Any, t: Type, leaves) -> Any:
    """The input of →D(f) one level deeper: each leaf of each real of x paired with v's."""
    t = prune(t)
    if t == REAL:
        return _pair_leaves(x, v, leaves)
    if t == ARRAY:
        return _pair_arrays(x, v)
    if isinstance(t, TTuple):
        return tuple(attach_tangents(a, b, ti, leaves) for a, b, ti in zip(x, v, t.items))
    if isinstance(t, TList):
        return [attach_tangents(a, b, t.item, leaves) for a, b in zip(x, v)]
    return x


def _pair_leaves(x: Any, v: Any, leaves) -> Any:
    if leaves.is_leaf(x):
        return (x, v)
    return (_pair_leaves(x[0], v[0], leaves), _pair_leaves(x[1], v[1], leaves))


def _pair_arrays(x: Any, v: Any) -> Any:
    """An array and its tangent (at depth 0; deeper, each array leaf of the trees paired)."""
    if type(x) is tuple:
        return (_pair_arrays(x[0], v[0]), _pair_arrays(x[1], v[1]))
    return (x, v)


def _split_arrays(y: Any) -> tuple[Any, Any]:
    """(value, tangent) of an array's →D output; a tangent that stayed 0-d (a constant's) gets the value's shape."""
    if type(y[0]) is tuple:
        (a, a_dot), (b, b_dot) = _split_arrays(y[0]), _split_arrays(y[1])
        return (a, b), (a_dot, b_dot)
    value, tangent = y
    if array_kernel("shape")(tangent) != array_kernel("shape")(value):
        tangent = array_kernel("dense_or")(tangent, value)
    return value, tangent


def split_tangents(y: Any, t: Type, leaves, zero) -> tuple[Any, Any]:
    """The output of →D(f) split into (value, tangent)."""
    t = prune(t)
    if t == REAL:
        return _split_leaves(y, leaves)
    if t == ARRAY:
        return _split_arrays(y)
    if isinstance(t, TTuple):
        parts = [split_tangents(a, ti, leaves, zero) for a, ti in zip(y, t.items)]
        return tuple(p for p, _ in parts), tuple(q for _, q in parts)
    if isinstance(t, TList):
        parts = [split_tangents(a, t.item, leaves, zero) for a in y]
        return [p for p, _ in parts], [q for _, q in parts]
    return y, zero(t, y)


def _split_leaves(y: Any, leaves) -> tuple[Any, Any]:
    if leaves.is_leaf(y[0]):
        return y[0], y[1]
    (a, a_dot), (b, b_dot) = _split_leaves(y[0], leaves), _split_leaves(y[1], leaves)
    return (a, b), (a_dot, b_dot)


# ---- the compilers of the target languages ----------------------------------------------


def forward_transform(e: c.Expr, times: int) -> c.Expr:
    """→D applied `times` times (simplified each time)."""
    for _ in range(times):
        e = FORWARD.simplify(FORWARD.term(e))
    return e


def forward_type(t: Type, times: int) -> Type:
    """→D on types, `times` times."""
    for _ in range(times):
        t = FORWARD.type(t)
    return t


def refuse_custom_rules(e: c.Expr, language: str) -> None:
    """Stop with a diagnostic at the first `custom_vjp`/`custom_jvp` in `e`: this language cannot apply a rule."""
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Prim) and PRIMITIVES[t.op].kind == "custom":
            raise DlRuntimeError(f"the {language} mode cannot use a custom rule ({t.op}): it would differentiate "
                                 "something else under its name (docs/reference.md, Custom derivatives, lists the "
                                 "modes that do)", t.span)
        stack.extend(c.children(t))


class TransformCompiler(Compiler):
    """The compiler of a transform's target language: definitions are transformed on their way in.

    Every target language transforms the *source* program (a global's
    specialised definition, a function value's source lambda) as many times
    as it is deep. With `machine.check_transforms` (dl --debug), every
    transformed term is type-checked against the transform of its source
    type before it runs.
    """

    nests = True
    ad_args = False         # TargetLanguage.ad_args: grad & co. typed argument by argument (functions return pairs)
    leaves: Any = FloatLeaves
    source_name = "primal"  # the language whose function values this one lifts

    def source_of_global(self, key: tuple) -> c.Expr:
        return self.checked(self.machine.spec.get(*key))

    def checked(self, e: c.Expr) -> c.Expr:
        if not self.takes_custom_rules:
            refuse_custom_rules(e, self.name)
        out = self.transform(e)
        if self.machine.check_transforms:
            check(out, e.ty, self.language(), source=e)
        return out

    def transform(self, e: c.Expr) -> c.Expr:
        raise NotImplementedError

    def d_type(self, t: Type) -> Type:
        raise NotImplementedError

    def language(self) -> TargetLanguage:
        """This language's types, for the checker."""
        return TargetLanguage(self.name, self.d_type,
                              lambda module, name, inst: self.d_type(self.machine.spec.get(module, name, inst).ty),
                              ad_args=self.ad_args)

    def open_lambda(self, code) -> Any:
        """The compiled transform of a function value's code (from the language below)."""
        return self.compile_open(self.checked(code.info.get("origin") or code.lam), code.name)

    def lift_leaf(self, v: Any) -> Any:
        """A leaf of the language below, lifted here; None when `v` is not a leaf that needs it."""
        return None

    first_order = 0  # the depth at which this language's reals are (value, first derivative) of primal reals
    takes_custom_rules = False  # whether custom_leaf is defined: a language says so (forward, reverse, delta)

    @property
    def custom_rules(self) -> bool:
        """Custom rules run at first order only: deeper, they would need the derivative of their pullback."""
        return self.takes_custom_rules and self.depth == self.first_order

    def primal_real(self, leaf: Any) -> float:
        return leaf[0]

    def lift_array(self, a: Any) -> Any:
        """A primal Array as a constant of this language: paired with zero tangents, `depth` levels deep
        (the leaves of a reverse language are (array, None))."""
        zeros = array_kernel("azerosLike")
        leaf = self.array_leaf(a)
        for _ in range(self.depth):
            leaf = (leaf, self._zero_tree(leaf, zeros))
        return leaf

    def array_leaf(self, a: Any) -> Any:
        return a

    def _zero_tree(self, t: Any, zeros) -> Any:
        """A tree of pairs like `t` with every array leaf replaced by a leaf of zeros."""
        if type(t).__name__ == "ndarray":
            return zeros(t)
        if isinstance(self.leaves, DualLeaves) and type(t[0]).__name__ == "ndarray":
            return self.array_leaf(zeros(t[0]))  # an (array, backpropagator) leaf
        return (self._zero_tree(t[0], zeros), self._zero_tree(t[1], zeros))

    def deeper(self, kernel) -> Compiler:
        """The language one forward level deeper than this one, where a derivative taken inside code of this
        language runs (a reverse language stays reverse: ←D(→D^(k+1) t) under ←D(→D^k t))."""
        return kernel.forward_compiler(self.depth + 1)


class ForwardCompiler(TransformCompiler):
    """→D^depth: forward derivatives nested `depth` deep."""

    first_order = 1  # →D^1 of primal code (a forward language always sits on primal code at depth 1)
    takes_custom_rules = True

    def __init__(self, machine, parent: Compiler, depth: int, name: str):
        super().__init__(machine, counting=machine.counting, name=name)
        self.depth = depth
        self.source_name = parent.name

    def transform(self, e: c.Expr) -> c.Expr:
        return forward_transform(e, self.depth)

    def d_type(self, t: Type) -> Type:
        return forward_type(t, self.depth)

    def lift_real(self, r: float) -> Any:
        return (r, ZERO)

    def custom_leaf(self, value: float, pairs: list) -> Any:
        """(y, Σ J · x_dot): the tangent a Jacobian row gives, a zero tangent dropped, not multiplied."""
        tangent = ZERO
        for (_, x_dot), weight in pairs:
            if x_dot is not ZERO and weight is not ZERO:
                tangent = tangent + weight * x_dot
        return (value, tangent)

    def varying_leaf(self, v: Any) -> bool | None:
        """A real (r, r_dot) carries a derivative unless its tangent is exactly zero (the zero-tangent rule:
        an exactly zero tangent contributes nothing, so a rule that drops it drops nothing)."""
        if type(v) is tuple and len(v) == 2 and (type(v[0]) is float or type(v[0]).__name__ == "ndarray"):
            t = v[1]
            return not (t is ZERO or (type(t) is float and t == 0.0) or (type(t).__name__ == "ndarray" and not t.any()))
        return None


class ReverseCompiler(TransformCompiler):
    """←D(→D^depth t): backprop (factoring or naive), over `depth` levels of forward derivatives.

    At depth 0 this is ←D itself. All depths of one mode share one linear
    backend, so backpropagators created at any depth land on the same tape."""

    takes_custom_rules = True

    def __init__(self, machine, backend, runtime, depth: int = 0, parent: Compiler | None = None,
                 preaccumulated: bool = False):
        name = runtime.name if depth == 0 else f"{runtime.name}∘forward^{depth}"
        super().__init__(machine, linear=backend, counting=machine.counting, name=name)
        # ←D's term preaccumulated (the factoring runtime at depth 0; lang/transforms/preaccumulate.py)
        self.preaccumulated = preaccumulated
        self.runtime = runtime  # the reverse runtime (lang/modes/runtimes.py) whose backend this records on
        self.depth = depth
        self.source_name = parent.name if parent is not None else "primal"
        self.leaves = DualLeaves(backend, machine.counters, machine.counting)

    def transform(self, e: c.Expr) -> c.Expr:
        if self.preaccumulated:  # folds over maps fused first, so preaccumulation merges their steps
            e = fuse(e, lambda g: self.machine.spec.get(g.module, g.name, g.inst))
        out = BACKPROP.simplify(BACKPROP.term(forward_transform(e, self.depth)))
        return preaccumulate(out) if self.preaccumulated else out

    def d_type(self, t: Type) -> Type:
        return BACKPROP.type(forward_type(t, self.depth))

    def lift_real(self, r: float) -> Any:
        return (r, None) if self.depth == 0 else ((r, None), (ZERO, None))

    def custom_leaf(self, value: float, pairs: list) -> Any:
        """(y, y') with y' recorded defunctionalised, as a primitive's: its parents the inputs' backpropagators,
        its weights a row of the rule's Jacobian (lang/back/linear.py)."""
        fields: list = []
        for (_, parent), weight in pairs:
            if parent is not None and weight is not ZERO:
                fields += [parent, weight]
        return self.leaves.record(value, fields)

    def varying_leaf(self, v: Any) -> bool | None:
        """A real (r, r') carries a derivative when it has a backpropagator (a constant's is None); an array
        leaf likewise."""
        if DualLeaves.is_leaf(v) or (type(v) is tuple and len(v) == 2 and type(v[0]).__name__ == "ndarray"):
            return v[1] is not None
        return None

    def array_leaf(self, a: Any) -> Any:
        return (a, None)

    def lift_leaf(self, v: Any) -> Any:
        """A ←D real (or array) of the language below, one forward level deeper: (ℓ, (0, None))."""
        if self.depth > 0 and DualLeaves.is_leaf(v):
            return (v, (ZERO, None))
        if self.depth > 0 and type(v) is tuple and len(v) == 2 and type(v[0]).__name__ == "ndarray" \
                and (v[1] is None or type(v[1]) is int):
            return (v, (array_kernel("azerosLike")(v[0]), None))
        return None

    def deeper(self, kernel) -> Compiler:
        return kernel.reverse_compiler(self.runtime, self.depth + 1)
