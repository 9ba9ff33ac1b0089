"""Lets floated outward, and the renaming it needs: the structural half of simplification.

    let p = (let q = e1 in e2) in e3   ->   let q = e1 in let p = e2 in e3

is an equation of any strict language with lets — e1 still runs before e2,
and e2 before e3 — provided q's names do not capture free variables of e3;
where they would, q's names are renamed (x -> x4, x' -> x4'). `tidy` gives
renamed names their own back at the end wherever that captures nothing,
so that a transformed term reads like the paper. Used by simplify.py
(docs/transforms.md, Simplification).

Each walk is linear in the size of the term (up to the sizes of the sets
of free variables, memoised per node), and a walk that changes nothing
copies nothing.
"""
from __future__ import annotations

import gc
from ..model.nodes import replace  # dataclasses.replace, without importing dataclasses (start-up)

from ..model import core as c


def rebuild(e: c.Expr, f) -> c.Expr:
    """map_children, returning `e` itself when no child changed (a pass that changes nothing copies nothing)."""
    kids = c.children(e)
    new = [f(k) for k in kids]
    if all(a is b for a, b in zip(kids, new)):
        return e
    it = iter(new)
    return c.map_children(e, lambda _: next(it))


def same(e: c.Expr, **fields) -> c.Expr:
    """replace(e, **fields), or e itself when every field is the one it has."""
    if all(getattr(e, k) is v or type(v) in (str, tuple) and getattr(e, k) == v for k, v in fields.items()):
        return e
    return replace(e, **fields)


class uncollected:
    """Python's cyclic collector paused for a rewrite of a term (`with uncollected():`; `as` gives whether it
    was on). A rewrite allocates a node per node it changes, and every few hundred allocations the collector
    walks the young objects, and now and then everything alive — the whole term, the memo of free variables —
    to free nothing: term nodes make no cycles, and the garbage a rewrite leaves goes by reference counting.
    On `x + x + ... + x` (10^4 terms) it was 30% of the CPU time of simplification (issue 19). The command
    line pauses it for a whole command the same way (lang/tools/cli.py). `pause=False`: nothing is paused.
    (A class rather than a generator made a context manager: that module is not imported at start-up.)"""

    def __init__(self, pause: bool = True) -> None:
        self.pause = pause
        self.collecting = gc.isenabled()

    def __enter__(self) -> bool:
        self.collecting = gc.isenabled()
        if self.pause:
            gc.disable()
        return self.collecting

    def __exit__(self, *exc: object) -> None:
        if self.pause and self.collecting:
            gc.enable()


# ---- names ------------------------------------------------------------------------------


def bound_by(e: c.Expr) -> tuple[str, ...]:
    match e:
        case c.Let(name=name) | c.LetRec(name=name):
            return (name,)
        case c.LetTuple(names=names):
            return names
    return ()


class FreeVars:
    """The free local names of terms, memoised per node (the node kept alive with its entry)."""

    def __init__(self) -> None:
        self.memo: dict[int, tuple[c.Expr, frozenset]] = {}

    def __call__(self, e: c.Expr) -> frozenset:
        hit = self.memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        match e:
            case c.Var(name, ()):
                out = frozenset((name,))
            case c.Var() | c.Global() | c.Lit() | c.DZero():
                out = frozenset()
            case c.Lam(param, body) | c.LinLam(param, body):
                out = self(body) - {param}
            case c.Let(name, bound, body, inst):
                out = self(bound) | (self(body) - ({name} if not inst else set()))
            case c.LetRec(name, bound, body, inst):
                out = (self(bound) | self(body)) - ({name} if not inst else set())
            case c.LetTuple(names, bound, body):
                out = self(bound) | (self(body) - set(names))
            case _:
                out = frozenset().union(*map(self, c.children(e)))
        self.memo[id(e)] = (e, out)
        return out


