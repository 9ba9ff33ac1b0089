"""The REPL's commands, one row of a table each: name, argument, completer, help line, handler.

A handler takes the state and the command's argument and returns the new
state and what to print; it raises DlError for an error in the user's
input (lang/repl/core.py renders it) and Usage for a malformed command.
A command may be abbreviated to any prefix that names only it; GHCi's
one-letter spellings `:t` (:type), `:l` :load, `:r` :reload, `:b` :browse,
`:q` :quit are preferred over the other commands they begin (PREFERRED),
and any other ambiguous prefix (`:c`) is an error that lists the choices.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from ...model import core as c
from ...model import syntax as s
from ..compare import compare, disagrees, max_relative_error
from ..sweep import parse_sweep
from ..graph import NoCall, TooLarge, graph
from ..stepper import show_transcript, step
from ..report import format_counters, format_table
from ..workbench import (choose_instance, default_instance, linearized_text, point_call, show_transform,
                         show_unrolled, show_untransformed, unroll, written_instance)
from ...back.deep import Timeout, run_deep
from ...model.errors import DlError
from ...model.errors import render
from ...front.infer import Inferencer, infer_expression
from ...back.machine import Machine
from ...front.files import unreadable
from ...front.loader import shown_path
from ...modes.table import MODES, REFERENCE, compared, get, listed
from ...front.parser import parse_expr
from ...model.primitives import PRIMITIVES, user_visible
from ...model.printer import show_term
from ...model.values import show_value
from ...model.spans import Source
from ...model.types import instance_name, show_scheme
from . import session as S
from .session import Output, State

BUDGET = 10.0           # seconds per mode for :compare and :gradcheck
TOLERANCE = REFERENCE.tolerance  # :gradcheck, relative to backprop (a mode's own row may allow more)


class Usage(Exception):
    """A command used the wrong way: the message says how to use it."""


@dataclass(frozen=True)
class Argument:
    """A command's argument: as typed, and the whole input with the command word blanked out (to parse
    from, so that positions in diagnostics are those of what was typed)."""

    text: str
    source: Source

    @property
    def module_id(self) -> str:
        """The input's name, the module `it` is defined in."""
        return self.source.name


@dataclass(frozen=True)
class Command:
    """A row of the command table."""
    name: str
    argument: str                     # how the argument is written in :help ("" for none)
    complete: str | None              # "expr", "path", "mode", "browse", "command" or None
    help: str
    run: Callable[[State, Argument], tuple[State, Output]]

    @property
    def takes_expression(self) -> bool:
        """Whether the argument is an expression (it may then continue over lines)."""
        return self.complete == "expr"


# ---- helpers ---------------------------------------------------------------------------


def _expression(command: str, arg: Argument) -> s.Expr:
    """The argument parsed as an expression (a usage error when there is none)."""
    if not arg.text:
        raise Usage(f"usage: {_usage(command)}")
    return parse_expr(arg.source)


def _usage(name: str) -> str:
    """A command's help line: how to write it, and what it does."""
    cmd = next(x for x in COMMANDS if x.name == name)
    return f":{name} {cmd.argument}".rstrip() + f"   -- {cmd.help}"


def _shown(text: str) -> str:
    """An expression as typed, on one line."""
    return " ".join(text.split())


def _value_line(value: Any, typed: c.Expr) -> str:
    """`value : Type`, as the REPL prints a result."""
    return f"{show_value(value)} : {show_scheme(typed.ty)}"


