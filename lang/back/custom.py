"""Custom rules: `custom_vjp f rule x` and `custom_jvp f rule x` (docs/reference.md §7, Custom derivatives).

Both are `f x` in primal code, so a mode that runs primal code (numeric, the baseline) differentiates the
body. In a first-order target language (←D, →D, Δ, the tape, the symbolic expressions) the rule runs on
the value x0 of x and gives the Jacobian J of f at x0, which enters the language through one
`site.custom_leaf(y_i, [(x_j, J_ij)])` per output real: a recorded backpropagator, a tangent, a Delta
node, a tape entry, an expression. The two rules differ only in how J is read off them:

    custom_vjp   rule x0 = (y, pullback)       row i of J    = pullback e_i      (one call per output real)
    custom_jvp   rule x0 x_dot = (y, y_dot)    column j of J = y_dot at x_dot = e_j  (one call per input real)

So a forward rule is used by reverse modes too — transposed exactly, because J is materialised — provided
its tangent is linear in x_dot, as JAX also requires to transpose one; and every mode uses the same J, so
the modes agree to the last bit.

Captured variables. A rule (or body) that closes over a variable carrying a derivative — one that depends
on the differentiated input — would drop that derivative: the rule only says how f depends on x (the trap
of JAX's custom_vjp with closures, and of Futhark's). Such a capture is refused with a diagnostic that
names it; constants (anything with no derivative in the site's language) may be captured freely. A rule
written in place runs in the site's language on x0 lifted as a constant, so a capture that the walk over
captured values did not see still shows as a derivative on the rule's outputs, and is refused there too.

Nesting. Deeper than first order (a derivative of a derivative through a rule) the rule is refused: it is
ordinary code run on plain values, with no derivative of its own.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.types import Type
from ..model.values import Fun, call1, call2, native
from .compiler import Compiler
from .shapes import check_shape, io_types
from ..transforms.common import mentions_array


class CustomRules:
    """Compiles `custom_vjp`/`custom_jvp` calls for the kernel (one per machine)."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.machine = kernel.machine
        self.shapes = kernel.shapes

    def compile(self, site: Compiler, e: c.Prim, nested_error: type) -> Callable:
        """`custom_vjp f rule x` / `custom_jvp f rule x` as code of the site's language."""
        fn_arg, rule_arg = e.args[0], e.args[1]
        op, span = e.op, e.span
        if site is self.machine.primal:
            return lambda f, rule, x: call1(f, x)
        label = f"the custom rule `{rule_arg.name}`" if isinstance(rule_arg, c.Global) else f"the rule given to {op}"
        mode = self.machine.mode
        if mode.custom_rules == "refuses":  # the mode table's column: this mode has no way to apply a rule

            def cannot(*args):
                raise DlRuntimeError(f"the {mode.name} mode cannot use a custom rule ({op}): it would differentiate "
                                     "something else under its name (docs/reference.md, Custom derivatives, lists "
                                     "the modes that do)", span)
            return cannot
        if not site.custom_rules:
            def refuse(*args):
                raise nested_error(
                    f"nested differentiation through {label}: the rule is ordinary code run on plain values, "
                    f"with no derivative of its own, so the {site.name} language (a derivative inside a "
                    "derivative) cannot use it", span)
            return refuse
        in_t, out_t = io_types(e.src)
        if mentions_array(in_t) or mentions_array(out_t):
            def arrays(*args):
                raise DlRuntimeError(f"{op} of a function of an Array is not supported yet: a rule's Jacobian is "
                                     "read one real at a time (give the rule a list of Reals, or leave the "
                                     "function without a rule)", span)
            return arrays
        # a top-level definition captures nothing: its primal code runs on plain values
        key = (rule_arg.module, rule_arg.name, rule_arg.inst) if isinstance(rule_arg, c.Global) else None
        body_is_global = isinstance(fn_arg, c.Global)

        def run(f, rule, x):
            try:
                if not body_is_global:
                    self.refuse_captures(site, f, f"the function given to {op}", op, fn_arg.span)
                if key is None:
                    self.refuse_captures(site, rule, label, op, rule_arg.span)
                    primal_rule = self.in_place(site, rule, label, op, in_t, out_t, rule_arg.span)
                else:
                    primal_rule = self.machine.primal.global_value(*key)
                return self.apply(site, op, primal_rule, label, x, in_t, out_t)
            except DlRuntimeError as err:
                raise err.with_span(span)
        return run

    # ---- the Jacobian, read off the rule
    def apply(self, site: Compiler, op: str, rule: Fun, label: str, x: Any, in_t: Type, out_t: Type) -> Any:
        """y with the rule's Jacobian attached to its reals, in the site's language."""
        shapes = self.shapes
        leaves = shapes.flatten(x, in_t)
        x0 = shapes.map_reals(x, in_t, site.primal_real)
        if op == "custom_vjp":
            y, rows = self.rows_of_pullback(rule, label, x0, in_t, out_t)
        else:
            y, rows = self.rows_of_tangents(rule, label, x0, len(leaves), in_t, out_t)
        ys = shapes.flatten(y, out_t)
        outputs = iter([site.custom_leaf(yi, list(zip(leaves, row))) for yi, row in zip(ys, rows)])
        return shapes.map_reals(y, out_t, lambda _: next(outputs))

    def rows_of_pullback(self, rule: Fun, label: str, x0: Any, in_t: Type, out_t: Type) -> tuple[Any, list]:
        """rule x0 = (y, pullback): row i of J is pullback e_i."""
        shapes = self.shapes
        y, pullback = call1(rule, x0)
        m = len(shapes.flatten(y, out_t))
        rows = []
        for i in range(m):
            seed = [0.0] * m
            seed[i] = 1.0
            row = call1(pullback, shapes.rebuild(y, out_t, seed))
            check_shape(row, x0, in_t, f"the gradient returned by the pullback of {label}")
            rows.append(shapes.flatten(row, in_t))
        return y, rows

    def rows_of_tangents(self, rule: Fun, label: str, x0: Any, n: int, in_t: Type, out_t: Type) -> tuple[Any, list]:
        """rule x0 x_dot = (y, y_dot): column j of J is y_dot at x_dot = e_j (x0 itself as the tangent of an
        input with no reals, whose other positions are x0's Ints, Bools and Units)."""
        shapes = self.shapes
        y, columns = None, []
        for j in range(n):
            seed = [0.0] * n
            seed[j] = 1.0
            y, y_dot = call2(rule, x0, shapes.rebuild(x0, in_t, seed))
            check_shape(y_dot, y, out_t, f"the tangent returned by {label}")
            columns.append(shapes.flatten(y_dot, out_t))
        if n == 0:
            y, _ = call2(rule, x0, x0)
        m = len(shapes.flatten(y, out_t))
        return y, [[column[i] for column in columns] for i in range(m)]

    # ---- rules written in place: captured variables
    def refuse_captures(self, site: Compiler, fn: Any, label: str, op: str, span) -> None:
        """Stop with a diagnostic if fn (a function value of the site's language) captures a value that carries
        a derivative: the rule would drop it."""
        names = self.varying_captures(site, fn, set())
        if names:
            shown = ", ".join(f"`{n}`" for n in names)
            raise DlRuntimeError(
                f"{label} captures {shown}, whose derivative it cannot give: {op}'s rule says how the result "
                "depends on the argument only, so the derivative through the captured value would be dropped. "
                "Pass it as part of the argument (and give its derivative in the rule), or capture only "
                "constants", span)

    def varying_captures(self, site: Compiler, fn: Any, seen: set) -> list:
        """The names of fn's captured variables that carry a derivative (a value with no name: `a value`)."""
        if type(fn) is not Fun or id(fn) in seen:
            return []
        seen.add(id(fn))
        names = []
        free = fn.code.free if len(fn.code.free) == len(fn.captured) else (None,) * len(fn.captured)
        for key, value in zip(free, fn.captured):
            if self.varies(site, value, seen):
                names.append(key[0] if key is not None else "a value")
        return list(dict.fromkeys(names))

    def varies(self, site: Compiler, v: Any, seen: set) -> bool:
        """Whether a value of the site's language carries a derivative somewhere (walked by representation)."""
        leaf = site.varying_leaf(v)
        if leaf is not None:
            return leaf
        t = type(v)
        if t is tuple or t is list:
            return any(self.varies(site, item, seen) for item in v)
        if t is Fun:
            return bool(self.varying_captures(site, v, seen))
        return False

    def in_place(self, site: Compiler, rule: Fun, label: str, op: str, in_t: Type, out_t: Type, span) -> Fun:
        """A rule written in place (a lambda, a partial application) as a function of plain values: it runs in
        the site's language on constants, and its results are read back as plain values — after checking
        that none carries a derivative (a capture the walk did not see)."""
        shapes = self.shapes
        lift = lambda v, t: shapes.map_reals(v, t, site.lift_real)  # noqa: E731

        def lower(v: Any, t: Type) -> Any:
            for leaf in shapes.flatten(v, t):
                if site.varying_leaf(leaf):
                    raise DlRuntimeError(f"{label} captures a value whose derivative it cannot give: its result "
                                         "depends on a differentiated variable other than its argument. Pass it "
                                         "as part of the argument, or capture only constants", span)
            return shapes.map_reals(v, t, site.primal_real)

        if op == "custom_vjp":
            def vjp_rule(x0):
                y, pullback = call1(rule, lift(x0, in_t))
                return lower(y, out_t), native(1, lambda u: lower(call1(pullback, lift(u, out_t)), in_t),
                                               "<pullback of a custom rule>")
            return native(1, vjp_rule, "<custom rule>")

        def jvp_rule(x0, x_dot):
            y, y_dot = call2(rule, lift(x0, in_t), lift(x_dot, in_t))
            return lower(y, out_t), lower(y_dot, out_t)
        return native(2, jvp_rule, "<custom rule>")
