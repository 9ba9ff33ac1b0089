"""Type errors in words: why an expression was expected to have a type, said as the user wrote it.

Inference (lang/front/infer.py) unifies the type of a node with the type its
context expects. When that fails it hands the *context* — one of the small
records below, built where the expectation arises — to `mismatch`, which
chooses the words. A context says its sentence given two phrases:

    expected   the type the context wanted, printed ("Bool")
    is_what    how the expression's own type is put: "has type Int", or, for a
               literal whose type is still a class, "is a number (Int or Real)"

so that no message is assembled by inspecting or editing another's template.

    Condition("`x + 1`").say("Bool", "has type Real")
        the condition of `if` must be Bool, but `x + 1` has type Real

A context speaks of what the user wrote, never of its desugaring: the
operands of `&&` and `||` (which desugar to `if`), the parts of a pattern
(which desugar to nested lets and annotations) have their own words.
"""
from __future__ import annotations

from ..model.errors import DlTypeError
from ..model.nodes import node  # dataclass(frozen=True), made quickly (start-up)
from ..model.spans import Span
from ..model.types import Namer, TCtor, TFun, TList, TNeg, TTuple, TVar, Type, prune, show, show_scheme


class Context:
    """Why a node must have a type (each subclass is one situation)."""

    def say(self, expected: str, is_what: str) -> str:
        """The sentence: what was expected, and what the expression is instead."""
        raise NotImplementedError

    # A context that names the function being differentiated says which part of its type is not
    # differentiable data, after its sentence (see `class_mismatch`).
    names_culprit = False

    def role(self) -> str | None:
        """What the expression is in this context, for "but <role> must be a number": `the first
        argument of `/``, `element 2 of the list (like the ones before it)`; None when it has none."""
        return None


@node(slots=False)
class Named(Context):
    """A context known by a name only: `the definition of `f``; the types follow it."""

    what: str

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.what}: expected {expected}, but it {is_what}"


@node(slots=False)
class Condition(Context):
    """The condition of `if c then a else b` (subject: the text of c); with `construct`, an operand of
    `&&` or `||` (which desugar to `if`)."""

    subject: str
    construct: str = "the condition of `if`"

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.construct} must be {expected}, but {self.subject} {is_what}"


@node(slots=False)
class Branches(Context):
    """The `else` branch against the `then` branch."""

    def say(self, expected: str, is_what: str) -> str:
        return (f"the branches of `if` must have one type, but the `then` branch has type {expected} and the "
                f"`else` branch {is_what}")

    def role(self) -> str:
        return "the `else` branch (like the `then` branch)"


@node(slots=False)
class ListElement(Context):
    """Element `index` (1-based) of a list literal against the ones before it."""

    index: int
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return (f"list elements must all have one type, but element {self.index} {self.subject} {is_what} and "
                f"the ones before it {expected}")

    def role(self) -> str:
        return f"element {self.index} of the list (like the ones before it)"


@node(slots=False)
class Annotated(Context):
    """`(e : T)`: e against T."""

    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.subject} {is_what}, not the annotated {expected}"


@node(slots=False)
class TuplePattern(Context):
    """`let (x1, ..., xn) = e`: e against a tuple of n (`matched`, a core.Matched: what the pattern
    matches when it is part of a larger one; `span`: the value otherwise)."""

    n: int
    matched: object
    span: Span

    def say(self, expected: str, is_what: str) -> str:
        m, n = self.matched, self.n
        pattern = (f"the pattern {snippet(m.pattern)}" if m is not None and m.path
                   else f"a pattern of {n} components")
        return (f"{pattern} needs a tuple of {n}, but {matched_value(m, self.span)} does not fit: expected "
                f"{expected}, but it {is_what}")


@node(slots=False)
class UnitPattern(Context):
    """The pattern `()` against the value it matches (a core.Matched; `span`: the value's node)."""

    matched: object
    span: Span

    def say(self, expected: str, is_what: str) -> str:
        value = matched_value(self.matched, self.span)
        return f"the pattern `()` needs a value of type {expected}, but {value} {is_what}"


