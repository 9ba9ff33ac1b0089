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
from .linear import Tape, backend_for
from .runtime import PARTIAL_CODES, Fun, call1, native
from .types import BOOL, INT, REAL, UNIT, TCon, TFun, TList, TTuple, Type, prune

REVERSE = ("backprop", "backprop-naive")


# ---- walking differentiable data by type -------------------------------------------


def reals_of(v: Any, t: Type, out: list) -> list:
    """Append the real numbers of `v : t` to `out`, in a fixed order."""
    t = prune(t)
    if t == REAL:
        out.append(v)
    elif isinstance(t, TTuple):
        for x, ti in zip(v, t.items):
            reals_of(x, ti, out)
    elif isinstance(t, TList):
        for x in v:
            reals_of(x, t.item, out)
    return out


def rebuild(shape: Any, t: Type, reals) -> Any:
    """A value shaped like `shape : t` whose reals come from the iterator `reals`, other leaves zero."""
    t = prune(t)
    if t == REAL:
        return next(reals)
    if t == INT:
        return 0
    if t == BOOL:
        return False
    if t == UNIT:
        return ()
    if isinstance(t, TTuple):
        return tuple(rebuild(x, ti, reals) for x, ti in zip(shape, t.items))
    if isinstance(t, TList):
        return [rebuild(x, t.item, reals) for x in shape]
    return shape


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

    # ---- compiling the primitives
    def compile(self, compiler: Compiler, e: c.Prim, runs: list) -> Callable:
        op = e.op
        span = e.span
        if compiler.name != "primal":
            return self.nested(compiler, e, runs)
        in_t, out_t = io_types(e.args[0].ty)
        kernel = self
        match op:
            case "grad":
                f_run, x_run = runs

                def grad(f):
                    return kernel.guard(span, kernel.grad, f_run(f), x_run(f), in_t)
                return grad
            case "value_and_grad":
                f_run, x_run = runs

                def value_and_grad(f):
                    return kernel.guard(span, kernel.value_and_grad, f_run(f), x_run(f), in_t)
                return value_and_grad
            case "vjp":
                f_run, x_run = runs

                def vjp(f):
                    return kernel.guard(span, kernel.vjp_value, f_run(f), x_run(f), in_t, out_t)
                return vjp
            case "jvp":
                f_run, x_run, v_run = runs

                def jvp(f):
                    return kernel.guard(span, kernel.jvp, f_run(f), x_run(f), v_run(f), in_t, out_t)
                return jvp
            case "derivative":
                f_run, x_run = runs

                def derivative(f):
                    return kernel.guard(span, kernel.derivative, f_run(f), x_run(f))
                return derivative
        raise AssertionError(f"no differentiation kernel for {op!r}")

    def nested(self, compiler: Compiler, e: c.Prim, runs: list) -> Callable:
        """A differentiation primitive met inside a transformed program."""
        name, span = e.op, e.span

        def refuse(f):
            raise NestedDifferentiation(
                f"nested differentiation: this `{name}` runs inside a function that is being differentiated "
                f"in {compiler.name} mode; differentiating a derivative is not supported there (forward mode "
                "nests: use `derivative`/`jvp` with --mode forward)", span)
        return refuse

    def guard(self, span, fn, *args):
        try:
            return fn(*args)
        except DlRuntimeError as err:
            raise err.with_span(span)

    # ---- the built-ins, in terms of vjp / jvp
    def grad(self, f: Fun, x: Any, in_t: Type) -> Any:
        _, pullback = self.vjp(f, x, in_t, REAL)
        return pullback(1.0)

    def value_and_grad(self, f: Fun, x: Any, in_t: Type) -> tuple:
        y, pullback = self.vjp(f, x, in_t, REAL)
        return (y, pullback(1.0))

    def vjp_value(self, f: Fun, x: Any, in_t: Type, out_t: Type) -> tuple:
        y, pullback = self.vjp(f, x, in_t, out_t)

        def pb(u):
            check_shape(u, y, out_t, "the cotangent given to the pullback")
            return pullback(u)
        return (y, native(1, pb, "<pullback>"))

    def vjp(self, f: Fun, x: Any, in_t: Type, out_t: Type) -> tuple[Any, Callable]:
        mode = self.machine.mode
        if mode in REVERSE:
            return self.vjp_reverse(f, x, in_t, out_t, mode)
        from .transforms import modes
        return modes.vjp(self, mode, f, x, in_t, out_t)

    def jvp(self, f: Fun, x: Any, v: Any, in_t: Type, out_t: Type) -> tuple:
        check_shape(v, x, in_t, "the tangent given to jvp")
        from .transforms import modes
        return modes.jvp(self, f, x, v, in_t, out_t)

    def derivative(self, f: Fun, x: float) -> float:
        return self.jvp(f, x, 1.0, REAL, REAL)[1]

    # ---- reverse mode by the backpropagation transform
    def compiler(self, mode: str) -> Compiler:
        """The compiler of a transform's target language (one per mode)."""
        if mode not in self.compilers:
            if mode in REVERSE:
                backend = backend_for(mode, self.machine.counters)
                backend.counting = self.machine.counting
                self.backends[mode] = backend
                self.compilers[mode] = ReverseCompiler(self.machine, backend, mode)
            else:
                from .transforms import modes
                self.compilers[mode] = modes.compiler(self.machine, mode)
        return self.compilers[mode]

    def vjp_reverse(self, f: Fun, x: Any, in_t: Type, out_t: Type, mode: str) -> tuple[Any, Callable]:
        compiler = self.compiler(mode)
        backend = self.backends[mode]
        dual_f = self.lift_fun(f, compiler, {})
        tape = Tape()
        saved = backend.tape
        backend.tape = tape
        try:
            counter = iter(range(1 << 62))
            x_dual = inject(x, in_t, lambda: tape.sink(next(counter)))
            y_dual = call1(dual_f, x_dual)
        finally:
            backend.tape = saved
        backprops: list = []
        y = unlift(y_dual, out_t, backprops)

        def pullback(u: Any) -> Any:
            cotangents = reals_of(u, out_t, [])
            seeds = [(p, float(ct)) for p, ct in zip(backprops, cotangents) if p is not None]
            grads = backend.backward(tape, seeds)
            return rebuild(x, in_t, iter(grads))
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
        if code.mode != "primal":
            raise NestedDifferentiation(f"nested differentiation: a function already transformed for "
                                        f"{code.mode} mode cannot be differentiated again in {compiler.name} mode")
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