def _rename(e: c.Expr, mapping: dict[str, str]) -> c.Expr:
    """`e` with free occurrences of the mapped names renamed (the new names occur nowhere in `e`)."""
    if not mapping:
        return e
    match e:
        case c.Var(name, ()) if name in mapping:
            return replace(e, name=mapping[name])
        case c.Lam(param=p) | c.LinLam(param=p) if p in mapping:
            return c.map_children(e, lambda t: _rename(t, _drop(mapping, (p,))))
        case c.Let(name, bound, body, inst):
            inner = _drop(mapping, (name,)) if not inst else mapping
            return replace(e, bound=_rename(bound, mapping), body=_rename(body, inner))
        case c.LetTuple(names, bound, body):
            return replace(e, bound=_rename(bound, mapping), body=_rename(body, _drop(mapping, names)))
        case c.LetRec(name, inst=inst):
            inner = _drop(mapping, (name,)) if not inst else mapping
            return replace(e, bound=_rename(e.bound, inner), body=_rename(e.body, inner))
    return c.map_children(e, lambda t: _rename(t, mapping))


def _drop(mapping: dict, names) -> dict:
    if not any(n in mapping for n in names):
        return mapping
    return {k: v for k, v in mapping.items() if k not in names}


class Names:
    """Fresh names for renamed binders: x -> x4, x' -> x4' (the pair keeps one number)."""

    def __init__(self, taken: set[str]):
        self.taken = taken
        self.next: dict[tuple, int] = {}

    def fresh(self, names: tuple[str, ...]) -> tuple[str, ...]:
        stems = tuple(_split(n) for n in names)
        k = self.next.get(stems, 1)
        while True:
            out = tuple(f"{stem}{k}{suffix}" for stem, suffix in stems)
            k += 1
            if len(set(out)) == len(out) and not (set(out) & self.taken):
                self.next[stems] = k
                self.taken.update(out)
                return out


def _split(name: str) -> tuple[str, str]:
    """x4' -> ("x", "'"), acc_dot -> ("acc", "_dot"): a stem without its number, and the suffix."""
    suffix = ""
    for end in ("_dot", "'"):
        while name.endswith(end) and len(name) > len(end):
            name, suffix = name[: -len(end)], end + suffix
    return name.rstrip("0123456789") or name, suffix


# ---- floating lets out of lets ----------------------------------------------------------


class _Bindings:
    """The bindings of a chain being flattened, with where each name is bound among them (so that the
    bindings that could capture a name are found without looking at every binding)."""

    def __init__(self) -> None:
        self.items: list[c.Expr] = []
        self.where: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def append(self, b: c.Expr) -> None:
        for n in bound_by(b):
            self.where.setdefault(n, set()).add(len(self.items))
        self.items.append(b)

    def cut(self, start: int) -> list[c.Expr]:
        """Remove and return the bindings from `start` on."""
        out = self.items[start:]
        for j, b in enumerate(out, start):
            for n in bound_by(b):
                self.where[n].discard(j)
        del self.items[start:]
        return out

    def set(self, j: int, b: c.Expr) -> None:
        for n in bound_by(self.items[j]):
            self.where[n].discard(j)
        for n in bound_by(b):
            self.where.setdefault(n, set()).add(j)
        self.items[j] = b

    def binding(self, names, start: int) -> list[int]:
        """The positions from `start` on of the bindings that bind one of `names`, in order."""
        if len(names) > len(self.items) - start:
            return [j for j in range(start, len(self.items)) if not set(bound_by(self.items[j])).isdisjoint(names)]
        return sorted({j for n in names for j in self.where.get(n, ()) if j >= start})


