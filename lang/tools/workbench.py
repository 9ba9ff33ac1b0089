"""The transform workbench: transformed terms to read (`dl transform`, REPL `:transform`).

What each mode shows is its row's `shows` (lang/modes/table.py):

    term        the transformed term and its type (backprop and backprop-naive share ←D, which
                they run differently; forward shows →D), checked by the target type checker
    unrolled    symbolic mode: the program run at a point, each derivative call's unrolled
                expression and its derivatives (a term needs a point to exist)
    linearized  the lut modes: a definition (at a point given as ARG, or 1.0 for each real) or each
                derivative call of `main`, linearized: its primal, linear and transposed programs
    program     no transformed term (tape, numeric run the untransformed program): the source term

A polymorphic definition is shown at the instance the user wrote
(`squarings@Int@Real`, as the title prints it: `dl transform --def`,
`:transform`), else at the instance `main` uses when it uses exactly one,
else at its Real instance (its Num, Eq and Diff variables set to Real), the
instance whose derivatives are interesting; a note says which, and what else
main uses.
"""
from __future__ import annotations

from ..back.languages import refuse_custom_rules
from ..back.machine import Machine
from ..front.infer import Inferencer, Mismatch, enforce, infer_expression
from ..front.loader import World
from ..front.mono import Specializer
from ..front.parser import parse_expr
from ..model import core as c
from ..model import syntax as s
from ..model.errors import DlRuntimeError, DlTypeError
from ..model.printer import show_term
from ..model.spans import Source
from ..model.types import REAL, Type, essential, free_vars, instance_name, show, show_scheme
from ..modes.symbolic import show_expression
from ..modes.table import Mode, get
from ..transforms.check import TargetLanguage, check
from ..transforms.fusion import fuse
from .pipeline import Program, find_def, main_call


def language(mode: Mode, spec: Specializer) -> TargetLanguage:
    """The target language of a mode with a transformed term, for the type checker."""
    transform = _transform_of(mode)

    def global_type(module: str, name: str, inst: tuple) -> Type:
        return transform.type(spec.get(module, name, inst).ty)
    return TargetLanguage(mode.name, transform.type, global_type, transform.checks, transform.ad_args)


def _transform_of(mode: Mode):
    transform = mode.load_transform()
    if transform is None:
        raise DlRuntimeError(f"the {mode.name} mode has no transformed term")
    return transform


def transform_term(e: c.Expr, mode: Mode, simplify: bool = False, spec: Specializer | None = None) -> c.Expr:
    """The transformed term of a specialised core term (`spec`: the definitions fusion may inline)."""
    transform = _transform_of(mode)
    if not transform.custom_rules:  # its language has no way to apply a rule (lang/back/kernel.py, custom rules)
        refuse_custom_rules(e, mode.name)
    if simplify and transform.fuses:  # as backprop runs it (lang/back/languages.py ReverseCompiler)
        e = fuse(e, spec and (lambda g: spec.get(g.module, g.name, g.inst)))
    out = transform.term(e)
    return transform.simplify(out) if simplify else out


def show_transform(e: c.Expr, mode: Mode, spec: Specializer, simplify: bool = False, title: str = "",
                   ascii_neg: bool = False) -> str:
    """A transformed term with its source and target types, checked, as text that parses back."""
    out = transform_term(e, mode, simplify, spec)
    target_type = check(out, e.ty, language(mode, spec))
    symbol = _transform_of(mode).symbol
    lines = [f"-- {symbol}({title or 'the term'}) in {mode.name} mode" + (", simplified" if simplify else ""),
             f"-- source type: {show_scheme(e.ty)}",
             f"-- target type: {show_scheme(target_type, ascii_neg=ascii_neg)}",
             show_term(out)]
    return "\n".join(lines)


def show_untransformed(e: c.Expr, mode: Mode, title: str) -> str:
    """What a mode without a transformed term shows: why, and the term it runs."""
    return (f"-- the {mode.name} mode has no transformed term: it runs the untransformed program\n"
            f"-- ({mode.summary})\n-- {title} : {show_scheme(e.ty)}\n{show_term(e)}")


def default_instance(scheme) -> tuple:
    """The Real instance of a definition's constrained type variables."""
    return tuple(REAL for _ in scheme.constrained)


# ---- which instance of a polymorphic definition -------------------------------------


