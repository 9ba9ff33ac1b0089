"""P, the backpropagator-per-closure transform of Pearlmutter and Siskind ("Reverse-mode AD in a
functional framework: Lambda the ultimate backpropagator", TOPLAS 30(2), 2008) (docs/transforms.md, ps).

Reals stay reals. What changes is the calling convention: a transformed
function returns its value *and* a backpropagator, which maps the value's
sensitivity to the sensitivities of the function's free variables (packed
into an `Env`) and of its argument. Two maps on types:

    P(Real) = Real   P(Int) = Int   P(Bool) = Bool   P(Unit) = Unit   P('a) = 'a
    P(A * B) = P(A) * P(B)      P([A]) = [P(A)]
    P(A -> B) = P(A) -> P(B) * (S(B) -> Env * S(A))

    S(A -> B) = Env             the sensitivities of a closure's captured variables
    S(T) = T otherwise          (Int, Bool, Unit sensitivities are always zero)

`Env` is opaque to the checker: two closures of one type capture different
variables. At run time it is the tuple of the captured variables'
sensitivities, in the order the transform lists them, or the zero.

On terms. The body of a λ is put in A-normal form: every non-atomic subterm
is bound to a fresh variable, so the body is a chain of bindings `y = rhs`
ending in an atom, binders renamed apart. Each binding has a forward part φ
and a reverse part ρ (the paper's φ and ρ, p. 26):

    fun x -> B   ->   fun x -> φ(y1 = r1) ... φ(yn = rn)
                               (z, fun z_bar -> ρ(yn = rn) ... ρ(y1 = r1)
                                                 (env k (v1_bar, ..., vk_bar), x_bar))

| y = rhs                 | φ                                   | ρ (when y_bar is not zero)               |
|-------------------------|-------------------------------------|------------------------------------------|
| p(x1..xk), real         | y = p(x1..xk); partials named        | (c1..ck) = rho y_bar (∂1..∂k); xi_bar ⊕= ci |
| f x                     | (y, y_bp) = f x                      | (f_c, x_c) = back 2 y_bp y_bar; ⊕ both   |
| fun u -> B'             | y = P(fun u -> B')                   | (v1_c..vm_c) = unenv m y_bar; ⊕ each     |
| let rec f = fun u -> B' | f = P(...), f among its own captures | the captures of the chain of f's Envs: unenvrec |
| (x1..xn)                | y = (x1..xn)                         | (c1..cn) = split n y_bar; ⊕ each         |
| let (x1..xn) = y        | the same                             | y_bar ⊕= (x1_bar, ..., xn_bar)           |
| [x1..xn]                | y = [x1..xn]                         | xi_bar ⊕= sget y_bar i                   |
| fst x / snd x           | y = fst x                            | x_bar ⊕= (y_bar, zero) / (zero, y_bar)   |
| map, fold, get, ...     | (y, y_bp) = mapP f xs  (a row each)  | (f_c, xs_c) = back 2 y_bp y_bar; ⊕ both  |
| if c then B1 else B2    | (y, y_bp) = if c then (z1, bp1) else (z2, bp2) | unenv m (backenv y_bp y_bar): the branches' free variables |

`⊕` is `oplus`, structural, with `zero` its unit at every type. Sensitivities
are single-assignment: a variable's first contribution is its sensitivity,
a later one is added to it; a variable nothing reached is `zero` and its ρ is
not written at all — rackpropagator's `sum-let`, done while transforming.
A partial derivative is computed in the forward pass (counted as a primitive,
as backprop records it then); the backward pass only scales and adds.

A top-level definition that is not a function is transformed to its forward
part only: its value is a constant whose sensitivity nothing reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..front.desugar import Fresh
from ..model import core as c
from ..model.primitives import PRIMITIVES, is_zero
from ..model.types import BOOL, ENV, INT, REAL, UNIT, TCon, TFun, TList, TNeg, TTuple, TVar, Type, prune
from .common import TermTransform, arrays_unsupported, definitions_used, touches_array

BP = "ps-backpropagator"  # the `origin` of a backpropagator λ and the `src` of a primitive with an inlined ρ:
                          # what the runtime counts as a backpropagator created (lang/modes/ps.py)

# structural built-ins whose ρ is a row of its own: the source row -> its P row (value and backpropagator)
STRUCTURAL = {"map": "mapP", "fold": "foldP", "zipWith": "zipWithP", "build": "buildP", "get": "getP",
              "head": "headP", "tail": "tailP", "reverse": "reverseP", "::": "consP", "++": "appendP"}
NO_SENSITIVITY = {"length", "range", "isEmpty"}  # results without reals, from lists whose reals they do not read


# ---- types ---------------------------------------------------------------------------------


def p_type(t: Type, sens: dict | None = None) -> Type:
    """P: what a value of type t is in the target (functions return a backpropagator too). `sens` maps each
    type variable to the variable of its sensitivities, one per call unless given."""
    sens = {} if sens is None else sens
    t = prune(t)
    match t:
        case TCon("Array"):  # no array rules in ps yet: the shared refusal (the call site's span is added)
            raise arrays_unsupported("ps", "a value of type Array")
        case TCon() | TVar():
            return t
        case TFun(a, r):
            return TFun(p_type(a, sens),
                        TTuple((p_type(r, sens), TFun(s_type(r, sens), TTuple((ENV, s_type(a, sens)))))))
        case TTuple(items):
            return TTuple(tuple(p_type(i, sens) for i in items))
        case TList(item):
            return TList(p_type(item, sens))
        case TNeg():
            raise AssertionError(f"ps cannot transform the linear type {t}")
    raise AssertionError(f"no transform of the type {t}")


def s_type(t: Type, sens: dict | None = None) -> Type:
    """S: the sensitivity of a value of type t. The sensitivity of a value of type 'a is of a type 's of its
    own: 'a may be a function type, whose sensitivity is Env."""
    sens = {} if sens is None else sens
    t = prune(t)
    match t:
        case TVar():
            if t not in sens:
                sens[t] = TVar(t.level)
            return sens[t]
        case TCon():
            return t
        case TFun():
            return ENV
        case TTuple(items):
            return TTuple(tuple(s_type(i, sens) for i in items))
        case TList(item):
            return TList(s_type(item, sens))
    raise AssertionError(f"no sensitivity type for {t}")


