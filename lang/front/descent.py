"""A fast parser for the common case: well-formed programs, by precedence climbing.

grammar/dl.lark is the definition of dl's syntax, and Lark's LALR parser (lang/front/parser.py) the
reference that reports syntax errors in words. Lark is slow, though — a dozen reductions per atom
through the precedence levels, ~40 µs a token — which a 10^4-line generated program or a 10^5-deep
nesting feels (issue 19). This parser builds the same syntax tree, with the same spans, for the
same text, ~10 times faster: a regular-expression tokenizer and one function per construct, with
binary operators by precedence climbing (one call per operand, whatever the number of levels).

It gives up (`Bail`) at the first thing it does not expect — a syntax error, the target language's
`-o`, `~`, `@`, anything unusual — and the caller then parses the text with Lark, which either
reports the error or (on a construct this parser leaves to it) builds the tree. So it never has to
word an error, and it cannot accept what Lark rejects. tests/test_parser.py checks that both build
equal trees, spans included, on every program of the repository and on generated ones.

Spans: a node's span runs from its first token to its last, keywords and brackets included, as Lark's
`propagate_positions` makes them; a parenthesised expression keeps the span of what is inside, and
the node around it spans the parentheses. Parse functions return `(node, first, last)`: the indices
of the first and last tokens of the text the node came from.

Depth: parsing recurses once per nesting level (a parenthesis, a bracket, the body of a `fun`, `let`
or `if`, a right operand); past MAX_NESTING levels the program is refused with a syntax error at the
token where the limit is crossed (docs/reference.md, Limits).
"""
from __future__ import annotations

import bisect
import re

from ..model import syntax as s
from ..model.errors import DlSyntaxError
from ..model.spans import Source, Span

MAX_NESTING = 300_000  # levels of nesting a program may have (docs/reference.md, Limits)


class Bail(Exception):
    """Not a construct this parser handles (or not well-formed): parse with Lark instead."""


KEYWORDS = frozenset({"def", "let", "rec", "in", "fun", "if", "then", "else", "import", "true", "false"})
_TOKEN = re.compile(r"""
    (?P<ws>[ \t\f\r\n]+)
  | (?P<name>[a-zA-Z_][a-zA-Z0-9_']*)
  | (?P<real>[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
  | (?P<int>[0-9]+)
  | (?P<tvar>'[a-zA-Z_][a-zA-Z0-9_]*)
  | (?P<string>"[^"\n]*")
  | (?P<op>\|>|\|\||&&|==|!=|<=|>=|::|\+\+|->|=>|[-+*/^<>=:,()\[\]\\])
""", re.VERBOSE)

# binary operators: token -> (precedence, right-associative); comparisons do not chain
_BINARY = {"|>": (1, False), "||": (2, True), "&&": (3, True),
           "==": (4, False), "!=": (4, False), "<=": (4, False), ">=": (4, False), "<": (4, False), ">": (4, False),
           "::": (5, True), "++": (5, True), "+": (6, False), "-": (6, False), "*": (7, False), "/": (7, False)}
_CMP = 4
_SECTION_OPS = frozenset(_BINARY) | {"^"}
_OPEN = frozenset({"fun", "\\", "let", "if"})
_ATOM_START = frozenset({"int", "real", "string", "true", "false", "name", "(", "["})


def parse(source: Source, text: str, start: str):
    """The syntax tree of `text` (source text with comments blanked) from the grammar's `start` symbol,
    or Bail."""
    return _Parser(source, text).run(start)


