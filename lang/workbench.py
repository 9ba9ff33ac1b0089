"""The transform workbench: transformed terms to read (`dl transform`, REPL `:transform`).

Which term each mode shows:

    backprop, backprop-naive   ←D(t), the BMP transform (the two modes differ only in how
                               the linear fragment is run, not in the term)
    forward                    →D(t), dual numbers
    symbolic                   the program unrolled at a point and differentiated
                               symbolically (needs a point: see lang/transforms/symbolic.py)
    tape, numeric              no term: they run the untransformed program (operator
                               overloading / finite differences)

A polymorphic definition is shown at its Real instance (its Num, Eq and
Diff variables set to Real), the instance whose derivatives are interesting.
"""
from __future__ import annotations

from . import core as c
from .errors import DlRuntimeError
from .mono import Specializer
from .printer import show_term
from .target_check import TargetLanguage, check
from .types import REAL, Type, show_scheme

def language(mode: str, spec: Specializer) -> TargetLanguage:
    """The target language of a mode, for the type checker."""
    d_type = type_transform(mode)

    def global_type(module: str, name: str, inst: tuple) -> Type:
        return d_type(spec.get(module, name, inst).ty)
    return TargetLanguage(mode, d_type, global_type)


def type_transform(mode: str):
    if mode in ("backprop", "backprop-naive"):
        from .transforms.backprop import d_type
        return d_type
    if mode == "forward":
        from .transforms.forward import Forward
        from .desugar import Fresh
        return Forward(Fresh(set())).type
    raise DlRuntimeError(f"the {mode} mode has no transformed term")


def transform_term(e: c.Expr, mode: str, simplify: bool = False) -> c.Expr:
    """The transformed term of a specialised core term."""
    if mode in ("backprop", "backprop-naive"):
        from .transforms.backprop import transform
    elif mode == "forward":
        from .transforms.forward import transform
    else:
        raise DlRuntimeError(f"the {mode} mode has no transformed term")
    out = transform(e)
    if simplify:
        from .transforms.simplify import simplify as clean
        out = clean(out)
    return out


def show_transform(e: c.Expr, mode: str, spec: Specializer, simplify: bool = False, title: str = "",
                   ascii_neg: bool = False) -> str:
    """A transformed term with its source and target types, checked, as text that parses back."""
    out = transform_term(e, mode, simplify)
    target_type = check(out, e.ty, language(mode, spec))
    arrow = "←D" if mode.startswith("backprop") else "→D"
    lines = [f"-- {arrow}({title or 'the term'}) in {mode} mode, simplified" if simplify
             else f"-- {arrow}({title or 'the term'}) in {mode} mode",
             f"-- source type: {show_scheme(e.ty)}",
             f"-- target type: {show_scheme(target_type, ascii_neg=ascii_neg)}",
             show_term(out)]
    return "\n".join(lines)


def default_instance(scheme) -> tuple:
    """The Real instance of a definition's constrained type variables."""
    return tuple(REAL for _ in scheme.constrained)


def _visible_def(program, name: str):
    """The definition `name` means in the file: its own or an import's (the module's exports), else the prelude's."""
    world = program.world
    key = program.module.exports.get(name) or world.prelude_exports.get(name)
    return world.defs.get(key) if key else None


def transform_command(args) -> str:
    """`dl transform FILE [--def NAME] [--mode M] [--simplify]`."""
    from .deep import run_deep
    from .pipeline import find_def, load

    def work() -> str:
        program = load(args.file)
        d = _visible_def(program, args.name) or find_def(program, args.name)
        spec = Specializer(program.world)
        inst = default_instance(d.scheme)
        e = spec.get(d.module, d.name, inst)
        if args.mode in ("tape", "numeric"):
            return (f"-- the {args.mode} mode has no transformed term: it runs the untransformed program\n"
                    f"-- ({'reals carry nodes of a tape' if args.mode == 'tape' else 'central differences'})\n"
                    f"-- {d.name} : {show_scheme(e.ty)}\n{show_term(e)}")
        if args.mode == "symbolic":
            from .transforms.symbolic import symbolic_report
            return symbolic_report(program, d, args)
        title = d.name + ("@" + "@".join("Real" for _ in inst) if inst else "")
        return show_transform(e, args.mode, spec, args.simplify, title, ascii_neg=args.ascii)
    return run_deep(work)
