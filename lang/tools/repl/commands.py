"""The REPL's commands, one row of a table each: name, argument, completer, help line, handler.

A handler takes the state and the command's argument and returns the new
state and what to print; it raises DlError for an error in the user's
input (lang/repl/core.py renders it) and Usage for a malformed command.
A command may be abbreviated to any prefix; the first row that matches
wins, so the GHCi spellings work: `:t` is :type, `:l` :load, `:r`
:reload, `:b` :browse, `:q` :quit.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from ...model import core as c
from ...model import syntax as s
from ..compare import compare, max_relative_error
from ..report import format_counters, format_table
from ..workbench import default_instance, show_transform, show_unrolled, show_untransformed, unroll
from ...back.deep import Timeout, run_deep
from ...model.errors import DlError
from ...model.errors import render
from ...front.infer import Inferencer, infer_expression
from ...back.machine import Machine
from ...front.loader import shown_path
from ...modes.table import MODES, REFERENCE, get, listed
from ...front.parser import parse_expr
from ...model.primitives import PRIMITIVES, user_visible
from ...model.printer import show_term
from ...model.values import show_value
from ...model.spans import Source
from ...model.types import show_scheme
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
        cmd = find(arg.text.lstrip(":"))
        if cmd is None:
            raise Usage(f"no command :{arg.text.lstrip(':')} (:help lists them)")
        return state, Output(_usage(cmd.name))
    width = max(len(f":{x.name} {x.argument}") for x in COMMANDS)
    lines = ["Commands (any prefix will do: :t is :type, :l :load, :r :reload, :q :quit):"]
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
    if not os.path.isfile(os.path.expanduser(path)):
        return state, Output(f"no such file: {path}", error=True)
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
    core = S.desugar_expression(state, e, arg.source)
    mode = state.mode
    if mode.shows == "unrolled":
        return state, Output(_unrolled(state, core))
    machine = state.machines.get(state.world, mode)
    spec = machine.spec
    typed = infer_expression(core, state.world.schemes)
    note = ""
    target = _differentiated(core)
    if isinstance(target, c.Global):
        d = state.world.defs[(target.module, target.name)]
        inst = default_instance(d.scheme)
        term = spec.get(d.module, d.name, inst)
        title = d.name + "".join("@Real" for _ in inst)
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
        return state, Output(show_untransformed(term, mode, title))
    return state, Output(note + show_transform(term, mode, spec, title=title))


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
    report = compare(state.world, lambda n: typed, [None], listed(), BUDGET)
    head = f"-- {_clip(_shown(arg.text), 60)} in every mode (error relative to backprop, costs relative to the primal run)"
    return state, Output(head + "\n" + format_table(report))


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
            if _disagrees(result, ref_value, tol):
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


def _disagrees(value: Any, reference: Any, tol: float) -> bool:
    """Whether two results differ by more than `tol`, relative to the larger of the two numbers or, for
    numbers near zero, to the largest number of the reference (finite differences of a zero derivative
    are tiny, not zero)."""
    a, b = _numbers(value), _numbers(reference)
    if len(a) != len(b):
        return True
    scale = max((abs(y) for y in b if math.isfinite(y)), default=0.0)
    for x, y in zip(a, b):
        if x == y or (x != x and y != y):
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            return True
        if abs(x - y) > tol * max(abs(x), abs(y), scale, 1e-300):
            return True
    return False


def _numbers(v: Any) -> list[float]:
    """The numbers of a result, in order (booleans and units have none; an Array has its elements)."""
    if type(v).__name__ == "ndarray":
        return v.ravel().tolist()
    if isinstance(v, bool) or v == ():
        return []
    if isinstance(v, (int, float)):
        return [float(v)]
    if isinstance(v, (tuple, list)):
        return [x for item in v for x in _numbers(item)]
    return []


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
    Command("compare", "EXPR", "expr", "every mode on one expression: error, cost, time, memory", cmd_compare),
    Command("time", "EXPR", "expr", "the value and the wall time (median of several runs)", cmd_time),
    Command("gradcheck", "F X", "expr", "F's gradient at X in every mode, with relative errors", cmd_gradcheck),
)


def find(word: str) -> Command | None:
    """The command `word` names: exactly, else the first whose name it begins (GHCi's rule)."""
    if word == "?":
        word = "help"
    if not word:
        return None
    for cmd in COMMANDS:
        if cmd.name == word:
            return cmd
    return next((cmd for cmd in COMMANDS if cmd.name.startswith(word)), None)
