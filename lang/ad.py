"""The differentiation kernel: grad, value_and_grad, vjp, jvp and derivative, by mode.

Reverse mode (THEORY §3), for `vjp f x` with f a function value:

1. ←D(f): the transformed code of f's lambda (memoised per lambda, per
   mode), with the values f captured *lifted* — a real r becomes (r, 0), a
   function its transform, lists and tuples componentwise. A top-level
   function is simply the transformed definition.
2. Inject the input: each real xi of x becomes (xi, si) with si a sink.
3. Run ←D(f) on it: call-by-value, each let once, backpropagators
   recorded on a tape as they are created (lang/linear.py).
4. The pullback, given a cotangent u of the output, seeds the output's
   backpropagators with u and runs the backward pass (factoring: one
   sweep; naive: immediate application); the sinks hold the gradient,
   put back in the shape of x (a list's cotangent has the list's length;
   Int, Bool and Unit positions get 0, false, ()).

The other modes (lang/transforms/*.py) plug in through `MODES` below.
Inputs and outputs are *differentiable data* of a concrete type (the
specialiser made it concrete), so they are walked by type; captured values,
whose static type may be a parametric 'a, are walked by their run-time
representation, which for primal values is unambiguous.
"""
from __future__ import annotations

from typing import Any, Callable

from . import core as c
from .errors import DlRuntimeError
from .evaluator import Compiler
from .linear import SINK, backend_for
from .shapes import Shapes
from .runtime import PARTIAL_CODES, Fun, call1, native
from .types import BOOL, INT, REAL, UNIT, TCon, TFun, TList, TTuple, Type, prune

REVERSE = ("backprop", "backprop-naive")


def check_shape(cotangent: Any, value: Any, t: Type, what: str) -> None:
    """A cotangent must have the shape of the value it belongs to (list lengths included)."""
    t = prune(t)
    if isinstance(t, TTuple):
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


class NestedDifferentiation(DlRuntimeError):
    pass