def carries_reals(t: Type) -> bool:
    """Whether a sensitivity of type S(t) can be other than zero (Int, Bool and Unit's cannot)."""
    t = prune(t)
    match t:
        case TCon(name):
            return name not in (INT.name, BOOL.name, UNIT.name)
        case TTuple(items):
            return any(carries_reals(i) for i in items)
        case TList(item):
            return carries_reals(item)
    return True  # a function (its Env), a type variable


# ---- target terms --------------------------------------------------------------------------


def _prim(op: str, *args: c.Expr, ty=None, src=None) -> c.Prim:
    return c.Prim(op, tuple(args), src=src, ty=ty)


def _int(n: int) -> c.Lit:
    return c.Lit(n, ty=INT)


def zero(t: Type | None = None) -> c.Prim:
    return _prim("szero", ty=t)


def _tuple_or_one(items: list[c.Expr]) -> c.Expr:
    return items[0] if len(items) == 1 else c.Tuple(tuple(items)) if items else c.Lit((), ty=UNIT)


@dataclass
class Block:
    """The bindings of one A-normal-form body: the forward lets, and a record per binding for ρ."""

    lets: list = field(default_factory=list)     # functions Expr -> Expr, outermost first
    records: list = field(default_factory=list)  # (kind, ...) in binding order

    def wrap(self, e: c.Expr) -> c.Expr:
        for let in reversed(self.lets):
            e = let(e)
        return e