def matched_value(m, span: Span) -> str:
    """What a pattern matches, in words: `1`; `1` (component 1 of `(1, 2)`); component 2 of `p`.
    A pattern that is not part of a larger one is said by the text under `span`."""
    if m is None or not m.path:
        return snippet(span)
    ks, path = [], m.path  # innermost first
    while path:
        k, path = path
        ks.append(f"component {k}")
    if len(ks) > 4:
        ks[2:-1] = [f"... ({len(ks)} levels in all)"]
    where = " of ".join(ks) + f" of {snippet(m.whole)}"
    return f"{snippet(m.part)} ({where})" if m.part.source is not None else where


@node(slots=False)
class Argument(Context):
    """The argument of an application `f a` against f's parameter type."""

    function: str
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.function} expects an argument of type {expected}, but {self.subject} {is_what}"

    def role(self) -> str:
        return f"the argument of {self.function}"


@node(slots=False)
class SelfApplication(Context):
    """`g g`: the function would have to take itself (an infinite type)."""

    function: str
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.function} cannot be applied to {self.subject}"


ORDINALS = ("first", "second", "third", "fourth")


@node(slots=False)
class PrimitiveArgument(Context):
    """Argument `index` (0-based) of a built-in (`op` as it is shown: "`sin`", "unary -")."""

    op: str
    index: int
    arity: int
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.role()} must have type {expected}, but {self.subject} {is_what}"

    def role(self) -> str:
        if self.arity == 1:
            which = "the argument"
        elif self.index < len(ORDINALS):
            which = f"the {ORDINALS[self.index]} argument"
        else:
            which = f"argument {self.index + 1}"
        return f"{which} of {self.op}"


@node(slots=False)
class CustomRule(Context):
    """The rule given to `custom_vjp f rule x` or `custom_jvp f rule x`, against f's type A -> B:
    A -> B * (B -> A) (a pullback) or A -> A -> B * B (a tangent)."""

    op: str
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        if "custom_jvp" in self.op:  # the forward transform: →D(A -> B) = →D(A) -> →D(B), a real r as (r, r_dot)
            return (f"the rule given to {self.op} must have type {expected}: the value and its tangent, which →D "
                    f"pairs real by real into the result's →D(B) (each real r of B as (r, r_dot) : Real * Real) "
                    f"from the argument's tangent x_dot : A, for a function A -> B; but {self.subject} {is_what}")
        return (f"the rule given to {self.op} must have type {expected}: the value and its pullback, which "
                f"←D composes with the argument's backpropagator x' : ¬A to make the result's y' : ¬B for a "
                f"function A -> B; but {self.subject} {is_what}")

    def role(self) -> str:
        return f"the rule given to {self.op}"


@node(slots=False)
class Differentiated(Context):
    """The function given to `grad` & co."""

    op: str
    subject: str
    names_culprit = True

    def say(self, expected: str, is_what: str) -> str:
        return f"{self.op} differentiates functions of type {expected}, but the function {self.subject} {is_what}"


@node(slots=False)
class Point(Context):
    """The point given to `grad` & co., against the function's parameter type."""

    op: str
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return f"the function given to {self.op} takes {expected}, but the point {self.subject} {is_what}"

    def role(self) -> str:
        return f"the point given to {self.op} (like the function's argument)"


@node(slots=False)
class Tangent(Context):
    """The tangent given to `jvp`, against the point's type."""

    op: str
    subject: str

    def say(self, expected: str, is_what: str) -> str:
        return (f"the tangent given to {self.op} must have the type of the point, {expected}, but {self.subject} "
                f"{is_what}")

    def role(self) -> str:
        return f"the tangent given to {self.op} (like the point)"


# ---- choosing the words ------------------------------------------------------------

CLASS_WORDS = {
    "Num": "a number type (Int, Real or Array)",
    "Float": "a real number type (Real or Array)",
    "Eq": "comparable with == (Int, Real or Bool)",
    "Ord": "ordered by < (Int or Real)",
    "Diff": "differentiable data (Real, Int, Bool, Unit, Array, or tuples and lists of them)",
    "Nested": "a Real or a nested list of Reals ([Real], [[Real]], ...)",
}

# what a type in the class is, for "but <role> must be ..."
CLASS_NOUN = {
    "Num": "a number (Int, Real or Array)",
    "Float": "a real number (Real or Array)",
    "Eq": "comparable with == (Int, Real or Bool)",
    "Ord": "an Int or a Real (what < compares)",
    "Diff": "differentiable data (Real, Int, Bool, Unit, Array, or tuples and lists of them)",
    "Nested": "a Real or a nested list of Reals ([Real], [[Real]], ...)",
}

