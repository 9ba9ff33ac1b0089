"""The symbolic mode: the program unrolled into one expression, differentiated by the textbook rules.

The untransformed program runs with each input real replaced by a symbol.
A real primitive applied to an expression builds a bigger expression (and
keeps its value, so that `if` and loop counts are resolved at the point):
every `let`, call, branch and loop disappears, leaving a single expression
of the inputs. It is then differentiated by the rules of calculus, each
rule taken from the primitive table,

    d(f(e1, ..., ek)) = Σ ∂i f(e1, ..., ek) · d(ei)

simplified on the way (0·e = 0, 1·e = e, e + 0 = e, with 0 the symbolic
zero: a constant's derivative, or a partial the table defines as zero —
never a 0.0 of the program, lang/model/zeros.py), and evaluated.

Expression swell. The expression has *no sharing*: `let y = x * x in y * y`
is the tree (x * x) * (x * x). Sizes are therefore tree sizes, and a
program that reuses a value at each of n steps unrolls into an expression
of size 2^n; its derivative is bigger still. The expressions are held in
memory as graphs (each distinct subexpression once, so memory stays
proportional to the program's run), but sized and evaluated as the trees
they denote: evaluation walks every path, costing time proportional to the
tree size, which is the point of this mode.

A size budget. Differentiating by one input walks the expression's graph,
so a gradient over n inputs costs n times the graph, in time and in memory
(the derivatives are kept): `grad (fun xs -> sum xs)` over 10^6 inputs is
10^12 nodes. When the expression's graph times the number of inputs is past
MAX_DERIVATIVE_NODES the mode stops before differentiating, with a runtime
error naming the sizes (docs/reference.md, Limits).
"""
from __future__ import annotations

from typing import Any, Callable

from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.primitives import PRIMITIVES
from ..model.printer import BINARY, POW, SUM, literal
from ..model.values import call1
from ..model.types import REAL
from ..model.zeros import ZERO, Paths
from ..transforms.common import arrays_unsupported, refuse_array_types
from .overloading import OverloadingCompiler
from .runtimes import Runtime


class Sym:
    """An expression node: a primitive applied to expressions or numbers, with its value."""

    __slots__ = ("op", "args", "value", "size", "depth", "__weakref__")

    def __init__(self, op: str, args: tuple, value: float):
        self.op = op
        self.args = args
        self.value = value
        self.size = 1 + sum(a.size if type(a) is Sym else 1 for a in args)
        self.depth = 1 + max((a.depth for a in args if type(a) is Sym), default=0)


def variable(name: str, value: float) -> Sym:
    s = Sym("var", (), value)
    s.args = (name,)
    return s


def tree_size(e: Any) -> int:
    return e.size if type(e) is Sym else 1


class SymbolicCompiler(OverloadingCompiler):
    def __init__(self, machine):
        super().__init__(machine, "symbolic")

    def overload_array(self, prim, e: c.Prim) -> Callable:
        """Arrays are refused (the shared diagnostic): an unrolled expression has no array nodes."""
        error = arrays_unsupported("symbolic", f"the array operation `{e.op}`", e.span)

        def refuse(*args):
            raise error
        return refuse

    def primal_of(self, v: Any) -> Any:
        return v.value if type(v) is Sym else v

    custom_rules = True
    primal_real = primal_of

    def custom_leaf(self, value: float, pairs: list) -> Any:
        """y + Σ J · (x - x₀): an expression with the rule's value whose derivative by the table's rules is a
        row of the rule's Jacobian (x - x₀ is 0 at the point; its derivative is x's)."""
        out: Any = value
        for x, weight in pairs:
            if type(x) is Sym and weight is not ZERO:
                offset = Sym("-", (x, x.value), 0.0)
                out = Sym("+", (out, Sym("*", (weight, offset), 0.0)), value)
        return out

    def varying_leaf(self, v: Any) -> bool | None:
        """An expression carries a derivative; a plain float is a constant."""
        return True if type(v) is Sym else False if type(v) is float else None

    def overload(self, prim, impl: Callable) -> Callable:
        name = prim.name

        def build(*args):
            if not any(type(a) is Sym for a in args):
                return impl(*args)
            values = [a.value if type(a) is Sym else a for a in args]
            return Sym(name, args, impl(*values))
        return build


# ---- differentiation by rules ---------------------------------------------------

ONE = 1.0


def s_mul(a: Any, b: Any) -> Any:
    """a · b, with 0·e = 0 (the symbolic zero only), 1·e = e, -1·e = -e, and constants written first."""
    if type(a) is not Sym and type(b) is not Sym:
        return a * b
    if type(b) is not Sym:
        a, b = b, a
    if type(a) is not Sym:
        if a is ZERO:
            return ZERO
        if a == 1.0:
            return b
        if a == -1.0:
            return Sym("neg", (b,), -_value(b))
    return Sym("*", (a, b), _value(a) * _value(b))


