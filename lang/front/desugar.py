"""Surface syntax to core terms: patterns, operators, sections, names.

    fun (x, y) z -> e          fun t -> fun z -> let (x, y) = t in e
    let f x y = e1 in e2       let f = fun x -> fun y -> e1 in e2
    a && b,  a || b            if a then b else false,  if a then true else b   (the If says which)
    let ((a, b), ()) = e in t  let (p1, p2) = e in let (a, b) = p1 in let u3 = (p2 : Unit) in t
    x |> f a                   f a x
    map f xs                   map(f, xs)                 (saturated primitive)
    map f                      let t = f in fun xs -> map(t, xs)
    (+)                        fun a -> fun b -> +(a, b)

A node made for a construct the user did not write carries what was written
(`sugar`: the operator of an If, the pattern and the value it matches on a
LetTuple or an Annot, lang/model/core.py Matched), so that a type error speaks
of `&&` and of patterns, not of `if` and annotations (lang/front/wording.py).

Names are resolved here: a local variable, a top-level definition
(`Global`, with the module that defines it), or a built-in. An unbound
name is a `name` error with the closest names in scope as suggestions.
"""
from __future__ import annotations

from ..model.nodes import replace  # dataclasses.replace, without importing dataclasses (start-up)
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Callable

from ..model import core as c
from ..model import syntax as s
from ..model.errors import DlNameError, DlSyntaxError
from ..model.primitives import BINARY_OPERATORS, PRIMITIVES, Primitive
from ..model.spans import NO_SPAN, Span
from ..model.nodes import node

Resolution = c.Global | Primitive | None


@node(slots=False)  # a frozen dataclass, made quickly (start-up), with a __dict__ as before
class Definition:
    """A top-level `def`, desugared: its body is a chain of lambdas for a function."""

    name: str
    module: str
    expr: c.Expr
    span: Span
    name_span: Span


class Fresh:
    """A supply of variable names that do not occur in the text being desugared."""

    def __init__(self, avoid: set[str], prefix: str = "t"):
        self.avoid = avoid
        self.prefix = prefix
        self.n = 0

    def __call__(self, hint: str | None = None) -> str:
        while True:
            self.n += 1
            name = f"{hint or self.prefix}{self.n}"
            if name not in self.avoid:
                self.avoid.add(name)
                return name


def names_in(text: str) -> set[str]:
    """Every identifier-like word of a source text (what fresh names must avoid): the matches of
    `[A-Za-z_][A-Za-z0-9_']*`, found without `re` (start-up): every other character becomes a space, and a
    word's leading digits and primes are not part of a match."""
    words = text.encode("ascii", "replace").translate(_WORD_BYTES).split()
    return {w.lstrip(b"0123456789'").decode() for w in words} - {""}


