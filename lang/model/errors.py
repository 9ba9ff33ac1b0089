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
    """`FILE:LINE:COL: KIND error: message`, the source line, and a caret line under the span."""
    span = error.span
    if span.source is None:
        head = f"dl: {error.kind} error: {error.message}"
        return "\n".join([head, *error.notes])
    head = f"{span.filename}:{span.line}:{span.col}: {error.kind} error: {error.message}"
    text = span.source.line(span.line).expandtabs(1)  # a tab is one column, as the parser counts it
    end = span.end_col if span.end_line == span.line else len(text) + 1
    width = max(1, end - span.col)
    text, col, width = _window(text, span.col, width)
    caret = " " * (col - 1) + "^" * width
    return "\n".join([head, "    " + text, "    " + caret, *error.notes])


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