class PS:
    """The transform of one term: fresh names, the source type of every target variable."""

    def __init__(self, fresh: Fresh):
        self.fresh = fresh
        self.types: dict[str, Type] = {}  # target variable -> its source type

    # ---- names
    def new(self, hint: str) -> str:
        """A new variable: the hint itself when it is free, else the hint numbered."""
        if hint not in self.fresh.avoid:
            self.fresh.avoid.add(hint)
            return hint
        return self.fresh(hint)

    def name(self, hint: str, t: Type) -> str:
        """A new variable for a source binder or a value, with its source type."""
        out = self.new(hint.rstrip("0123456789") or "t")
        self.types[out] = t
        return out

    def var(self, name: str) -> c.Var:
        return c.Var(name, ty=p_type(self.types[name]) if name in self.types else None)

    # ---- entry
    def term(self, e: c.Expr) -> c.Expr:
        """P of a closed or open specialised term: a λ returns its backpropagator, anything else is forward."""
        e = _strip(e)
        if isinstance(e, c.Lam):
            return self.lam(e, {})
        blk = Block()
        return blk.wrap(self.anf(e, blk, {}))

    # ---- A-normal form with φ
    def atom_of(self, e: c.Expr, env: dict) -> c.Expr:
        """A variable, a global or a literal, as the target names it."""
        match e:
            case c.Var(name, inst):
                found = env.get((name, inst))
                if found is not None:
                    return found
                self.types.setdefault(name, e.ty)  # a free variable of the term keeps its name and instance
                return c.Var(name, inst, ty=p_type(e.ty))
            case c.Global():
                return replace(e, ty=p_type(e.ty))
            case c.Lit():
                return e
        raise AssertionError(e)

    def anf(self, e: c.Expr, blk: Block, env: dict, hint: str = "t") -> c.Expr:
        """Bindings for e's non-atomic parts appended to blk; the atom that holds e's value."""
        match e:
            case c.Annot(expr):
                return self.anf(expr, blk, env, hint)
            case c.Var() | c.Global() | c.Lit():
                return self.atom_of(e, env)
            case c.Let(name, bound, body, inst):
                value = self.anf(bound, blk, env, name)
                return self.anf(body, blk, {**env, (name, inst): value}, hint)
            case c.LetTuple(names, bound, body):
                value = self.anf(bound, blk, env, "p")
                new = [self.name(n, _item_type(bound.ty, i)) for i, n in enumerate(names)]
                blk.lets.append(lambda rest, new=tuple(new), value=value: c.LetTuple(new, value, rest, ty=rest.ty))
                blk.records.append(("untuple", new, value))
                inner = {**env, **{(n, ()): self.var(m) for n, m in zip(names, new)}}
                return self.anf(body, blk, inner, hint)
            case c.LetRec(name, lam, body, inst):
                f = self.name(name, lam.ty)
                inner = {**env, (name, inst): self.var(f)}
                captured = self.captured(lam, inner)
                transformed = self.lam(_strip(lam), inner, captured)
                blk.lets.append(lambda rest: c.LetRec(f, transformed, rest, ty=rest.ty))
                blk.records.append(("letrec", f, captured))
                return self.anf(body, blk, inner, hint)
        return self.named(e, blk, env, hint)

    def captured(self, lam: c.Expr, env: dict) -> list[str]:
        """The target variables a λ captures that have sensitivities (its Env's slots, in this order): its free
        locals, renamed, without those of types that carry no reals (Int, Bool, Unit)."""
        out = []
        for key in sorted(c.free_locals(lam)):
            a = env.get(key)
            if a is None:
                a = c.Var(*key)
                self.types.setdefault(key[0], _type_of_free(lam, key))
            if isinstance(a, c.Var) and a.name not in out and carries_reals(self.types.get(a.name, REAL)):
                out.append(a.name)
        return sorted(out)

    def named(self, e: c.Expr, blk: Block, env: dict, hint: str) -> c.Var:
        """A compound term bound to a fresh variable, with its φ and the record for its ρ."""
        y = self.name(hint, e.ty)
        match e:
            case c.Lam():
                captured = self.captured(e, env)
                transformed = self.lam(_strip(e), env, captured)
                blk.lets.append(lambda rest: c.Let(y, transformed, rest, ty=rest.ty))
                blk.records.append(("lam", y, captured))
            case c.App(fn, arg):
                f, x = self.anf(fn, blk, env), self.anf(arg, blk, env)
                bp = self.new(f"{y}_bp")
                call = c.App(f, x, ty=p_type(fn.ty).result, span=e.span)
                blk.lets.append(lambda rest: c.LetTuple((y, bp), call, rest, ty=rest.ty))
                blk.records.append(("call", y, bp, f, x))
            case c.Tuple(items) | c.List(items):
                atoms = tuple(self.anf(i, blk, env) for i in items)
                value = replace(e, items=atoms, ty=p_type(e.ty))
                blk.lets.append(lambda rest: c.Let(y, value, rest, ty=rest.ty))
                blk.records.append(("tuple" if isinstance(e, c.Tuple) else "list", y, atoms))
            case c.Prim():
                self.primitive(e, y, blk, env)
            case c.If(cond, then, else_):
                test = self.anf(cond, blk, env)
                captured = sorted(set(self.captured(then, env)) | set(self.captured(else_, env)))
                bp = self.new(f"{y}_bp")
                branches = [self.branch(b, env, captured) for b in (then, else_)]
                value = c.If(test, *branches, span=e.span)
                blk.lets.append(lambda rest: c.LetTuple((y, bp), value, rest, ty=rest.ty))
                blk.records.append(("if", y, bp, captured))
            case _:
                raise AssertionError(f"ps has no rule for {type(e).__name__}")
        return self.var(y)

    def primitive(self, e: c.Prim, y: str, blk: Block, env: dict) -> None:
        prim = PRIMITIVES[e.op]
        if touches_array(e):  # no array rules in ps yet: the shared refusal
            raise arrays_unsupported("ps", f"the array operation `{e.op}`", e.span)
        atoms = tuple(self.anf(a, blk, env) for a in e.args)
        at_real = any(prune(a.ty) == REAL for a in e.args)
        if prim.kind == "real" and at_real and any(isinstance(a, c.Var) for a in atoms):
            if prim.partials is None:
                raise AssertionError(f"the primitive {e.op!r} has no derivative rule in the primitive table")
            value = c.Prim(e.op, atoms, src=BP, ty=REAL, span=e.span)
            blk.lets.append(lambda rest: c.Let(y, value, rest, ty=rest.ty))
            partials = []
            for k, d in enumerate(prim.partials(*atoms, self.var(y))):
                if is_zero(d) or not isinstance(atoms[k], c.Var):
                    partials.append(None)  # zero by construction, or a constant argument: no contribution
                elif isinstance(d, (c.Var, c.Lit)):
                    partials.append(d)
                else:
                    name = self.name(f"{y}_d", REAL)
                    blk.lets.append(lambda rest, name=name, d=d: c.Let(name, d, rest, ty=rest.ty))
                    partials.append(self.var(name))
            blk.records.append(("prim", y, atoms, partials))
            return
        if prim.kind == "structural" and e.op in STRUCTURAL:
            bp = self.new(f"{y}_bp")
            value = c.Prim(STRUCTURAL[e.op], atoms, span=e.span)
            blk.lets.append(lambda rest: c.LetTuple((y, bp), value, rest, ty=rest.ty))
            blk.records.append(("struct", y, bp, atoms))
            return
        value = c.Prim(e.op, atoms, src=e.src, ty=p_type(e.ty), span=e.span)
        blk.lets.append(lambda rest: c.Let(y, value, rest, ty=rest.ty))
        if e.op in ("fst", "snd"):
            blk.records.append(("proj", y, atoms[0], 0 if e.op == "fst" else 1))
        # compare, int, bool, toint, toreal, length, range, isEmpty, the differentiation primitives (which
        # ps refuses when they run): no sensitivity flows back through them

    # ---- λ and its backpropagator
    def lam(self, e: c.Lam, env: dict, captured: list[str] | None = None) -> c.Lam:
        """fun x -> B  ->  fun x -> φ(B) (z, fun z_bar -> ρ(B) (env k (captured sensitivities), x_bar))."""
        if captured is None:
            captured = self.captured(e, env)
        x = self.name(e.param, prune(e.ty).arg)
        blk = Block()
        z = self.anf(e.body, blk, {**env, (e.param, ()): self.var(x)}, "y")
        result_t = prune(e.ty).result
        z_bar, state, lets = self.reverse(blk, z, result_t)
        slots = [state.get(v) or zero() for v in captured]
        out = c.Tuple((_prim("env", _int(len(captured)), _tuple_or_one(slots) if slots else c.Lit((), ty=UNIT),
                             ty=ENV),
                       state.get(x) or zero()))
        bp = c.Lam(z_bar, _wrap(lets, out), origin=BP, ty=TFun(s_type(result_t), TTuple((ENV, s_type(prune(e.ty).arg)))))
        return c.Lam(x, blk.wrap(c.Tuple((z, bp))), origin=e.origin or e, ty=p_type(e.ty), span=e.span)

    def branch(self, e: c.Expr, env: dict, captured: list[str]) -> c.Expr:
        """A branch of an `if`: its value and a backpropagator to the sensitivities of both branches' free
        variables (an Env: zero where this branch does not use one)."""
        blk = Block()
        z = self.anf(e, blk, env)
        z_bar, state, lets = self.reverse(blk, z, e.ty)
        slots = [state.get(v) or zero() for v in captured]
        out = _prim("env", _int(len(captured)), _tuple_or_one(slots) if slots else c.Lit((), ty=UNIT), ty=ENV)
        return blk.wrap(c.Tuple((z, c.Lam(z_bar, _wrap(lets, out), ty=TFun(s_type(e.ty), ENV)))))

    # ---- ρ
    def reverse(self, blk: Block, z: c.Expr, t: Type):
        """The backward pass of a block: the seed's name, each variable's sensitivity, the lets computing them."""
        z_bar = self.new(f"{z.name}_bar" if isinstance(z, c.Var) else "ct")
        state: dict[str, c.Expr] = {}
        lets: list = []
        if isinstance(z, c.Var):
            state[z.name] = c.Var(z_bar)
        rho = Reverse(self, state, lets)
        for record in reversed(blk.records):
            rho.run(record)
        return z_bar, state, lets