class ADKernel:
    """Compiles and runs the differentiation primitives for one machine."""

    def __init__(self, machine):
        self.machine = machine
        self.compilers: dict[str, Compiler] = {}
        self.backends: dict[str, Any] = {}
        self.shapes = Shapes()

    # ---- compiling the primitives
    def compile(self, compiler: Compiler, e: c.Prim) -> Callable:
        """A differentiation primitive as a function of its arguments' values, run one level deeper
        than `compiler`'s language."""
        op = e.op
        span = e.span
        if not compiler.nests:
            return self.nested(compiler, e)
        depth = compiler.depth + 1
        in_t, out_t = io_types(e.src)
        guard = self.guard
        match op:
            case "grad":
                return lambda f, x: guard(span, self.grad, f, x, in_t, depth)
            case "value_and_grad":
                return lambda f, x: guard(span, self.value_and_grad, f, x, in_t, depth)
            case "vjp":
                return lambda f, x: guard(span, self.vjp_value, f, x, in_t, out_t, depth)
            case "jvp":
                return lambda f, x, v: guard(span, self.jvp, f, x, v, in_t, out_t, depth)
            case "derivative":
                return lambda f, x: guard(span, self.derivative, f, x, depth)
        raise AssertionError(f"no differentiation kernel for {op!r}")

    def nested(self, compiler: Compiler, e: c.Prim) -> Callable:
        """A differentiation primitive met inside a transformed program."""
        name, span = e.op, e.span

        def refuse(*args):
            raise NestedDifferentiation(
                f"nested differentiation: this `{name}` runs inside a function that is being differentiated "
                f"in {compiler.name} mode, which does not nest; forward mode does (`derivative`, `jvp`, "
                "or --mode forward)", span)
        return refuse

    def guard(self, span, fn, *args):
        try:
            return fn(*args)
        except DlRuntimeError as err:
            raise err.with_span(span)

    # ---- the built-ins, in terms of vjp / jvp
    def grad(self, f: Fun, x: Any, in_t: Type, depth: int = 1) -> Any:
        _, pullback = self.vjp(f, x, in_t, REAL, depth)
        return pullback(lift_constant(1.0, depth - 1))

    def value_and_grad(self, f: Fun, x: Any, in_t: Type, depth: int = 1) -> tuple:
        y, pullback = self.vjp(f, x, in_t, REAL, depth)
        return (y, pullback(lift_constant(1.0, depth - 1)))

    def vjp_value(self, f: Fun, x: Any, in_t: Type, out_t: Type, depth: int = 1) -> tuple:
        y, pullback = self.vjp(f, x, in_t, out_t, depth)

        def pb(u):
            check_shape(u, y, out_t, "the cotangent given to the pullback")
            return pullback(u)
        return (y, native(1, pb, "<pullback>"))

    def vjp(self, f: Fun, x: Any, in_t: Type, out_t: Type, depth: int = 1) -> tuple[Any, Callable]:
        """Reverse mode in the current mode; inside a forward-transformed program, by forward passes."""
        mode = self.machine.mode if depth == 1 else "forward"
        if mode == "primal":
            return self.vjp_primal(f, x, in_t, out_t)
        if mode in REVERSE:
            return self.vjp_reverse(f, x, in_t, out_t, mode)
        if mode == "forward":
            return self.vjp_forward(f, x, in_t, out_t, depth)
        from .transforms import modes
        return modes.vjp(self, mode, f, x, in_t, out_t)

    def vjp_primal(self, f: Fun, x: Any, in_t: Type, out_t: Type) -> tuple[Any, Callable]:
        """The baseline `dl compare` measures against: the function's value, no derivative."""
        y = call1(f, x)
        zeros = [0.0] * len(self.shapes.flatten(x, in_t))
        return y, lambda u: self.shapes.rebuild(x, in_t, zeros)

    def derivative(self, f: Fun, x: Any, depth: int = 1) -> Any:
        return self.jvp(f, x, lift_constant(1.0, depth - 1), REAL, REAL, depth)[1]

    # ---- forward mode by the dual-number transform
    def jvp(self, f: Fun, x: Any, v: Any, in_t: Type, out_t: Type, depth: int = 1) -> tuple:
        """(f x, the derivative of f at x in the direction v), by one run of →D(f)."""
        check_shape(v, x, in_t, "the tangent given to jvp")
        if depth == 1 and self.machine.mode == "primal":
            y = call1(f, x)
            return y, self.shapes.rebuild(y, out_t, [0.0] * len(self.shapes.flatten(y, out_t)))
        compiler = self.forward_compiler(depth)
        dual_f = self.lift_fun(f, compiler, {})
        y_dual = call1(dual_f, attach_tangents(x, v, in_t))
        return split_tangents(y_dual, out_t)

    def vjp_forward(self, f: Fun, x: Any, in_t: Type, out_t: Type, depth: int) -> tuple[Any, Callable]:
        """A vjp by forward mode: one jvp per input real, the Jacobian's columns kept for the pullback."""
        shapes = self.shapes
        n = len(shapes.flatten(x, in_t))
        zero, one = lift_constant(0.0, depth - 1), lift_constant(1.0, depth - 1)
        columns = []
        y = None
        for i in range(n):
            seed = [zero] * n
            seed[i] = one
            y, y_dot = self.jvp(f, x, shapes.rebuild(x, in_t, seed), in_t, out_t, depth)
            columns.append(shapes.flatten(y_dot, out_t))
        if n == 0:
            y = call1(f, x)

        def pullback(u: Any) -> Any:
            us = shapes.flatten(u, out_t)
            grads = []
            for column in columns:
                total = zero
                for ui, j in zip(us, column):
                    total = tree_add(total, tree_mul(ui, j))
                grads.append(total)
            return shapes.rebuild(x, in_t, grads)
        return y, pullback

    # ---- the compilers of the transforms' target languages
    def compiler(self, mode: str) -> Compiler:
        """The compiler of a transform's target language (one per mode)."""
        if mode not in self.compilers:
            if mode in REVERSE:
                backend = backend_for(mode, self.machine.counters, self.machine.counting)
                self.backends[mode] = backend
                self.compilers[mode] = ReverseCompiler(self.machine, backend, mode)
            elif mode == "forward":
                return self.forward_compiler(1)
            else:
                from .transforms import modes
                self.compilers[mode] = modes.compiler(self.machine, mode)
        return self.compilers[mode]

    def forward_compiler(self, depth: int) -> Compiler:
        """→D applied `depth` times: the language of derivatives nested `depth` deep."""
        name = "forward" if depth == 1 else f"forward^{depth}"
        if name not in self.compilers:
            parent = self.machine.primal if depth == 1 else self.forward_compiler(depth - 1)
            self.compilers[name] = ForwardCompiler(self.machine, parent, depth, name)
        return self.compilers[name]

    def vjp_reverse(self, f: Fun, x: Any, in_t: Type, out_t: Type, mode: str) -> tuple[Any, Callable]:
        compiler = self.compiler(mode)
        backend = self.backends[mode]
        dual_f = self.lift_fun(f, compiler, {})
        shapes = self.shapes
        saved = backend.records
        try:
            x_dual, n_sinks = shapes.inject(x, in_t, 0)   # the inputs' sinks: identities 0 .. n-1
            records = backend.records = [SINK] * n_sinks
            y_dual = call1(dual_f, x_dual)
        finally:
            backend.records = saved
        backprops: list = []
        y = shapes.unlift(y_dual, out_t, backprops)

        def pullback(u: Any) -> Any:
            cotangents = shapes.flatten(u, out_t)
            seeds = [(p, float(ct)) for p, ct in zip(backprops, cotangents) if p is not None]
            return shapes.rebuild(x, in_t, backend.backward(records, seeds, n_sinks))
        return y, pullback

    # ---- lifting: primal values into a transform's target language
    def lift_fun(self, fn: Fun, compiler: Compiler, memo: dict) -> Fun:
        """The transform of a function value: its transformed code, its captured values lifted."""
        if id(fn) in memo:
            return memo[id(fn)]
        code = fn.code
        if code is PARTIAL_CODES.get(code.arity):
            out = Fun(code, ())
            memo[id(fn)] = out
            out.captured = self.lift(fn.captured, compiler, memo)
            return out
        if code.mode != compiler.source_mode:
            raise NestedDifferentiation(f"nested differentiation: a function of the {code.mode} language cannot "
                                        f"be differentiated in {compiler.name} mode")
        key = code.info.get("global")
        if key is not None:
            out = compiler.global_value(*key)
            memo[id(fn)] = out
            return out
        if code.lam is None:
            raise NestedDifferentiation("nested differentiation: a pullback returned by `vjp` cannot itself be "
                                        "differentiated")
        dual_code, where = self.transformed_code(code, compiler)
        out = Fun(dual_code, ())
        memo[id(fn)] = out
        out.captured = tuple(self.lift(fn.captured[i], compiler, memo) for i in where)
        return out

    def transformed_code(self, code, compiler: Compiler):
        """The compiled transform of a primal lambda, and where each of its captured values comes from."""
        cache_key = ("transformed", compiler.name)
        if cache_key not in code.info:
            dual_code = compiler.open_lambda(code.lam, code.name)
            where = tuple(code.free.index(k) for k in dual_code.free)
            code.info[cache_key] = (dual_code, where)
        return code.info[cache_key]

    def lift(self, v: Any, compiler: Compiler, memo: dict) -> Any:
        """A primal value as a constant of the target language (by its run-time representation)."""
        t = type(v)
        if t is float:
            return compiler.lift_real(v)
        if t is tuple:
            return tuple(self.lift(x, compiler, memo) for x in v)
        if t is list:
            return [self.lift(x, compiler, memo) for x in v]
        if t is Fun:
            return self.lift_fun(v, compiler, memo)
        return v


