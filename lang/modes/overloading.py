"""Operator overloading, the shape of the tape and symbolic modes.

They run the untransformed program, compiled once more with the real
primitives replaced — recording tape nodes, or building expression nodes —
and everything else (lets, closures, map, fold, recursion) left as it is.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model import core as c
from ..back.compiler import Compiler, PrimCode
from ..model.primitives import Primitive
from ..model.types import REAL, prune
from ..model.values import apply
from .table import refusal


class OverloadingCompiler(Compiler):
    """The untransformed program, with the real primitives given a new implementation.

    A subclass defines `overload(prim, impl)`: the function that replaces the
    Real instance of a differentiable primitive, and `primal_of(v)`: the
    number inside an overloaded value (for comparisons and floor/ceil/round).
    Function values of the primal program are recompiled in this language
    when they are differentiated (`open_lambda`); captured reals stay numbers.
    """

    source_name = "primal"

    def __init__(self, machine, name: str):
        super().__init__(machine, counting=machine.counting, name=name)
        self.partial_functions: dict[str, Callable] = {}

    def open_lambda(self, code):
        return self.compile_open(code.info.get("origin") or code.lam, code.name)

    def lift_leaf(self, v: Any) -> Any:
        return None

    def lift_real(self, r: float) -> float:
        return r

    def refuse_nested(self, e: c.Prim):
        """A derivative call inside a function this language is differentiating: refused, by name."""
        return refusal(self.name, e)

    def overload(self, prim: Primitive, impl: Callable) -> Callable:
        raise NotImplementedError

    def primal_of(self, v: Any) -> Any:
        raise NotImplementedError

    def primitive_code(self, prim: Primitive, e: c.Prim) -> PrimCode:
        at_real = any(prune(a.ty) == REAL for a in e.args)
        if prim.kind == "real" and at_real:
            return PrimCode(fn=self.overload(prim, prim.impl))
        if prim.kind in ("compare", "toint") and at_real:
            impl, primal = prim.impl, self.primal_of
            return PrimCode(fn=lambda *args: impl(*[primal(a) for a in args]))
        return super().primitive_code(prim, e)

    def partials(self, prim: Primitive) -> Callable:
        """The primitive's partial derivatives (its row's terms), compiled once to a Python function."""
        if prim.name not in self.partial_functions:
            names = [f"x{i}" for i in range(prim.arity)]
            args = [c.Var(n, ty=REAL) for n in names]
            result = c.Var("r", ty=REAL)
            body: c.Expr = c.Tuple(tuple(prim.partials(*args, result)), ty=None) if prim.arity > 1 \
                else prim.partials(*args, result)[0]
            term: c.Expr = body
            for n in reversed(names + ["r"]):
                term = c.Lam(n, term)
            fun = self.machine.primal.compile_closed(term)()
            if prim.arity == 1:
                self.partial_functions[prim.name] = lambda *vals: (apply(fun, vals),)
            else:
                self.partial_functions[prim.name] = lambda *vals: apply(fun, vals)
        return self.partial_functions[prim.name]