class Reverse:
    """ρ of one block, in reverse binding order: each variable's sensitivity complete before its ρ runs."""

    def __init__(self, ps: PS, state: dict, lets: list):
        self.ps = ps
        self.state = state
        self.lets = lets

    def let(self, hint: str, value: c.Expr) -> c.Var:
        name = self.ps.new(hint)
        self.lets.append(lambda rest: c.Let(name, value, rest))
        return c.Var(name)

    def let_tuple(self, hints: list[str], value: c.Expr) -> list[c.Var]:
        if len(hints) == 1:
            return [self.let(hints[0], value)]
        names = tuple(self.ps.new(h) for h in hints)
        self.lets.append(lambda rest: c.LetTuple(names, value, rest))
        return [c.Var(n) for n in names]

    def wanted(self, a: c.Expr) -> bool:
        """Whether a sensitivity for this atom is worth computing (a variable whose type carries reals)."""
        return isinstance(a, c.Var) and carries_reals(self.ps.types.get(a.name, REAL))

    def add(self, a: c.Expr, contribution: c.Expr) -> None:
        """a_bar ⊕= contribution (the first contribution is the sensitivity itself)."""
        if not self.wanted(a):
            return
        old = self.state.get(a.name)
        if old is None:
            self.state[a.name] = contribution
        else:
            self.state[a.name] = self.let(f"{a.name}_bar", _prim("oplus", old, contribution))

    def spread(self, targets, value: c.Expr, hint: str) -> None:
        """(c1, ..., ck) = value; ai_bar ⊕= ci for the wanted ai."""
        parts = self.let_tuple([f"{a.name}_c" if isinstance(a, c.Var) else "c" for a in targets], value)
        for a, part in zip(targets, parts):
            self.add(a, part)

    def run(self, record: tuple) -> None:
        state = self.state
        match record:
            case ("prim", y, atoms, partials):
                ct = state.get(y)
                pairs = [(a, d) for a, d in zip(atoms, partials) if d is not None and self.wanted(a)]
                if ct is None or not pairs:
                    return
                self.spread([a for a, _ in pairs], _prim("rho", ct, _tuple_or_one([d for _, d in pairs])), "c")
            case ("call", y, bp, f, x):
                ct = state.get(y)
                if ct is None or not (self.wanted(f) or self.wanted(x)):
                    return
                self.spread([f, x], _prim("back", _int(2), c.Var(bp), ct), "c")
            case ("struct", y, bp, atoms):
                ct = state.get(y)
                if ct is None or not any(self.wanted(a) for a in atoms):
                    return
                self.spread(list(atoms), _prim("back", _int(len(atoms)), c.Var(bp), ct), "c")
            case ("proj", y, x, i):
                ct = state.get(y)
                if ct is None or not self.wanted(x):
                    return
                pair = (ct, zero()) if i == 0 else (zero(), ct)
                self.add(x, self.let(f"{x.name}_c", c.Tuple(pair)))
            case ("tuple", y, items):
                ct = state.get(y)
                if ct is None or not any(self.wanted(a) for a in items):
                    return
                self.spread(list(items), _prim("split", _int(len(items)), ct), "c")
            case ("untuple", names, y):
                parts = [state.get(n) for n in names]
                if all(p is None for p in parts) or not self.wanted(y):
                    return
                self.add(y, self.let(f"{y.name}_c", c.Tuple(tuple(p or zero() for p in parts))))
            case ("list", y, items):
                ct = state.get(y)
                if ct is None:
                    return
                for i, a in enumerate(items):
                    if self.wanted(a):
                        self.add(a, self.let(f"{a.name}_c", _prim("sget", ct, _int(i))))
            case ("lam", y, captured):
                ct = state.get(y)
                if ct is None or not captured:
                    return
                self.spread([c.Var(v) for v in captured], _prim("unenv", _int(len(captured)), ct), "c")
            case ("letrec", f, captured):
                ct = state.get(f)
                others = [v for v in captured if v != f]
                if ct is None or not others:
                    return
                self.spread([c.Var(v) for v in others],
                            _prim("unenvrec", _int(len(captured)), _int(captured.index(f) if f in captured else -1), ct),
                            "c")
            case ("if", y, bp, captured):
                ct = state.get(y)
                if ct is None or not captured:
                    return
                self.spread([c.Var(v) for v in captured],
                            _prim("unenv", _int(len(captured)), _prim("backenv", c.Var(bp), ct)), "c")
            case _:
                raise AssertionError(record)


