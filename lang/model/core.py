"""Core terms: the small language every later stage works on.

    e ::= x | g | c | fun x -> e | e e | let x = e in e | let rec f = fun x -> e in e
        | let (x1, ..., xn) = e in e | if e then e else e | (e, ..., e) | [e, ..., e]
        | p(e1, ..., ek)                       saturated primitive (lang/primitives.py)
        | (e : T)                              annotation, checked by inference
    target language of the transforms (docs/transforms.md, Notation: the target language) adds:
        | fun a -o e                           linear abstraction, a backpropagator
        | e e                                  (LinApp) applying a backpropagator
        | 0 | e + e                            zero and sum of the answer type d

`x` is a local variable, `g` a top-level definition (Global, with the module
that defines it). After inference every node carries its type in `ty`; after
specialisation (lang/mono.py) `inst` names the instance of a polymorphic
binding (`sq@Int`). Types and spans are left out of equality.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

from .nodes import field, node, replace  # dataclass(frozen=True, slots=True), made quickly (start-up)
from .spans import NO_SPAN, Span


def _meta(default: Any = None) -> Any:
    return field(default=default, compare=False, repr=False, kw_only=True)



@node
class Var:  # x   (x@Int after specialisation of a polymorphic local)
    name: str
    inst: tuple = ()
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Global:  # g   (a top-level definition of `module`)
    name: str
    module: str
    inst: tuple = ()
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Lit:  # 42 | 4.2 | true | ()
    value: Any
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Lam:  # fun x -> e
    param: str
    body: Expr
    annot: Any = _meta()   # a syntax.TypeExpr the parameter was annotated with
    origin: Any = _meta()  # a transformed lambda: the source lambda it came from
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class App:  # e1 e2
    fn: Expr
    arg: Expr
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Let:  # let x = e1 in e2
    name: str
    bound: Expr
    body: Expr
    inst: tuple = ()
    qvars: tuple = _meta(())  # the constrained variables `bound` was generalised over
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class LetRec:  # let rec f = fun x -> e1 in e2
    name: str
    bound: Lam
    body: Expr
    inst: tuple = ()
    qvars: tuple = _meta(())
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class LetTuple:  # let (x1, ..., xn) = e1 in e2
    names: tuple[str, ...]
    bound: Expr
    body: Expr
    sugar: Any = _meta()  # the tuple pattern it was desugared from, a Matched (None: written as such)
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class If:  # if c then e1 else e2
    cond: Expr
    then: Expr
    else_: Expr
    sugar: str | None = _meta()  # "&&" or "||" when it is `a && b` or `a || b` (lang/front/desugar.py)
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Tuple:  # (e1, ..., en), n >= 2
    items: tuple[Expr, ...]
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class List:  # [e1, ..., en]
    items: tuple[Expr, ...]
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Prim:  # p(e1, ..., ek), a saturated primitive
    op: str
    args: tuple[Expr, ...]
    src: Any = _meta()  # differentiation primitives: the source type of the function, kept through transforms
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Annot:  # (e : T)
    expr: Expr
    type: Any  # a syntax.TypeExpr
    sugar: Any = _meta()  # the pattern `(p : T)` or `()` it was desugared from, a Matched (None: written as such)
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class Matched:
    """A pattern and the value it matches, kept on the node desugaring made of it (lang/front/desugar.py),
    so that a type error speaks of what was written (lang/front/wording.py): in
    `let ((a, b), c) = (1, 2) in a` the pattern `(a, b)` matches component 1 of `(1, 2)`, which is `1`."""

    pattern: Span            # the (part of the) pattern, as written: `(a, b)`, `()`, `(x : Int)`
    whole: Span = NO_SPAN    # the value the whole pattern matches (a `let`'s); NO_SPAN: a function's parameter
    path: tuple = ()         # which component of `whole` the pattern matches: (k, path of the tuple it is
                             # component k of), () for `whole` itself (linked: nested patterns stay linear)
    part: Span = NO_SPAN     # that component's own text, when `whole` is written out as a tuple
    unit: bool = False       # the pattern is `()` (its `Unit` was not written by the user)


# ---- the target language's linear fragment (docs/transforms.md, Notation: the target language) ---------------------


@node
class LinLam:  # fun a -o e, a backpropagator : ~T
    param: str
    body: Expr
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class LinApp:  # x' e, applying a backpropagator : d
    fn: Expr
    arg: Expr
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class DZero:  # 0 : d
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


@node
class DSum:  # e1 + e2 : d
    left: Expr
    right: Expr
    ty: Any = _meta()
    span: Span = _meta(NO_SPAN)


Expr = Var | Global | Lit | Lam | App | Let | LetRec | LetTuple | If | Tuple | List | Prim | Annot | LinLam | LinApp | DZero | DSum


def children(e: Expr) -> tuple[Expr, ...]:
    """The immediate subterms of `e`, in evaluation order."""
    match e:
        case Var() | Global() | Lit() | DZero():
            return ()
        case Lam(body=b) | LinLam(body=b) | Annot(expr=b):
            return (b,)
        case App(f, a) | LinApp(f, a):
            return (f, a)
        case Let(bound=b, body=c) | LetRec(bound=b, body=c) | LetTuple(bound=b, body=c):
            return (b, c)
        case If(c, t, f):
            return (c, t, f)
        case Tuple(items) | List(items):
            return items
        case Prim(args=args):
            return args
        case DSum(l, r):
            return (l, r)
    raise AssertionError(e)



def subterms(e: Expr):
    """Every subterm of `e`, `e` first, without recursion (terms may be deeper than Python's stack)."""
    stack = [e]
    while stack:
        t = stack.pop()
        yield t
        stack.extend(children(t))

def map_children(e: Expr, f) -> Expr:
    """`e` with each immediate subterm t replaced by f(t); everything else (types, spans, names) kept.

    The one place that knows how to rebuild each node: every term walker (the transforms, the
    specialiser, the simplifier, the reader of printed terms) handles the nodes it cares about and
    hands the rest here."""
    match e:
        case Var() | Global() | Lit() | DZero():
            return e
        case Lam(body=b) | LinLam(body=b):
            return replace(e, body=f(b))
        case Annot(expr=x):
            return replace(e, expr=f(x))
        case App(fn, arg) | LinApp(fn, arg):
            return replace(e, fn=f(fn), arg=f(arg))
        case Let(bound=b, body=d) | LetRec(bound=b, body=d) | LetTuple(bound=b, body=d):
            return replace(e, bound=f(b), body=f(d))
        case If(x, y, z):
            return replace(e, cond=f(x), then=f(y), else_=f(z))
        case Tuple(items) | List(items):
            return replace(e, items=tuple(f(i) for i in items))
        case Prim(args=args):
            return replace(e, args=tuple(f(a) for a in args))
        case DSum(l, r):
            return replace(e, left=f(l), right=f(r))
    raise AssertionError(e)


def lambda_chain(e: Expr) -> tuple[list[str], Expr]:
    """fun x -> fun y -> body  as  ([x, y], body)."""
    params = []
    while isinstance(e, Lam):
        params.append(e.param)
        e = e.body
    return params, e


def spine(e: Expr) -> tuple[Expr, list[Expr]]:
    """f a1 .. an  as  (f, [a1, .., an])."""
    args = []
    while isinstance(e, App):
        args.append(e.arg)
        e = e.fn
    return e, args[::-1]


def size(e: Expr) -> int:
    """The number of nodes of a term (iterative: terms can be deep)."""
    count, stack = 0, [e]
    while stack:
        t = stack.pop()
        count += 1
        stack.extend(children(t))
    return count


def free_locals(e: Expr) -> set[tuple[str, tuple]]:
    """The local variables (name, instance) occurring free in `e`."""
    match e:
        case Var(name, inst):
            return {(name, inst)}
        case Global() | Lit() | DZero():
            return set()
        case Lam(param, body) | LinLam(param, body):
            return free_locals(body) - {(param, ())}
        case Let(name, bound, body, inst):
            return free_locals(bound) | (free_locals(body) - {(name, inst)})
        case LetRec(name, bound, body, inst):
            return (free_locals(bound) | free_locals(body)) - {(name, inst)}
        case LetTuple(names, bound, body):
            return free_locals(bound) | (free_locals(body) - {(n, ()) for n in names})
        case _:
            out: set = set()
            for c in children(e):
                out |= free_locals(c)
            return out
