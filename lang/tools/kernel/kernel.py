"""The dl Jupyter kernel: an ipykernel wrapper kernel on the REPL's core (needs the [jupyter] extra).

A cell is cut into REPL inputs by the continuation rule (core.inputs), and
each runs through core.execute, so every REPL command works in a cell and
definitions persist from cell to cell (the session's State lives in the
kernel). What an input prints goes out as

    an expression's `value : Type`      the cell's result (execute_result) when it is the last input,
                                        else text on stdout
    a result with rich data             display data (lang/tools/kernel/display.py): HTML tables,
                                        highlighted terms, SVG graphs and plots, the stepper
    anything else                       text on stdout
    an error                            a Jupyter error (ename the diagnostic's kind, the traceback
                                        its lines, caret included); the rest of the cell is skipped

Completion, inspection and is_complete are the REPL's: `complete` on the
current line, `:type` of the name under the cursor, `needs_more` on the
cell's last input. An interrupt stops the evaluation as Ctrl-C does at the
terminal.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ipykernel.kernelapp import IPKernelApp
from ipykernel.kernelbase import Kernel

from ... import __version__
from ..repl.completion import complete
from ..repl.core import execute, inputs, needs_more, new_state
from ..repl.frontend import BANNER
from ..repl.session import Output
from .display import bundles

_NAME_CHAR = re.compile(r"[A-Za-z0-9_']")
_KIND = re.compile(r":\d+:\d+: ([a-z ]+ error): (.*)")
RED, RESET = "\x1b[31m", "\x1b[0m"


class DlKernel(Kernel):
    """dl in Jupyter."""

    implementation = "dl"
    implementation_version = __version__
    language = "dl"
    language_version = __version__
    language_info = {"name": "dl", "version": __version__, "mimetype": "text/x-dl", "file_extension": ".dl",
                     "pygments_lexer": "haskell", "codemirror_mode": "haskell"}
    banner = BANNER.replace(":quit or Ctrl-D leaves", "restart the kernel to start afresh")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.state = new_state()

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
                         **kwargs):
        """Run a cell's inputs in order; stop at the first that fails."""
        parts = inputs(code)
        for k, text in enumerate(parts):
            self.state, out = execute(self.state, text)
            if self.state.quit:  # a notebook has no prompt to leave
                self.state = replace(self.state, quit=False)
                out = Output(":quit does nothing in a notebook (restart the kernel to start afresh)")
            if out.error:
                return self._error(out.text, silent)
            if not silent:
                self._show(out, last=k == len(parts) - 1)
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}

    def _show(self, out: Output, last: bool) -> None:
        """Send what an input printed: a result, display data, or text."""
        if out.value and last:
            self.send_response(self.iopub_socket, "execute_result", {
                "execution_count": self.execution_count, "data": {"text/plain": out.text}, "metadata": {}})
            return
        for bundle in bundles(out):
            if set(bundle) == {"text/plain"}:
                self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": bundle["text/plain"] + "\n"})
            else:
                self.send_response(self.iopub_socket, "display_data", {"data": bundle, "metadata": {}})

    def _error(self, text: str, silent: bool) -> dict:
        """A failed input as a Jupyter error: the diagnostic's kind and message, its lines as the traceback."""
        first = text.split("\n", 1)[0]
        m = _KIND.search(first)
        ename, evalue = (m.group(1), m.group(2)) if m else ("error", first)
        lines = text.split("\n")
        content = {"ename": ename, "evalue": evalue, "traceback": [RED + lines[0] + RESET, *lines[1:]]}
        if not silent:
            self.send_response(self.iopub_socket, "error", content)
        return {"status": "error", "execution_count": self.execution_count, **content}

    async def do_complete(self, code, cursor_pos):
        """The REPL's completions for the current line up to the cursor."""
        before = code[:cursor_pos]
        line_start = before.rfind("\n") + 1
        start, matches = complete(self.state, before[line_start:])
        return {"status": "ok", "matches": matches, "cursor_start": line_start + start, "cursor_end": cursor_pos,
                "metadata": {}}

    async def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        """`:type` of the name under the cursor (the session is left as it was)."""
        name = name_at(code, cursor_pos)
        found = False
        data = {}
        if name:
            _, out = execute(self.state, f":type {name}")
            if not out.error:
                found, data = True, {"text/plain": out.text}
        return {"status": "ok", "found": found, "data": data, "metadata": {}}

    async def do_is_complete(self, code):
        """Incomplete while the cell's last input continues (an open bracket, a trailing `=`, `:{`)."""
        parts = inputs(code)
        if parts and needs_more(parts[-1]):
            return {"status": "incomplete", "indent": "  "}
        return {"status": "complete"}


def name_at(code: str, cursor: int) -> str:
    """The identifier the cursor is in or just after ('' when there is none)."""
    start = end = min(cursor, len(code))
    while start > 0 and _NAME_CHAR.match(code[start - 1]):
        start -= 1
    while end < len(code) and _NAME_CHAR.match(code[end]):
        end += 1
    word = code[start:end]
    return word if word and (word[0].isalpha() or word[0] == "_") else ""


def launch() -> None:
    """Start the kernel on the connection file named on the command line (`-f FILE`)."""
    IPKernelApp.launch_instance(kernel_class=DlKernel)
