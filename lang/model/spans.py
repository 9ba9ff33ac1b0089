"""Source files and spans: where every node and every diagnostic points."""
from __future__ import annotations


from .nodes import field, node  # dataclass(frozen=True, slots=True), made quickly (start-up)


@node(eq=False)
class Source:
    """A piece of program text and the name it is reported under (a path, `<repl>`, ...)."""

    name: str
    text: str
    _lines: list[str] | None = field(default=None, init=False, repr=False)  # split once, on first use

    def line(self, number: int) -> str:
        """The text of line `number` (1-based), without its newline."""
        lines = self._lines
        if lines is None:
            lines = self.text.split("\n")
            object.__setattr__(self, "_lines", lines)
        return lines[number - 1].rstrip("\r") if 0 < number <= len(lines) else ""


@node
class Span:
    """A region of a source: 1-based lines and columns, end exclusive."""

    source: Source | None
    line: int
    col: int
    end_line: int
    end_col: int

    def to(self, other: Span) -> Span:
        """The span from the start of `self` to the end of `other`."""
        if self.source is None:
            return other
        if other.source is None:
            return self
        return Span(self.source, self.line, self.col, other.end_line, other.end_col)

    @property
    def filename(self) -> str:
        return self.source.name if self.source else "<unknown>"

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}"


NO_SPAN = Span(None, 0, 0, 0, 0)


class Framed(Span):
    """The span of a primitive that can fail, in the body of a prelude function inlined into the program
    (lang/transforms/fusion.py), with the call it was inlined at: its error is reported as the call would
    report an error raised inside the prelude (the compiler's `call_line`: pointed at `call`, with a note
    naming the function and this span). Equal to the plain span; the compiler reads `call`, `name`, `prelude`."""

    __slots__ = ("call", "name", "prelude")

    def __init__(self, span: Span, call: Span, name: str, prelude: str):
        Span.__init__(self, span.source, span.line, span.col, span.end_line, span.end_col)
        object.__setattr__(self, "call", call)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "prelude", prelude)

    def plain(self) -> Span:
        """The span itself, without the call."""
        return Span(self.source, self.line, self.col, self.end_line, self.end_col)