class _Parser:
    def __init__(self, source: Source, text: str):
        self.source = source
        kinds: list[str] = []
        values: list[str] = []
        starts: list[int] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            if m.start() != pos:  # a character no token starts with (`@`, `~`, `.`, ...): Lark's to read
                raise Bail("a character this parser does not read")
            pos = m.end()
            kind = m.lastgroup
            if kind == "ws":
                continue
            value = m.group()
            if kind == "op":
                kind = value
            elif kind == "name" and value in KEYWORDS:
                kind = value
            kinds.append(kind)
            values.append(value)
            starts.append(m.start())
        if pos != len(text):
            raise Bail("a character this parser does not read")
        newlines = [m.start() for m in re.finditer("\n", text)]
        self.lines, self.cols = [], []
        for start in starts:
            line = bisect.bisect_left(newlines, start)
            self.lines.append(line + 1)
            self.cols.append(start - (newlines[line - 1] + 1 if line else 0) + 1)
        kinds.append("$end")
        self.kinds, self.values = kinds, values
        self.i = 0
        self.depth = 0

    # ---- tokens
    def peek(self, k: int = 0) -> str:
        return self.kinds[min(self.i + k, len(self.kinds) - 1)]

    def take(self, kind: str) -> int:
        """The index of the next token, which must be `kind` (else Bail)."""
        if self.kinds[self.i] != kind:
            raise Bail(kind)
        self.i += 1
        return self.i - 1

    def span(self, first: int, last: int) -> Span:
        return Span(self.source, self.lines[first], self.cols[first], self.lines[last],
                    self.cols[last] + len(self.values[last]))

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            i = min(self.i, len(self.values) - 1)
            raise DlSyntaxError(f"the program nests more than {MAX_NESTING} levels deep here (dl's limit: "
                                "docs/reference.md, Limits)", self.span(i, i))

    # ---- start symbols
    def run(self, start: str):
        if not self.values and start != "program":
            raise Bail("empty")
        if start == "program":
            decls = []
            while self.peek() != "$end":
                decls.append(self.decl()[0])
            span = self.span(0, len(self.values) - 1) if self.values else Span(self.source, 1, 1, 1, 1)
            return s.Program(tuple(decls), span=span)
        if start == "repl_line":
            node = self.decl()[0] if self.peek() in ("def", "import") else self.expr()[0]
        elif start == "target_term":
            node = self.expr()[0]
        elif start == "type_only":
            node = self.scheme()[0]
        else:
            raise Bail(start)
        if self.peek() != "$end":
            raise Bail("trailing input")
        return node

    def decl(self):
        first = self.i
        if self.peek() == "import":
            self.i += 1
            k = self.take("string")
            return s.Import(self.values[k][1:-1], span=self.span(first, k)), first, k
        self.take("def")
        k = self.take("name")
        params = self.params()
        annot = None
        if self.peek() == ":":
            self.i += 1
            annot = self.scheme()[0]
        self.take("=")
        body, _, last = self.expr()
        return (s.Def(self.values[k], params, annot, body, span=self.span(first, last), name_span=self.span(k, k)),
                first, last)

    # ---- expressions
    def expr(self):
        """expr: open | pipe."""
        self.enter()
        try:
            if self.peek() in _OPEN:
                return self.open()
            return self.binary(1)
        finally:
            self.depth -= 1

    def operand(self, parse):
        """The right operand of an operator: an open form (fun, let, if), which extends as far right as it
        can, or what `parse` reads."""
        if self.peek() in _OPEN:
            return self.expr()
        self.enter()
        try:
            return parse()
        finally:
            self.depth -= 1

    def open(self):
        first = self.i
        kind = self.peek()
        self.i += 1
        if kind in ("fun", "\\"):
            params = []
            while self.peek() != "->":
                params.append(self.pattern()[0])
            if not params:
                raise Bail("fun without parameters")
            self.i += 1
            body, _, last = self.expr()
            return s.Lambda(tuple(params), body, span=self.span(first, last)), first, last
        if kind == "if":
            cond = self.expr()[0]
            self.take("then")
            then = self.expr()[0]
            self.take("else")
            else_, _, last = self.expr()
            return s.IfExpr(cond, then, else_, span=self.span(first, last)), first, last
        # let
        if self.peek() == "(":
            pattern = self.pattern()[0]
            self.take("=")
            value = self.expr()[0]
            self.take("in")
            body, _, last = self.expr()
            return s.LetIn(pattern, value, body, span=self.span(first, last)), first, last
        recursive = self.peek() == "rec"
        if recursive:
            self.i += 1
        k = self.take("name")
        params = self.params()
        if recursive and not params:
            raise Bail("let rec without parameters")
        annot = None
        if self.peek() == ":":
            self.i += 1
            annot = self.scheme()[0]
        self.take("=")
        value = self.expr()[0]
        self.take("in")
        body, _, last = self.expr()
        return (s.LetFun(self.values[k], params, annot, value, body, recursive, span=self.span(first, last),
                         name_span=self.span(k, k)), first, last)

    def binary(self, lowest: int):
        """Operators of precedence `lowest` and above, by precedence climbing."""
        left, first, last = self.unary()
        compared = False  # whether `left` is a comparison made here (comparisons do not chain)
        while True:
            op = self.kinds[self.i]
            rule = _BINARY.get(op)
            if rule is None or rule[0] < lowest:
                return left, first, last
            prec, right_assoc = rule
            if prec == _CMP and compared:
                raise Bail("chained comparison")
            k = self.i
            self.i += 1
            right, _, last = self.operand(lambda: self.binary(prec if right_assoc else prec + 1))
            left = s.BinOp(self.values[k], left, right, span=self.span(first, last), op_span=self.span(k, k))
            compared = prec == _CMP

    def unary(self):
        """unary: - unary | - open | power."""
        if self.peek() != "-":
            return self.power()
        first = self.i
        self.i += 1
        x, _, last = self.operand(self.unary)
        return s.Neg(x, span=self.span(first, last)), first, last

    def power(self):
        """power: app ^ unary | app ^ open | app."""
        base, first, last = self.app()
        if self.peek() != "^":
            return base, first, last
        k = self.i
        self.i += 1
        right, _, last = self.operand(self.unary)
        return s.BinOp("^", base, right, span=self.span(first, last), op_span=self.span(k, k)), first, last

    def app(self):
        """app: app atom | atom."""
        fn, first, last = self.atom()
        while self.kinds[self.i] in _ATOM_START:
            arg, _, last = self.atom()
            fn = s.Apply(fn, arg, span=self.span(first, last))
        return fn, first, last

    def atom(self):
        first = self.i
        kind = self.kinds[first]
        value = self.values[first] if kind != "$end" else ""
        self.i += 1
        match kind:
            case "int":
                return s.IntLit(_int(value), span=self.span(first, first)), first, first
            case "real":
                return s.RealLit(float(value), span=self.span(first, first)), first, first
            case "string":
                return s.StringLit(value[1:-1], span=self.span(first, first)), first, first
            case "true" | "false":
                return s.BoolLit(kind == "true", span=self.span(first, first)), first, first
            case "name":
                return s.Name(value, span=self.span(first, first)), first, first
            case "[":
                items = []
                if self.peek() != "]":
                    items.append(self.expr()[0])
                    while self.peek() == ",":
                        self.i += 1
                        items.append(self.expr()[0])
                last = self.take("]")
                return s.ListExpr(tuple(items), span=self.span(first, last)), first, last
            case "(":
                if self.peek() == ")":
                    self.i += 1
                    return s.UnitLit(span=self.span(first, first + 1)), first, first + 1
                if self.peek() in _SECTION_OPS and self.peek(1) == ")":
                    self.i += 2
                    return s.Section(self.values[first + 1], span=self.span(first, first + 2)), first, first + 2
                inner = self.expr()[0]
                if self.peek() == ":":
                    self.i += 1
                    t = self.scheme()[0]
                    last = self.take(")")
                    return s.Annot(inner, t, span=self.span(first, last)), first, last
                if self.peek() == ",":
                    items = [inner]
                    while self.peek() == ",":
                        self.i += 1
                        items.append(self.expr()[0])
                    last = self.take(")")
                    return s.TupleExpr(tuple(items), span=self.span(first, last)), first, last
                last = self.take(")")
                return inner, first, last
        raise Bail(kind)

    # ---- patterns
    def params(self) -> tuple:
        params = []
        while self.peek() in ("name", "("):
            params.append(self.pattern()[0])
        return tuple(params)

    def pattern(self):
        """NAME | () | (p : T) | (p) | (p, q, ...)."""
        first = self.i
        if self.peek() == "name":
            self.i += 1
            return s.PName(self.values[first], span=self.span(first, first)), first, first
        self.take("(")
        if self.peek() == ")":
            self.i += 1
            return s.PUnit(span=self.span(first, first + 1)), first, first + 1
        self.enter()
        try:
            inner = self.pattern()[0]
            if self.peek() == ":":
                self.i += 1
                t = self.scheme()[0]
                last = self.take(")")
                return s.PAnnot(inner, t, span=self.span(first, last)), first, last
            if self.peek() == ",":
                items = [inner]
                while self.peek() == ",":
                    self.i += 1
                    items.append(self.pattern()[0])
                last = self.take(")")
                return s.PTuple(tuple(items), span=self.span(first, last)), first, last
            last = self.take(")")
            return inner, first, last
        finally:
            self.depth -= 1

    # ---- types
    def scheme(self):
        """constraints => type | type."""
        first = self.i
        constraints = None
        if self.peek() == "name" and self.peek(1) == "tvar":
            constraints = (self.constraint(),)
        elif self.peek() == "(" and self.peek(1) == "name" and self.peek(2) == "tvar":
            self.i += 1
            constraints = [self.constraint()]
            while self.peek() == ",":
                self.i += 1
                constraints.append(self.constraint())
            if len(constraints) < 2:
                raise Bail("one constraint in parentheses")
            self.take(")")
            constraints = tuple(constraints)
        if constraints is None:
            return self.type()
        self.take("=>")
        body, _, last = self.type()
        return s.TyScheme(constraints, body, span=self.span(first, last)), first, last

    def constraint(self) -> tuple[str, str]:
        k = self.take("name")
        v = self.take("tvar")
        return self.values[k], self.values[v][1:]

    def type(self):
        """ttuple -> type | ttuple."""
        self.enter()
        try:
            left, first, last = self.ttuple()
            if self.peek() != "->":
                return left, first, last
            self.i += 1
            right, _, last = self.type()
            return s.TyFun(left, right, span=self.span(first, last)), first, last
        finally:
            self.depth -= 1

    def ttuple(self):
        item, first, last = self.tatom()
        if self.peek() != "*":
            return item, first, last
        items = [item]
        while self.peek() == "*":
            self.i += 1
            item, _, last = self.tatom()
            items.append(item)
        return s.TyTuple(tuple(items), span=self.span(first, last)), first, last

    def tatom(self):
        first = self.i
        kind = self.kinds[first]
        self.i += 1
        if kind == "name":
            return s.TyName(self.values[first], span=self.span(first, first)), first, first
        if kind == "tvar":
            return s.TyVar(self.values[first][1:], span=self.span(first, first)), first, first
        if kind == "[":
            item = self.type()[0]
            last = self.take("]")
            return s.TyList(item, span=self.span(first, last)), first, last
        if kind == "(":
            if self.peek() == ")":
                self.i += 1
                return s.TyName("Unit", span=self.span(first, first + 1)), first, first + 1
            inner = self.type()[0]
            last = self.take(")")
            return inner, first, last
        raise Bail(kind)


_PIECE = 2000  # digits converted by int() at once; longer literals are split (int() is quadratic in them)


def _int(digits: str) -> int:
    """A decimal literal's value: by halves past a few thousand digits, so that a million-digit literal
    takes about a second rather than minutes (and a budget can stop it between two pieces)."""
    if len(digits) <= _PIECE:
        return int(digits)
    powers: dict[int, int] = {}

    def convert(text: str) -> int:
        if len(text) <= _PIECE:
            return int(text)
        half = len(text) // 2
        low = len(text) - half
        if low not in powers:
            powers[low] = 10 ** low
        return convert(text[:half]) * powers[low] + convert(text[half:])
    return convert(digits)
