"""The surface syntax tree: what the parser builds, before desugaring.

Every node is a frozen, slotted dataclass whose source span is a keyword-only
field left out of equality, so tests can compare against trees written
without positions. Each class names its concrete syntax in a comment.
"""
from __future__ import annotations


from .nodes import field, node  # dataclass(frozen=True, slots=True), made quickly (start-up)

from .spans import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


# ---- types written by the user ------------------------------------------


@node
class TyName:  # Real | Int | Bool | Unit | d
    name: str
    span: Span = _span()


@node
class TyVar:  # 'a
    name: str
    span: Span = _span()


@node
class TyFun:  # T -> U
    arg: TypeExpr
    result: TypeExpr
    span: Span = _span()


@node
class TyTuple:  # T * U * ...
    items: tuple[TypeExpr, ...]
    span: Span = _span()


@node
class TyList:  # [T]
    item: TypeExpr
    span: Span = _span()


@node
class TyNeg:  # ~T or ¬T (target language only)
    item: TypeExpr
    span: Span = _span()


@node
class TyScheme:  # Num 'a => T
    constraints: tuple[tuple[str, str], ...]  # (class, variable)
    body: TypeExpr
    span: Span = _span()


TypeExpr = TyName | TyVar | TyFun | TyTuple | TyList | TyNeg | TyScheme

# ---- patterns ------------------------------------------------------------


@node
class PName:  # x  (also _, the wildcard)
    name: str
    span: Span = _span()


@node
class PUnit:  # ()
    span: Span = _span()


@node
class PTuple:  # (p, q, ...)
    items: tuple[Pattern, ...]
    span: Span = _span()


@node
class PAnnot:  # (p : T)
    pattern: Pattern
    type: TypeExpr
    span: Span = _span()


Pattern = PName | PUnit | PTuple | PAnnot

# ---- expressions ---------------------------------------------------------


@node
class Name:  # x
    name: str
    span: Span = _span()


@node
class Instance:  # f@Real (printed transforms only)
    name: str
    types: tuple[TypeExpr, ...]
    span: Span = _span()


@node
class IntLit:  # 42
    value: int
    span: Span = _span()


@node
class RealLit:  # 4.2, 1e-3
    value: float
    span: Span = _span()


@node
class StringLit:  # "data/points.csv" (a String: what the data loaders take)
    value: str
    span: Span = _span()


@node
class BoolLit:  # true | false
    value: bool
    span: Span = _span()


@node
class UnitLit:  # ()
    span: Span = _span()


@node
class TupleExpr:  # (e1, e2, ...)
    items: tuple[Expr, ...]
    span: Span = _span()


@node
class ListExpr:  # [e1, ..., en]
    items: tuple[Expr, ...]
    span: Span = _span()


@node
class Lambda:  # fun p1 ... pn -> e   |   \p -> e
    params: tuple[Pattern, ...]
    body: Expr
    span: Span = _span()


@node
class LinLambda:  # fun a -o e (target language only)
    param: str
    body: Expr
    span: Span = _span()


@node
class Apply:  # f a
    fn: Expr
    arg: Expr
    span: Span = _span()


@node
class BinOp:  # e1 op e2
    op: str
    left: Expr
    right: Expr
    span: Span = _span()
    op_span: Span = _span()


@node
class Neg:  # -e
    expr: Expr
    span: Span = _span()


@node
class Section:  # (+), (::), ...
    op: str
    span: Span = _span()


@node
class LetIn:  # let p = e1 in e2
    pattern: Pattern
    value: Expr
    body: Expr
    span: Span = _span()


@node
class LetFun:  # let [rec] f p1 .. pn [: T] = e1 in e2
    name: str
    params: tuple[Pattern, ...]
    annot: TypeExpr | None
    value: Expr
    body: Expr
    recursive: bool = False
    span: Span = _span()
    name_span: Span = _span()


@node
class IfExpr:  # if c then e1 else e2
    cond: Expr
    then: Expr
    else_: Expr
    span: Span = _span()


@node
class Annot:  # (e : T)
    expr: Expr
    type: TypeExpr
    span: Span = _span()


Expr = (
    Name | Instance | IntLit | RealLit | StringLit | BoolLit | UnitLit | TupleExpr | ListExpr | Lambda
    | LinLambda | Apply | BinOp | Neg | Section | LetIn | LetFun | IfExpr | Annot
)

# ---- declarations --------------------------------------------------------


@node
class Import:  # import "path.dl"
    path: str
    span: Span = _span()


@node
class Def:  # def name p1 p2 ... [: T] = e
    name: str
    params: tuple[Pattern, ...]
    annot: TypeExpr | None
    body: Expr
    span: Span = _span()
    name_span: Span = _span()


Decl = Import | Def


@node
class Program:
    decls: tuple[Decl, ...]
    span: Span = _span()