_WORD_BYTES = bytes(c if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_'") else 32 for c in range(256))


class Locals:
    """The local names in scope while desugaring: a multiset changed in place as binders are entered and
    left (`with scope.having(names): ...`). A persistent set, copied at every binder, made a program of n
    nested binders cost n^2 in time and memory (issue 19)."""

    def __init__(self, names=()):
        self.counts: dict[str, int] = {}
        for n in names:
            self.counts[n] = self.counts.get(n, 0) + 1

    def __contains__(self, name: str) -> bool:
        return name in self.counts

    def __iter__(self):
        return iter(self.counts)

    def having(self, names) -> "_Having":
        return _Having(self.counts, names)


class _Having:
    """`names` in scope for the extent of a `with` block."""

    __slots__ = ("counts", "names")

    def __init__(self, counts: dict[str, int], names):
        self.counts, self.names = counts, names

    def __enter__(self) -> None:
        for n in self.names:
            self.counts[n] = self.counts.get(n, 0) + 1

    def __exit__(self, *exc) -> None:
        for n in self.names:
            k = self.counts[n] - 1
            if k:
                self.counts[n] = k
            else:
                del self.counts[n]


class Desugarer:
    """Desugars the declarations and expressions of one source unit."""

    def __init__(self, resolve: Callable[[str], Resolution], fresh: Fresh, in_scope: Callable[[], list[str]],
                 target: bool = False):
        self.resolve = resolve
        self.fresh = fresh
        self.in_scope = in_scope
        self.target = target  # accept the target language (printed transforms)

    # ---- declarations
    def definition(self, d: s.Def, module: str) -> Definition:
        _check_distinct(d.params)
        body = _annotated(d.body, d.annot)
        expr = self.lam(d.params, body, Locals(), d.span) if d.params else self.expr(body, Locals())
        return Definition(d.name, module, expr, d.span, d.name_span)

    # ---- expressions
    def expr(self, e: s.Expr, scope: Locals | frozenset) -> c.Expr:
        """The core term for `e`, with `scope` the local names in scope."""
        if not isinstance(scope, Locals):
            scope = Locals(scope)
        match e:
            case s.Name() | s.Apply() | s.Section():
                return self.application(e, scope)
            case s.IntLit(v):
                return c.Lit(v, span=e.span)
            case s.RealLit(v) | s.StringLit(v):
                return c.Lit(v, span=e.span)
            case s.BoolLit(v):
                return c.Lit(v, span=e.span)
            case s.UnitLit():
                return c.Lit((), span=e.span)
            case s.TupleExpr(items):
                return c.Tuple(tuple(self.expr(i, scope) for i in items), span=e.span)
            case s.ListExpr(items):
                return c.List(tuple(self.expr(i, scope) for i in items), span=e.span)
            case s.Lambda(params, body):
                _check_distinct(params)
                return self.lam(params, body, scope, e.span)
            case s.BinOp("&&", a, b):
                return c.If(self.expr(a, scope), self.expr(b, scope), c.Lit(False, span=e.span), sugar="&&",
                            span=e.span)
            case s.BinOp("||", a, b):
                return c.If(self.expr(a, scope), c.Lit(True, span=e.span), self.expr(b, scope), sugar="||",
                            span=e.span)
            case s.BinOp("|>", a, b):
                return self.application(s.Apply(b, a, span=e.span), scope)
            case s.BinOp(op, a, b):
                return c.Prim(op, (self.expr(a, scope), self.expr(b, scope)), span=e.span)
            case s.Neg(s.IntLit(v)) | s.Neg(s.RealLit(v)):
                return c.Lit(-v, span=e.span)
            case s.Neg(x):
                return c.Prim("neg", (self.expr(x, scope),), span=e.span)
            case s.LetIn(pattern, value, body):
                _check_distinct((pattern,))
                bound = self.expr(value, scope)
                return self.bind(pattern, bound, body, scope, e.span,
                                 matched=c.Matched(pattern.span, whole=value.span), literal=bound)
            case s.LetFun("_", params, annot, value, body, recursive) if params or recursive:
                raise DlNameError("`_` cannot be defined as a function", e.name_span)
            case s.LetFun("_", (), annot, value, body):  # let _ = e1 in e2: e1 evaluated, not bound
                return self.bind(s.PName("_"), self.expr(_annotated(value, annot), scope), body, scope, e.span)
            case s.LetFun(name, params, annot, value, body, recursive):
                _check_distinct(params)
                valued = _annotated(value, annot)
                # the function is `let [rec] f x = e1`, not the whole `let ... in e2` (whose type it has not)
                with scope.having((name,) if recursive else ()):
                    bound = (self.lam(params, valued, scope, e.span.to(value.span)) if params
                             else self.expr(valued, scope))
                with scope.having((name,)):
                    rest = self.expr(body, scope)
                if recursive:
                    return c.LetRec(name, bound, rest, span=e.span)
                return c.Let(name, bound, rest, span=e.span)
            case s.IfExpr(cond, then, else_):
                return c.If(self.expr(cond, scope), self.expr(then, scope), self.expr(else_, scope), span=e.span)
            case s.Annot(x, t):
                return c.Annot(self.expr(x, scope), t, span=e.span)
            case s.LinLambda(param, body) if self.target:
                with scope.having((param,)):
                    return c.LinLam(param, self.expr(body, scope), span=e.span)
            case s.Instance(name, types) if self.target:
                return self.instance(name, types, scope, e.span)
            case s.LinLambda() | s.Instance():
                raise DlSyntaxError("linear abstractions `-o` and instances `f@T` appear only in printed "
                                    "transforms, not in programs", e.span)
        raise AssertionError(e)

    def lam(self, params: tuple[s.Pattern, ...], body: s.Expr, scope: Locals, span: Span) -> c.Expr:
        """`fun p1 ... pn -> body` as nested one-parameter lambdas."""
        param = params[0]
        name, annot = self.param_name(param)
        with scope.having(_pattern_names(param)):
            rest = self.lam(params[1:], body, scope, span) if len(params) > 1 else self.expr(body, scope)
        if isinstance(param, s.PTuple) or (isinstance(param, s.PAnnot) and not isinstance(param.pattern, s.PName)):
            rest = self.bind(param, c.Var(name, span=param.span), None, scope, span, rest, c.Matched(param.span))
        return c.Lam(name, rest, annot=annot, span=span)

    def param_name(self, p: s.Pattern) -> tuple[str, s.TypeExpr | None]:
        match p:
            case s.PName("_"):
                return self.fresh("w"), None
            case s.PName(name):
                return name, None
            case s.PAnnot(s.PName(name), t) if name != "_":
                return name, t
            case s.PUnit():
                return self.fresh("u"), s.TyName("Unit", span=p.span)
            case _:
                return self.fresh("p"), None

    def bind(self, p: s.Pattern, bound: c.Expr, body: s.Expr | None, scope: Locals, span: Span,
             core_body: c.Expr | None = None, matched: c.Matched | None = None,
             literal: c.Expr | None = None) -> c.Expr:
        """`let p = bound in body` for any pattern (nested tuples become nested lets).

        `matched` says what value `p` matches in the source (a `let`'s value, a component of it, a function's
        parameter), `literal` the core term of that value when it is written out (`(1, 2)` in
        `let ((a, b), c) = (1, 2)`): a nested pattern's type error is then put at the component it matches."""
        if core_body is not None:
            rest = core_body
        else:
            with scope.having(_pattern_names(p)):
                rest = self.expr(body, scope)
        if matched is None:
            matched = c.Matched(p.span)
        match p:
            case s.PName("_"):  # printed target terms sequence with `let _ = e1 in e2`: read back as printed
                return c.Let("_" if self.target else self.fresh("w"), bound, rest, span=span)
            case s.PName(name):
                return c.Let(name, bound, rest, span=span)
            case s.PUnit():
                unit = replace(matched, pattern=p.span, unit=True)
                return c.Let(self.fresh("u"), c.Annot(bound, s.TyName("Unit"), sugar=unit, span=p.span), rest,
                             span=span)
            case s.PAnnot(inner, t):
                annotated = c.Annot(bound, t, sugar=replace(matched, pattern=p.span), span=p.span)
                return self.bind(inner, annotated, None, scope, span, rest, matched, literal)
            case s.PTuple(items):
                parts = literal.items if isinstance(literal, c.Tuple) and len(literal.items) == len(items) else None
                names = []
                nested = []
                for k, item in enumerate(items):
                    if isinstance(item, s.PName) and item.name != "_":
                        names.append(item.name)
                    else:
                        n = self.fresh("p")
                        names.append(n)
                        nested.append((k, item, n))
                for k, item, n in reversed(nested):
                    part = parts[k] if parts is not None else None
                    component = self.component(matched, item.span, k + 1, literal, part)
                    at = component.part if component.part.source else component.whole
                    rest = self.bind(item, c.Var(n, span=at if at.source else item.span), None, scope, span, rest,
                                     component, part)
                return c.LetTuple(tuple(names), bound, rest, sugar=replace(matched, pattern=p.span), span=span)
        raise AssertionError(p)

    @staticmethod
    def component(matched: c.Matched, pattern: Span, k: int, literal: c.Expr | None,
                  part: c.Expr | None) -> c.Matched:
        """What the k-th part `pattern` of a tuple pattern matches: component k of the value `matched`
        describes (counted from the innermost value written out: `literal`, else `matched`'s own)."""
        if matched.whole.source is None:  # a function's parameter: no value, only the pattern
            return c.Matched(pattern)
        if literal is not None and literal.span.source:
            whole, path = literal.span, (k, ())
        else:
            whole, path = matched.whole, (k, matched.path)
        return c.Matched(pattern, whole, path, part.span if part is not None else NO_SPAN)

    # ---- names and applications
    def application(self, e: s.Expr, scope: Locals) -> c.Expr:
        """An application spine `h a1 ... an`, saturating built-ins."""
        args: list[s.Expr] = []
        spans: list[Span] = []  # spans[k]: the application `h a1 ... a(k+1)`, parentheses included
        head = e
        while isinstance(head, s.Apply):
            args.append(head.arg)
            spans.append(head.span)
            head = head.fn
        args.reverse()
        spans.reverse()
        if isinstance(head, s.Name) and head.name != "_" and head.name not in scope \
                and not self.resolvable(head.name):
            raise self.unbound(head.name, head.span, scope)  # left to right: the head's error first
        core_args = [self.expr(a, scope) for a in args]
        if isinstance(head, s.Section):
            if head.op in ("&&", "||", "|>"):
                fn = self.section_lambda(head.op, head.span, scope)
                return _apply(fn, core_args, spans, e.span)
            return self.saturate(PRIMITIVES[head.op] if head.op in PRIMITIVES else None, head.op, core_args,
                                 spans, head.span, e.span)
        if not isinstance(head, s.Name):
            return _apply(self.expr(head, scope), core_args, spans, e.span)
        name = head.name
        if name == "_":
            raise DlSyntaxError("`_` is a pattern; it cannot be used as a value", head.span)
        if name in scope:
            return _apply(c.Var(name, span=head.span), core_args, spans, e.span)
        found = self.resolve(name)
        if isinstance(found, c.Global):
            return _apply(c.Global(found.name, found.module, span=head.span), core_args, spans, e.span)
        if isinstance(found, Primitive) and (self.target or not found.target):
            return self.saturate(found, name, core_args, spans, head.span, e.span)
        raise self.unbound(name, head.span, scope)

    def resolvable(self, name: str) -> bool:
        """Whether a name means a definition or a built-in here (target primitives only in target text)."""
        found = self.resolve(name)
        return found is not None and not (isinstance(found, Primitive) and found.target and not self.target)

    def saturate(self, prim: Primitive, name: str, args: list[c.Expr], spans: list[Span], head_span: Span,
                 span: Span) -> c.Expr:
        """A primitive applied to `args`: saturated, or eta-expanded over the missing ones."""
        k = prim.arity
        if len(args) >= k:
            whole = spans[k - 1] if k and spans[k - 1].source else head_span
            return _apply(c.Prim(prim.name, tuple(args[:k]), span=whole), args[k:], spans[k:], span)
        lets = []
        given = []
        for a in args:
            if isinstance(a, (c.Var, c.Lit, c.Global)):
                given.append(a)
            else:
                t = self.fresh("a")
                lets.append((t, a))
                given.append(c.Var(t, span=a.span))
        params = [self.fresh("x") for _ in range(k - len(args))]
        body: c.Expr = c.Prim(prim.name, tuple(given) + tuple(c.Var(p, span=head_span) for p in params), span=span)
        for p in reversed(params):
            body = c.Lam(p, body, span=span)
        for t, a in reversed(lets):
            body = c.Let(t, a, body, span=span)
        return body

    def section_lambda(self, op: str, span: Span, scope: Locals) -> c.Expr:
        a, b = s.Name(self.fresh("x"), span=span), s.Name(self.fresh("y"), span=span)
        return self.expr(s.Lambda((s.PName(a.name), s.PName(b.name)), s.BinOp(op, a, b, span=span), span=span), scope)

    def instance(self, name: str, types: tuple, scope: Locals, span: Span) -> c.Expr:
        if name in scope:
            return c.Var(name, inst=types, span=span)
        found = self.resolve(name)
        if isinstance(found, c.Global):
            return c.Global(found.name, found.module, inst=types, span=span)
        raise self.unbound(name, span, scope)

    def unbound(self, name: str, span: Span, scope: Locals) -> DlNameError:
        candidates = list(scope) + self.in_scope()
        import difflib  # only for a name that is not defined (start-up)
        close = difflib.get_close_matches(name, candidates, n=3)
        hint = f"; did you mean {', '.join('`' + n + '`' for n in close)}?" if close else ""
        return DlNameError(f"unbound name `{name}`{hint}", span)


def _apply(fn: c.Expr, args: list[c.Expr], spans: list[Span], span: Span) -> c.Expr:
    """`fn a1 ... an`, each application with its span from `spans` (else from `fn` to the argument)."""
    for a, sp in zip(args, spans):
        if sp.source is None:
            sp = fn.span.to(a.span) if fn.span.source else span
        fn = c.App(fn, a, span=sp)
    return fn


def _annotated(body: s.Expr, annot: s.TypeExpr | None) -> s.Expr:
    return s.Annot(body, annot, span=body.span) if annot is not None else body


def _pattern_names(p: s.Pattern) -> frozenset:
    return frozenset(name for name, _ in _pattern_name_spans(p))


def _pattern_name_spans(p: s.Pattern) -> list[tuple[str, Span]]:
    """The names a pattern binds, with their spans, left to right. One walk with one list: joining the
    parts' lists (or sets) level by level is quadratic in a pattern's depth (issue 19 item 9)."""
    out: list[tuple[str, Span]] = []
    todo = [p]
    while todo:
        match todo.pop():
            case s.PName(name) as q:
                if name != "_":
                    out.append((name, q.span))
            case s.PUnit():
                pass
            case s.PAnnot(inner, _):
                todo.append(inner)
            case s.PTuple(items):
                todo.extend(reversed(items))
            case q:
                raise AssertionError(q)
    return out


def _check_distinct(patterns) -> None:
    """A name may be bound once per parameter list or pattern."""
    seen: set[str] = set()
    for p in patterns:
        for name, span in _pattern_name_spans(p):
            if name in seen:
                raise DlNameError(f"`{name}` is bound twice in the same pattern", span)
            seen.add(name)


__all__ = ["Definition", "Desugarer", "Fresh", "names_in", "BINARY_OPERATORS", "NO_SPAN"]
