"""Map/fold fusion: a fold over a map (or a zipWith) whose functions are written in place becomes one loop.

backprop's preaccumulation (preaccumulate.py) merges backpropagators that one
loop step creates, but not across two loops: `sum (map (fun x -> sin x * x) xs)`
runs the map (one backpropagator per element: sin x * x) and then the prelude's
`sum`, a fold (another per element: acc + x). Fused, one step does both, and
preaccumulation leaves one backpropagator per element. The rules, equations of
the source language (docs/transforms.md, Preaccumulation, "Fusion"):

    map          fold (fun acc x -> g) z (map (fun y -> f) l)
                 ─→ fold (fun acc y -> g[x := f]) z l          (x once in g, g without binders)
                 ─→ fold (fun acc y -> let x = f in g) z l     (otherwise)
                 (a step `fun (s, p) x -> g` is read as `fun acc x -> let (s, p) = acc in g`)
    zipWith      fold (fun acc x -> g) z (zipWith (fun y1 y2 -> f) l1 l2)
                 ─→ fold (fun acc p -> let (y1, y2) = p in g[x := f]) z (zipWith (fun a b -> (a, b)) l1 l2)
    let          let l = map ... in fold G z l  ─→  fold G z (map ...)      (l used once, z a value)
    inlining     a global applied to all its parameters (the prelude's `sum xs`, `dot xs ys`) is
                 replaced by its body, its parameters let-bound to the arguments in order — only where
                 that lets a fusion fire, and only when nothing in the body can fail
    specialising a global applied to all its parameters, one of them a known function (a global, its
                 partial application to variables, a lambda written in place, whose body cannot fail):
                 replaced by its body, each application of that parameter by the function's body — only
                 where each is in tail position of a fold's step, to variables the step does not make, no
                 two variables of either body made one, and neither body has a map or a zipWith
                 (`iterate n (step a b) x`, W7)

Side conditions, and why each result is unchanged:

- g (the fold's step) is *total*: scalar arithmetic, comparisons, tuples and lets of them, nothing that
  can fail or loop. Unfused, f runs on every element and then g on every element; fused, they
  alternate. With g total, the first failure is f's at the first element where f fails either way.
  zipWith truncates to the shorter list and never fails, so pairing first changes nothing.
- `g[x := f]` moves f into g's one use of x: everything g evaluates before it is total, so the same
  error comes first; no binder of g can capture f's free variables (g has none).
- Names: the fused lambda binds acc and y (or p); it gives up when f mentions `acc` or g mentions y.
- Inlining keeps diagnostics: the inlined body cannot fail (`cannot_fail`), so the call frame it drops
  (the "called from" line of an error inside the callee) could never have been shown.
- Rounding: none moves. The same primitives run on the same values in the same order per element;
  only preaccumulation, run afterwards, changes weights as it always does (its docstring).
- Specialising moves no rounding either: the application replaced gives the step's result and its
  arguments' backpropagators are the step's parameters' or made outside it, so preaccumulation (which does
  not look across a `fun`) merges nothing it did not merge before; with no map or zipWith, no fusion fires
  that the call kept apart. Nor may it make two variables one (`step b b`, `f acc acc`, a variable applied
  that the function also captures, one variable given to two parameters): preaccumulation would then add
  the two contributions to that backpropagator before multiplying, where the call added them one by one.
  A parameter given a variable another parameter already took is let-bound instead; the others refuse. The global's body may fail only in primitives that raise at their span (`range`
  of a count too large, in `iterate`): inlined from the prelude into the program, they carry the call
  (`Framed`), and the compiler reports their error as `call_line` reports one raised inside the prelude.

Only backprop's preaccumulated term is fused (lang/back/languages.py ReverseCompiler, and
`dl transform --simplify` in backprop mode). `--no-preaccumulate`, the kernel's order-free pass for
non-finite gradients, and every other mode run the program as written. Counters (docs/transforms.md,
Cost counters) count what runs: fused, each element costs one `betas` instead of two, the map's
own `prims` count and an inlined call's `betas` are gone; `prims` of arithmetic are unchanged.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..front.loader import PRELUDE
from ..front.mono import match
from ..model import core as c
from ..model.primitives import PRIMITIVES
from ..model.spans import Framed
from ..model.types import ARRAY, BOOL, INT, REAL, TFun, TList, TTuple, free_vars, prune, substitute
from .common import variables_of

STRUCTURAL = ("fold", "map", "zipWith")
SCALARS = (REAL, INT, BOOL)
INLINE_DEPTH = 3  # a definition inlined may call one that is inlined in turn (dot calls sum)
INLINE_SIZE = 60  # nodes: only small definitions are inlined (the bodies of sum and dot have 8 and 10)


class _Abort(Exception):
    """A definition cannot be inlined (a recursive or polymorphic binding inside it)."""


def fuse(e: c.Expr, definition: Callable[[c.Global], c.Expr | None] | None = None) -> c.Expr:
    """`e` with folds over maps and zipWiths fused; `definition(g)`: a global's specialised source term
    (None: not to be inlined), for inlining `sum` and `dot` where their lambdas become known."""
    return _Fusion(e, definition).go(e)


class _Fusion:
    """One bottom-up pass; `fired` counts the fusions made, so that inlining is kept only where one fired."""

    def __init__(self, e: c.Expr, definition):
        self.definition = definition
        self.taken = variables_of(e)
        self.n = 0
        self.fired = 0
        self.inlining: set = set()
        self.known: dict = {}  # (module, name, inst) -> inlinable's answer

    def fresh(self, base: str) -> str:
        """`base` itself where the term does not use it yet, else `base_n`."""
        if base not in self.taken:
            self.taken.add(base)
            return base
        while True:
            self.n += 1
            name = f"{base.rstrip('0123456789_')}_{self.n}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def go(self, e: c.Expr) -> c.Expr:
        """`e` with the rules applied bottom-up; a subterm where nothing fired is returned as it was (the same
        object: most of a program has no fold over a map, and rebuilding it would cost a copy)."""
        kids = c.children(e)
        if not kids:
            return e
        new = [self.go(k) for k in kids]
        if any(a is not b for a, b in zip(kids, new)):
            it = iter(new)
            e = c.map_children(e, lambda _: next(it))
        return self.rule(e)

    def rule(self, e: c.Expr) -> c.Expr:
        """The rules at the root of `e` (its children done)."""
        match e:
            case c.Prim("fold", (g, z, xs)):
                return self.fold(e, g, z, xs) or e
            case c.Let(name, bound, c.Prim("fold", (g, z, c.Var(v, ()))) as body, ()) \
                    if v == name and _producer(bound) and _is_value(z) \
                    and not _mentions(g, name) and not _mentions(z, name):
                return self.fold(body, g, z, bound) or e
            case c.App():
                return self.inline(e) or self.specialise(e) or e
        return e

    def fold(self, e: c.Prim, g: c.Expr, z: c.Expr, xs: c.Expr) -> c.Expr | None:
        """fold g z xs fused with the map or zipWith that makes xs, or None."""
        params, gb = _step(g)
        if len(params) != 2 or not _total(gb) or not _producer(xs):
            return None
        acc, x = params
        f = xs.args[0]
        ys, fb = c.lambda_chain(f)
        if len(ys) != len(xs.args) - 1 or acc in ys or len(set(ys)) < len(ys) or _mentions(f, acc):
            return None
        if any(y != x and _mentions(gb, y) for y in ys):
            return None
        step = _substituted(gb, x, fb) if _binder_free(gb) and _occurrences(gb, x) == 1 \
            else c.Let(x, fb, gb, ty=gb.ty, span=gb.span)
        acc_t = prune(g.ty).arg
        f_t = prune(f.ty)
        if len(ys) == 1:  # map
            elem_t, source = f_t.arg, xs.args[1]
            param, body = ys[0], step
        else:  # zipWith: the pairs made by a zipWith that cannot fail, taken apart in the step
            a_t, b_t = f_t.arg, prune(f_t.result).arg
            elem_t = TTuple((a_t, b_t))
            a, b, param = self.fresh(ys[0]), self.fresh(ys[1]), self.fresh("p")
            pairing = c.Lam(a, c.Lam(b, c.Tuple((c.Var(a, ty=a_t), c.Var(b, ty=b_t)), ty=elem_t),
                                     ty=TFun(b_t, elem_t)), ty=TFun(a_t, TFun(b_t, elem_t)), span=f.span)
            source = c.Prim("zipWith", (pairing, xs.args[1], xs.args[2]), ty=TList(elem_t), span=xs.span)
            body = c.LetTuple(tuple(ys), c.Var(param, ty=elem_t), step, ty=step.ty, span=step.span)
        step_t = TFun(elem_t, acc_t)
        lam = c.Lam(acc, c.Lam(param, body, ty=step_t, span=g.span), ty=TFun(acc_t, step_t), span=g.span)
        self.fired += 1
        return c.Prim("fold", (lam, z, source), ty=e.ty, span=e.span)

    def inline(self, e: c.App) -> c.Expr | None:
        """A global applied to all its parameters, replaced by its body where a fusion fires in it."""
        head, args = c.spine(e)
        if not isinstance(head, c.Global) or self.definition is None:
            return None
        key = (head.module, head.name, head.inst)
        known = self.inlinable(head)
        if known is None or key in self.inlining or len(known[0]) != len(args):
            return None
        if not known[2] and not any(_producer(a) for a in args):
            return None  # no loop of its own to fuse, and no map handed to it
        params, body, _ = known
        # a variable argument is substituted (the body's binders are all fresh: nothing captures it); others let-bound
        env = {p: a.name if isinstance(a, c.Var) and not a.inst else self.fresh(p) for p, a in zip(params, args)}
        try:
            body = self.renamed(body, env)
        except _Abort:
            return None
        before = self.fired
        out = self.expanded(key, body, params, args, env, lambda p, a: not (isinstance(a, c.Var) and not a.inst), e)
        return out if self.fired > before else None

    def expanded(self, key: tuple, body: c.Expr, params: list, args: list, env: dict, bound, e: c.Expr) -> c.Expr:
        """A global's body (renamed by `env`), fused with the global marked as being expanded (no fusion expands
        it again inside itself), then let-bound to the arguments `bound(param, arg)` picks, in order."""
        self.inlining.add(key)
        try:
            out = self.go(body)
        finally:
            self.inlining.discard(key)
        for p, a in reversed(list(zip(params, args))):
            if bound(p, a):
                out = self.rule(c.Let(env[p], a, out, ty=out.ty, span=e.span))
        return out

    def specialise(self, e: c.App) -> c.Expr | None:
        """A global applied to all its parameters, some of them known functions (a global, its partial application
        to variables, a lambda written in place: `known_function`) that its body applies only in tail position of
        a fold's step, to variables (`applied`): replaced by its body, each such application by the known
        function's body, where nothing else in the body can fail but primitives that raise at their span, whose
        errors, inlined from the prelude into the program, are re-pointed at the call (`Framed`). The prelude's
        `iterate n (step a b) x`: its fold's step becomes `step`'s body."""
        head, args = c.spine(e)
        if not isinstance(head, c.Global) or self.definition is None or \
                not any(isinstance(a, (c.Lam, c.Global, c.App)) for a in args):
            return None
        key = (head.module, head.name, head.inst)
        d = self.definition(head) if key not in self.inlining else None
        if d is None:
            return None
        params, body = c.lambda_chain(d)
        if len(params) != len(args) or len(set(params)) < len(params) or not _small(body) or _produces(body):
            return None
        known = {p: fn for p, a in zip(params, args) if (fn := self.known_function(a)) is not None}
        if not known:
            return None
        env: dict[str, str] = {}  # a variable argument substituted, once: a second parameter given the same one is
        for p, a in zip(params, args):  # let-bound (made one variable, two would merge in preaccumulation)
            if isinstance(a, c.Var) and not a.inst and p not in known and a.name not in env.values():
                env[p] = a.name
            else:
                env[p] = self.fresh(p)
        try:
            body = self.renamed(_instantiated(body, d.ty, head.ty), env)
            body = self.applied(body, {env[p]: fn for p, fn in known.items()}, False, set())
        except _Abort:
            return None
        failing: list = []
        if not self.cannot_fail(body, INLINE_DEPTH, failing):
            return None
        if failing and head.module == PRELUDE and e.span.source is not None and \
                e.span.filename != d.span.filename:  # (as `call_line` re-points a call of the prelude)
            if d.span.source is None:
                return None
            body = _framed(body, {id(p) for p in failing}, e.span, head.name, d.span.filename)
        return self.expanded(key, body, params, args, env,
                             lambda p, a: p not in known and not (isinstance(a, c.Var) and env[p] == a.name), e)

    def known_function(self, a: c.Expr) -> tuple[list[str], c.Expr, dict[str, str]] | None:
        """A function argument whose body an application can take in place: (the parameters the application
        gives, the body, the first parameters' variables) for a global or its partial application to variables
        whose body cannot fail (`inlinable`), or a lambda written in place whose body cannot fail; else None."""
        if isinstance(a, c.Lam):
            params, body = c.lambda_chain(a)
            if len(set(params)) == len(params) and _small(body) and not _produces(body) and \
                    self.cannot_fail(body, INLINE_DEPTH):
                return params, body, {}
            return None
        head, atoms = c.spine(a)
        if not isinstance(head, c.Global) or (head.module, head.name, head.inst) in self.inlining or \
                any(not isinstance(v, c.Var) or v.inst for v in atoms):
            return None
        known = self.inlinable(head)
        if known is None or len(known[0]) <= len(atoms) or len(set(known[0])) < len(known[0]) or _produces(known[1]):
            return None
        params, body, _ = known
        given = dict(zip(params, [v.name for v in atoms]))
        if len(set(given.values())) < len(given):  # (`step b b`: two parameters made one variable, see `applied`)
            return None
        return params[len(atoms):], _instantiated(body, self.definition(head).ty, head.ty), given

    def applied(self, e: c.Expr, fns: dict, tail: bool, lets: set) -> c.Expr:
        """`e` with each application of a known function (`fns`: a variable -> `known_function`) replaced by its
        body, the parameters renamed to the variables applied; `_Abort` where a known function occurs otherwise
        than applied to as many variables as it takes, in tail position of a fold's step (`tail`: the step's
        result is the application's), none of them bound by a let inside that step (`lets`): then what the
        application returns is the next accumulator, and its arguments' backpropagators are the step's parameters'
        or made outside it, so that preaccumulation merges nothing across it that it did not merge before (the
        same records, the same rounding). Nor may two variables of the function's body become one: the variables
        applied distinct, none of them a variable the function takes from outside (a partial application's
        arguments, a lambda's captured variables) — `f acc acc` or `f acc k` with k the captured a would let
        preaccumulation add two contributions to one backpropagator before multiplying, where the call added
        them one by one (another rounding). (Not a map's lambda: fusing it into a fold would move the
        application out of tail position.)"""
        match e:
            case c.Var(name) if name in fns:
                raise _Abort
            case c.App():
                head, args = c.spine(e)
                if isinstance(head, c.Var) and head.name in fns:
                    params, body, given = fns[head.name]
                    if not tail or len(args) != len(params) or any(
                            not isinstance(a, c.Var) or a.inst or a.name in lets or a.name in fns for a in args):
                        raise _Abort
                    names = [a.name for a in args]
                    if len(set(names)) < len(names) or set(names) & _outer(params, body, given):
                        raise _Abort  # (two variables of the function's body would be one: see the docstring)
                    return self.renamed(body, {**given, **{p: a.name for p, a in zip(params, args)}})
            case c.Prim("fold", (c.Lam(acc, c.Lam(x, body) as inner) as g, z, xs)) if not isinstance(body, c.Lam):
                step = replace(g, body=replace(inner, body=self.applied(body, fns, True, set())))
                return replace(e, args=(step, self.applied(z, fns, False, lets), self.applied(xs, fns, False, lets)))
            case c.Let(name, bound, body):
                return replace(e, bound=self.applied(bound, fns, False, lets),
                               body=self.applied(body, fns, tail, lets | {name}))
            case c.LetTuple(names, bound, body):
                return replace(e, bound=self.applied(bound, fns, False, lets),
                               body=self.applied(body, fns, tail, lets | set(names)))
            case c.If(cond, then, else_):
                return replace(e, cond=self.applied(cond, fns, False, lets), then=self.applied(then, fns, tail, lets),
                               else_=self.applied(else_, fns, tail, lets))
            case c.LetRec():
                raise _Abort
        return c.map_children(e, lambda k: self.applied(k, fns, False, lets))

    def inlinable(self, g: c.Global):
        """(parameters, body, whether it calls or loops) of a global that may be inlined, else None (memoised:
        a program calls the same few globals many times)."""
        key = (g.module, g.name, g.inst)
        if key not in self.known:
            d = self.definition(g)
            known = None
            if d is not None:
                params, body = c.lambda_chain(d)
                if params and c.size(body) <= INLINE_SIZE and self.cannot_fail(body, INLINE_DEPTH):
                    loops = any(isinstance(t, c.App) or isinstance(t, c.Prim) and t.op in STRUCTURAL
                                for t in c.subterms(body))
                    known = (params, body, loops)
            self.known[key] = known
        return self.known[key]

    def cannot_fail(self, e: c.Expr, depth: int, failing: list | None = None) -> bool:
        """Whether evaluating `e` (and running the lambdas it hands to fold, map and zipWith) cannot fail; with a
        list `failing`, a primitive whose row says it can fail (`range`, `div`, `floor`, ...: `_reported`) is
        allowed where its arguments cannot fail, and added to the list."""
        match e:
            case c.Var() | c.Lit() | c.Global():
                return True
            case c.Lam(_, body):
                return self.cannot_fail(body, depth, failing)
            case c.Prim(op, args) if op in STRUCTURAL:
                if failing is not None and not isinstance(args[0], c.Lam):  # (a function passed in: it may fail)
                    return False
                return all(self.cannot_fail(a, depth, failing) for a in args)
            case c.Prim():
                if not _total_prim(e):
                    if failing is None or not _reported(e):
                        return False
                    failing.append(e)
                return all(self.cannot_fail(a, depth, failing) for a in e.args)
            case c.App():
                head, args = c.spine(e)
                if not isinstance(head, c.Global) or depth == 0 or self.definition is None:
                    return False
                known = self.known.get((head.module, head.name, head.inst))
                if known is None:
                    d = self.definition(head)
                    if d is None or c.size(d) > INLINE_SIZE or not self.cannot_fail(c.lambda_chain(d)[1], depth - 1):
                        return False
                    known = c.lambda_chain(d)
                return len(known[0]) == len(args) and all(self.cannot_fail(a, depth, failing) for a in args)
            case c.Tuple() | c.Let() | c.LetTuple() | c.If():
                return all(self.cannot_fail(k, depth, failing) for k in c.children(e))
        return False

    def renamed(self, e: c.Expr, env: dict[str, str]) -> c.Expr:
        """`e` with every binder given a fresh name (an inlined body must capture nothing of the caller's)."""
        match e:
            case c.Var(name, inst):
                if inst:
                    raise _Abort
                return replace(e, name=env[name]) if name in env else e
            case c.Lam(param, body):
                new = self.fresh(param)
                return replace(e, param=new, body=self.renamed(body, {**env, param: new}))
            case c.Let(name, bound, body, inst):
                if inst:
                    raise _Abort
                new = self.fresh(name)
                return replace(e, name=new, bound=self.renamed(bound, env), body=self.renamed(body, {**env, name: new}))
            case c.LetTuple(names, bound, body):
                new = tuple(self.fresh(n) for n in names)
                return replace(e, names=new, bound=self.renamed(bound, env),
                               body=self.renamed(body, {**env, **dict(zip(names, new))}))
            case c.LetRec():
                raise _Abort
        return c.map_children(e, lambda k: self.renamed(k, env))


def _step(g: c.Expr) -> tuple[list[str], c.Expr]:
    """A fold's function as ([acc, x], body). `fun (s, p) y -> e` is `fun acc -> let (s, p) = acc in fun y -> e`:
    taking apart a variable cannot fail, so it moves under `fun y` (y is none of s, p, acc)."""
    match g:
        case c.Lam(acc, c.LetTuple(names, c.Var(v, ()) as whole, c.Lam(x, body))) \
                if v == acc and x != acc and x not in names and not isinstance(body, c.Lam):
            return [acc, x], c.LetTuple(names, whole, body, ty=body.ty, span=g.body.span)
    return c.lambda_chain(g)


def _producer(e: c.Expr) -> bool:
    """map or zipWith of a lambda written in place."""
    return isinstance(e, c.Prim) and e.op in ("map", "zipWith") and isinstance(e.args[0], c.Lam)


def _is_value(e: c.Expr) -> bool:
    return isinstance(e, (c.Var, c.Lit, c.Global, c.Lam))


def _total_prim(e: c.Prim) -> bool:
    """A scalar primitive that cannot fail (+, *, -, comparisons at Real or Int...)."""
    prim = PRIMITIVES[e.op]
    if prim.kind not in ("real", "compare", "bool") or prim.fails:
        return False
    return prune(e.ty) in SCALARS and all(a.ty is not None and prune(a.ty) in SCALARS for a in e.args)


def _total(e: c.Expr) -> bool:
    """A fold's step that cannot fail or loop: variables, literals, total scalar primitives, tuples, lets, ifs."""
    match e:
        case c.Var() | c.Lit():
            return True
        case c.Prim():
            return _total_prim(e) and all(_total(a) for a in e.args)
        case c.Tuple() | c.Let() | c.LetTuple() | c.If():
            return all(_total(k) for k in c.children(e))
    return False


def _outer(params: list[str], body: c.Expr, given: dict[str, str]) -> set[str]:
    """The variables a known function (`known_function`: parameters still to apply, body, the first parameters'
    variables) takes from outside: its partial application's arguments, or a lambda's captured variables."""
    return set(given.values()) | {name for name, _ in c.free_locals(body)} - set(params) - set(given)


def _small(e: c.Expr) -> bool:
    """`c.size(e) <= INLINE_SIZE`, looking at no more nodes than that (a term can be large, and is asked at each
    call that hands it on)."""
    count, stack = 0, [e]
    while stack:
        count += 1
        if count > INLINE_SIZE:
            return False
        stack.extend(c.children(stack.pop()))
    return True


def _produces(e: c.Expr) -> bool:
    """Whether a map or a zipWith occurs in `e`: inlined, it could fuse with a fold around it or in it that the
    call kept apart, and preaccumulation would then merge across (another rounding)."""
    return any(isinstance(t, c.Prim) and t.op in ("map", "zipWith") for t in c.subterms(e))


def _reported(e: c.Prim) -> bool:
    """A primitive that can fail whose error the compiler raises at the primitive's span (Gen.primitive: `fails`),
    on Ints and lists only: `range`, `div`, `mod`, `floor`, `head`, `get`, ... (not `build`, which calls a
    function, nor an array's, a derivative's or a custom rule's)."""
    prim = PRIMITIVES[e.op]
    return prim.fails and prim.kind in ("structural", "int", "toint") and e.op != "build" and prim.site is None \
        and all(t is not None and prune(t) != ARRAY for t in (e.ty, *[a.ty for a in e.args]))


def _framed(e: c.Expr, prims: set[int], call, name: str, prelude: str) -> c.Expr:
    """`e` with the primitives `prims` (by identity) given `Framed` spans: the call of the prelude function `name`
    whose body `e` is, as `call_line` would report an error raised inside it."""
    if isinstance(e, c.Prim) and id(e) in prims:
        e = replace(e, span=Framed(e.span, call, name, prelude))
    return c.map_children(e, lambda k: _framed(k, prims, call, name, prelude))


def _instantiated(e: c.Expr, generic, actual) -> c.Expr:
    """A definition's body at the type it is used at: its type variables (the unconstrained ones, which
    specialisation leaves: `iterate`'s 'a) bound by matching its type `generic` against `actual`."""
    qvars = tuple(free_vars(generic)) if generic is not None and actual is not None else ()
    sub = match(generic, actual, qvars, {}) if qvars else {}
    if not sub:
        return e

    def walk(t: c.Expr) -> c.Expr:
        t = c.map_children(t, walk)
        return replace(t, ty=substitute(t.ty, sub)) if t.ty is not None else t
    return walk(e)


def _binder_free(e: c.Expr) -> bool:
    """Only variables, literals and primitive applications (so substituting into it captures nothing and
    moves nothing past a branch)."""
    match e:
        case c.Var() | c.Lit():
            return True
        case c.Prim(_, args):
            return all(_binder_free(a) for a in args)
    return False


def _occurrences(e: c.Expr, name: str) -> int:
    return sum(1 for t in c.subterms(e) if isinstance(t, c.Var) and t.name == name)


def _substituted(e: c.Expr, name: str, value: c.Expr) -> c.Expr:
    """e[name := value], for a binder-free e."""
    if isinstance(e, c.Var) and e.name == name:
        return value
    return c.map_children(e, lambda k: _substituted(k, name, value))


def _mentions(e: c.Expr, name: str) -> bool:
    return any(n == name for n, _ in c.free_locals(e))


__all__ = ["fuse"]
