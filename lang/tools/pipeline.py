"""The pipeline, composed in one place: the CLI and the REPL call these.

    source --parse--> syntax --desugar--> core --infer--> typed core
           --specialise--> monomorphic core --compile--> closures --run--> values

Each step is a stage module with one job; this module only strings them
together and stops at the first stage that fails (every failure is a
DlError with a span).
"""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

from ..model.nodes import node
from ..model import core as c
from ..model import syntax as s
from ..front.desugar import Desugarer, Fresh
from ..model.errors import DlNameError, DlRuntimeError, DlSyntaxError, DlTypeError
from ..front.infer import Inferencer, Mismatch, default_numeric, infer_expression, unify
from ..front.loader import Loader, Module, World
from ..back.machine import Machine
from ..model.spans import Source, Span
from ..model.types import ARRAY, Namer, TFun, function_arity, prune, show, show_scheme
from ..modes.table import DEFAULT, Mode


@node(slots=False, frozen=False)  # a mutable dataclass, made quickly (start-up)
class Program:
    """A loaded file: the world it lives in and its module."""

    world: World
    loader: Loader
    module: Module


def new_world() -> tuple[World, Loader]:
    """A world with the prelude loaded."""
    world = World()
    loader = Loader(world)
    loader.load_prelude()
    return world, loader


def load(path: str) -> Program:
    """Parse, resolve, desugar and type-check a file and its imports."""
    world, loader = new_world()
    module = loader.load_file(path)
    return Program(world, loader, module)


def find_def(program: Program, name: str):
    """The file's own definition `name`, else a name error. The error has no position: no place in the
    file is wrong (a caret under line 1 would point at whatever happens to be there), and the message
    names the file."""
    for d in program.module.defs:
        if d.name == name:
            return d
    source_name = program.module.path or program.module.id
    raise DlNameError(f"`{name}` is not defined in {source_name}")


def _is_literal(e: s.Expr) -> bool:
    match e:
        case s.Neg(x):
            return isinstance(x, (s.IntLit, s.RealLit))
        case s.TupleExpr(items) | s.ListExpr(items):
            return all(_is_literal(i) for i in items)
        case _:
            return isinstance(e, (s.IntLit, s.RealLit, s.BoolLit, s.UnitLit))


def main_arity(program: Program) -> int:
    """How many arguments `main` takes (0 for a main that is a value)."""
    return function_arity(find_def(program, "main").scheme.body)


def main_call(program: Program, args: list[str]) -> c.Expr:
    """`main` applied to command-line arguments parsed as literals, typed (docs/reference.md §2); a main
    that takes arguments must be given all of them."""
    main = find_def(program, "main")
    ref = c.Global("main", program.module.id, span=main.name_span)
    arity = function_arity(main.scheme.body)
    if not args and arity:  # its value would be a function, printed `<fun>`: surely not what was meant
        raise DlRuntimeError(f"main takes {arity} argument{'s' if arity != 1 else ''} (main : "
                             f"{show_scheme(main.scheme)}), but none {'was' if arity == 1 else 'were'} given: "
                             f"write {'it' if arity == 1 else 'them'} after the file name", main.name_span)
    if not args:
        return infer_expression(ref, program.world.schemes)
    if len(args) != arity:
        raise DlRuntimeError(f"main takes {arity} argument{'s' if arity != 1 else ''}, but {len(args)} "
                             f"{'was' if len(args) == 1 else 'were'} given on the command line", main.name_span)
    from ..front.parser import parse_expr  # Lark only when there are arguments to parse (start-up)
    call: c.Expr = ref
    params = _parameter_types(main.scheme.body)
    for k, text in enumerate(args, 1):
        if params[k - 1] == ARRAY and _is_data_file(text):
            call = c.App(call, _load_argument(k, text, main.name_span), span=main.name_span)
            continue
        try:
            parsed = parse_expr(Source(f"<argument {k}>", text))
        except DlSyntaxError as e:
            raise DlRuntimeError(f"argument {k} `{text}` is not a literal: {e.message}", main.name_span) from None
        if not _is_literal(parsed):
            raise DlRuntimeError(f"argument {k} `{text}` is not a literal (numbers, true, false, (), tuples, lists)",
                                 main.name_span)
        desugared = Desugarer(lambda n: None, Fresh(set()), lambda: []).expr(parsed, frozenset())
        if params[k - 1] == ARRAY and isinstance(desugared, c.List):  # an Array from a list literal
            desugared = c.Prim("array", (desugared,), span=main.name_span)
        call = c.App(call, desugared, span=main.name_span)
    inf = Inferencer(dict(program.world.schemes))
    fn = inf.infer(ref)
    t = prune(fn.ty)
    for k, text in enumerate(args, 1):
        assert isinstance(t, TFun)
        try:
            arg_node = inf.infer(call_arg(call, len(args) - k))
        except DlTypeError as e:
            raise DlRuntimeError(f"argument {k} `{text}` is not a well-typed literal: {e.message}",
                                 main.name_span) from None
        try:
            unify(t.arg, arg_node.ty)
        except Mismatch:
            default_numeric(arg_node.ty)  # an open number is shown as the Real it would default to
            namer = Namer()
            raise DlRuntimeError(f"argument {k} `{text}` has type {show(arg_node.ty, namer)}, but main expects "
                                 f"{show(t.arg, namer)} there (main : {show_scheme(main.scheme)})",
                                 main.name_span) from None
        t = prune(t.result)
    try:
        return infer_expression(call, program.world.schemes)
    except DlTypeError as e:
        raise DlRuntimeError(f"the arguments do not fit main's type: {e.message}", main.name_span) from None


def _parameter_types(t) -> list:
    """The parameter types of a function type, outermost first."""
    out = []
    t = prune(t)
    while isinstance(t, TFun):
        out.append(prune(t.arg))
        t = prune(t.result)
    return out


def _is_data_file(text: str) -> bool:
    return text.lower().endswith((".csv", ".npy"))


def _load_argument(k: int, text: str, span: Span) -> c.Expr:
    """An Array argument given as a file: `loadCsv` or `loadNpy` of its path (relative to the current
    directory, as any command-line path)."""
    loader = "loadNpy" if text.lower().endswith(".npy") else "loadCsv"
    return c.Prim(loader, (c.Lit(os.path.abspath(text), span=span),), span=span)


def call_arg(call: c.Expr, depth: int) -> c.Expr:
    """The argument `depth` applications up from the innermost of an application spine."""
    for _ in range(depth):
        call = call.fn
    return call.arg


def run_main(program: Program, args: list[str], mode: Mode = DEFAULT, counting: bool = False,
             check_transforms: bool = False, progress=None, preaccumulate: bool = True) -> tuple[Any, Machine]:
    """Evaluate `main` (applied to `args`) in a mode (a row of the mode table) and return its value and
    the machine (for counters). `progress`: see Machine."""
    call = main_call(program, args)
    machine = Machine(program.world, mode=mode, counting=counting, check_transforms=check_transforms,
                      progress=progress, preaccumulate=preaccumulate)
    run = machine.compile_expression(call)
    return run(), machine
