"""Source text to surface syntax trees (lang/syntax.py), with friendly errors.

The grammar is grammar/dl.lark, parsed LALR(1) by Lark. Comments are blanked
out first (nested `{- -}` blocks are not regular), keeping every position.
No `lark.Tree` or `lark.Token` leaves this module: the tree is transformed
into syntax nodes here, and Lark's exceptions become `DlSyntaxError`s whose
messages name what was expected in words.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..model import syntax as s
from ..model.errors import DlSyntaxError
from . import descent
from .resources import cache_dir, grammar_path
from ..model.spans import Source, Span

START_SYMBOLS = ["program", "repl_line", "target_term", "type_only"]


def _grammar_text() -> str:
    """The grammar file's text (lang/grammar/dl.lark)."""
    with open(grammar_path(), encoding="utf-8") as f:
        return f.read()


@lru_cache(maxsize=1)
def keywords() -> frozenset[str]:
    """The reserved words (`def`, `let`, ..., `true`, `false`): those the grammar's NAME terminal excludes.
    The one list every part of dl uses (the REPL's highlighter, completion and continuation rule too)."""
    text = _grammar_text()
    m = re.search(r"^NAME: /\(\?!\(\?:([a-z|]+)\)", text, re.M)
    assert m, "the grammar's NAME terminal no longer starts with its keyword exclusion"
    return frozenset(m.group(1).split("|"))


def terminals() -> list:
    """The grammar's terminals (Lark TerminalDefs: name and pattern), for tools that tokenize dl text."""
    return list(_lark().terminals)


def parse_program(source: Source) -> s.Program:
    """Parse a whole file: a sequence of `import` and `def` declarations."""
    return _parse(source, "program")


def parse_repl_line(source: Source) -> s.Decl | s.Expr:
    """Parse one REPL input: a declaration or an expression."""
    return _parse(source, "repl_line")


def parse_expr(source: Source) -> s.Expr:
    """Parse a single expression (also the target language the transforms print)."""
    return _parse(source, "target_term")


def parse_type(source: Source) -> s.TypeExpr:
    """Parse a type, optionally with constraints: `Num 'a => 'a -> 'a`."""
    return _parse(source, "type_only")


# ---- comments ----------------------------------------------------------

_COMMENT_START = re.compile(r'--|\{-|"')


def strip_comments(source: Source) -> str:
    """The text with comments replaced by spaces (newlines kept), so positions still hold."""
    text = source.text
    out = []
    i = 0
    while True:
        m = _COMMENT_START.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        start = m.start()
        out.append(text[i:start])
        if m.group() == '"':  # a string literal: keep it whole
            end = text.find('"', start + 1)
            end = len(text) if end < 0 or "\n" in text[start:end] else end + 1
            out.append(text[start:end])
            i = end
        elif m.group() == "--":
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            out.append(" " * (end - start))
            i = end
        else:
            end = _block_comment_end(source, start)
            out.append(re.sub(r"[^\n]", " ", text[start:end]))
            i = end


