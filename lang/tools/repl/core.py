"""The REPL core, with no terminal: `state, output = execute(state, text)`.

The prompt_toolkit front end, the piped-input loop and the tests all drive
the session through `execute` (and ask `needs_more` whether an input goes
on to the next line). An input is one of

    def f x = ...  /  import "file.dl"    declarations: extend the session, print `name : Type`
    let x = e                             the same as `def x = e` (a GHCi/OCaml habit)
    e                                     an expression: prints `value : Type`, binds `it`
    :command argument                     a command (lang/repl/commands.py)
    :{ ... :}                             a block of lines: several definitions at once
    #use "f.dl"  #quit                    utop's spellings of :load and :quit; a trailing `;;` is ignored

Input n is parsed as the source `<repl:n>`, whose text is what was typed
with the command word (and `:{`, `:}`, `;;`) blanked out, so every position
is that of the typed text and a diagnostic's caret points into it. Any
DlError prints its diagnostic and leaves the state as it was; so do Ctrl-C
(KeyboardInterrupt) and, as `internal error`, anything else that escapes,
which is a bug in dl.
"""
from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, replace

from ...back.deep import run_deep
from ...model.errors import DlError, render
from ...model.values import show_value
from ...model.spans import Source
from ...model.types import show_scheme
from . import commands
from . import session as S
from .session import Output, State, new_state
from .tokens import first_word
from .tokens import needs_more as code_needs_more

__all__ = ["execute", "inputs", "needs_more", "new_state", "State", "Output", "load_file"]

_COMMAND = re.compile(r"\s*:(\S*)")
_DIRECTIVE = re.compile(r"\s*#(use|quit)\b")


@dataclass(frozen=True)
class Input:
    """One input: as typed, and as parsed (same length and lines; see the module docstring)."""

    name: str
    text: str
    program: str
    command: str | None = None   # the command word, without `:`
    argument: str = ""           # the command's argument as typed

    @property
    def source(self) -> Source:
        """The text as parsed, under the input's name."""
        return Source(self.name, self.program)


def prepare(text: str, name: str) -> Input:
    """Classify an input and blank out what the parser must not see."""
    program = text
    stripped = program.rstrip()
    if stripped.endswith(";;"):
        program = stripped[:-2] + "  " + program[len(stripped):]
    lines = program.split("\n")
    if lines[0].strip() == ":{":
        lines[0] = " " * len(lines[0])
        if len(lines) > 1 and lines[-1].strip() == ":}":
            lines[-1] = " " * len(lines[-1])
        return Input(name, text, "\n".join(lines))
    m = _DIRECTIVE.match(program)
    if m:
        command = {"use": "load", "quit": "quit"}[m.group(1)]
        return Input(name, text, " " * m.end() + program[m.end():], command, program[m.end():].strip())
    m = _COMMAND.match(program)
    if m:
        return Input(name, text, " " * m.end() + program[m.end():], m.group(1), program[m.end():].strip())
    return Input(name, text, program)


def needs_more(text: str) -> bool:
    """Whether the input typed so far continues on the next line (docs/reference.md §10)."""
    lines = text.split("\n")
    if lines[0].strip() == ":{":
        return lines[-1].strip() != ":}" or len(lines) == 1
    m = _COMMAND.match(text)
    if m:
        cmd = commands.find(m.group(1))
        if cmd is None or not cmd.takes_expression:
            return False
        return code_needs_more(" " * m.end() + text[m.end():])
    return code_needs_more(text)


def inputs(text: str) -> list[str]:
    """A block of lines (a notebook cell, a pasted session) cut into inputs by the continuation rule,
    as piped input is read: an input ends at the first line where it no longer needs more."""
    out: list[str] = []
    pending: list[str] = []
    for line in text.split("\n"):
        pending.append(line.rstrip("\r"))
        if not needs_more("\n".join(pending)):
            out.append("\n".join(pending))
            pending = []
    if pending:  # unfinished: run it, to report what is missing
        out.append("\n".join(pending))
    return [x for x in out if x.strip()]


def execute(state: State, text: str) -> tuple[State, Output]:
    """Run one input; returns the new state and what to print."""
    if first_word(text) is None and not code_needs_more(text):  # empty, or only (closed) comments
        return state, Output()
    n = state.inputs + 1
    state = replace(state, inputs=n)
    inp = prepare(text, f"<repl:{n}>")
    return _guarded(state, lambda: _dispatch(state, inp), inp)


def load_file(state: State, path: str) -> tuple[State, Output]:
    """`dl repl FILE`: load a file before the first prompt (a failure is remembered for :reload)."""
    return _guarded(state, lambda: commands.load_or_remember(state, path))


def _guarded(state: State, work, inp: Input | None = None) -> tuple[State, Output]:
    """Run `work` on the big-stack thread; any failure prints and leaves `state` as it was."""
    try:
        return run_deep(work)
    except DlError as e:
        return state, Output(render(_as_typed(e, inp) if inp else e), error=True)
    except commands.Usage as e:
        return state, Output(str(e), error=True)
    except KeyboardInterrupt:
        state.machines.drop()
        return state, Output("interrupted", error=True)
    except RecursionError:
        state.machines.drop()
        return state, Output("dl: runtime error: stack overflow: the program recursed too deeply", error=True)
    except MemoryError:
        state.machines.drop()
        return state, Output("dl: runtime error: out of memory", error=True)
    except Exception as e:  # noqa: BLE001 — a bug in dl: reported, and the session goes on
        state.machines.drop()
        message = f"internal error: {type(e).__name__}: {e} (this is a bug in dl"
        if state.debug:
            message += ")\n" + traceback.format_exc().rstrip()
        else:
            message += "; dl repl --debug shows the traceback)"
        return state, Output(message, error=True)


def _dispatch(state: State, inp: Input) -> tuple[State, Output]:
    """A command, declarations, or an expression (runs on the big-stack thread)."""
    if inp.command is not None:
        cmd = commands.resolve(inp.command)  # Usage when unknown or ambiguous
        return cmd.run(state, commands.Argument(inp.argument, inp.source))
    parsed, source = S.parse_input(inp.source)
    if isinstance(parsed, list):
        new, lines = S.declare(state, parsed, source)
        return new, Output("\n".join(lines))
    typed = S.typed_expression(state, parsed, source)
    value = S.run(state, typed)
    new = S.bind_it(state, typed, value, inp.name, computed_by=state.machines.machine)
    return new, Output(f"{show_value(value)} : {show_scheme(typed.ty)}", value=True)


def _as_typed(e: DlError, inp: Input) -> DlError:
    """The error pointed into the text as typed rather than as parsed (same positions)."""
    span = e.span
    if span.source is not None and span.source.name == inp.name and span.source.text != inp.text:
        e.span = replace(span, source=Source(inp.name, inp.text))
    return e
