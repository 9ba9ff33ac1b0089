"""The target language of shift-reset (lang/transforms/shift_reset.py): its forms, its simplifier, its discipline.

A CPS term with adjoint cells is dl's core plus the target-only rows `shift`,
`nocell`, `accum`, `mapK`, `foldK`, `zipWithK`, `buildK`, `reset` of the
primitive table, with the grammar (S: serious terms, which end by calling a
continuation; V: values, which call nothing; P: a shift's post, its backward code)

    S ::= k V | V V K | mapK V V K | foldK V V V K | zipWithK V V V K | buildK V V K
        | let x = V in S | let (x1, ..., xn) = V in S | let rec f = fun x k -> S in S
        | let j = fun x -> S in S                   a join point (the continuation of an `if`)
        | if V then S else S
        | let y' = shift (fun a -> P) in S          a shift: S is its continuation
    K ::= k | fun x -> S                            continuations: called exactly once on every path
    P ::= accum c (V * a) | accum c a | accum c (-a)       c a cell, a the shift's adjoint
        | let _ = P in P | if V then P else P | ()  a partial zero on a branch: no update there
    V ::= x | g | literal | fun x k -> S | (V, ..., V) | [V, ..., V] | p V ... V (p calls nothing)
        | if V then V else V | let ... = V in V | reset (fun k -> S)

`let y' = shift (fun a -> P) in S` is Lantern's `shift` with the rest of the
term as its continuation: y' is a fresh cell holding 0, S runs, and when S has
returned P runs with `a` what y' then holds — y's adjoint. Written so, a shift
is one line of a flat let-chain, and its post can read no other adjoint than
its own. `let _ = e1 in e2` is sequencing (in posts); a derivative primitive
applied to a function and a continuation (`grad f (fun g -> g x k)`) counts as
a call. The type checker (check.py) types these terms; `check_discipline`
checks the rest: the grammar — every call in tail position, `shift` only as
the binding of a serious let, `accum` only in posts — and *one-shot*
continuations, each used exactly once on every path and never captured by a
function. Those two are what make the trampoline and post stack of
lang/modes/shift_reset.py equivalent to running each post when its
continuation returns.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ..model import core as c
from ..model.primitives import PRIMITIVES
from ..model.types import CELL, D, REAL, UNIT, TFun, TTuple
from .check import TransformBug

CELL_PAIR = TTuple((REAL, CELL))
NOCELL = c.Prim("nocell", (), ty=CELL)
NOTHING = c.Lit((), ty=UNIT)  # the branch of a post's `if` where the partial is zero: no update
LOOPS_K = frozenset({"mapK", "foldK", "zipWithK", "buildK"})  # the CPS loops: calls, with a continuation last


# ---- forms ---------------------------------------------------------------------------------


def pair(p: c.Expr, cell: c.Expr) -> c.Tuple:
    """(p, cell), a K-real."""
    return c.Tuple((p, cell), ty=CELL_PAIR)


def is_atom(e: c.Expr) -> bool:
    """A variable, a definition, a literal or nocell."""
    return isinstance(e, (c.Var, c.Lit, c.Global)) or (isinstance(e, c.Prim) and e.op == "nocell")


def components(v: c.Expr) -> tuple[c.Expr, c.Expr] | None:
    """(primal, cell) of a K-real written as a pair of atoms, else None."""
    if isinstance(v, c.Tuple) and len(v.items) == 2 and all(is_atom(i) for i in v.items):
        return v.items[0], v.items[1]
    return None


def accum(cell: c.Expr, r: c.Expr) -> c.Prim:
    """accum cell r."""
    return c.Prim("accum", (cell, r), ty=UNIT)


def sequence(first: c.Expr, then: c.Expr) -> c.Let:
    """first; then  — `let _ = first in then`."""
    return c.Let("_", first, then, ty=then.ty)


def shift_let(cell: str, a: str, post: c.Expr, rest: c.Expr) -> c.Let:
    """let cell = shift (fun a -> post) in rest."""
    handler = c.Lam(a, post, ty=TFun(REAL, UNIT))
    return c.Let(cell, c.Prim("shift", (handler,), ty=CELL), rest, ty=rest.ty)


def is_shift(e: c.Expr) -> bool:
    """Whether e is `let y' = shift (fun a -> P) in S`."""
    return isinstance(e, c.Let) and isinstance(e.bound, c.Prim) and e.bound.op == "shift"


# ---- simplification ----------------------------------------------------------------------


def simplify(e: c.Expr) -> c.Expr:
    """Constants propagated: a pair (r, nocell) taken apart is substituted, `accum nocell _` is dropped,
    and a shift whose post drops to nothing goes: its cell is nocell, y a constant."""
    return _Simplify().term(e, {})


class _Simplify:
    def term(self, e: c.Expr, env: dict) -> c.Expr:
        match e:
            case c.Var(name, ()) if name in env:
                return env[name]
            case c.Let(y_cell, c.Prim("shift", (c.Lam(a, post) as handler,)), rest):
                kept_post = self.post(post, _drop(env, (a,)))
                if kept_post is None:                       # nothing to propagate to: y is a constant
                    return self.term(rest, {**_drop(env, (y_cell,)), y_cell: NOCELL})
                return replace(e, bound=replace(e.bound, args=(replace(handler, body=kept_post),)),
                               body=self.term(rest, _drop(env, (y_cell,))))
            case c.LetTuple(names, bound, body):
                bound_s = self.term(bound, env)
                if isinstance(bound_s, c.Tuple) and len(bound_s.items) == len(names):
                    constants = {n: i for n, i in zip(names, bound_s.items) if _constant(i)}
                    if constants:
                        kept = [(n, i) for n, i in zip(names, bound_s.items) if n not in constants]
                        inner = {**_drop(env, names), **constants}
                        rest = self.term(body, inner)
                        if not kept:
                            return rest
                        if len(kept) == 1:
                            return c.Let(kept[0][0], kept[0][1], rest, ty=e.ty, span=e.span)
                        items = tuple(i for _, i in kept)
                        return c.LetTuple(tuple(n for n, _ in kept), c.Tuple(items, ty=TTuple(tuple(i.ty for i in items))),
                                          rest, ty=e.ty, span=e.span)
                return replace(e, bound=bound_s, body=self.term(body, _drop(env, names)))
            case c.Let(name, bound, body) | c.LetRec(name, bound, body):
                inner = _drop(env, (name,))
                return replace(e, bound=self.term(bound, inner if isinstance(e, c.LetRec) else env),
                               body=self.term(body, inner))
            case c.Lam(param, body):
                return replace(e, body=self.term(body, _drop(env, (param,))))
        return c.map_children(e, lambda t: self.term(t, env))

    def post(self, post: c.Expr, env: dict) -> c.Expr | None:
        """A shift's post without the updates of constants' cells (None when none is left); an `if` whose
        branches both drop to nothing goes too."""
        kept: list[c.Expr] = []
        for u in updates(post):
            match u:
                case c.If(cond, then, else_):
                    then_s, else_s = self.post(then, env), self.post(else_, env)
                    if then_s is not None or else_s is not None:
                        kept.append(replace(u, cond=self.term(cond, env), then=then_s or NOTHING,
                                            else_=else_s or NOTHING))
                case c.Lit(()):
                    pass
                case _:
                    u = self.term(u, env)
                    if not _is_nocell(u.args[0]):
                        kept.append(u)
        out = None
        for u in reversed(kept):
            out = u if out is None else sequence(u, out)
        return out


def _constant(e: c.Expr) -> bool:
    return isinstance(e, c.Lit) or _is_nocell(e)


def _is_nocell(e: c.Expr) -> bool:
    return isinstance(e, c.Prim) and e.op == "nocell"


def _drop(env: dict, names) -> dict:
    if not any(n in env for n in names):
        return env
    return {k: v for k, v in env.items() if k not in names}


def updates(post: c.Expr) -> list[c.Expr]:
    """The `accum` applications of a post, in order."""
    out, stack = [], [post]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Let) and t.name == "_":
            stack.append(t.body)
            stack.append(t.bound)
        else:
            out.append(t)
    return out


# ---- the discipline: grammar, one-shot continuations, adjoints only in posts ------------------


def check_discipline(term: c.Expr) -> None:
    """The term has the grammar of the module docstring and uses every continuation exactly once on
    every path; a TransformBug naming the rule otherwise."""
    _Discipline().value(term, frozenset())


def post_body(post: c.Expr, param: str, a: str) -> c.Expr | None:
    """A shift's post `fun param -> P` as the body of the backpropagator ←D would make for the shift,
    `a` its argument: accum xi' (∂i * param) is xi' (∂i * a) (∂ = 1 and -1 written `param` and `-param`
    alike), a sequence is a sum, `if V then P else P` stays an `if` (its test does not read the adjoint)
    and `()` is 0. None when the post is not of that shape (docs/transforms.md, shift-reset; the zeros
    rule: Zeros and infinities)."""
    match post:
        case c.Let("_", first, then):
            left, right = post_body(first, param, a), post_body(then, param, a)
            return None if left is None or right is None else c.DSum(left, right)
        case c.If(cond, then, else_) if not _reads(cond, param):
            left, right = post_body(then, param, a), post_body(else_, param, a)
            return None if left is None or right is None else c.If(cond, left, right, ty=D)
        case c.Lit(()):
            return c.DZero()
        case c.Prim("accum", (target, r)) if not _reads(target, param):
            match r:
                case c.Var(name) if name == param:
                    arg: c.Expr = c.Var(a)
                case c.Prim("neg", (c.Var(name),)) if name == param:
                    arg = c.Prim("neg", (c.Var(a),))
                case c.Prim("*", (w, c.Var(name))) if name == param and not _reads(w, param):
                    arg = c.Prim("*", (w, c.Var(a)))
                case _:
                    return None
            return c.LinApp(target, arg)
    return None


def _reads(e: c.Expr, param: str) -> bool:
    """Whether e mentions the adjoint `param` or updates a cell (a weight, a test, a target must not)."""
    stack = [e]
    while stack:
        t = stack.pop()
        if (isinstance(t, c.Var) and t.name == param) or (isinstance(t, c.Prim) and t.op in ("accum", "shift")):
            return True
        stack.extend(c.children(t))
    return False


class _Discipline:
    def fail(self, what: str) -> TransformBug:
        return TransformBug(f"shift-reset: {what}")

    def value(self, e: c.Expr, conts: frozenset) -> None:
        """A value: calls nothing, mentions no continuation, has no cells' updates or reads."""
        match e:
            case c.Var(name) if name in conts:
                raise self.fail(f"the continuation `{name}` is used as a value (captured, or passed twice)")
            case c.Var() | c.Global() | c.Lit():
                return
            case c.Lam(_, c.Lam(k, body)):                  # fun x k -> S (an outer continuation it used
                used = self.serious(body, conts | {k})      # would be counted: a function must not capture one)
                if used != Counter({k: 1}):
                    raise self.fail(f"a function does not call its continuation `{k}` exactly once on every path")
                return
            case c.Lam():
                raise self.fail("a continuation `fun x -> ...` where a value is expected")
            case c.App():
                raise self.fail("a call outside tail position")
            case c.Prim("reset", (c.Lam(k, body),)):
                if self.serious(body, conts | {k}) != Counter({k: 1}):
                    raise self.fail(f"`reset` does not call its continuation `{k}` exactly once on every path")
                return
            case c.Prim(op) if op in ("shift", "accum", "reset") or op in LOOPS_K \
                    or PRIMITIVES[op].kind == "ad":
                raise self.fail(f"`{op}` where a value is expected (outside a shift, or not in tail position)")
            case c.Let(name, bound, body) | c.LetRec(name, bound, body):
                self.value(bound, conts)
                self.value(body, conts - {name})
            case c.LetTuple(names, bound, body):
                self.value(bound, conts)
                self.value(body, conts - set(names))
            case _:
                for t in c.children(e):
                    self.value(t, conts)

    def serious(self, e: c.Expr, conts: frozenset) -> Counter:
        """A serious term: the continuations in `conts` it uses, counted, the same on every path."""
        match e:
            case c.App():
                head, args = c.spine(e)
                if len(args) == 1:                          # k V
                    if not (isinstance(head, c.Var) and head.name in conts):
                        raise self.fail("a call of one argument whose head is not a continuation")
                    self.value(args[0], conts)
                    return Counter({head.name: 1})
                if len(args) == 2:                          # f a K
                    self.value(head, conts)
                    self.value(args[0], conts)
                    return self.continuation(args[1], conts)
                raise self.fail(f"a call of {len(args)} arguments (a CPS call has two: the argument and k)")
            case c.Let(y_cell, c.Prim("shift", (handler,)), rest):
                match handler:
                    case c.Lam(a, post) if not isinstance(post, c.Lam):
                        body = post_body(post, a, "%a")
                    case _:
                        body = None
                if body is None:
                    raise self.fail("a shift's post is not `fun a -> ` a sequence of `accum x' (∂ * a)`, "
                                    "or of `if`s of them")
                self.post_values(body, conts)
                return self.serious(rest, conts - {y_cell})
            case c.Let("_"):
                raise self.fail("`let _ = P in P` in tail position: a post outside a shift")
            case c.Let(j, c.Lam(x, body), rest) if not isinstance(body, c.Lam):  # a join point
                inner = self.serious(body, conts - {x})
                after = self.serious(rest, (conts - {j}) | {j})
                if after[j] != 1:
                    raise self.fail(f"the join point `{j}` is not called exactly once on every path")
                del after[j]
                return inner + after
            case c.Let(name, bound, body):
                self.value(bound, conts)
                return self.serious(body, conts - {name})
            case c.LetRec(name, bound, body):
                self.value(bound, conts)
                return self.serious(body, conts - {name})
            case c.LetTuple(names, bound, body):
                self.value(bound, conts)
                return self.serious(body, conts - set(names))
            case c.If(cond, then, else_):
                self.value(cond, conts)
                a, b = self.serious(then, conts), self.serious(else_, conts)
                if a != b:
                    raise self.fail("the branches of an `if` use different continuations")
                return a
            case c.Prim(op, args) if op in LOOPS_K or PRIMITIVES[op].kind == "ad":
                for a in args[:-1]:
                    self.value(a, conts)
                return self.continuation(args[-1], conts)
        raise self.fail(f"{type(e).__name__} in tail position: a CPS term calls its continuation instead of "
                        "returning a value")

    def post_values(self, body: c.Expr, conts: frozenset) -> None:
        """The cells, partials and tests of a post (as post_body gives it) are values."""
        match body:
            case c.DSum(left, right) | c.If(_, left, right):
                if isinstance(body, c.If):
                    self.value(body.cond, conts)
                self.post_values(left, conts)
                self.post_values(right, conts)
            case c.LinApp(target, arg):
                self.value(target, conts)
                if isinstance(arg, c.Prim) and arg.op == "*":
                    self.value(arg.args[0], conts)

    def continuation(self, e: c.Expr, conts: frozenset) -> Counter:
        match e:
            case c.Var(name) if name in conts:
                return Counter({name: 1})
            case c.Lam(x, body) if not isinstance(body, c.Lam):
                return self.serious(body, conts - {x})
        raise self.fail("the last argument of a call is not a continuation")