def block_comment_end(text: str, start: int) -> int | None:
    """The index just past the `-}` that closes the `{-` at `start` (blocks nest), or None when the
    comment is never closed. (The REPL's tokenizer uses it too.)"""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("{-", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("-}", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return None


def _block_comment_end(source: Source, start: int) -> int:
    """The end of the block comment at `start`; an unterminated one is a syntax error at its `{-`."""
    text = source.text
    end = block_comment_end(text, start)
    if end is not None:
        return end
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    raise DlSyntaxError("unterminated block comment: `{-` is never closed by `-}`",
                        Span(source, line, col, line, col + 2))


# ---- the parser --------------------------------------------------------


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The LALR parser, built once per process and cached on disk between processes."""
    directory = cache_dir()
    cache = os.path.join(directory, "grammar.lark.cache") if directory else False
    try:
        return Lark(_grammar_text(), parser="lalr", start=START_SYMBOLS,
                    propagate_positions=True, maybe_placeholders=True, cache=cache)
    except OSError:  # an unwritable or broken cache file: build without it
        return Lark(_grammar_text(), parser="lalr", start=START_SYMBOLS,
                    propagate_positions=True, maybe_placeholders=True)


def _parse(source: Source, start: str):
    text = strip_comments(source)
    try:  # the fast parser first; Lark for what it leaves (errors, the target language): lang/front/descent.py
        return descent.parse(source, text, start)
    except (descent.Bail, RecursionError):
        pass
    try:
        tree = _lark().parse(text, start=start)
    except UnexpectedInput as e:
        raise _friendly(e, source, text, target=start == "target_term") from None
    return _to_syntax(tree, source)


# ---- friendly syntax errors ------------------------------------------------
#
# Lark reports a terminal it did not expect and the terminals it would have
# taken. Users see neither terminal names (RPAR, LSQB) nor the target
# language's `-o`, `~` and `@` in a program: what was found and what was
# expected are said in words, with a hint for the usual slips
# (`a < b < c`, `x = 3`, `(+ 1)`, an annotation without parentheses) and for
# Haskell habits that dl writes otherwise (`[1..10]`, `where`).

EXPR_START = {"INT", "REAL", "TRUE", "FALSE", "NAME", "LPAR", "LSQB", "FUN", "BACKSLASH", "LET", "IF", "MINUS"}
OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "CARET", "CMP", "CONS", "APPEND", "AND", "OR", "PIPE"}
_WORDS = {
    "NAME": "a name", "INT": "a number", "REAL": "a number", "STRING": 'a file name in quotes ("file.dl")',
    "TVAR": "a type variable ('a)", "$END": "the end of the input", "CMP": "a comparison", "NEG": "'~'",
}
_OPERATOR_TEXT = r"\|>|\|\||&&|==|!=|<=|>=|::|\+\+|[-+*/^<>]"


@lru_cache(maxsize=1)
def _target_only() -> frozenset[str]:
    """The terminals of `-o`, `~` and `@`: printed transforms only, never suggested to a program."""
    return frozenset(t.name for t in _lark().terminals if t.pattern.value in ("-o", "@") or t.name == "NEG")


def _terminal_words(name: str) -> str:
    if name in _WORDS:
        return _WORDS[name]
    for t in _lark().terminals:
        if t.name == name and t.pattern.type == "str":
            return f"'{t.pattern.value}'"
    return "a " + name.lower().strip("_")


def _previous_token(text: str, pos: int) -> str | None:
    """The token that ends just before offset `pos`, for 'after ...' in messages."""
    before = text[:pos].rstrip()
    m = re.search(r"(\|>|\|\||&&|==|!=|<=|>=|::|\+\+|->|-o|=>|[-+*/^<>=()\[\],:\\@~]"
                  r"|[A-Za-z_][A-Za-z0-9_']*|[0-9.]+)$", before)
    return m.group() if m else None


def _found_words(tok: Token) -> str:
    """The unexpected token, said as what it is."""
    if tok.value in keywords() and tok.type not in ("TRUE", "FALSE"):
        return f"keyword '{tok.value}'"
    if tok.type == "TVAR":
        return f"type variable {tok.value}"
    if tok.type == "STRING":
        return f"string {tok.value}"
    return f"'{tok.value}'"


def _friendly(e: UnexpectedInput, source: Source, text: str, target: bool = False) -> DlSyntaxError:
    """Translate a Lark error into words: what was found, and what was expected."""
    line, col = max(e.line, 1), max(e.column, 1)
    if isinstance(e, UnexpectedCharacters):
        return _bad_character(e, source, text, line, col)
    expected = _acceptable(e)
    if not target:
        expected -= _target_only()
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = text.rstrip().split("\n")
        line = len(lines)
        col = len(lines[-1]) + 1 if lines else 1
        prev = _previous_token(text, len(text.rstrip()))
        what = _expected_words(expected, prev)
        return DlSyntaxError(f"unexpected end of input{': ' + what if what else ''}",
                             Span(source, line, max(col - 1, 1), line, max(col, 2)))
    tok: Token = e.token
    found, start, width = _found_words(tok), tok.start_pos, max(len(str(tok.value)), 1)
    if tok.value == ">" and start > 0 and text[start - 1] == "-":
        # the lexer split `->` into `-` `>` because `->` cannot come here
        found, start, col, width = "'->'", start - 1, col - 1, 2
    span = Span(source, line, col, line, col + width)
    prev = _previous_token(text, start)
    after_operand = bool(expected & (OPERATORS - {"MINUS", "CMP"}))
    if tok.type == "CMP" and "CMP" not in expected and _after_comparison(e):
        return DlSyntaxError(f"comparisons do not chain: write `a {tok.value} b && b {tok.value} c`, "
                             "or add parentheses", span)
    what = _expected_words(expected, prev)
    message = f"unexpected {found}{': ' + what if what else ''}"
    return DlSyntaxError(message + _hint(tok, expected, text, start, after_operand), span)


def _after_comparison(e: UnexpectedInput) -> bool:
    """Whether the parser has just read a whole comparison `a < b` (so a `<` now would chain)."""
    parser = getattr(e, "interactive_parser", None)
    stack = parser.parser_state.value_stack if parser is not None else []
    top = stack[-1] if stack else None
    return isinstance(top, Tree) and top.data == "binop" and getattr(top.children[1], "type", None) == "CMP"


def _hint(tok: Token, expected: set[str], text: str, start: int, after_operand: bool) -> str:
    """A suggestion for the usual slips, or ''."""
    if tok.type == "EQUAL" and after_operand:
        return _where_instead(text, start) or " (to compare, write `==`)"
    if tok.type == "COLON" and "COLON" not in expected and _ends_operand(_previous_token(text, start)):
        return " (a type annotation goes in parentheses: `(e : T)`)"
    section = re.search(rf"\(\s*({_OPERATOR_TEXT})\s*$", text[:start])
    if expected == {"RPAR"} and section and tok.type in EXPR_START:
        op = section.group(1)
        return f" (an operator section has no operand: write `({op})`, or `fun x -> x {op} ...`)"
    return ""


def _bad_character(e: UnexpectedCharacters, source: Source, text: str, line: int, col: int) -> DlSyntaxError:
    pos = e.pos_in_stream
    ch = text[pos] if pos < len(text) else "?"
    span = Span(source, line, col, line, col + 1)
    if ch == "}" and pos > 0 and text[pos - 1] == "-":
        return DlSyntaxError("`-}` closes a block comment, but no `{-` is open",
                             Span(source, line, col - 1, line, col + 1))
    if ch == "." and (text[pos:pos + 2] == ".." or (pos > 0 and text[pos - 1] == ".")):
        return DlSyntaxError("dl has no `[a..b]` ranges: " + _range_instead(text, pos), span)
    if ch == "." and pos > 0 and text[pos - 1].isdigit():
        return DlSyntaxError("a real number needs digits after the point: write `1.0`, not `1.`", span)
    if ch == "." and pos + 1 < len(text) and text[pos + 1].isdigit():
        return DlSyntaxError("a real number needs digits before the point: write `0.5`, not `.5`", span)
    if ch == '"':
        return DlSyntaxError('a string must end on the line it starts on', span)
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that is not UTF-8, as `surrogateescape` decoded it
        return DlSyntaxError(f"unexpected byte {ord(ch) - 0xDC00:#04x}: not UTF-8 text", span)
    return DlSyntaxError(f"unexpected character {ch!r}", span)


def _range_instead(text: str, pos: int) -> str:
    """What dl writes for Haskell's `[a..b]` at offset `pos` (its `..`): `range` and `build`, and the
    very call when a and b are integers."""
    words = "`range n` is [0, 1, ..., n - 1] and `build n f` is [f 0, ..., f (n - 1)]"
    start, end = text.rfind("[", 0, pos), text.find("]", pos)
    m = re.fullmatch(r"\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]", text[start:end + 1]) if 0 <= start < end else None
    if not m:
        return words
    a, b = int(m.group(1)), int(m.group(2))
    n = max(b - a + 1, 0)
    call = f"range {n}" if a == 0 else f"build {n} (fun i -> i {'+' if a > 0 else '-'} {abs(a)})"
    return f"{words}; [{a}..{b}] is `{call}`"


def _where_instead(text: str, start: int) -> str:
    """A hint when a Haskell `where` clause precedes the `=` at offset `start` ('' when none does): dl
    binds with `let x = e in body`, before the body. (`where` is no keyword in dl, so `f x where y = 1`
    parses as an application up to the `=`.)"""
    decl = max(text.rfind("def ", 0, start), 0)
    m = None
    for m in re.finditer(r"\bwhere\b\s*((?:[A-Za-z_][A-Za-z0-9_']*\s*)*)$", text[decl:start]):
        pass
    if not m:
        return ""
    bound = m.group(1).split()
    binding = " ".join(bound) if bound else "x"
    return f" (dl has no `where`: bind before the body with `let {binding} = ... in ...`)"


def _ends_operand(prev: str | None) -> bool:
    """Whether the token `prev` can end an operand: a name, a number, `)` or `]`."""
    return (prev is not None and bool(re.fullmatch(r"[A-Za-z0-9_'.]+|[)\]]", prev))
            and (prev not in keywords() or prev in ("true", "false")))


def _acceptable(e: UnexpectedInput) -> set[str]:
    """The terminals the parser could really take here (LALR's merged lookaheads over-approximate)."""
    parser = getattr(e, "interactive_parser", None)
    if parser is not None:
        try:
            return set(parser.accepts())
        except Exception:  # noqa: BLE001 — only a better message is lost
            pass
    return set(getattr(e, "expected", None) or ())


def _expected_words(expected: set[str], prev: str | None) -> str:
    after = f" after '{prev}'" if prev else ""
    if expected & {"INT", "LSQB", "IF"}:
        if _ends_operand(prev) and expected & (OPERATORS - {"MINUS"}):
            return f"expected an operator or an argument{after}"
        return f"expected an expression{after}"
    words = sorted({_terminal_words(n) for n in expected if n not in OPERATORS})
    if not words:
        return f"expected an operator{after}"
    if len(words) > 4:
        words = words[:4] + ["..."]
    return "expected " + " or ".join(words) + after


# ---- Lark tree to syntax nodes ---------------------------------------------


def _to_syntax(tree: Tree, source: Source):
    """The syntax node of a Lark tree, built bottom-up without recursion (programs nest 10^5 deep), each
    node by the `_ToSyntax` method named after its grammar alias. Exceptions pass through unwrapped: a
    DlSyntaxError of a method, a budget's Timeout, Ctrl-C."""
    build = _ToSyntax(source)
    stack: list[tuple[Tree, list]] = [(tree, [])]
    while True:
        node, done = stack[-1]
        if len(done) < len(node.children):
            child = node.children[len(done)]
            if isinstance(child, Tree):
                stack.append((child, []))
            else:
                done.append(child)
            continue
        stack.pop()
        method = getattr(build, node.data)
        wrapper = getattr(method, "visit_wrapper", None)
        value = wrapper(method, node.data, done, node.meta) if wrapper is not None else method(done)
        if not stack:
            return value
        stack[-1][1].append(value)



def _tok_span(source: Source, tok: Token) -> Span:
    return Span(source, tok.line, tok.column, tok.end_line, tok.end_column)


def _name(source: Source, tok: Token) -> str:
    """A NAME token's text (the NAME terminal excludes keywords; this check is a second line of defence)."""
    if tok in keywords():
        raise DlSyntaxError(f"unexpected keyword '{tok}'", _tok_span(source, tok))
    return str(tok)


class _ToSyntax(Transformer):
    """Builds lang.syntax nodes; every method is named after its grammar alias."""

    def __init__(self, source: Source):
        super().__init__(visit_tokens=False)
        self.source = source

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.source, 1, 1, 1, 1)
        return Span(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    # -- top level
    @v_args(meta=True)
    def program(self, meta, children):
        return s.Program(tuple(children), span=self._span(meta))

    def repl_line(self, children):
        return children[0]

    target_term = type_only = repl_line

    @v_args(meta=True)
    def import_decl(self, meta, children):
        return s.Import(str(children[0])[1:-1], span=self._span(meta))

    @v_args(meta=True)
    def def_decl(self, meta, children):
        name, *params, annot, body = children
        return s.Def(_name(self.source, name), tuple(params), annot, body, span=self._span(meta),
                     name_span=_tok_span(self.source, name))

    # -- expressions
    @v_args(meta=True)
    def lambda_(self, meta, children):
        _, *params, body = children
        return s.Lambda(tuple(params), body, span=self._span(meta))

    @v_args(meta=True)
    def lin_lambda(self, meta, children):
        _, name, body = children
        return s.LinLambda(_name(self.source, name), body, span=self._span(meta))

    @v_args(meta=True)
    def let_fun(self, meta, children):
        _, name, *params, annot, value, body = children
        return s.LetFun(_name(self.source, name), tuple(params), annot, value, body, False, span=self._span(meta),
                        name_span=_tok_span(self.source, name))

    @v_args(meta=True)
    def let_rec(self, meta, children):
        _, _, name, *params, annot, value, body = children
        return s.LetFun(_name(self.source, name), tuple(params), annot, value, body, True, span=self._span(meta),
                        name_span=_tok_span(self.source, name))

    @v_args(meta=True)
    def let_pattern(self, meta, children):
        _, pattern, value, body = children
        return s.LetIn(pattern, value, body, span=self._span(meta))

    @v_args(meta=True)
    def if_(self, meta, children):
        _, cond, then, else_ = children
        return s.IfExpr(cond, then, else_, span=self._span(meta))

    @v_args(meta=True)
    def binop(self, meta, children):
        left, op, right = children
        return s.BinOp(str(op), left, right, span=self._span(meta), op_span=_tok_span(self.source, op))

    @v_args(meta=True)
    def neg(self, meta, children):
        return s.Neg(children[1], span=self._span(meta))

    @v_args(meta=True)
    def apply(self, meta, children):
        return s.Apply(children[0], children[1], span=self._span(meta))

    @v_args(meta=True)
    def int_lit(self, meta, children):
        return s.IntLit(int(children[0]), span=self._span(meta))

    @v_args(meta=True)
    def real_lit(self, meta, children):
        return s.RealLit(float(children[0]), span=self._span(meta))

    @v_args(meta=True)
    def string_lit(self, meta, children):
        return s.StringLit(str(children[0])[1:-1], span=self._span(meta))

    @v_args(meta=True)
    def true_lit(self, meta, children):
        return s.BoolLit(True, span=self._span(meta))

    @v_args(meta=True)
    def false_lit(self, meta, children):
        return s.BoolLit(False, span=self._span(meta))

    @v_args(meta=True)
    def name(self, meta, children):
        return s.Name(_name(self.source, children[0]), span=self._span(meta))

    @v_args(meta=True)
    def instance(self, meta, children):
        return s.Instance(_name(self.source, children[0]), tuple(children[1:]), span=self._span(meta))

    @v_args(meta=True)
    def unit_lit(self, meta, children):
        return s.UnitLit(span=self._span(meta))

    def paren(self, children):
        return children[1]

    @v_args(meta=True)
    def annot(self, meta, children):
        return s.Annot(children[1], children[2], span=self._span(meta))

    @v_args(meta=True)
    def tuple(self, meta, children):
        return s.TupleExpr(tuple(children[1:-1]), span=self._span(meta))

    @v_args(meta=True)
    def list_lit(self, meta, children):
        return s.ListExpr(tuple(children[1:-1]), span=self._span(meta))

    @v_args(meta=True)
    def section(self, meta, children):
        return s.Section(str(children[1]), span=self._span(meta))

    def operator(self, children):
        return children[0]

    # -- patterns
    @v_args(meta=True)
    def p_name(self, meta, children):
        return s.PName(_name(self.source, children[0]), span=self._span(meta))

    @v_args(meta=True)
    def p_unit(self, meta, children):
        return s.PUnit(span=self._span(meta))

    @v_args(meta=True)
    def p_annot(self, meta, children):
        return s.PAnnot(children[1], children[2], span=self._span(meta))

    def p_paren(self, children):
        return children[1]

    @v_args(meta=True)
    def p_tuple(self, meta, children):
        return s.PTuple(tuple(children[1:-1]), span=self._span(meta))

    # -- types
    @v_args(meta=True)
    def t_scheme(self, meta, children):
        return s.TyScheme(children[0], children[1], span=self._span(meta))

    def constraints(self, children):
        return tuple(c for c in children if isinstance(c, tuple))

    def constraint(self, children):
        return (str(children[0]), str(children[1])[1:])

    @v_args(meta=True)
    def t_fun(self, meta, children):
        return s.TyFun(children[0], children[1], span=self._span(meta))

    @v_args(meta=True)
    def t_tuple(self, meta, children):
        return s.TyTuple(tuple(children), span=self._span(meta))

    @v_args(meta=True)
    def t_neg(self, meta, children):
        return s.TyNeg(children[1], span=self._span(meta))

    @v_args(meta=True)
    def t_name(self, meta, children):
        return s.TyName(str(children[0]), span=self._span(meta))

    @v_args(meta=True)
    def t_var(self, meta, children):
        return s.TyVar(str(children[0])[1:], span=self._span(meta))

    @v_args(meta=True)
    def t_list(self, meta, children):
        return s.TyList(children[1], span=self._span(meta))

    @v_args(meta=True)
    def t_unit(self, meta, children):
        return s.TyName("Unit", span=self._span(meta))

    def t_paren(self, children):
        return children[1]


# `lambda` is a Python keyword: the grammar alias maps to this method.
setattr(_ToSyntax, "lambda", _ToSyntax.lambda_)