def lift_constant(r: float, depth: int) -> Any:
    """The real constant r in the language of derivatives nested `depth` deep: r, (r, 0.0), ..."""
    for _ in range(depth):
        r = (r, tree_zero(r))
    return r


def tree_zero(x: Any) -> Any:
    return 0.0 if type(x) is float else (tree_zero(x[0]), tree_zero(x[1]))


def tree_add(x: Any, y: Any) -> Any:
    """Addition of reals nested in dual numbers."""
    if type(x) is float:
        return x + y
    return (tree_add(x[0], y[0]), tree_add(x[1], y[1]))


def tree_mul(x: Any, y: Any) -> Any:
    """Multiplication of reals nested in dual numbers: (a, a') (b, b') = (a b, a b' + a' b)."""
    if type(x) is float:
        return x * y
    return (tree_mul(x[0], y[0]), tree_add(tree_mul(x[0], y[1]), tree_mul(x[1], y[0])))


def attach_tangents(x: Any, v: Any, t: Type) -> Any:
    """The input of →D(f): each real of x paired with its tangent in v (leaf by leaf when nested)."""
    t = prune(t)
    if t == REAL:
        return _pair_leaves(x, v)
    if isinstance(t, TTuple):
        return tuple(attach_tangents(a, b, ti) for a, b, ti in zip(x, v, t.items))
    if isinstance(t, TList):
        return [attach_tangents(a, b, t.item) for a, b in zip(x, v)]
    return x