# ---- helpers -------------------------------------------------------------------------------


def _wrap(lets: list, e: c.Expr) -> c.Expr:
    for let in reversed(lets):
        e = let(e)
    return e


def _strip(e: c.Expr) -> c.Expr:
    while isinstance(e, c.Annot):
        e = e.expr
    return e


def _item_type(t: Type, i: int) -> Type:
    t = prune(t)
    return t.items[i] if isinstance(t, TTuple) else t


def _type_of_free(e: c.Expr, key) -> Type:
    """The type of a free variable, read off its occurrences."""
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Var) and (t.name, t.inst) == key:
            return t.ty
        stack.extend(c.children(t))
    return REAL


def transform(e: c.Expr) -> c.Expr:
    """P of a specialised core term. Its binders are renamed apart; the names of its free variables and of
    the definitions it uses are avoided."""
    avoid = {name for name, _ in c.free_locals(e)} | definitions_used(e)
    return PS(Fresh(avoid, "t")).term(e)


def simplify(e: c.Expr) -> c.Expr:
    """Nothing to clean up: ρ is written without zero terms already."""
    return e


PS_TRANSFORM = TermTransform("P", transform, p_type, simplify, ad_args=True)

__all__ = ["PS_TRANSFORM", "PS", "p_type", "s_type", "BP", "STRUCTURAL", "transform"]
