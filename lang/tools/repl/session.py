"""A REPL session's state, and the pipeline steps the REPL runs on it.

    State     the world (every typed definition so far), the session's name
              table, the mode, a log of what was loaded or declared (what
              `:reload` replays), and a cache of the machine that runs inputs.

Names. A definition typed at the prompt goes into a fresh module named after
its input (`<repl:3>`); the session's name table maps each name to the
(module, name) it currently means. A redefinition only changes the table,
so earlier definitions keep meaning what they meant (GHCi's semantics):

    dl> def a = 1.0
    dl> def f x = x + a
    dl> def a = 100.0      -- f still adds 1.0
    dl> f 1.0
    2.0 : Real

Failures are atomic: every step builds a new table and only returns it when
the step succeeded. The world is shared between states but only grows, by
modules with fresh ids that no old table mentions, so a failed or
interrupted input changes nothing a name can see. `:load` and `:reload`
build a new world from scratch and replay the log into it (a file's new
contents shadow what it defined before; prompt definitions are re-checked
against it, and those that no longer check are reported and left out).

`it` is the last value. It is bound as a definition of the input's module
whose body is the value itself written as a term (for data: numbers,
tuples, lists), so using `it` never evaluates anything again, and inside a
differentiated function it is a constant. A function value (or a very
large one) is bound to the typed expression instead, with the value
pre-seeded in the session's machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from ...model import core as c
from ...model import syntax as s
from ...front.desugar import Desugarer, Fresh, names_in
from ...model.errors import DlError, DlSyntaxError
from ...front.infer import TypedDef, infer_expression
from ...front.loader import Loader, Module, World, shown_path
from ...back.machine import Machine
from ...front.parser import parse_program, parse_repl_line
from ..pipeline import new_world
from ...model.spans import Source
from ...model.types import BOOL, INT, REAL, UNIT, Scheme, TList, TTuple, free_vars, prune, show_scheme
from ...modes.table import DEFAULT, Mode
from .tokens import first_word, tokenize

# A value with more leaves than this is not rewritten as a term for `it` (building it would cost more
# than printing it).
IT_LITERAL_LIMIT = 10_000


@dataclass(frozen=True)
class Output:
    """What an input printed: its text, and whether it was an error.

    A front end that can show more than text (the Jupyter kernel,
    lang/tools/kernel/display.py) draws `rich` instead when it is set: the
    same result as data (a compare Report, a graph's Drawing, a stepper's
    Transcript, a Code). `value` says the text is an expression's
    `value : Type` (a notebook shows it as the cell's result)."""

    text: str = ""
    error: bool = False
    rich: Any = None
    value: bool = False


@dataclass(frozen=True)
class Code:
    """dl text (a transformed term with its types), which a front end may highlight."""

    text: str


# ---- the log: what `:reload` replays, in order --------------------------------------


@dataclass(frozen=True)
class Load:  # :load FILE, `dl repl FILE`
    path: str


@dataclass(frozen=True)
class Decls:  # def / import typed at the prompt (the source as parsed)
    source: Source


@dataclass(frozen=True)
class It:  # the last value, when it is data (a literal term)
    definition: TypedDef


Entry = Load | Decls | It


class Machines:
    """The session's machine: made on demand, remade when the world or the mode changes.

    Compiled code and the values of top-level constants are cached in it. A
    machine whose run was interrupted or failed may hold half-compiled code,
    so it is dropped.
    """

    def __init__(self) -> None:
        """No machine until one is needed."""
        self.machine: Machine | None = None

    def get(self, world: World, mode: Mode) -> Machine:
        """The machine for `world` and `mode`, made if the cached one is for another."""
        m = self.machine
        if m is None or m.world is not world or m.mode is not mode:
            m = self.machine = Machine(world, mode=mode)
        return m

    def drop(self) -> None:
        """Forget the machine (after an interrupted or failed run)."""
        self.machine = None


@dataclass(frozen=True)
class State:
    """Everything a REPL session knows; `execute` returns a new one."""

    world: World
    names: dict = field(default_factory=dict)  # name -> (module, name), above the prelude and built-ins
    mode: Mode = DEFAULT                       # a row of the mode table
    inputs: int = 0                            # inputs so far: input n is the source `<repl:n>`
    log: tuple = ()                            # Entry, ...
    retry: str | None = None                   # a file whose :load failed; :reload tries it again
    quit: bool = False
    debug: bool = False
    machines: Machines = field(default_factory=Machines, compare=False)


def new_state(mode: Mode = DEFAULT, debug: bool = False) -> State:
    """A session with the prelude loaded."""
    world, _ = new_world()
    return State(world=world, mode=mode, debug=debug)


def names_in_scope(state: State) -> list[str]:
    """Every name an expression can use, the session's first."""
    return list(dict.fromkeys(state.world.names_in_scope({}, state.names)))


def _bound(names: dict, new: dict) -> dict:
    """`names` with `new` bound, most recent last (so listings are in the order of definition)."""
    out = {k: v for k, v in names.items() if k not in new}
    out.update(new)
    return out


# ---- parsing an input ---------------------------------------------------------------


def parse_input(source: Source) -> tuple[list | s.Expr, Source]:
    """Declarations or an expression, and the source they were parsed from.

    `def`/`import` inputs are parsed as a program, so one input may hold
    several (mutually recursive) definitions. A GHCi/OCaml habit is
    accepted too: `let x = e` with no `in` is `def x = e`.
    """
    word = first_word(source.text)
    if word in ("def", "import"):
        return list(parse_program(source).decls), source
    try:
        return parse_repl_line(source), source
    except DlSyntaxError:
        if word == "let":
            rewritten = _let_as_def(source)
            try:
                decls = list(parse_program(rewritten).decls)
            except DlSyntaxError:
                decls = []
            if decls and all(isinstance(d, s.Def) for d in decls):
                return decls, rewritten
        raise


def _let_as_def(source: Source) -> Source:
    """`let [rec] f x = e` as `def f x = e`, every position unchanged."""
    text = source.text
    code = [t for t in tokenize(text) if t.kind not in ("space", "comment")]
    start = code[0].start
    text = text[:start] + "def" + text[start + 3:]
    if len(code) > 1 and code[1].text == "rec":
        r = code[1].start
        text = text[:r] + "   " + text[r + 3:]
    return Source(source.name, text)


# ---- declarations -----------------------------------------------------------------


def declare(state: State, decls: list, source: Source) -> tuple[State, list[str]]:
    """Add the imports and definitions of one input; returns the new state and what to print."""
    module, imported = Loader(state.world).declare(decls, source, source.name, state.names, os.getcwd())
    names = dict(state.names)
    lines = []
    for imp, mod in zip((d for d in decls if isinstance(d, s.Import)), imported):
        names = _bound(names, mod.exports)
        lines.append(f"imported {imp.path}{_summary(mod)}")
    own = {d.name: (d.module, d.name) for d in module.defs}
    names = _bound(names, own)
    lines.extend(f"{d.name} : {show_scheme(d.scheme)}" for d in module.defs)
    return replace(state, names=names, log=state.log + (Decls(source),)), lines


def _summary(module: Module) -> str:
    """The names a loaded module defines, shortened."""
    names = [d.name for d in module.defs]
    if not names:
        return " (no definitions)"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f": {shown}" + (f" ({len(names)} definitions)" if len(names) > 8 else "")


# ---- loading files, and rebuilding from the log ---------------------------------------


def load(state: State, path: str) -> tuple[State, str]:
    """Load a file into the session: its names shadow earlier ones. Loading a file again re-reads it
    (and everything else: it is a :reload)."""
    full = os.path.abspath(os.path.expanduser(path))
    log = state.log if Load(full) in state.log else state.log + (Load(full),)
    new, notes = rebuild(state, log)
    module = new.world.modules[full]
    return replace(new, retry=None), "\n".join([f"loaded {shown_path(full)}{_summary(module)}", *notes])


def reload(state: State) -> tuple[State, str]:
    """Re-read the prelude and every file loaded, and replay the prompt's definitions."""
    log = state.log
    if state.retry and Load(state.retry) not in log:
        log += (Load(state.retry),)
    new, notes = rebuild(state, log)
    files = [shown_path(e.path) for e in log if isinstance(e, Load)]
    head = "reloaded " + ", ".join(["the prelude", *files])
    return replace(new, retry=None), "\n".join([head, *notes])


def rebuild(state: State, log: tuple) -> tuple[State, list[str]]:
    """A fresh world with the prelude, then the log replayed. A file that fails to load fails the
    whole rebuild; prompt declarations that fail are reported and kept in the log (a later
    :reload retries them)."""
    world, _ = new_world()
    new = replace(state, world=world, names={}, log=())
    notes = []
    for entry in log:
        match entry:
            case Load(path):
                module = Loader(world).load_file(shown_path(path))
                new = replace(new, names=_bound(new.names, module.exports), log=new.log + (entry,))
            case Decls(source):
                decls: list = []
                try:
                    decls, parsed_from = parse_input(source)
                    new, _ = declare(new, decls, parsed_from)
                except DlError as e:
                    defined = ", ".join(f"`{d.name}`" for d in decls if isinstance(d, s.Def)) or "an import"
                    notes.append(f"note: {defined} (from {source.name}) is left out: {e.kind} error: {e.message}")
                    new = replace(new, log=new.log + (entry,))
            case It(d):
                world.add(Module(d.module, None, [d], {"it": (d.module, "it")}))
                new = replace(new, names=_bound(new.names, {"it": (d.module, "it")}), log=new.log + (entry,))
    state.machines.drop()
    return new, notes


# ---- expressions ----------------------------------------------------------------------


def desugar_expression(state: State, e: s.Expr, source: Source) -> c.Expr:
    """The core term of an expression typed at the prompt."""
    resolve = state.world.resolver({}, state.names)
    desugarer = Desugarer(resolve, Fresh(names_in(source.text)), lambda: names_in_scope(state))
    return desugarer.expr(e, frozenset())


def typed_expression(state: State, e: s.Expr, source: Source) -> c.Expr:
    """Desugared and typed, open numeric types defaulted to Real (docs/reference.md §4)."""
    return infer_expression(desugar_expression(state, e, source), state.world.schemes)


def run(state: State, typed: c.Expr, machine: Machine | None = None) -> Any:
    """The value of a typed expression, on the session's machine unless another is given."""
    own = machine is None
    machine = machine or state.machines.get(state.world, state.mode)
    try:
        return machine.compile_expression(typed)()
    except BaseException:
        if own:
            state.machines.drop()
        raise


def bind_it(state: State, typed: c.Expr, value: Any, module_id: str, computed_by: Machine | None = None) -> State:
    """`it` bound to the value of `typed` (see the module docstring). The value is pre-seeded in the
    machine that computed it, if that is the session's: a function value belongs to one machine (its
    compiled code caches that machine's transforms)."""
    term = literal_term(value, typed.ty, [IT_LITERAL_LIMIT])
    scheme = Scheme(tuple(free_vars(typed.ty)), typed.ty)
    d = TypedDef("it", module_id, term if term is not None else typed, scheme, typed.span, typed.span)
    key = (module_id, "it")
    state.world.add(Module(module_id, None, [d], {"it": key}))
    if computed_by is not None and computed_by is state.machines.machine and computed_by.world is state.world:
        computed_by.seed_value(module_id, "it", value)
    log = tuple(e for e in state.log if not isinstance(e, It)) + ((It(d),) if term is not None else ())
    return replace(state, names=_bound(state.names, {"it": key}), log=log)


def literal_term(v: Any, t, budget: list) -> c.Expr | None:
    """The data value `v : t` as a core term of literals, or None (a function, or over budget)."""
    t = prune(t)
    budget[0] -= 1
    if budget[0] < 0:
        return None
    if t in (REAL, INT, BOOL, UNIT):
        return c.Lit(v, ty=t)
    if isinstance(t, TTuple):
        items = [literal_term(x, ti, budget) for x, ti in zip(v, t.items)]
        return None if any(i is None for i in items) else c.Tuple(tuple(items), ty=t)
    if isinstance(t, TList):
        items = [literal_term(x, t.item, budget) for x in v]
        return None if any(i is None for i in items) else c.List(tuple(items), ty=t)
    return None
