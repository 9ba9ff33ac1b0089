"""Tokens of REPL input, for highlighting and for deciding when an input is complete.

The token definitions are the grammar's own (grammar/dl.lark, through the
parser's Lark object), so the highlighter and the continuation rule follow
the language as it changes. Unlike the parser, `tokenize` never fails: a
character no terminal matches becomes an `error` token, an unterminated
block comment or string runs to the end of the text, and every character
of the input belongs to exactly one token (so a line can be rebuilt from
its tokens).

Continuation (docs/reference.md §10): an input goes on to the next line while a bracket
is open, a block comment is unclosed, or the last token is `=`, `->`, `in`,
`then`, `else`, another keyword that cannot end an expression, or an
operator. A blank line ends the input whatever its state, so a mistyped
bracket never traps the user.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ...front.parser import block_comment_end, terminals


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of input text: its kind (see KINDS), its text, and its offset."""

    kind: str
    text: str
    start: int


# keyword number literal name type tvar string operator bracket punct comment space error
KINDS = ("keyword", "literal", "number", "name", "type", "tvar", "string", "operator", "bracket", "punct",
         "comment", "space", "error")



@lru_cache(maxsize=1)
def _terminals() -> tuple[tuple[str, re.Pattern, bool], ...]:
    """(kind, regex, is a literal string) for every terminal of the grammar."""
    out = []
    for t in terminals():
        if t.name.startswith("__IGNORE"):
            continue
        is_str = t.pattern.type == "str"
        out.append((_kind(t.name, t.pattern.value if is_str else None), re.compile(t.pattern.to_regexp()), is_str))
    return tuple(out)


def _kind(name: str, literal: str | None) -> str:
    """The highlighting kind of a grammar terminal."""
    if name in ("TRUE", "FALSE"):
        return "literal"
    if name in ("INT", "REAL"):
        return "number"
    if name == "NAME":
        return "name"
    if name == "TVAR":
        return "tvar"
    if name == "STRING":
        return "string"
    if literal is not None and literal.isalpha():
        return "keyword"
    if literal is not None and literal in "()[]":
        return "bracket"
    if literal == ",":
        return "punct"
    return "operator"


_SPACE = re.compile(r"\s+")


def tokenize(text: str) -> list[Token]:
    """Every token of `text`, comments and spaces included; never raises."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        end, kind = _comment_or_space(text, i)
        if end == i:
            end, kind = _longest_terminal(text, i)
        if kind == "name" and text[i].isupper():
            kind = "type"
        tokens.append(Token(kind, text[i:end], i))
        i = end
    return tokens


def _comment_or_space(text: str, i: int) -> tuple[int, str]:
    """The end of a comment or a run of spaces starting at `i` (`i` itself when there is none)."""
    m = _SPACE.match(text, i)
    if m:
        return m.end(), "space"
    if text.startswith("--", i):
        end = text.find("\n", i)
        return (len(text) if end < 0 else end), "comment"
    if text.startswith("{-", i):
        return _block_comment_end(text, i), "comment"
    return i, ""


def _block_comment_end(text: str, i: int) -> int:
    """Just past the `-}` closing the (nestable) block comment at `i`, or the end of the text."""
    end = block_comment_end(text, i)
    return len(text) if end is None else end


def _longest_terminal(text: str, i: int) -> tuple[int, str]:
    """Maximal munch over the grammar's terminals; a literal string wins a tie (keywords over names)."""
    best_end, best_kind, best_str = i, "", False
    for kind, regex, is_str in _terminals():
        m = regex.match(text, i)
        if m is None or m.end() == i:
            continue
        if m.end() > best_end or (m.end() == best_end and is_str and not best_str):
            best_end, best_kind, best_str = m.end(), kind, is_str
    if best_end == i:
        if text[i] == '"':  # an unterminated string: to the end of the line
            end = text.find("\n", i)
            return (len(text) if end < 0 else end), "error"
        return i + 1, "error"
    return best_end, best_kind


def _closes(comment: str) -> bool:
    """Whether a block-comment token ends with its closing `-}`."""
    return _block_comment_end(comment, 0) == len(comment) and comment.endswith("-}")


def bracket_depth(tokens: list[Token]) -> int:
    """Open brackets minus closed ones."""
    depth = 0
    for t in tokens:
        if t.kind == "bracket":
            depth += 1 if t.text in "([" else -1
    return depth


def needs_more(text: str) -> bool:
    """Whether the expression or declaration `text` continues on the next line (see the module docstring)."""
    if "\n" in text and not text.rsplit("\n", 1)[1].strip():
        return False  # a blank line ends the input
    tokens = tokenize(text)
    if any(t.kind == "comment" and t.text.startswith("{-") and not _closes(t.text) for t in tokens):
        return True
    code = [t for t in tokens if t.kind not in ("space", "comment")]
    if not code:
        return False
    if bracket_depth(code) > 0:
        return True
    last = code[-1]
    return last.kind in ("keyword", "operator", "punct")  # no keyword ends an expression (true/false are literals)


def first_word(text: str) -> str | None:
    """The first token of `text` that is not a space or a comment."""
    for t in tokenize(text):
        if t.kind not in ("space", "comment"):
            return t.text
    return None
