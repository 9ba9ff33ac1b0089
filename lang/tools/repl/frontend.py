"""`dl repl [FILE]`: the terminal front end of lang/repl/core.py, on prompt_toolkit.

At a terminal: prompt `dl> `, continuation `..> ` (docs/reference.md §10), history kept in
$DL_HISTORY, else $XDG_STATE_HOME/dl/history (~/.local/state/dl/history);
Tab completes commands, names in scope, and paths after :load; Enter submits
unless the input continues (core.needs_more), in which case it opens a new
line indented like the last (a blank typed first replaces that indentation,
so typed or pasted indentation is not doubled); Ctrl-C clears the input, or interrupts a running
evaluation; Ctrl-D on an empty line leaves. The mode shows at the right
when it is not backprop.

When stdin or stdout is not a terminal the session reads lines plainly,
with the same continuation rule, and prints results to stdout and
diagnostics to stderr, without prompts or escape codes; the exit code is 1
if any input failed, so a script of inputs can be checked.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Iterable, TextIO

from ...modes.table import DEFAULT, Mode
from .core import Output, State, execute, load_file, needs_more, new_state

BANNER = "dl — a differentiable functional language. :help lists the commands, :quit or Ctrl-D leaves."


def run_repl(file: str | None = None, mode: Mode = DEFAULT, debug: bool = False) -> int:
    """The `dl repl` command; returns the exit code."""
    state = new_state(mode, debug)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    out = Output()
    if file:
        state, out = load_file(state, file)
        if interactive:
            _print_terminal(out)
        else:
            _print_plain(out)
    if interactive:
        return interact(state)
    return piped(state, sys.stdin, sys.stdout, sys.stderr, failed=out.error)


# ---- piped input ------------------------------------------------------------------------


def piped(state: State, lines: Iterable[str], out: TextIO, err: TextIO, failed: bool = False) -> int:
    """Read inputs line by line (continuing as at the prompt) and print each result; 1 if any failed."""
    pending: list[str] = []
    try:
        for line in lines:
            pending.append(line.rstrip("\r\n"))
            text = "\n".join(pending)
            if needs_more(text):
                continue
            pending = []
            state, output = execute(state, text)
            failed = _write(output, out, err) or failed
            if state.quit:
                return 1 if failed else 0
        if pending:  # the input ended inside an unfinished one: run it, to report what is missing
            state, output = execute(state, "\n".join(pending))
            failed = _write(output, out, err) or failed
    except KeyboardInterrupt:
        return 130
    return 1 if failed else 0


def _write(output: Output, out: TextIO, err: TextIO) -> bool:
    """Print a result plainly (errors to `err`); whether it was an error."""
    if output.text:
        stream = err if output.error else out
        stream.write(output.text + "\n")
        stream.flush()
    return output.error


def _print_plain(out: Output) -> None:
    """A result on stdout, an error on stderr."""
    if out.text:
        print(out.text, file=sys.stderr if out.error else sys.stdout, flush=True)


# ---- the terminal -----------------------------------------------------------------------


def history_path() -> str:
    """Where the input history lives (see the module docstring)."""
    if os.environ.get("DL_HISTORY"):
        return os.environ["DL_HISTORY"]
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state_home, "dl", "history")


def _history():
    """The history file, or a history in memory when the file cannot be written."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    path = history_path()
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError:
        return InMemoryHistory()
    return FileHistory(path)