class Floater:
    """let p = (let q = e1 in e2) in e3  ->  let q = e1 in let p = e2 in e3, everywhere.

    A chain of lets (each the body of the one before) is walked once, iteratively, into a list of
    bindings; a binding whose bound term is itself a chain has that chain's bindings put in the list
    first (renamed where they would capture a free variable of the rest), and the flat chain is built
    once at the end. Floating a chain one binding at a time instead walked it again at every level:
    `sin (sin (... x))` n deep cost n^2 (issue 19). The bindings that could capture are found from the
    free variables of what they float past (memoised), by name, not by looking at every binding
    floated so far (which was n^2 again on `x + x + ... + x`)."""

    def __init__(self, names: Names, renamed: dict[str, str]):
        self.names = names
        self.renamed = renamed
        self.fv = FreeVars()

    def term(self, e: c.Expr) -> c.Expr:
        if isinstance(e, _LETS):
            acc = _Bindings()
            tail = self.spine(e, acc)
            return self.build(acc.items, tail, e)
        return rebuild(e, self.term)

    def build(self, acc: list[c.Expr], tail: c.Expr, original: c.Expr) -> c.Expr:
        """The chain of `acc`'s bindings ending in `tail` (`original` itself when nothing changed)."""
        out = tail
        for b in reversed(acc):
            out = same(b, body=out)
            if out.ty is not tail.ty and out is not b:
                out = replace(out, ty=tail.ty)
        return out if not _same_chain(out, original) else original

    def spine(self, e: c.Expr, acc: _Bindings) -> c.Expr:
        """Append the bindings of the let chain `e` to `acc` (floated out of bound terms) and return its
        tail, transformed. A binding is put in `acc` with its old body, replaced when the chain is built."""
        while isinstance(e, _LETS):
            if isinstance(e, c.LetRec) or not isinstance(e.bound, _LETS):
                acc.append(same(e, bound=self.term(e.bound)))
                e = e.body
                continue
            start = len(acc)
            bound = self.spine(e.bound, acc)
            floats, bound = self.unclash(e, acc, start, bound)
            if not floats:  # a polymorphic local would capture: the bound chain stays where it is
                inner = acc.cut(start)
                acc.append(same(e, bound=self.build(inner, bound, e.bound)))
            else:
                acc.append(same(e, bound=bound))
            e = e.body
        return self.term(e)

    def unclash(self, outer: c.Expr, acc: _Bindings, start: int, tail: c.Expr) -> tuple[bool, c.Expr]:
        """Rename the bindings acc[start:] (floated above `outer`) whose names would capture free variables
        of `outer`'s body; returns whether they float (not when a polymorphic local would capture) and
        the bound term's tail, renamed too."""
        if len(acc) == start:
            return True, tail
        seen = self.fv(outer.body) - set(bound_by(outer))
        for j in acc.binding(seen, start):
            names = bound_by(acc.items[j])
            if getattr(acc.items[j], "inst", ()):
                return False, tail
            mapping = dict(zip(names, self.names.fresh(names)))
            for old, n in mapping.items():
                self.renamed[n] = self.renamed.get(old, old)
            acc.set(j, _rename_binder(acc.items[j], mapping, body=False))
            live = mapping
            for k in range(j + 1, len(acc)):  # the binding's scope: the bindings after it, and the tail
                b = acc.items[k]
                if not self.fv(b.bound).isdisjoint(live):
                    acc.set(k, _rename_bound(b, live))
                live = _drop(live, bound_by(b) if not getattr(b, "inst", ()) else ())
                if not live:
                    break
            if live:
                tail = _rename(tail, live)
        return True, tail


_LETS = (c.Let, c.LetTuple, c.LetRec)


def _same_chain(a: c.Expr, b: c.Expr) -> bool:
    """Whether two let chains are the same nodes (so that a walk that changes nothing copies nothing)."""
    while a is not b:
        if not (isinstance(a, _LETS) and type(a) is type(b) and a.bound is b.bound and
                bound_by(a) == bound_by(b) and a.ty is b.ty and getattr(a, "inst", ()) == getattr(b, "inst", ())):
            return False
        a, b = a.body, b.body
    return True


def _rename_bound(e: c.Expr, mapping: dict[str, str]) -> c.Expr:
    """A binding of a chain with the mapped names renamed in its bound term (a let rec's under its name)."""
    if isinstance(e, c.LetRec):
        inner = _drop(mapping, (e.name,)) if not e.inst else mapping
        return replace(e, bound=_rename(e.bound, inner))
    return replace(e, bound=_rename(e.bound, mapping))