def inject(x: Any, t: Type, sink: Callable[[], int]) -> Any:
    """The input with a sink attached to each of its reals."""
    t = prune(t)
    if t == REAL:
        return (x, sink())
    if isinstance(t, TTuple):
        return tuple(inject(v, ti, sink) for v, ti in zip(x, t.items))
    if isinstance(t, TList):
        return [inject(v, t.item, sink) for v in x]
    return x


def unlift(y: Any, t: Type, backprops: list) -> Any:
    """The primal part of a dual output, collecting the backpropagator of each real."""
    t = prune(t)
    if t == REAL:
        value, back = y
        backprops.append(back)
        return value
    if isinstance(t, TTuple):
        return tuple(unlift(v, ti, backprops) for v, ti in zip(y, t.items))
    if isinstance(t, TList):
        return [unlift(v, t.item, backprops) for v in y]
    return y


class ReverseCompiler(Compiler):
    """The compiler of ←D's target language: definitions are transformed on their way in."""

    def __init__(self, machine, backend, mode: str):
        super().__init__(machine, linear=backend, counting=machine.counting, name=mode)
        self.transformed: dict = {}

    def source_of_global(self, key: tuple) -> c.Expr:
        return self.transform(super().source_of_global(key))

    def transform(self, e: c.Expr) -> c.Expr:
        from .transforms.backprop import transform
        from .transforms.simplify import simplify
        return simplify(transform(e))

    def open_lambda(self, lam: c.Lam, name: str):
        return self.compile_open(self.transform(lam), name)

    def lift_real(self, r: float):
        return (r, None)


__all__ = ["ADKernel", "reals_of", "rebuild", "inject", "unlift", "TCon"]
