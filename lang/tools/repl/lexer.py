"""Syntax highlighting for the prompt: a prompt_toolkit lexer over the grammar's own tokens.

The tokens come from lang/repl/tokens.py, which never fails on broken input;
the lexer adds the command word (`:type`) and built-in names, and splits
tokens that span lines (block comments, multi-line input). Should anything
still go wrong, a line is shown unhighlighted rather than breaking the prompt.
"""
from __future__ import annotations

import re

from prompt_toolkit.document import Document
from prompt_toolkit.lexers import Lexer
from prompt_toolkit.styles import Style

from ...model.primitives import PRIMITIVES
from .tokens import tokenize

STYLE = Style.from_dict({
    "keyword": "#5f87ff bold",
    "literal": "#d787ff",
    "number": "#d7875f",
    "name": "",
    "builtin": "#5fafaf",
    "type": "#00af87",
    "tvar": "#00af87 italic",
    "string": "#87af5f",
    "operator": "#af87d7",
    "bracket": "#a8a8a8",
    "punct": "#a8a8a8",
    "comment": "#808080 italic",
    "command": "#d75f87 bold",
    "error": "bg:#870000 #ffffff",
    "rprompt": "#808080",
})

_COMMAND = re.compile(r"\s*(:\S*|#use\b|#quit\b)")
_BLOCK_MARK = re.compile(r"^[ \t]*(:\{|:\})[ \t]*$", re.MULTILINE)


def highlight(text: str) -> list[list[tuple[str, str]]]:
    """(style, text) fragments for each line of `text`."""
    styles = [""] * len(text)
    commands = [m.span(1) for m in _BLOCK_MARK.finditer(text)]
    m = _COMMAND.match(text)
    if m and not commands:
        commands.append(m.span(1))
    code = list(text)
    for start, end in commands:  # the lexer sees spaces there
        code[start:end] = " " * (end - start)
    for token in tokenize("".join(code)):
        kind = token.kind
        if kind == "name" and token.text in PRIMITIVES and not PRIMITIVES[token.text].target:
            kind = "builtin"
        style = "" if kind == "space" else f"class:{kind}"
        styles[token.start:token.start + len(token.text)] = [style] * len(token.text)
    for start, end in commands:
        styles[start:end] = ["class:command"] * (end - start)
    lines: list[list[tuple[str, str]]] = [[]]
    for ch, style in zip(text, styles):
        if ch == "\n":
            lines.append([])
        elif lines[-1] and lines[-1][-1][0] == style:
            lines[-1][-1] = (style, lines[-1][-1][1] + ch)
        else:
            lines[-1].append((style, ch))
    return lines


class DlLexer(Lexer):
    """prompt_toolkit's view of `highlight`."""

    def lex_document(self, document: Document):
        """A function from line number to that line's fragments."""
        try:
            lines = highlight(document.text)
        except Exception:  # noqa: BLE001 — highlighting must never break the prompt
            lines = [[("", line)] for line in document.lines]

        def get_line(number: int) -> list[tuple[str, str]]:
            """The fragments of one line."""
            return lines[number] if 0 <= number < len(lines) else []
        return get_line
