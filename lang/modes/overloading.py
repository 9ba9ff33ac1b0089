"""Operator overloading, the shape of the tape and symbolic modes.

They run the untransformed program, compiled once more with the real
primitives replaced — recording tape nodes, or building expression nodes —
and everything else (lets, closures, map, fold, recursion) left as it is.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model import core as c
from ..back.compiler import Compiler, PrimCode
from ..model.primitives import Primitive, array_instance, array_kernel
from ..model.types import INT as INT_T, REAL, TList, Type, prune, resolve
from ..model.values import apply
from ..transforms.arrays import arg_kind, vjp_terms
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

    def lift_array(self, a: Any) -> Any:
        return a

    def refuse_nested(self, e: c.Prim):
        """A derivative call inside a function this language is differentiating: refused, by name."""
        return refusal(self.name, e)

    def overload(self, prim: Primitive, impl: Callable) -> Callable:
        raise NotImplementedError

    def primal_of(self, v: Any) -> Any:
        raise NotImplementedError

    def overload_array(self, prim: Primitive, e: c.Prim) -> Callable:
        """The function that replaces an operation on Arrays (tape: array nodes; symbolic: a refusal)."""
        raise NotImplementedError

    def primitive_code(self, prim: Primitive, e: c.Prim) -> PrimCode:
        if array_instance(prim, [a.ty for a in e.args], e.ty):
            return PrimCode(fn=self.overload_array(prim, e), fails=True,
                            elements=prim.cost if prim.kind == "array" else "array")
        at_real = any(prune(a.ty) == REAL for a in e.args)
        if prim.kind == "real" and at_real:
            return PrimCode(fn=self.overload(prim, prim.impl))
        if prim.kind in ("compare", "toint") and at_real:
            impl, primal = prim.impl, self.primal_of
            return PrimCode(fn=lambda *args: impl(*[primal(a) for a in args]))
        return super().primitive_code(prim, e)

    def array_vjp(self, prim: Primitive, e: c.Prim) -> Callable:
        """The cotangents of an array operation's arguments, (x1, ..., xk, r, c) -> [term value or None per
        argument], from its row's rules (lang/transforms/arrays.py), compiled once per instance."""
        key = ("vjp", prim.name, tuple(resolve(a.ty) for a in e.args), resolve(e.ty))
        if key not in self.partial_functions:
            names = [f"x{i}" for i in range(len(e.args))]
            args = [c.Var(n, ty=resolve(a.ty)) for n, a in zip(names, e.args)]
            r, ct = c.Var("r", ty=resolve(e.ty)), c.Var("ct", ty=resolve(e.ty))
            terms = vjp_terms(prim, args, r, ct)
            self.partial_functions[key] = self._compile_rule(names + ["r", "ct"], terms)
        return self.partial_functions[key]

    def unlist_vjp(self, prim: Primitive, e: c.Prim) -> Callable:
        """For a list-valued array operation: (x1, ..., xk, i, c) -> the cotangents of element i's."""
        key = ("unlist", prim.name, tuple(resolve(a.ty) for a in e.args))
        if key not in self.partial_functions:
            names = [f"x{i}" for i in range(len(e.args))]
            args = [c.Var(n, ty=resolve(a.ty)) for n, a in zip(names, e.args)]
            item = resolve(e.ty).item
            i, ct = c.Var("i", ty=INT_T), c.Var("ct", ty=item)
            terms = prim.unlist(*args, i)[2](ct)
            self.partial_functions[key] = self._compile_rule(names + ["i", "ct"], terms)
        return self.partial_functions[key]

    def _compile_rule(self, names: list[str], terms: list) -> Callable:
        """A Python function of `names` giving one value per term (None where the term is None)."""
        present = [k for k, t in enumerate(terms) if t is not None]
        body: c.Expr = c.Tuple(tuple(terms[k] for k in present), ty=None) if len(present) != 1 \
            else terms[present[0]]
        for n in reversed(names):
            body = c.Lam(n, body)
        fun = self.machine.primal.compile_closed(body)()
        n_terms, single = len(terms), len(present) == 1

        def rule(*values):
            got = apply(fun, values)
            out = [None] * n_terms
            for k, v in zip(present, (got,) if single else got):
                out[k] = v
            return out
        return rule

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