def _pair_leaves(x: Any, v: Any) -> Any:
    if type(x) is float:
        return (x, v)
    return (_pair_leaves(x[0], v[0]), _pair_leaves(x[1], v[1]))


def split_tangents(y: Any, t: Type) -> tuple[Any, Any]:
    """The output of →D(f) split into (value, tangent)."""
    t = prune(t)
    if t == REAL:
        return _split_leaves(y)
    if isinstance(t, TTuple):
        parts = [split_tangents(a, ti) for a, ti in zip(y, t.items)]
        return tuple(p for p, _ in parts), tuple(q for _, q in parts)
    if isinstance(t, TList):
        parts = [split_tangents(a, t.item) for a in y]
        return [p for p, _ in parts], [q for _, q in parts]
    return y, {INT: 0, BOOL: False, UNIT: ()}.get(t, y)


def _split_leaves(y: Any) -> tuple[Any, Any]:
    if type(y[0]) is float:
        return y[0], y[1]
    (a, a_dot), (b, b_dot) = _split_leaves(y[0]), _split_leaves(y[1])
    return (a, b), (a_dot, b_dot)


class TransformCompiler(Compiler):
    """The compiler of a transform's target language: definitions are transformed on their way in.

    With `machine.check_transforms` (dl --debug), every transformed term is
    type-checked against the transform of its source type before it runs.
    """

    source_mode = "primal"  # the language whose function values this one lifts
    depth = 0

    def source_of_global(self, key: tuple) -> c.Expr:
        return self.checked(super().source_of_global(key))

    def checked(self, e: c.Expr) -> c.Expr:
        out = self.transform(e)
        if self.machine.check_transforms:
            from .target_check import check
            check(out, e.ty, self.language(), source=e)
        return out

    def transform(self, e: c.Expr) -> c.Expr:
        raise NotImplementedError

    def language(self):
        """This language's target types, for the checker."""
        raise NotImplementedError

    def open_lambda(self, lam: c.Lam, name: str):
        return self.compile_open(self.checked(lam), name)


class ForwardCompiler(TransformCompiler):
    """→D's target language, `depth` levels deep; its source is the level below."""

    def __init__(self, machine, parent: Compiler, depth: int, name: str):
        super().__init__(machine, counting=machine.counting, name=name)
        self.parent = parent
        self.depth = depth
        self.source_mode = parent.name
        self.nests = True

    def source_of_global(self, key: tuple) -> c.Expr:
        return self.checked(self.parent.source_of_global(key))

    def transform(self, e: c.Expr) -> c.Expr:
        from .transforms.forward import transform
        from .transforms.simplify import simplify
        return simplify(transform(e))

    def language(self):
        from .target_check import TargetLanguage
        from .workbench import type_transform
        d_type = type_transform("forward")
        below = self.parent.language() if isinstance(self.parent, ForwardCompiler) else None

        def global_type(module, name, inst):
            source = below.global_type(module, name, inst) if below else self.machine.spec.get(module, name, inst).ty
            return d_type(source)
        return TargetLanguage(self.name, d_type, global_type)

    def lift_real(self, r: float):
        return (r, 0.0)


class ReverseCompiler(TransformCompiler):
    """The compiler of ←D's target language: definitions are transformed on their way in."""

    def __init__(self, machine, backend, mode: str):
        super().__init__(machine, linear=backend, counting=machine.counting, name=mode)

    def transform(self, e: c.Expr) -> c.Expr:
        from .transforms.backprop import transform
        from .transforms.simplify import simplify
        return simplify(transform(e))

    def language(self):
        from .workbench import language
        return language(self.name, self.machine.spec)

    def lift_real(self, r: float):
        return (r, None)


__all__ = ["ADKernel", "TCon"]