def _rename_binder(e: c.Let | c.LetTuple | c.LetRec, mapping: dict[str, str], body: bool = True) -> c.Expr:
    """A let with its bound names renamed (in its scope: the body — unless `body` is False, when the
    body is to be replaced anyway — and a let rec's own definition)."""
    match e:
        case c.Let(name):
            return replace(e, name=mapping[name], body=_rename(e.body, mapping) if body else e.body)
        case c.LetTuple(names):
            return replace(e, names=tuple(mapping[n] for n in names), body=_rename(e.body, mapping) if body else e.body)
        case c.LetRec(name):
            return replace(e, name=mapping[name], bound=_rename(e.bound, mapping),
                           body=_rename(e.body, mapping) if body else e.body)
    raise AssertionError(e)


# ---- tidying renamed names ------------------------------------------------------------------


def tidy(e: c.Expr, renamed: dict[str, str]) -> c.Expr:
    """Give renamed binders their own names back wherever that captures nothing."""
    if not renamed or not _binders_among(e, renamed):
        return e
    fv = FreeVars()

    def walk(t: c.Expr) -> c.Expr:
        t = rebuild(t, walk)
        names = bound_by(t)
        if not any(n in renamed for n in names) or getattr(t, "inst", ()):
            return t
        free = frozenset().union(*map(fv, _scope(t)))
        mapping = {n: renamed[n] for n in names if n in renamed and renamed[n] not in free
                   and renamed[n] not in names}
        if len(set(mapping.values())) < len(mapping):
            return t
        while mapping:
            try:
                scope = [_rename_checked(x, mapping) for x in _scope(t)]
            except _Captured as err:
                del mapping[err.args[0]]
                continue
            return _with_names(t, mapping, scope)
        return t
    return walk(e)


def _binders_among(e: c.Expr, names: dict) -> bool:
    """Whether some let in `e` binds one of `names`."""
    stack = [e]
    while stack:
        t = stack.pop()
        if any(n in names for n in bound_by(t)):
            return True
        stack.extend(c.children(t))
    return False


def _scope(t: c.Expr) -> list[c.Expr]:
    """Where a let's names are bound: its body, and a let rec's own definition."""
    return [t.body] + ([t.bound] if isinstance(t, c.LetRec) else [])


def _rename_checked(e: c.Expr, mapping: dict[str, str]) -> c.Expr:
    """`e` with its free names renamed by `mapping`; raises _Captured(n) where a free n is under a
    binder of its new name (it would be captured)."""
    targets = {v: k for k, v in mapping.items()}

    def walk(t: c.Expr, live: dict, under: frozenset) -> c.Expr:  # under: the new names rebound here
        match t:
            case c.Var(name, ()) if name in live:
                if live[name] in under:
                    raise _Captured(name)
                return replace(t, name=live[name])
            case c.Lam(param=p) | c.LinLam(param=p):
                inner, u = _drop(live, (p,)), under | ({p} & targets.keys())
                return same(t, body=walk(t.body, inner, u)) if inner else t
            case c.Let(name=name, inst=inst) | c.LetRec(name=name, inst=inst):
                bound_names = (name,) if not inst else ()
            case c.LetTuple(names=names):
                bound_names = names
            case _:
                return rebuild(t, lambda x: walk(x, live, under))
        inner, u = _drop(live, bound_names), under | (set(bound_names) & targets.keys())
        if isinstance(t, c.LetRec):
            return same(t, bound=walk(t.bound, inner, u), body=walk(t.body, inner, u)) if inner else t
        b = walk(t.bound, live, under)
        return same(t, bound=b, body=walk(t.body, inner, u)) if inner else same(t, bound=b)
    return walk(e, mapping, frozenset())


class _Captured(Exception):
    pass


def _with_names(t: c.Expr, mapping: dict[str, str], scope: list) -> c.Expr:
    """The binder t with its names renamed by `mapping`, its scope already renamed."""
    match t:
        case c.Let(name):
            return replace(t, name=mapping.get(name, name), body=scope[0])
        case c.LetTuple(names):
            return replace(t, names=tuple(mapping.get(m, m) for m in names), body=scope[0])
        case c.LetRec(name):
            return replace(t, name=mapping.get(name, name), body=scope[0], bound=scope[1])
    raise AssertionError(t)


__all__ = ["Floater", "FreeVars", "Names", "bound_by", "rebuild", "same", "tidy", "uncollected"]