def written_instance(d, types: tuple[s.TypeExpr, ...], span) -> tuple:
    """The instance written `name@T1@T2...`: one concrete type per constrained variable of `d`, in the
    order instances print, each in its variable's class."""
    wanted = d.scheme.constrained
    if len(types) != len(wanted):
        example = instance_name(d.name, default_instance(d.scheme))
        raise DlTypeError(f"`{d.name} : {show_scheme(d.scheme)}` has {len(wanted)} type variable"
                          f"{'s' if len(wanted) != 1 else ''} to choose, so its instances are written "
                          f"with {len(wanted)} type{'s' if len(wanted) != 1 else ''}" +
                          (f", like `{example}`" if wanted else f": just `{d.name}`"), span)
    convert = Inferencer({}).convert
    inst = []
    for v, written in zip(wanted, types):
        t = convert(written)
        if free_vars(t):
            raise DlTypeError(f"an instance is written with concrete types, not `{show(t)}`", written.span)
        try:
            enforce(t, v.constraint)
        except Mismatch as err:
            raise DlTypeError(f"`{show(t)}` is not in class {err.why or ', '.join(essential(v.constraint))}, as that "
                              "type variable of "
                              f"`{d.name} : {show_scheme(d.scheme)}` must be", written.span) from None
        inst.append(t)
    return tuple(inst)


def instances_used(world: World, spec: Specializer, root: c.Expr, key: tuple) -> list[tuple]:
    """The instances of the definition `key` (module, name) that the specialised term `root` uses,
    directly or through the definitions it reaches, in the order they are met."""
    found: list[tuple] = []
    seen: set = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Global):
            if (t.module, t.name) == key and t.inst not in found:
                found.append(t.inst)
            full = (t.module, t.name, t.inst)
            if full not in seen and (t.module, t.name) in world.defs:
                seen.add(full)
                stack.append(spec.get(*full))
        stack.extend(reversed(c.children(t)))
    return found


def choose_instance(world: World, spec: Specializer, d, main_key: tuple | None) -> tuple[tuple, str]:
    """The instance to show `d` at when none was written, and a note saying why ('' for a monomorphic
    definition, or when there is no `main` using it): see the module docstring."""
    real = default_instance(d.scheme)
    if not real or main_key is None or main_key not in world.defs:
        return real, ""
    main = infer_expression(c.Global(main_key[1], main_key[0]), world.schemes)
    used = instances_used(world, spec, spec.expression(main), (d.module, d.name))
    if not used:
        return real, ""
    if len(used) == 1:
        return used[0], f"-- {instance_name(d.name, used[0])}: the instance main uses\n"
    shown = real if real in used else used[0]
    others = [instance_name(d.name, i) for i in used if i != shown]
    return shown, (f"-- main uses {len(used)} instances of {d.name}; this is {instance_name(d.name, shown)} "
                   f"(ask for {' or '.join(f'`{o}`' for o in others)} to see {'it' if len(others) == 1 else 'them'})\n")


def parse_definition(text: str, what: str = "--def") -> tuple[str, tuple[s.TypeExpr, ...] | None, object]:
    """`name` or `name@T1@T2...`: the name, the written instance types (None when not written) and the
    span to report them at."""
    e = parse_expr(Source(what, text))
    match e:
        case s.Name(name):
            return name, None, e.span
        case s.Instance(name, types):
            return name, types, e.span
    raise DlTypeError(f"expected the name of a definition, optionally with an instance (`sq@Int`), not "
                      f"`{text.strip()}`", e.span)


# ---- symbolic mode: the program unrolled at a point ----------------------------------


def unroll(world, call: c.Expr) -> list[dict]:
    """Run a typed closed expression in symbolic mode; what each derivative call unrolled."""
    machine = Machine(world, get("symbolic"))
    machine.compile_expression(call)()
    return machine.symbolic_reports


def show_unrolled(reports: list[dict]) -> str:
    """Each derivative call: its inputs, the unrolled expression and its derivatives, with tree sizes."""
    lines = []
    for k, r in enumerate(reports, 1):
        lines.append(f"-- derivative call {k}: inputs {', '.join(r['inputs'])}")
        lines.append(f"-- expression (tree size {r['expression_size']}):")
        lines += ["   " + show_expression(o) for o in r["expression"]]
        lines.append(f"-- derivatives (tree size {r['derivative_size']}):")
        for row in r["derivatives"]:
            lines += [f"   d/d{name} = {show_expression(d)}" for name, d in zip(r["inputs"], row)]
    return "\n".join(lines)


def swell_table(program: Program, sizes: list[int]) -> str:
    """Tree sizes of `main n`'s unrolled expression and of its derivatives, for each n."""
    lines = ["-- expression swell: tree sizes of the unrolled program and of its derivatives",
             f"{'n':>4}  {'expression':>12}  {'derivatives':>12}  {'growth':>7}"]
    previous = None
    for n in sizes:
        reports = unroll(program.world, main_call(program, [str(n)]))
        e = sum(r["expression_size"] for r in reports)
        der = sum(r["derivative_size"] for r in reports)
        growth = f"{der / previous:.2f}" if previous else "-"
        lines.append(f"{n:>4}  {e:>12}  {der:>12}  {growth:>7}")
        previous = der
    return "\n".join(lines)