def s_add(a: Any, b: Any) -> Any:
    """a + b, with e + 0 = e and a + -b = a - b."""
    if type(a) is not Sym and type(b) is not Sym:
        return a + b
    if a is ZERO:
        return b
    if b is ZERO:
        return a
    if type(b) is Sym and b.op == "neg":
        return Sym("-", (a, b.args[0]), _value(a) - _value(b.args[0]))
    return Sym("+", (a, b), _value(a) + _value(b))


def _value(e: Any) -> float:
    return e.value if type(e) is Sym else e


MAX_DERIVATIVE_NODES = 5_000_000  # graph nodes x inputs (~1 GB, a minute): past it, a runtime error (the size budget)


class _Rules:
    """Builds derivative expressions from the primitive table's partial-derivative terms."""

    def __init__(self) -> None:
        self.memo: dict[tuple[int, str], Any] = {}
        self.keep: list = []  # keeps memoised nodes alive (ids stay unique)

    def derivative(self, e: Any, var: str) -> Any:
        """d e / d var (expression graph; its tree is what the textbook rules write)."""
        if type(e) is not Sym:
            return ZERO
        stack = [e]
        while stack:  # iterative post-order: expressions can be deep
            node = stack[-1]
            key = (id(node), var)
            if key in self.memo:
                stack.pop()
                continue
            pending = [a for a in node.args if type(a) is Sym and (id(a), var) not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.memo[key] = self.rule(node, var)
            self.keep.append(node)
        return self.memo[(id(e), var)]


    def rule(self, node: Sym, var: str) -> Any:
        if node.op == "var":
            return ONE if node.args[0] == var else ZERO
        prim = PRIMITIVES[node.op]
        partials = prim.partials(*[_Quote(a) for a in node.args], _Quote(node))
        total: Any = ZERO
        for arg, partial in zip(node.args, partials):
            d_arg = self.memo[(id(arg), var)] if type(arg) is Sym else ZERO
            if d_arg is ZERO:
                continue
            total = s_add(total, s_mul(_build(partial), d_arg))
        return total


def check_size(outputs: list, inputs: int, limit: int = MAX_DERIVATIVE_NODES) -> None:
    """Stop before differentiating when the derivatives would cost more than the size budget: each input
    is one walk of the expression's graph (its distinct nodes)."""
    seen: set[int] = set()
    stack = [o for o in outputs if type(o) is Sym]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(a for a in node.args if type(a) is Sym)
    if len(seen) * inputs > limit:
        raise DlRuntimeError(
            f"symbolic mode: differentiating an expression of {len(seen):,} distinct nodes by each of {inputs:,} "
            f"inputs would build {len(seen) * inputs:,} derivative nodes, past the mode's size budget of {limit:,}: "
            "textbook differentiation walks the expression once per input; backprop computes this gradient in one pass")


class _Quote(c.Lit):
    """An expression standing as a term inside a partial-derivative rule."""

    __slots__ = ()

    def __init__(self, e: Any):
        object.__setattr__(self, "value", e)
        object.__setattr__(self, "ty", REAL)


def _build(term: c.Expr) -> Any:
    """A partial-derivative term of the table as an expression over the quoted subexpressions."""
    match term:
        case _Quote(value=e):
            return e
        case c.Lit(value):
            return float(value)
        case c.Prim(op, ()) if PRIMITIVES[op].kind == "toreal":  # the symbolic zero, pi
            return PRIMITIVES[op].impl
        case c.Prim(op, args):
            built = [_build(a) for a in args]
            prim = PRIMITIVES[op]
            if op == "*":
                return s_mul(*built)
            if op == "+":
                return s_add(*built)
            if prim.kind == "compare":
                return prim.impl(*[_value(b) for b in built])
            if not any(type(b) is Sym for b in built):
                return prim.impl(*built)
            return Sym(op, tuple(built), prim.impl(*[_value(b) for b in built]))
        case c.If(cond, then, else_):
            return _build(then) if _build(cond) else _build(else_)
    raise AssertionError(f"cannot build the derivative term {term!r}")


def evaluate_tree(e: Any, budget_steps: list) -> float:
    """Evaluate an expression as the tree it denotes (no sharing): cost = tree size."""
    if type(e) is not Sym:
        return e
    budget_steps[0] += 1
    if e.op == "var":
        return e.value
    return PRIMITIVES[e.op].impl(*[evaluate_tree(a, budget_steps) for a in e.args])


# ---- the mode ---------------------------------------------------------------------


class SymbolicRuntime(Runtime):
    name = "symbolic"

    def vjp(self, kernel, f, x, in_t, out_t):
        return vjp_symbolic(kernel, f, x, in_t, out_t)

    def metrics(self, machine) -> dict:
        """The term is the unrolled expression and its derivatives (tree sizes); evaluating the
        derivative trees counts as primitive operations."""
        out = super().metrics(machine)
        extra = machine.counters.extra
        out["term"] = extra.get("expression_size", 0) + extra.get("derivative_size", 0)
        out["prims"] += extra.get("evaluation_steps", 0)
        return out


SYMBOLIC = SymbolicRuntime()


def vjp_symbolic(kernel, f, x, in_t, out_t) -> tuple[Any, Callable]:
    refuse_array_types("symbolic", in_t, out_t)
    compiler: SymbolicCompiler = kernel.language("symbolic", SymbolicCompiler)
    counters = kernel.machine.counters
    names: list[str] = []

    def symbol(r: float) -> Sym:
        names.append(f"x{len(names) + 1}")
        return variable(names[-1], r)
    x_sym = kernel.shapes.map_reals(x, in_t, symbol)
    y_sym = call1(kernel.lift_fun(f, compiler, {}), x_sym)
    shapes = kernel.shapes
    outputs = shapes.flatten(y_sym, out_t)
    y = shapes.map_reals(y_sym, out_t, _value)
    check_size(outputs, len(names))
    rules = _Rules()
    derivatives = [[rules.derivative(o, v) for v in names] for o in outputs]
    steps = [0]
    jacobian = [[evaluate_tree(d, steps) for d in row] for row in derivatives]
    report = {
        "inputs": names,
        "expression": outputs,
        "derivatives": derivatives,
        "expression_size": sum(tree_size(o) for o in outputs),
        "derivative_size": sum(tree_size(d) for row in derivatives for d in row),
        "evaluation_steps": steps[0],
    }
    kernel.machine.symbolic_reports.append(report)
    extra = counters.extra
    for key in ("expression_size", "derivative_size", "evaluation_steps"):
        extra[key] = extra.get(key, 0) + report[key]

    def pullback(u: Any) -> Any:
        us = shapes.flatten(u, out_t)
        used = jacobian
        if any(type(ui) is Paths for ui in us):  # the kernel asks for the order-free value
            used = paths_jacobian(compiler, outputs, names)
        grads = []
        for i in range(len(names)):
            total = ZERO
            for j, ui in enumerate(us):
                total = total + ui * used[j][i]
            grads.append(total)
        return shapes.rebuild(x, in_t, grads)
    return y, pullback


def paths_jacobian(compiler: SymbolicCompiler, outputs: list, names: list[str]) -> list[list]:
    """The Jacobian as sums over the expression's paths (lang/model/zeros.py): d e / d x_i by the
    chain rule on the expression graph, every partial evaluated at its node's value."""
    rows = []
    for o in outputs:
        row = []
        for var in names:
            memo: dict[int, Any] = {}
            stack = [o] if type(o) is Sym else []
            while stack:  # post-order over the graph, as _Rules.derivative
                node = stack[-1]
                if id(node) in memo:
                    stack.pop()
                    continue
                pending = [a for a in node.args if type(a) is Sym and id(a) not in memo]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()
                if node.op == "var":
                    memo[id(node)] = Paths.seed(1.0) if node.args[0] == var else ZERO
                    continue
                prim = PRIMITIVES[node.op]
                values = [_value(a) for a in node.args]
                total: Any = ZERO
                for arg, d in zip(node.args, compiler.partials(prim)(*values, node.value)):
                    if type(arg) is Sym:
                        total = total + d * memo[id(arg)]
                memo[id(node)] = total
            row.append(memo[id(o)] if type(o) is Sym else ZERO)
        rows.append(row)
    return rows


# ---- printing -----------------------------------------------------------------------


def show_expression(e: Any, limit: int = 2000) -> str:
    """An expression in dl syntax (the tree, so shared parts repeat), cut at `limit` characters."""
    out: list[str] = []
    budget = [limit]

    def emit(text: str) -> None:
        out.append(text)
        budget[0] -= len(text)
        if budget[0] < 0:
            raise _Cut

    def walk(e: Any, ctx: int) -> None:
        if type(e) is not Sym:
            text = literal(float(e))
            emit(f"({text})" if text.startswith("-") and ctx > SUM else text)
            return
        if e.op == "var":
            emit(e.args[0])
            return
        if e.op in BINARY and len(e.args) == 2:
            prec = BINARY[e.op]
            if prec < ctx:
                emit("(")
            walk(e.args[0], prec)
            emit(f" {e.op} ")
            walk(e.args[1], prec + 1)
            if prec < ctx:
                emit(")")
            return
        if e.op == "neg":
            emit("-")
            walk(e.args[0], POW)
            return
        emit(e.op)
        for a in e.args:
            emit(" ")
            walk(a, 99)

    try:
        walk(e, 0)
    except _Cut:
        return "".join(out)[:limit] + " ..."
    return "".join(out)


class _Cut(Exception):
    pass