def _seconds(t: float) -> str:
    """A duration with a unit a person reads at a glance."""
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def _clip(text: str, width: int = 40) -> str:
    """`text`, cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 3] + "..."


# ---- the commands ----------------------------------------------------------------------


def cmd_help(state: State, arg: Argument) -> tuple[State, Output]:
    """:help [COMMAND]"""
    if arg.text:
        return state, Output(_usage(resolve(arg.text.lstrip(":")).name))
    width = max(len(f":{x.name} {x.argument}") for x in COMMANDS)
    lines = ["Commands (a prefix that names one will do; GHCi's :t is :type, :l :load, :r :reload, :b :browse, "
             ":q :quit):"]
    lines += [f"  {f':{x.name} {x.argument}':<{width}}  {x.help}" for x in COMMANDS]
    lines += [
        "Anything else is a declaration (def, import) or an expression, which prints `value : Type`;",
        "the last value is `it`. `let x = e` at the prompt means `def x = e`. Input continues on the next",
        "line while a bracket is open or the line ends with =, ->, in, then, else or an operator; an empty",
        "line ends it. Several definitions at once (mutual recursion): between lines `:{` and `:}`.",
    ]
    return state, Output("\n".join(lines))


def cmd_quit(state: State, arg: Argument) -> tuple[State, Output]:
    """:quit"""
    return replace(state, quit=True), Output()


def cmd_type(state: State, arg: Argument) -> tuple[State, Output]:
    """The type of an expression, generalised (not defaulted to Real, unlike evaluation)."""
    e = _expression("type", arg)
    core = S.desugar_expression(state, e, arg.source)
    typed = Inferencer(state.world.schemes).infer(core)
    return state, Output(f"{_shown(arg.text)} : {show_scheme(typed.ty)}")


def cmd_load(state: State, arg: Argument) -> tuple[State, Output]:
    """:load FILE (quotes around FILE allowed, as utop's #use writes it)"""
    path = arg.text.strip().strip('"')
    if not path:
        raise Usage(f"usage: {_usage('load')}")
    return load_or_remember(state, path)


def load_or_remember(state: State, path: str) -> tuple[State, Output]:
    """Load a file; when it fails, remember it so that :reload tries again after the fix."""
    why = unreadable(os.path.expanduser(path))  # a directory, a FIFO, a device, a loop, ... (lang/front/files.py)
    if why:
        return state, Output(f"{why}: {path}", error=True)
    try:
        new, text = S.load(state, path)
    except DlError as e:
        full = os.path.abspath(os.path.expanduser(path))
        return replace(state, retry=full), Output(render(e) + "\n(fix it and :reload)", error=True)
    return new, Output(text)


def cmd_reload(state: State, arg: Argument) -> tuple[State, Output]:
    """:reload"""
    new, text = S.reload(state)
    return new, Output(text)


def cmd_browse(state: State, arg: Argument) -> tuple[State, Output]:
    """The session's definitions with their types, grouped by where they come from."""
    what = arg.text.strip()
    world = state.world
    if what in ("prelude", "builtins", "all"):
        lines = []
        if what in ("prelude", "all"):
            lines.append("-- the prelude")
            lines += [f"{n} : {show_scheme(world.schemes[k])}" for n, k in world.prelude_exports.items()]
        if what in ("builtins", "all"):
            lines.append("-- built-ins")
            lines += [f"{n} : {show_scheme(PRIMITIVES[n].scheme)}" for n in user_visible()]
        return state, Output("\n".join(lines))
    if what:
        raise Usage(f"usage: {_usage('browse')}")
    groups: dict[str, list[str]] = {}
    for name, key in state.names.items():
        module = key[0]
        where = ("at the prompt" if module.startswith("<repl:")
                 else shown_path(module) if os.path.isabs(module) else module)
        groups.setdefault(where, []).append(f"{name} : {show_scheme(world.schemes[key])}")
    if not groups:
        return state, Output("no definitions yet (:browse prelude lists the prelude, :browse builtins the "
                             "built-ins)")
    lines = []
    for where, entries in groups.items():
        lines.append(f"-- {where}")
        lines += entries
    return state, Output("\n".join(lines))


def cmd_core(state: State, arg: Argument) -> tuple[State, Output]:
    """The desugared core term; for a name, its definition's."""
    e = _expression("core", arg)
    core = S.desugar_expression(state, e, arg.source)
    if isinstance(core, c.Global):
        d = state.world.defs[(core.module, core.name)]
        return state, Output(f"def {d.name} = {show_term(d.expr)}")
    return state, Output(show_term(core))


AD_PRIMITIVES = tuple(n for n, p in PRIMITIVES.items() if p.kind == "ad")


def cmd_transform(state: State, arg: Argument) -> tuple[State, Output]:
    """The transformed term in the current mode: of a definition when EXPR names one, of the
    function being differentiated when EXPR is `grad F X` (or another derivative call), else of EXPR."""
    e = _expression("transform", arg)
    written = None
    if isinstance(e, s.Instance):  # `:transform sq@Int`: that instance of a definition
        written = e
        e = s.Name(e.name, span=e.span)
    core = S.desugar_expression(state, e, arg.source)
    mode = state.mode
    if mode.shows == "unrolled":
        return state, Output(_unrolled(state, core))
    if mode.shows == "linearized":  # a definition at its default point, or each derivative call of EXPR
        if isinstance(core, c.Global):
            d = state.world.defs[(core.module, core.name)]
            return state, Output(linearized_text(state.world, point_call(state.world, d, []), mode, name=d.name))
        return state, Output(linearized_text(state.world, infer_expression(core, state.world.schemes), mode))
    machine = state.machines.get(state.world, mode)
    spec = machine.spec
    typed = infer_expression(core, state.world.schemes)
    note = ""
    target = _differentiated(core)
    if written is not None and not isinstance(core, c.Global):
        raise Usage(f"`{written.name}` is not a definition: an instance `name@T` names one")
    if isinstance(target, c.Global):
        d = state.world.defs[(target.module, target.name)]
        if written is not None:
            inst = written_instance(d, written.types, written.span)
        elif target is not core:  # the instance the derivative call differentiates
            called = _differentiated(spec.expression(typed))
            inst = called.inst if isinstance(called, c.Global) else default_instance(d.scheme)
        else:
            inst, note = choose_instance(state.world, spec, d, state.names.get("main"))
        term = spec.get(d.module, d.name, inst)
        title = instance_name(d.name, inst)
        if target is not core:
            note = f"-- the function differentiated by `{_shown(arg.text)}`: {d.name}\n"
    else:
        term = spec.expression(typed)
        if target is not core:
            term = _differentiated(term)
            note = f"-- the function differentiated by `{_shown(arg.text)}`\n"
            title = "the function"
        else:
            title = _clip(_shown(arg.text))
    if mode.shows == "program":
        text = show_untransformed(term, mode, title)
        return state, Output(text, rich=S.Code(text))
    text = note + show_transform(term, mode, spec, title=title)
    return state, Output(text, rich=S.Code(text))


def _differentiated(e: c.Expr) -> c.Expr:
    """For a derivative call (`grad f x`, also eta-expanded `grad f`), the function it differentiates;
    otherwise `e` itself."""
    inner = e
    while isinstance(inner, c.Lam):
        inner = inner.body
    if isinstance(inner, c.Prim) and inner.op in AD_PRIMITIVES:
        return inner.args[0]
    return e


def _unrolled(state: State, core: c.Expr) -> str:
    """Symbolic mode's "transform": run EXPR and show each derivative call unrolled and differentiated."""
    reports = unroll(state.world, infer_expression(core, state.world.schemes))
    if not reports:
        return ("-- symbolic mode unrolls a program at a point: give an expression that makes a derivative "
                "call,\n-- e.g. :transform grad f 1.0")
    return show_unrolled(reports)


def cmd_mode(state: State, arg: Argument) -> tuple[State, Output]:
    """:mode [MODE] (any unambiguous prefix of a mode)"""
    word = arg.text.strip()
    if not word:
        return state, Output(f"mode: {state.mode.name}   (modes: {', '.join(MODES)})")
    matches = [m for m in MODES if m == word] or [m for m in MODES if m.startswith(word)]
    if len(matches) != 1:
        raise Usage(f"no mode {word!r}: the modes are {', '.join(MODES)}" if not matches
                    else f"{word!r} could be {' or '.join(matches)}")
    return replace(state, mode=get(matches[0])), Output(f"mode: {matches[0]}")


def cmd_cost(state: State, arg: Argument) -> tuple[State, Output]:
    """The value and the cost counters of one evaluation, on a fresh counting machine."""
    e = _expression("cost", arg)
    typed = S.typed_expression(state, e, arg.source)
    machine = Machine(state.world, mode=state.mode, counting=True)
    value = S.run(state, typed, machine)
    new = S.bind_it(state, typed, value, arg.module_id)
    return new, Output(_value_line(value, typed) + "\n" + format_counters(machine.counters.as_dict(), state.mode.name))


def cmd_time(state: State, arg: Argument) -> tuple[State, Output]:
    """Wall time: compile once, run once; when that was quick, run again and report the median."""
    e = _expression("time", arg)
    typed = S.typed_expression(state, e, arg.source)
    machine = state.machines.get(state.world, state.mode)
    start = time.perf_counter()
    try:
        run = machine.compile_expression(typed)
        compiled = time.perf_counter()
        value = run()
        first = time.perf_counter() - compiled
        times = []
        spent = 0.0
        while first < 0.2 and spent < 1.0 and len(times) < 25:
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
            spent += times[-1]
    except BaseException:
        state.machines.drop()
        raise
    compile_time = compiled - start
    new = S.bind_it(state, typed, value, arg.module_id, computed_by=machine)
    if times:
        how = (f"-- {_seconds(statistics.median(times))} (median of {len(times)} runs, min {_seconds(min(times))}; "
               f"first run {_seconds(first)}, compiling {_seconds(compile_time)})")
    else:
        how = f"-- {_seconds(first)} (one run; compiling {_seconds(compile_time)})"
    return new, Output(_value_line(value, typed) + "\n" + how)


def cmd_compare(state: State, arg: Argument) -> tuple[State, Output]:
    """The docs/transforms.md, Reading dl compare table for one expression."""
    e = _expression("compare", arg)
    typed = S.typed_expression(state, e, arg.source)
    report = compare(state.world, lambda n: typed, [None], compared(), BUDGET)
    head = f"-- {_clip(_shown(arg.text), 60)} in every mode (error relative to backprop, costs relative to the primal run)"
    return state, Output(head + "\n" + format_table(report), rich=report)


def cmd_gradcheck(state: State, arg: Argument) -> tuple[State, Output]:
    """value_and_grad F X under every mode, with relative errors to backprop; disagreements flagged."""
    e = _expression("gradcheck", arg)
    if not isinstance(e, s.Apply):
        raise Usage(f"usage: {_usage('gradcheck')}  (e.g. :gradcheck f 1.0, :gradcheck (fun (x, y) -> x * y) "
                    "(2.0, 3.0))")
    fn = S.desugar_expression(state, e.fn, arg.source)
    x = S.desugar_expression(state, e.arg, arg.source)
    call = c.Prim("value_and_grad", (fn, x), span=e.span)
    typed = infer_expression(call, state.world.schemes)
    results: dict[str, Any] = {}
    for mode in listed():
        machine = Machine(state.world, mode=mode)
        try:
            results[mode.name] = ("ok", run_deep(lambda: machine.compile_expression(typed)(), budget=BUDGET))
        except Timeout:
            results[mode.name] = ("timeout", f"timeout (over {BUDGET:g} s)")
        except DlError as err:
            results[mode.name] = ("error", f"error: {err.message}")
        except RecursionError:
            results[mode.name] = ("error", "error: stack overflow")
    return state, Output(gradcheck_table(_shown(arg.text), results))


def gradcheck_table(what: str, results: dict[str, tuple[str, Any]]) -> str:
    """The :gradcheck report: one row per mode, the reasons of modes that failed, then a verdict.
    Errors are relative to backprop or, when it failed, to the first exact mode that ran."""
    exact = [REFERENCE.name] + [m.name for m in listed() if m is not REFERENCE and m.tolerance <= TOLERANCE]
    ref_mode = next((m for m in exact if results.get(m, ("",))[0] == "ok"), None)
    ref_value = results[ref_mode][1] if ref_mode else None
    rows, bad, failed = [], [], []
    for mode, (status, result) in results.items():
        if status != "ok":
            rows.append((mode, status, "", "", ""))
            failed.append(f"  {mode}: {result}")
            continue
        value, grad = result
        tol = get(mode).tolerance
        err_text, flag = ("reference" if mode == ref_mode else "-"), ""
        if mode != ref_mode and ref_value is not None:
            err = max_relative_error(result, ref_value)
            err_text = "0" if err == 0 else f"{err:.1e}"
            if disagrees(result, ref_value, tol):
                flag = f"<-- disagrees (tolerance {tol:g})"
                bad.append(mode)
        rows.append((mode, _clip(show_value(value), 24), _clip(show_value(grad), 40), err_text, flag))
    headers = ("mode", "value", "gradient", "rel. error", "")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [f"-- value_and_grad {what}, in every mode (errors relative to {ref_mode or REFERENCE.name})"]
    lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for r in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    lines += failed
    if ref_value is None:
        lines.append("every exact mode failed: no reference to compare with")
    elif bad:
        lines.append(f"DISAGREEMENT: {', '.join(bad)} differ{'s' if len(bad) == 1 else ''} from {ref_mode}")
    elif failed:
        lines.append(f"the modes that ran agree; {len(failed)} did not finish")
    else:
        loose = ", ".join(f"{m.name} {m.tolerance:g}" for m in listed() if m.tolerance > TOLERANCE)
        lines.append(f"all {len(results)} modes agree (tolerance {TOLERANCE:g}" + (f"; {loose})" if loose else ")"))
    return "\n".join(lines)


# ---- sweeps, graphs and the stepper (docs/reference.md §15) ----------------------------


def cmd_sweep(state: State, arg: Argument) -> tuple[State, Output]:
    """`dl compare --sweep` for an expression in n: every mode for each n, with growth exponents."""
    spec, _, rest = arg.text.partition(" ")
    try:
        sizes = parse_sweep(spec)
    except ValueError as e:
        raise Usage(f"{e}\nusage: {_usage('sweep')}  (e.g. :sweep n=4,8,12 grad (squarings n) 1.0000001)") from None
    if not rest.strip():
        raise Usage(f"usage: {_usage('sweep')}")
    at = arg.source.text.index(spec)  # the sizes blanked out too: positions stay those of the typed text
    source = Source(arg.source.name, arg.source.text[:at] + " " * len(spec) + arg.source.text[at + len(spec):])
    e = parse_expr(source)

    def make_call(n: int) -> c.Expr:
        return S.typed_expression(state, s.LetIn(s.PName("n", span=e.span), s.IntLit(n, span=e.span), e,
                                                 span=e.span), source)
    make_call(sizes[0])  # a type error is reported before anything is measured
    report = compare(state.world, make_call, sizes, listed(), BUDGET)
    head = f"-- {_clip(_shown(rest), 60)} for n = {', '.join(map(str, sizes))}, in every mode"
    return state, Output(head + "\n" + format_table(report), rich=report)


def cmd_graph(state: State, arg: Argument) -> tuple[State, Output]:
    """The graphs of the expression's first derivative call, as DOT text."""
    e = _expression("graph", arg)
    typed = S.typed_expression(state, e, arg.source)
    what = _shown(arg.text)
    try:
        drawing = graph(state.world, typed, what, budget=BUDGET)
    except TooLarge as err:
        return state, Output(str(err), error=True)
    except NoCall as err:
        return state, Output(f"-- {err}")
    except Timeout:
        return state, Output(f"-- `{_clip(what, 60)}` did not finish within {BUDGET:g} s", error=True)
    head = "// render it with Graphviz: dot -Tsvg -o graph.svg (dl graph FILE -o graph.svg does it for a file)"
    return state, Output(head + "\n" + drawing.dot.rstrip(), rich=drawing)


def cmd_step(state: State, arg: Argument) -> tuple[State, Output]:
    """The stepper's transcript of the expression's first derivative call."""
    e = _expression("step", arg)
    typed = S.typed_expression(state, e, arg.source)
    try:
        transcript = step(state.world, typed, _shown(arg.text), budget=BUDGET)
    except Timeout:
        return state, Output(f"-- `{_clip(_shown(arg.text), 60)}` did not finish within {BUDGET:g} s", error=True)
    return state, Output(show_transcript(transcript), rich=transcript if transcript.factoring.backward else None)


# ---- the table -------------------------------------------------------------------------


COMMANDS: tuple[Command, ...] = (
    Command("help", "[COMMAND]", "command", "this list", cmd_help),
    Command("quit", "", None, "leave (also Ctrl-D)", cmd_quit),
    Command("type", "EXPR", "expr", "the type of an expression", cmd_type),
    Command("load", "FILE", "path", "load a file: its definitions come into scope", cmd_load),
    Command("reload", "", None, "re-read the prelude and every file loaded", cmd_reload),
    Command("browse", "[prelude|builtins]", "browse", "definitions in scope with their types", cmd_browse),
    Command("core", "EXPR", "expr", "the desugared core term (of a definition, for a name)", cmd_core),
    Command("transform", "EXPR", "expr", "the transformed term and its type, in the current mode", cmd_transform),
    Command("mode", "[MODE]", "mode", "show or select the mode for derivatives and :transform", cmd_mode),
    Command("cost", "EXPR", "expr", "the value and the cost counters", cmd_cost),
    Command("compare", "EXPR", "expr", "every mode on one expression: error, cost, time", cmd_compare),
    Command("time", "EXPR", "expr", "the value and the wall time (median of several runs)", cmd_time),
    Command("gradcheck", "F X", "expr", "F's gradient at X in every mode, with relative errors", cmd_gradcheck),
    Command("sweep", "n=A,B,.. EXPR", "expr", "every mode on EXPR for each n: costs and growth exponents",
            cmd_sweep),
    Command("graph", "EXPR", "expr", "the computation and backpropagator graphs of EXPR's derivative call (DOT)",
            cmd_graph),
    Command("step", "EXPR", "expr", "the backward pass step by step, backprop and backprop-naive side by side",
            cmd_step),
)


# GHCi's one-letter spellings, documented (docs/reference.md §10, the README): each wins over the other
# commands it begins, as in GHCi, where a fixed preference resolves a few prefixes. Any other prefix
# must name one command.
PREFERRED = {"t": "type", "l": "load", "r": "reload", "b": "browse", "q": "quit", "?": "help"}


def matches(word: str) -> list[Command]:
    """The commands `word` may mean: the one it names exactly or by a preferred spelling, else every
    command it begins."""
    if not word:
        return []
    exact = [cmd for cmd in COMMANDS if cmd.name == PREFERRED.get(word, word)]
    return exact or [cmd for cmd in COMMANDS if cmd.name.startswith(word)]


def find(word: str) -> Command | None:
    """The command `word` names: exactly, by a preferred spelling, or as the only command it begins."""
    found = matches(word)
    return found[0] if len(found) == 1 else None


def resolve(word: str) -> Command:
    """The command `word` names, or Usage saying that there is none or which it could be."""
    found = matches(word)
    if len(found) == 1:
        return found[0]
    if found:
        raise Usage(f"ambiguous command :{word}, could be {', '.join(':' + cmd.name for cmd in found)}")
    raise Usage(f"unknown command :{word} (:help lists the commands)")