def make_session(get_state: Callable[[], State], input=None, output=None, history=None):
    """The prompt_toolkit PromptSession of a REPL (`input`/`output` for tests)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.filters import Condition
    from prompt_toolkit.key_binding import KeyBindings

    from .completion import complete  # with prompt_toolkit: only an interactive session needs them
    from .lexer import STYLE, DlLexer

    class DlCompleter(Completer):
        """prompt_toolkit's view of lang/repl/completion.py."""

        def get_completions(self, document, complete_event):
            """Completions of the text before the cursor."""
            text = document.text_before_cursor
            try:
                start, candidates = complete(get_state(), text)
            except Exception:  # noqa: BLE001 — completion must never break the prompt
                return
            for candidate in candidates:
                yield Completion(candidate, start_position=start - len(text))

    bindings = KeyBindings()
    # The indentation Enter inserted on the line it opened, as (text of the buffer, cursor) just after it:
    # a blank typed there replaces it, so that indentation typed by habit, or pasted without bracketed
    # paste (each newline arriving as Enter), is not added on top of dl's.
    auto_indent: list[tuple[str, int, str]] = []

    @bindings.add("enter")
    def _enter(event) -> None:
        """Enter: submit, or open a new line, indented like the last, while the input needs more."""
        buffer = event.current_buffer
        state = buffer.complete_state
        auto_indent.clear()
        if state is not None and state.current_completion is not None:
            buffer.apply_completion(state.current_completion)
            return
        if needs_more(buffer.text):
            line = buffer.document.current_line
            indent = line[: len(line) - len(line.lstrip())] or "  "
            buffer.insert_text("\n" + indent)
            auto_indent.append((buffer.text, buffer.cursor_position, indent))
        else:
            buffer.validate_and_handle()

    def _after_auto_indent() -> bool:
        """Whether nothing was typed since Enter indented the new line."""
        from prompt_toolkit.application.current import get_app
        buffer = get_app().current_buffer
        return bool(auto_indent) and auto_indent[0][:2] == (buffer.text, buffer.cursor_position)

    @bindings.add(" ", filter=Condition(_after_auto_indent))
    def _own_indent(event) -> None:
        """A blank right after the automatic indentation: the user indents, so dl's indentation goes."""
        _, _, indent = auto_indent.pop()
        event.current_buffer.delete_before_cursor(len(indent))
        event.current_buffer.insert_text(" ")

    at_line_start = Condition(lambda: not _current_buffer_line_before_cursor().strip())

    @bindings.add("tab", filter=at_line_start)
    def _indent(event) -> None:
        """Tab at the start of a line indents (elsewhere it completes)."""
        event.current_buffer.insert_text("  ")

    def _current_buffer_line_before_cursor() -> str:
        """The current line up to the cursor."""
        from prompt_toolkit.application.current import get_app
        return get_app().current_buffer.document.current_line_before_cursor

    def rprompt():
        """The mode, at the right of the prompt, when it is not the default."""
        mode = get_state().mode
        return [("class:rprompt", mode.name)] if mode is not DEFAULT else []

    return PromptSession(
        "dl> ", multiline=True, prompt_continuation=lambda width, line, soft: "..> ".rjust(width),
        lexer=DlLexer(), style=STYLE, completer=DlCompleter(), complete_while_typing=False,
        history=history if history is not None else _history(), key_bindings=bindings, rprompt=rprompt,
        input=input, output=output, include_default_pygments_style=False,
    )


def interact(state: State, input=None, output=None, history=None,
             write: Callable[[Output], None] | None = None) -> int:
    """The prompt loop (`input`, `output`, `history`, `write` for tests)."""
    current = [state]
    session = make_session(lambda: current[0], input, output, history)
    write = write or _print_terminal
    write(Output(BANNER))
    while True:
        try:
            text = session.prompt()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt: a fresh line
        except EOFError:
            break
        try:
            current[0], out = execute(current[0], text)
        except KeyboardInterrupt:  # between evaluations: nothing was running
            out = Output("interrupted", error=True)
        write(out)
        if current[0].quit:
            break
    return 0


def _print_terminal(out: Output) -> None:
    """A result at the terminal; an error's first line in red."""
    if not out.text:
        return
    if not out.error:
        print(out.text, flush=True)
        return
    from prompt_toolkit import print_formatted_text
    from prompt_toolkit.formatted_text import FormattedText
    head, _, rest = out.text.partition("\n")
    print_formatted_text(FormattedText([("ansired", head), ("", "\n" + rest if rest else "")]))
