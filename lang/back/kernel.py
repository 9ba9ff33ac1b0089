"""The differentiation kernel: grad, value_and_grad, vjp, jvp, derivative and the Jacobians, by mode.

Reverse mode (docs/transforms.md, From the transformed term to a gradient), for `vjp f x` with f a function value:

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

Which path a derivative call from primal code takes is the machine's mode's
choice: the mode table (lang/modes/table.py) names a runtime object per
mode, and the kernel calls its `vjp` or `jvp`.

Zeros and infinities (docs/transforms.md, Zeros and infinities). A runtime
computes with plain floats and the symbolic zero (lang/model/zeros.py); the
kernel hands its results to the program *settled* — the symbolic zero as
0.0. Where an exact mode's derivative comes out infinite or nan, the
order in which that mode summed the chain rule's paths may have decided it,
so the kernel asks the runtime again with `Paths` seeds (each a sum over
paths that keeps the kinds of its terms) and settles that: every exact
mode then gives the order-free value. Finite results are kept as computed.
Inputs and outputs are *differentiable data* of a concrete type (the
specialiser made it concrete), so they are walked by type; captured values,
whose static type may be a parametric 'a, are walked by their run-time
representation, which for primal values is unambiguous.
"""
from __future__ import annotations

import gc
import math
from typing import Any, Callable

from ..model import core as c
from ..model.primitives import PRIMITIVES
from ..model.errors import DlRuntimeError
from ..model.spans import NO_SPAN
from .compiler import Compiler
from .languages import (FloatLeaves, ForwardCompiler, ReverseCompiler, TransformCompiler, attach_tangents,
                        settle_real, split_tangents, tree_add, tree_const, tree_mul)
from .entries import OPS as ENTRY_OPS, scalar_entry
from .linear import SINK
from .shapes import Shapes, check_shape, io_types
from .custom import CustomRules
from ..model.values import Fun, call1, native
from ..model.primitives import array_kernel
from ..transforms.common import mentions_array
from ..model.types import ARRAY, BOOL, INT, REAL, UNIT, TCon, TFun, TList, TTuple, Type, prune
from ..model.zeros import ZERO, Paths, Zero, finite, settle

def all_plain_finite(reals: list) -> bool:
    """Whether every real is a finite float (no symbolic zero, no sum over paths): then a gradient is
    settled as it is. A finite sum of floats has no inf or nan among its terms; a sum that overflowed
    is checked again one by one (by the caller)."""
    return set(map(type, reals)) <= {float} and math.isfinite(sum(reals))


class NestedDifferentiation(DlRuntimeError):
    pass


def _nested_arrays(in_t: Type, out_t: Type, what: str) -> None:
    """A derivative of a function of arrays, taken inside a function being differentiated, is refused: its
    forward passes would go one element at a time through pairs of arrays (not implemented yet). Arrays
    inside such a function, with Real inputs and outputs, are fine."""
    if mentions_array(in_t) or mentions_array(out_t):
        raise NestedDifferentiation(f"nested differentiation with arrays: this {what} of a function of an Array "
                                    "runs inside a function being differentiated, which is not supported yet "
                                    "(the inner function's input and output must be Reals, tuples or lists)")