# what an expression whose type is still a class variable is: `1` "is a number (Int, Real or Array)";
# a variable in several classes is said by the first of these it is in
IS_IN_CLASS = {
    "Float": "is a real number (Real or Array)",
    "Num": "is a number (Int, Real or Array)",
    "Ord": "is compared with < (so it is Int or Real)",
    "Eq": "is compared with == (so it is Int, Real or Bool)",
    "Diff": "is differentiated (so it is differentiable data)",
    "Nested": "is made into an array (so it is a Real or a nested list of Reals)",
}


def snippet(span: Span, limit: int = 40) -> str:
    """The source text under `span`, shortened, for messages."""
    if span.source is None:
        return "this expression"
    line = span.source.line(span.line)
    end = span.end_col - 1 if span.line == span.end_line else len(line)
    stop = min(end, span.col - 1 + 2 * limit)  # spans can cover a whole long line: look at a prefix
    text = " ".join(line[span.col - 1 : stop].split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    elif stop < end or span.line != span.end_line:
        text += " ..."
    return f"`{text}`"


def mismatch(why: str, offending: Type | None, span: Span, expected: Type, actual: Type,
             context: Context) -> DlTypeError:
    """Words for a failed unification of `actual` (the node's type) with `expected` (the context's).

    `why` is "" for two different types, "infinite" for an occurs-check failure, or a class name
    (Num, Eq, Diff) when `offending` is a type outside that class."""
    namer = Namer()
    exp, act = show(expected, namer), show(actual, namer)
    if why == "infinite":
        return DlTypeError(f"{context.say(exp, f'has type {act}')}: this would need an infinite type "
                           f"({exp} = {act})", span)
    if why in CLASS_WORDS:
        return class_mismatch(why, offending, span, expected, actual, context, namer)
    return DlTypeError(context.say(exp, f"has type {act}"), span)


def class_mismatch(why: str, offending: Type | None, span: Span, expected: Type, actual: Type,
                   context: Context, namer: Namer) -> DlTypeError:
    """A type met a class it is not in: `true + 1` (Bool is not Num), or `if 1 then ...` (1 is a number).

    Either the expression's own type is outside the class its context asks
    for, or the expression carries the class (a literal is a number) and the
    context asks for a type outside it; the words differ.
    """
    exp, act = show(expected, namer), show(actual, namer)
    words = CLASS_WORDS[why]
    bad = show(offending, namer) if offending is not None else act
    if context.names_culprit:
        return DlTypeError(f"{context.say(exp, f'has type {act}')}, and {bad} is not {words}", span)
    wanted = prune(expected)
    role = context.role()
    if role and isinstance(wanted, TVar) and wanted.constraint and offending is not None and offending == prune(actual):
        # the class comes from the context (an operator, the elements before): say where
        own_namer = Namer()
        return DlTypeError(f"{snippet(span)} has type {show_scheme(actual, namer=own_namer)}, but {role} must be "
                           f"{CLASS_NOUN[why]}", span)
    if offending is None or _occurs(offending, actual):
        own_namer = Namer()
        plain = show(actual, own_namer)
        act = show_scheme(actual, namer=own_namer)
        bad = show(offending, own_namer) if offending is not None else plain
        if bad == plain:
            return DlTypeError(f"{snippet(span)} has type {act}, which is not {words}", span)
        return DlTypeError(f"{snippet(span)} has type {act}, and {bad} in it is not {words}", span)
    own = prune(actual)
    if isinstance(own, TVar) and own.constraint:
        said = next(words for cls, words in IS_IN_CLASS.items() if cls in own.constraint)
        return DlTypeError(context.say(exp, said), span)
    return DlTypeError(context.say(exp, f"has type {show_scheme(actual, namer=namer)}"), span)


def _occurs(part: Type, whole: Type) -> bool:
    """Whether `part` is `whole` or one of its components."""
    whole = prune(whole)
    if whole is part or whole == part:
        return True
    match whole:
        case TFun(a, r):
            return _occurs(part, a) or _occurs(part, r)
        case TTuple(items):
            return any(_occurs(part, i) for i in items)
        case TList(item) | TNeg(item):
            return _occurs(part, item)
        case TCtor(_, args):
            return any(_occurs(part, a) for a in args)
    return False
