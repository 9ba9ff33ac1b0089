"""One error hierarchy for every stage, and the one place that renders it.

Stages raise `DlError` subclasses carrying a kind and a span; only the CLI
and the REPL turn them into text, with `render`.
"""
from __future__ import annotations

from .spans import NO_SPAN, Span


class DlError(Exception):
    """An error in a user's program: kind (docs/reference.md §11–12), message and source span."""

    kind = "runtime"

    def __init__(self, message: str, span: Span = NO_SPAN, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = notes

    def with_span(self, span: Span) -> DlError:
        """This error, pointed at `span` if it has no position of its own yet."""
        if self.span.source is None:
            self.span = span
        return self


class DlSyntaxError(DlError):
    kind = "syntax"


class DlNameError(DlError):
    kind = "name"


class DlTypeError(DlError):
    kind = "type"


class DlRuntimeError(DlError):
    kind = "runtime"


class DlImportError(DlError):
    kind = "import"


def render(error: DlError) -> str:
    """`FILE:LINE:COL: KIND error: message`, the source line, and a caret line under the span.

    What a terminal would act on (CR, ESC, BEL, other control characters, a byte that is not UTF-8) is
    shown escaped, as `\\x1b`; the caret is placed by display columns, so that it stays under its
    character after wide (CJK) characters, which take two columns, and combining marks, which take none."""
    span = error.span
    if span.source is None:
        head = f"dl: {error.kind} error: {error.message}"
        return "\n".join(visible(line) for line in [head, *error.notes])
    head = f"{span.filename}:{span.line}:{span.col}: {error.kind} error: {error.message}"
    text = span.source.line(span.line).expandtabs(1)  # a tab is one column, as the parser counts it
    end = span.end_col if span.end_line == span.line else len(text) + 1
    width = max(1, end - span.col)
    text, col, width = _window(text, span.col, width)
    shown = [visible(ch) for ch in text]
    before = columns("".join(shown[: col - 1])) + max(0, col - 1 - len(shown))
    under = max(1, columns("".join(shown[col - 1 : col - 1 + width])))
    caret = " " * before + "^" * under
    return "\n".join([visible(head), "    " + "".join(shown), "    " + caret, *map(visible, error.notes)])


def visible(text: str) -> str:
    """`text` with the characters a terminal would act on written as escapes (`\\x1b`, `\\x0d`), and a byte
    that was not UTF-8 (decoded as a lone surrogate by `surrogateescape`) as that byte (`\\xff`)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F:
            out.append(f"\\x{o:02x}")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def columns(text: str) -> int:
    """How many columns `text` takes on a terminal: wide (CJK) characters two, combining marks none."""
    if text.isascii():
        return len(text)
    import unicodedata  # only to draw a caret under a diagnostic (start-up)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


MAX_SHOWN = 120  # characters of a long source line shown under a diagnostic


def _window(text: str, col: int, width: int) -> tuple[str, int, int]:
    """A long line cut to MAX_SHOWN characters around column `col` (marked `...`), and the new column and width."""
    if len(text) <= MAX_SHOWN:
        return text, col, width
    start = max(0, min(col - 1 - MAX_SHOWN // 3, len(text) - MAX_SHOWN))
    shown = text[start : start + MAX_SHOWN]
    prefix = "..." if start else ""
    suffix = "..." if start + MAX_SHOWN < len(text) else ""
    col = col - start + len(prefix)
    width = max(1, min(width, len(prefix) + len(shown) - (col - 1)))
    return prefix + shown + suffix, col, width