class ADKernel:
    """Compiles and runs the differentiation primitives for one machine."""

    def __init__(self, machine):
        self.machine = machine
        self.compilers: dict = {}
        self.backends: dict[str, Any] = {}
        self.shapes = Shapes()
        self._top_reverse: dict = {}  # (runtime, faithful): reverse_compiler(runtime, 0, faithful)
        self.custom = CustomRules(self)

    # ---- compiling the primitives
    def compile(self, site: Compiler, e: c.Prim) -> Callable:
        """A differentiation primitive as a function of its arguments' values, for code of `site`'s
        language; it runs one language deeper (lang/languages.py)."""
        span = e.span
        if PRIMITIVES[e.op].kind == "custom":  # custom_vjp, custom_jvp (lang/back/custom.py)
            return self.custom.compile(site, e, NestedDifferentiation)
        if not site.nests:
            return site.refuse_nested(e)
        in_t, out_t = io_types(e.src)
        if e.op in ENTRY_OPS and site is self.machine.primal:  # grad f x on a few reals: one generated frame
            general = {"grad": lambda f, x: self.grad(f, x, in_t, site),
                       "value_and_grad": lambda f, x: self.value_and_grad(f, x, in_t, site),
                       "vjp": lambda f, x: self.vjp_value(f, x, in_t, out_t, site, span)}[e.op]
            entry = scalar_entry(self, e.op, in_t, out_t, span, general)
            if entry is not None:
                return entry
        guard = self.guard
        match e.op:
            case "grad":
                return lambda f, x: guard(span, self.grad, f, x, in_t, site)
            case "value_and_grad":
                return lambda f, x: guard(span, self.value_and_grad, f, x, in_t, site)
            case "vjp":
                return lambda f, x: guard(span, self.vjp_value, f, x, in_t, out_t, site, span)
            case "jvp":
                return lambda f, x, v: guard(span, self.jvp, f, x, v, in_t, out_t, site)
            case "derivative":
                return lambda f, x: guard(span, self.derivative, f, x, site)
            case "jacrev":
                return lambda f, x: guard(span, self.jacobian_rows, f, x, in_t, out_t, site)
            case "jacfwd":
                return lambda f, x: guard(span, self.jacobian_rows_forward, f, x, in_t, out_t, site)
            case "jacobianT":
                return lambda f, x: guard(span, self.jacobian_columns, f, x, in_t, out_t, site)
            case "value_and_grad_aux":
                return lambda f, x: guard(span, self.value_and_grad_aux, f, x, in_t, out_t, site)
        raise AssertionError(f"no differentiation kernel for {e.op!r}")

    def guard(self, span, fn, *args):
        try:
            return fn(*args)
        except DlRuntimeError as err:
            raise err.with_span(span)

    # ---- the built-ins, in terms of vjp / jvp
    def grad(self, f: Fun, x: Any, in_t: Type, site: Compiler) -> Any:
        _, pullback = self.vjp(f, x, in_t, REAL, site)
        return pullback(self.const(site, 1.0))

    def value_and_grad(self, f: Fun, x: Any, in_t: Type, site: Compiler) -> tuple:
        y, pullback = self.vjp(f, x, in_t, REAL, site)
        return (y, pullback(1.0 if site is self.machine.primal else self.const(site, 1.0)))

    def vjp_value(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler, span=NO_SPAN) -> tuple:
        y, pullback = self.vjp(f, x, in_t, out_t, site)

        def pb(u):  # a bad cotangent is reported at the vjp that made this pullback
            try:
                check_shape(u, y, out_t, "the cotangent given to the pullback of this vjp")
            except DlRuntimeError as err:
                raise err.with_span(span) from None
            return pullback(u)
        return (y, native(1, pb, "<pullback>"))

    def vjp(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler) -> tuple[Any, Callable]:
        """Reverse mode in the current mode; inside a transformed program, by forward passes one level
        deeper. The pullback's result is settled, and order-free where it is not finite."""
        if site is not self.machine.primal:
            _nested_arrays(in_t, out_t, "grad, value_and_grad or vjp")
            y, pullback = self.vjp_forward(f, x, in_t, out_t, site)
            leaves = site.leaves
            return y, lambda u: self.shapes.map_reals(pullback(u), in_t, lambda r: settle_real(r, leaves))
        runtime = self.machine.runtime
        y, pullback = runtime.vjp(self, f, x, in_t, out_t)
        shapes = self.shapes
        walks = shapes.io(in_t, out_t)
        order_free = runtime.exact and not walks.arrays
        flatten_in = walks.flatten_in

        def settled(u: Any) -> Any:
            g = pullback(u)
            reals: list = []
            flatten_in(g, reals)
            if all_plain_finite(reals):  # the common case, checked at C speed: nothing to settle
                return g
            if order_free and not all(map(finite, reals)):
                # (a pullback that knows its result is settled at once may take a shorter way: `settling`)
                again = getattr(pullback, "settling", pullback)
                g = self.uncounted(lambda: again(shapes.map_reals(u, out_t, Paths.seed)))
            return self.settle(g, in_t)
        return y, settled

    def vjp_primal(self, f: Fun, x: Any, in_t: Type, out_t: Type) -> tuple[Any, Callable]:
        """The baseline `dl compare` measures against: the function's value, no derivative."""
        y = call1(f, x)
        zeros = [0.0] * len(self.shapes.flatten(x, in_t))
        return y, lambda u: self.shapes.rebuild(x, in_t, zeros)

    def jvp_primal(self, f: Fun, x: Any, out_t: Type) -> tuple[Any, Any]:
        """The baseline's jvp: the value, and a zero tangent."""
        y = call1(f, x)
        return y, self.shapes.rebuild(y, out_t, [0.0] * len(self.shapes.flatten(y, out_t)))

    def derivative(self, f: Fun, x: Any, site: Compiler) -> Any:
        return self.jvp(f, x, self.const(site, 1.0), REAL, REAL, site)[1]

    def jvp(self, f: Fun, x: Any, v: Any, in_t: Type, out_t: Type, site: Compiler) -> tuple:
        """(f x, the derivative of f at x in the direction v): the mode's way from primal code (its
        runtime's `jvp`), forward mode one language deeper inside a transformed program. Settled, and
        order-free where it is not finite."""
        check_shape(v, x, in_t, "the tangent given to jvp")
        shapes = self.shapes
        if site is not self.machine.primal:
            _nested_arrays(in_t, out_t, "jvp or derivative")
            y, t = self.jvp_forward(f, x, v, in_t, out_t, site)
            leaves = site.leaves
            return y, shapes.map_reals(t, out_t, lambda r: settle_real(r, leaves))
        runtime = self.machine.runtime
        y, t = runtime.jvp(self, f, x, v, in_t, out_t)
        order_free = runtime.exact and not (mentions_array(in_t) or mentions_array(out_t))
        if order_free and not all(map(finite, shapes.flatten(t, out_t))):
            _, t = self.uncounted(lambda: runtime.jvp(self, f, x, shapes.map_reals(v, in_t, Paths.seed), in_t, out_t))
        return y, self.settle(t, out_t)

    def settle(self, d: Any, t: Type) -> Any:
        """A derivative as a user sees it (lang/model/zeros.py, settle). An Array leaf holds float64s
        already: it is left as it is, without a walk over its elements. (Arrays get no order-free pass:
        their non-finite derivatives are IEEE sums in the mode's own order, docs/transforms.md, Arrays.)"""
        if mentions_array(t):
            return self.shapes.map_leaves(d, t, settle, lambda a: a)
        return self.shapes.map_reals(d, t, settle)

    # ---- derivatives of any shape, from the same vjp and jvp
    def one_hot(self, site: Compiler, shape: Any, t: Type, n: int, i: int) -> Any:
        """The i-th of the n basis vectors shaped like `shape`: 1 at its i-th real, the symbolic zero at the
        others — they are zero by construction (docs/transforms.md, Zeros and infinities), so a seed never
        carries one direction's infinite partial into another's entry as 0 * inf."""
        seed = [self.const(site, ZERO)] * n
        seed[i] = self.const(site, 1.0)
        return self.shapes.rebuild(shape, t, seed)

    def jacobian_rows(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler) -> list:
        """`jacrev f x`: one row of the Jacobian per output real of f, each shaped like x — one vjp and one
        pullback per output real. Row i is `grad` of f's i-th output real, entry for entry."""
        y, pullback = self.vjp(f, x, in_t, out_t, site)
        m = len(self.shapes.flatten(y, out_t))
        return [pullback(self.one_hot(site, y, out_t, m, i)) for i in range(m)]

    def jacobian_columns(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler) -> list:
        """`jacobianT f x`: one column of the Jacobian per input real of x, each shaped like f x — one jvp
        per input real, the others' tangents zero by construction."""
        n = len(self.shapes.flatten(x, in_t))
        return [self.jvp(f, x, self.one_hot(site, x, in_t, n, j), in_t, out_t, site)[1] for j in range(n)]

    def jacobian_rows_forward(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler) -> list:
        """`jacfwd f x`: the rows of `jacrev f x`, from the columns of `jacobianT f x` (one jvp per input
        real), transposed here: a list of x-shaped rows cannot be written in dl from f x-shaped columns
        without a walk over an unknown type."""
        shapes = self.shapes
        columns = [shapes.flatten(t, out_t) for t in self.jacobian_columns(f, x, in_t, out_t, site)]
        m = len(columns[0]) if columns else len(shapes.flatten(call1(f, x), out_t))
        return [shapes.rebuild(x, in_t, [column[i] for column in columns]) for i in range(m)]

    def value_and_grad_aux(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler) -> tuple:
        """`value_and_grad_aux f x` for f x = (v, aux): ((v, aux), the gradient of v) from one vjp, whose
        cotangent for aux is the symbolic zero: aux comes back as it was computed, and no path through it
        reaches the gradient (JAX's `has_aux`)."""
        y, pullback = self.vjp(f, x, in_t, out_t, site)
        aux_t = prune(out_t).items[1]
        n_aux = len(self.shapes.flatten(y[1], aux_t))
        u = (self.const(site, 1.0), self.shapes.rebuild(y[1], aux_t, [self.const(site, ZERO)] * n_aux))
        return (y, pullback(u))

    def uncounted(self, again: Callable) -> Any:
        """The order-free pass over a result that was not finite, left out of the counters (they
        describe the mode's own pass); counted apart as `order_free_passes` (docs/transforms.md,
        Cost counters)."""
        counters = self.machine.counters
        saved = {k: getattr(counters, k) for k in counters.NAMES}
        extra = dict(counters.extra)
        try:
            return again()
        finally:
            for k, v in saved.items():
                setattr(counters, k, v)
            counters.extra.clear()
            counters.extra.update(extra)
            counters.extra["order_free_passes"] = extra.get("order_free_passes", 0) + 1

    def jvp_by_rows(self, runtime, f: Fun, x: Any, v: Any, in_t: Type, out_t: Type) -> tuple:
        """J v from the rows of J, one pullback per output real: a mode's vjp run for a jvp. For a
        function into Real (`derivative`) that is one reverse pass."""
        y, pullback = runtime.vjp(self, f, x, in_t, out_t)
        shapes = self.shapes
        vs = shapes.flatten(v, in_t)
        n_out = len(shapes.flatten(y, out_t))
        one = Paths.seed(1.0) if any(type(r) is Paths for r in vs) else 1.0
        tangent = []
        for i in range(n_out):
            seed = [ZERO] * n_out
            seed[i] = one
            row = shapes.flatten(pullback(shapes.rebuild(y, out_t, seed)), in_t)
            total = ZERO
            for r, vj in zip(row, vs):
                total = total + r * vj
            tangent.append(total)
        return y, shapes.rebuild(y, out_t, tangent)

    # ---- forward mode by the dual-number transform, one language deeper than the site
    def jvp_forward(self, f: Fun, x: Any, v: Any, in_t: Type, out_t: Type, site: Compiler) -> tuple:
        """(f x, the derivative of f at x in the direction v), by one run of →D(f)."""
        target = self.deeper(site)
        leaves = target.leaves
        y_dual = call1(self.lift_fun(f, target, {}), attach_tangents(x, v, in_t, leaves))
        return split_tangents(y_dual, out_t, leaves, self.zero_leaf)

    def vjp_forward(self, f: Fun, x: Any, in_t: Type, out_t: Type, site: Compiler) -> tuple[Any, Callable]:
        """A vjp by forward mode: one jvp per input real, the Jacobian's columns kept for the pullback.
        The other inputs' tangents are the symbolic zero: the seed of input i is e_i by construction."""
        shapes = self.shapes
        n = len(shapes.flatten(x, in_t))
        zero = self.const(site, ZERO)
        leaves = getattr(site, "leaves", FloatLeaves)

        report = passes(self.machine, "forward", n)

        def jacobian(one: Any) -> tuple[Any, list]:
            columns, y = [], None
            for i in range(n):
                report(i)
                seed = [zero] * n
                seed[i] = one
                y, y_dot = self.jvp_forward(f, x, shapes.rebuild(x, in_t, seed), in_t, out_t, site)
                columns.append(shapes.flatten(y_dot, out_t))
            return y, columns
        y, columns = jacobian(self.const(site, 1.0))
        if n == 0:
            y = call1(f, x)

        def pullback(u: Any) -> Any:
            us = shapes.flatten(u, out_t)
            used = jacobian(Paths.seed(1.0))[1] if any(type(ui) is Paths for ui in us) else columns
            grads = []
            for column in used:
                total = zero
                for ui, j in zip(us, column):
                    total = tree_add(total, tree_mul(ui, j, leaves), leaves)
                grads.append(total)
            return shapes.rebuild(x, in_t, grads)
        return y, pullback

    def const(self, site: Compiler, r: float) -> Any:
        """The real constant r as a value of the site's language."""
        return tree_const(r, site.depth, getattr(site, "leaves", FloatLeaves))

    @staticmethod
    def zero_leaf(t: Type, y: Any) -> Any:
        return {INT: 0, BOOL: False, UNIT: ()}.get(t, y)

    # ---- the target languages' compilers
    def deeper(self, site: Compiler) -> Compiler:
        """The language one forward level deeper than the site's (forward mode from primal code); a target
        language says which is its own deeper language (lang/back/languages.py)."""
        if isinstance(site, TransformCompiler):
            return site.deeper(self)
        return self.forward_compiler(site.depth + 1)

    def language(self, name: str, make: Callable) -> Compiler:
        """The compiler of a mode's own language (made by `make(machine)` on first use)."""
        if name not in self.compilers:
            self.compilers[name] = make(self.machine)
        return self.compilers[name]

    def forward_compiler(self, depth: int) -> Compiler:
        """→D applied `depth` times: the language of derivatives nested `depth` deep."""
        key = ("forward", depth)
        if key not in self.compilers:
            parent = self.machine.primal if depth == 1 else self.forward_compiler(depth - 1)
            self.compilers[key] = ForwardCompiler(self.machine, parent, depth,
                                                  "forward" if depth == 1 else f"forward^{depth}")
        return self.compilers[key]

    def reverse_compiler(self, runtime, depth: int, faithful: bool = False) -> Compiler:
        """←D(→D^depth t) for a reverse runtime (factoring or naive); every depth records on the
        runtime's one linear backend. At depth 0 the factoring runtime runs the preaccumulated term
        (lang/transforms/preaccumulate.py) unless the machine says not to, or `faithful` asks for ←D's own."""
        if runtime.name not in self.backends:
            self.backends[runtime.name] = runtime.backend(self.machine.counters, self.machine.counting)
        backend = self.backends[runtime.name]
        preaccumulated = depth == 0 and backend.factoring and self.machine.preaccumulate and not faithful
        key = (runtime.name, depth, preaccumulated)
        if key not in self.compilers:
            parent = None if depth == 0 else self.reverse_compiler(runtime, depth - 1)
            self.compilers[key] = ReverseCompiler(self.machine, backend, runtime, depth, parent, preaccumulated)
        return self.compilers[key]

    # ---- reverse mode by the backpropagation transform
    def top_reverse(self, runtime, faithful: bool = False) -> Compiler:
        """The compiler of ←D for derivative calls of primal code (memoised: one lookup per call)."""
        compiler = self._top_reverse.get((runtime, faithful))
        if compiler is None:
            compiler = self._top_reverse[(runtime, faithful)] = self.reverse_compiler(runtime, 0, faithful)
        return compiler

    def vjp_reverse(self, f: Fun, x: Any, in_t: Type, out_t: Type, runtime,
                    faithful: bool = False) -> tuple[Any, Callable]:
        compiler = self.top_reverse(runtime, faithful)
        # the order-free pass (a result was not finite) sums ←D's own paths: the unsimplified term
        redo = (lambda: self.vjp_reverse(f, x, in_t, out_t, runtime, faithful=True)) if compiler.preaccumulated \
            else None
        return self.vjp_recorded(f, x, in_t, out_t, compiler, self.backends[runtime.name], call1, redo)

    def vjp_recorded(self, f: Fun, x: Any, in_t: Type, out_t: Type, compiler: Compiler, backend,
                     run: Callable[[Fun, Any], Any], redo: Callable | None = None) -> tuple[Any, Callable]:
        """A vjp whose forward pass records on a linear backend (lang/back/linear.py): f lifted into
        `compiler`'s language and run by `run(f', x')` (a call for ←D, a trampoline for shift-reset), the
        inputs' sinks first on the records; the pullback sweeps them (or, given the order-free pass's
        Paths cotangents, the vjp `redo()` makes does)."""
        dual_f = f.code.info.get(compiler)  # a top-level function's transform, kept on its code
        if dual_f is None:
            dual_f = self.lift_fun(f, compiler, {})
        walks = self.shapes.io(in_t, out_t)  # every walk of this call, fetched at once
        saved = backend.records
        collecting = gc.isenabled()
        # The collector is off while the tape is recorded and swept: the tape only grows then, and each
        # collection would walk the young records again to free nothing. Cyclic garbage the program makes
        # meanwhile is collected afterwards.
        gc.disable()
        try:
            x_dual, n_sinks = walks.inject(x, 0)   # the inputs' sinks: identities 0 .. n-1
            records = backend.records = [SINK] * n_sinks
            y_dual = run(dual_f, x_dual)
        finally:
            backend.records = saved
            if collecting:
                gc.enable()
        backprops: list = []
        y = walks.unlift(y_dual, backprops)
        real_out, leaves_out, rebuild_in = walks.real_out, walks.leaves_out, walks.rebuild_leaves_in
        paths_values = getattr(backend, "paths_values", None)  # (factoring's: the order-free pass on floats)

        def again(u: Any, values: bool) -> Any:  # the order-free pass by the vjp redo() makes
            redone = redo()[1]
            return redone.settling(u) if values and hasattr(redone, "settling") else redone(u)

        def swept(u: Any, values: bool) -> Any:
            """values: the caller settles the result at once (the order-free pass: `vjp`)."""
            if real_out:  # one cotangent, one backpropagator
                if redo is not None and type(u) is Paths:
                    return again(u, values)
                seeds = [(backprops[0], u)] if backprops[0] is not None and u is not ZERO else []
            else:
                cotangents: list = []
                leaves_out(u, cotangents)  # an Array is one leaf: one cotangent, one backpropagator
                if redo is not None and any(type(ct) is Paths for ct in cotangents):
                    return again(u, values)
                seeds = [(p, ct) for p, ct in zip(backprops, cotangents) if p is not None and ct is not ZERO]
            collecting = gc.isenabled()
            gc.disable()
            try:
                out = backend.paths_values(records, seeds, n_sinks) if values and paths_values else None
                if out is None:
                    out = backend.backward(records, seeds, n_sinks)
                return rebuild_in(x, out, 0)[0]
            finally:
                if collecting:
                    gc.enable()
        # (two wrappers of `swept`, not one function and a `settling` that calls it back: such a cycle keeps the
        # tape alive until the collector finds it, which then walks every record)
        pullback = lambda u: swept(u, False)  # noqa: E731
        pullback.settling = lambda u: swept(u, True)  # what `vjp`'s order-free pass calls
        return y, pullback

    # ---- lifting: values of one language into the next
    def lift_fun(self, fn: Fun, compiler: Compiler, memo: dict) -> Fun:
        """The transform of a function value: its transformed code, its captured values lifted."""
        if id(fn) in memo:
            return memo[id(fn)]
        code = fn.code
        if code.mode == "partial" and hasattr(compiler, "lift_partial"):  # a language whose calls return more
            return compiler.lift_partial(self, fn, memo)                   # than the result (chad)
        if code.mode == "partial":  # (f, args) lifted; the code is the target's way to finish the call
            out = Fun(compiler.lifted_partial(code), ())
            memo[id(fn)] = out
            out.captured = self.lift(fn.captured, compiler, memo)
            return out
        if code.mode != compiler.source_name:
            raise NestedDifferentiation(
                "nested differentiation: a pullback or a function of the "
                f"{code.mode} language cannot be differentiated in the {compiler.name} language")
        key = code.info.get("global")
        if key is not None:
            out = code.info[compiler] = compiler.global_value(*key)  # (kept for vjp_reverse's next call)
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
        """The compiled transform of a lambda's code, and where each of its captured values comes from."""
        cache_key = ("transformed", compiler)  # the compiler itself: an id could be reused
        if cache_key not in code.info:
            dual_code = compiler.open_lambda(code)
            where = tuple(code.free.index(k) for k in dual_code.free)
            code.info[cache_key] = (dual_code, where)
        return code.info[cache_key]

    def lift(self, v: Any, compiler: Compiler, memo: dict) -> Any:
        """A value of the language below as a constant of `compiler`'s (walked by its representation)."""
        leaf = compiler.lift_leaf(v)
        if leaf is not None:
            return leaf
        t = type(v)
        if t is float or t is Zero:  # (a tangent of the language below may be the symbolic zero)
            return compiler.lift_real(v)
        if t.__name__ == "ndarray":
            return compiler.lift_array(v)
        if t is tuple:
            return tuple(self.lift(x, compiler, memo) for x in v)
        if t is list:
            if not v or isinstance(v[0], (int, str)):  # a list is homogeneous: [Int], [Bool], ... hold no reals
                return v
            return [self.lift(x, compiler, memo) for x in v]
        if t is Fun:
            return self.lift_fun(v, compiler, memo)
        return v


__all__ = ["ADKernel", "TCon"]


PASSES_WORTH_SAYING = 10_000  # a derivative of this many passes of the function or more is announced


def passes(machine, mode: str, n: int, per: int = 1) -> Callable[[int], None]:
    """Tell `machine.progress` that a derivative will make `n` passes of the function, `per` per input
    real (forward and numeric modes: issue 19 item 4), and return a function to call before pass i."""
    progress = machine.progress
    if progress is None or n < PASSES_WORTH_SAYING:
        return lambda i: None
    every = max(1, n // 200)

    def report(i: int) -> None:
        if i % every == 0:
            progress(mode, i, n, per)
    return report