# ---- the lut modes: a function linearized at a point ----------------------------------------


def point_call(world: World, d, args: list[str]) -> c.Expr:
    """`vjp d POINT`, typed: the point written as a literal (`1.0`, `(1.0, 2.0)`, `[0.1, 0.2]`), by default
    1.0 for each real of an input made of reals."""
    from ..front.desugar import Desugarer, Fresh  # noqa: PLC0415 — the lut modes' transform only
    if len(args) > 1:
        raise DlRuntimeError(f"a lut mode linearizes `{d.name}` at one point: give it as one literal, a tuple "
                             "for several arguments of a function of a tuple", d.name_span)
    text = args[0] if args else _default_point(d)
    if text is None:
        raise DlRuntimeError(f"a lut mode linearizes `{d.name}` at a point: give it after the file name "
                             "(`dl transform FILE --def NAME --mode lut POINT`), e.g. [0.1, 0.2]", d.name_span)
    parsed = parse_expr(Source("<point>", text))
    if isinstance(parsed, s.TupleExpr) and not parsed.items:
        raise DlRuntimeError("the point is a value, not ()", d.name_span)
    point = Desugarer(lambda n: None, Fresh(set()), lambda: []).expr(parsed, frozenset())
    call = c.Prim("vjp", (c.Global(d.name, d.module, span=d.name_span), point), span=d.name_span)
    return infer_expression(call, world.schemes)


def _default_point(d) -> str | None:
    """1.0 for every real of an input made only of reals (and tuples of them); None otherwise."""
    from ..model.types import TFun, TTuple, TVar, prune  # noqa: PLC0415
    t = prune(d.scheme.body)
    if not isinstance(t, TFun):
        return None

    def point(t) -> str | None:
        t = prune(t)
        if t == REAL or isinstance(t, TVar):
            return "1.0"
        if isinstance(t, TTuple):
            parts = [point(i) for i in t.items]
            return None if None in parts else "(" + ", ".join(parts) + ")"
        return None
    return point(t.arg)


def linearized_text(world: World, call: c.Expr, mode: Mode, ascii_arrow: bool = False, name: str = "") -> str:
    """Run a typed closed expression in a lut mode; each derivative call's three programs."""
    from ..modes.lut import linearizations, show_linearized  # noqa: PLC0415 — the lut modes' transform only
    machine = Machine(world, mode)
    found = linearizations(machine, mode.name, machine.compile_expression(call))
    if not found:
        return ("-- a lut mode linearizes the function of each derivative call (grad, vjp, ...) at its point; "
                "this made none")
    return "\n".join(show_linearized(lin, f"`{name}`" if name else f"derivative call {k}", ascii_arrow)
                     for k, lin in enumerate(found, 1))


# ---- `dl transform` -----------------------------------------------------------------------


def visible_def(program: Program, name: str):
    """The definition `name` means in the file: its own or an import's (the module's exports), else the
    prelude's, else a name error."""
    world = program.world
    key = program.module.exports.get(name) or world.prelude_exports.get(name)
    return world.defs[key] if key in world.defs else find_def(program, name)


def definition_text(program: Program, name: str, mode: Mode, simplify: bool = False, ascii_neg: bool = False,
                    args: list[str] | None = None, sweep: list[int] | None = None) -> str:
    """`dl transform`: the definition `name` (or `name@T...`, an instance) as the mode shows it (see the
    module docstring)."""
    name, written, span = parse_definition(name)
    d = visible_def(program, name)
    if mode.shows == "unrolled":
        if sweep:
            return swell_table(program, sweep)
        if d.name == "main":
            call = main_call(program, args or [])
        else:
            call = infer_expression(c.Global(d.name, d.module, span=d.name_span), program.world.schemes)
        reports = unroll(program.world, call)
        if not reports:
            return f"-- {d.name} made no derivative calls (grad, vjp, ...): nothing to differentiate symbolically"
        return show_unrolled(reports)
    if mode.shows == "linearized":
        if d.name == "main":
            return linearized_text(program.world, main_call(program, args or []), mode, ascii_neg)
        return linearized_text(program.world, point_call(program.world, d, args or []), mode, ascii_neg, d.name)
    spec = Specializer(program.world)
    if written is not None:
        inst, note = written_instance(d, written, span), ""
    else:
        main = next(((x.module, x.name) for x in program.module.defs if x.name == "main"), None)
        inst, note = choose_instance(program.world, spec, d, main)
    e = spec.get(d.module, d.name, inst)
    title = instance_name(d.name, inst)
    if mode.shows == "program":
        return note + show_untransformed(e, mode, title)
    return note + show_transform(e, mode, spec, simplify, title, ascii_neg=ascii_neg)
