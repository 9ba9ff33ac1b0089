"""The closure compiler: specialised core terms to Python closures, compiled once.

Every term becomes a Python function `run(frame) -> value`; nothing
re-dispatches on node types at run time. A frame is a Python list

    [captured, arg1, ..., argN, local1, ..., localM]

laid out at compile time: each variable is a slot number (or an index into
the captured tuple), found here once. Lambdas are flat closures (lang/runtime.py):
a lambda with no free variables is one constant `Fun`, shared.

Calls in tail position to the function being defined (`def loop n acc = ...
loop (n - 1) ...`, or a `let rec`) rebind the parameters in the current
frame and jump back to the top of the body, so loops run in constant stack.
Other deep recursion runs on a worker thread with a big stack (lang/deep.py).

The same compiler runs the target language of the transforms: the linear
fragment (fun a -o t, x' e, 0, +) is compiled by a *linear backend* that
the mode supplies (lang/linear.py): linear factoring or naive application.
Counting (SPEC §12 cost counters) is a compile-time choice: when off, the
closures contain no counting code at all.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable

from . import core as c
from .errors import DlError, DlRuntimeError
from .primitives import PRIMITIVES
from .runtime import Code, Fun, apply
from .types import INT, TFun, prune

Run = Callable[[list], Any]
_LOOP = object()  # returned by a self tail call: "parameters rebound, run the body again"


@dataclass
class Counters:
    """Exact cost counters (THEORY §5)."""

    prims: int = 0            # primitive applications
    betas: int = 0            # function applications (beta steps)
    bp_created: int = 0       # backpropagators created
    bp_run: int = 0           # backpropagator bodies run
    merges: int = 0           # factoring merges: contributions added to an already pending backpropagator
    sink_updates: int = 0     # contributions that reached an input's sink
    peak_pending: int = 0     # most backpropagators pending at once in the backward sweep
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("prims", "betas", "bp_created", "bp_run", "merges", "sink_updates",
                                              "peak_pending")}
        out.update(self.extra)
        return out

    def reset(self) -> None:
        fresh = Counters()
        for k in ("prims", "betas", "bp_created", "bp_run", "merges", "sink_updates", "peak_pending"):
            setattr(self, k, getattr(fresh, k))
        self.extra = {}


class FrameLayout:
    """Compile-time picture of one run-time frame: where each variable lives."""

    def __init__(self, parent: FrameLayout | None, arity: int):
        self.parent = parent
        self.slots: dict[tuple, int] = {}
        self.free: list[tuple] = []
        self.size = 1 + arity

    def new_slot(self) -> int:
        self.size += 1
        return self.size - 1

    def where(self, key: tuple) -> tuple[str, int]:
        """('slot', i) for frame[i], or ('cap', j) for frame[0][j] (capturing it if new)."""
        if key in self.slots:
            return ("slot", self.slots[key])
        if self.parent is None:
            raise KeyError(f"variable {key[0]!r} is not bound here")
        if key not in self.free:
            self.parent.where(key)  # make sure the parent can provide it
            self.free.append(key)
        return ("cap", self.free.index(key))


class _OpenLayout(FrameLayout):
    """The surroundings of a lambda compiled on its own: any variable can be captured."""

    def __init__(self) -> None:
        super().__init__(None, 0)

    def where(self, key: tuple) -> tuple[str, int]:
        return ("slot", 0)


_OPEN = _OpenLayout()


class Cell:
    """A top-level definition that is not a function: evaluated once, on first use."""

    __slots__ = ("v", "force", "name")


class Compiler:
    """Compiles terms of one language (primal, or a transform's target) for one machine."""

    depth = 0      # how many forward transforms deep this language is (AD primitives nest one more)
    nests = False  # whether differentiation primitives may run inside this language

    def __init__(self, machine, linear=None, counting: bool = False, name: str = "primal"):
        self.machine = machine
        self.linear = linear        # the linear backend (lang/linear.py) for target terms, or None
        self.counting = counting
        self.counters: Counters = machine.counters
        self.name = name
        self.globals: dict[tuple, Any] = {}   # (module, name, inst) -> Fun or Cell
        self.term_size = 0                    # nodes of all the terms this compiler compiled

    # ---- entry points
    def compile_closed(self, e: c.Expr) -> Run:
        """A term with no free local variables, to run on an empty frame."""
        layout = FrameLayout(None, 0)
        run = self.term(e, layout, None)
        size = layout.size

        def entry(_unused=None):
            return run([(), *([None] * (size - 1))])
        return entry

    def global_value(self, module: str, name: str, inst: tuple) -> Any:
        """The value of a top-level definition at an instance (functions compiled on first use)."""
        key = (module, name, inst)
        found = self.globals.get(key)
        if found is None:
            found = self.define_global(key)
        if isinstance(found, Cell):
            try:
                return found.v
            except AttributeError:
                return found.force()
        return found

    def define_global(self, key: tuple) -> Any:
        module, name, inst = key
        expr = self.source_of_global(key)
        self.term_size += c.size(expr)
        if isinstance(expr, c.Lam):
            params, body = _lambda_chain(expr)
            code = Code(len(params), name=_display(name, inst), lam=expr, mode=self.name)
            code.info["global"] = key
            fun = Fun(code, ())
            self.globals[key] = fun
            self.fill_code(code, params, body, FrameLayout(None, len(params)), self_ref=("global", key))
            fun.body, fun.pad = code.body, code.pad
            return fun
        cell = Cell()
        cell.name = name
        self.globals[key] = cell
        state = {"busy": False}

        def force():
            if state["busy"]:
                raise DlRuntimeError(f"the value of `{name}` depends on itself", self.machine.world.defs[(module, name)].span)
            state["busy"] = True
            try:
                run = self.compile_closed(expr)
                cell.v = run()
                return cell.v
            finally:
                state["busy"] = False
        cell.force = force
        return cell

    def source_of_global(self, key: tuple) -> c.Expr:
        """The term a global is compiled from: the specialised definition (transforms override)."""
        module, name, inst = key
        return self.machine.spec.get(module, name, inst)

    # ---- lambdas
    def fill_code(self, code: Code, params: list[str], body: c.Expr, layout: FrameLayout, self_ref) -> None:
        for k, p in enumerate(params):
            layout.slots[(p, ())] = k + 1
        code.info["params"] = params
        run = self.term(body, layout, (self_ref, len(params)))
        if getattr(run, "_loops", False):
            inner = run

            def run(frame):
                while True:
                    result = inner(frame)
                    if result is not _LOOP:
                        return result
        code.body = run
        code.pad = (None,) * (layout.size - 1 - len(params))
        code.free = tuple(layout.free)

    def compile_open(self, e: c.Lam, name: str = "<fun>") -> Code:
        """A lambda compiled on its own: its free variables all captured (Code.free gives their order)."""
        params, body = _lambda_chain(e)
        code = Code(len(params), name=name, lam=e, mode=self.name)
        self.term_size += c.size(e)
        self.fill_code(code, params, body, FrameLayout(_OPEN, len(params)), None)
        return code

    def lam(self, e: c.Lam, layout: FrameLayout, self_ref=None, name: str = "<fun>") -> Run:
        """Closure creation for a lambda (its parameters uncurried: fun x y -> e has arity 2)."""
        params, body = _lambda_chain(e)
        inner = FrameLayout(layout, len(params))
        code = Code(len(params), name=name, lam=e, mode=self.name)
        self.fill_code(code, params, body, inner, self_ref)
        free = code.free
        if not free:
            shared = Fun(code, ())
            return lambda f: shared
        places = [layout.where(k) for k in free]
        if all(kind == "slot" for kind, _ in places):
            idx = [i for _, i in places]
            if len(idx) == 1:
                i0 = idx[0]
                return lambda f: Fun(code, (f[i0],))
            getter = operator.itemgetter(*idx)
            return lambda f: Fun(code, getter(f))
        getters = [_getter(kind, i) for kind, i in places]
        return lambda f: Fun(code, tuple([g(f) for g in getters]))

    # ---- terms
    def term(self, e: c.Expr, layout: FrameLayout, tail) -> Run:
        """Compile `e`. `tail` is (self reference, arity) when `e` is in tail position of that function."""
        match e:
            case c.Var(name, inst):
                kind, i = layout.where((name, inst))
                if kind == "slot":
                    return lambda f: f[i]
                return lambda f: f[0][i]
            case c.Global(name, module, inst):
                return self.global_ref((module, name, inst))
            case c.Lit(value):
                return lambda f: value
            case c.Lam():
                return self.lam(e, layout)
            case c.App():
                return self.application(e, layout, tail)
            case c.Let(name, bound, body, inst):
                run_bound = self.term(bound, layout, None)
                slot = layout.new_slot()
                old = layout.slots.get((name, inst))
                layout.slots[(name, inst)] = slot
                run_body = self.term(body, layout, tail)
                _restore(layout, (name, inst), old)

                def let(f):
                    f[slot] = run_bound(f)
                    return run_body(f)
                return _loops_if(let, run_body)
            case c.LetRec(name, bound, body, inst):
                key = (name, inst)
                slot = layout.new_slot()
                old = layout.slots.get(key)
                layout.slots[key] = slot
                make = self.lam(bound, layout, self_ref=("local", key), name=name)
                run_body = self.term(body, layout, tail)
                _restore(layout, key, old)

                def letrec(f):
                    f[slot] = None
                    fun = make(f)          # captures the placeholder...
                    f[slot] = fun
                    if fun.captured:       # ...which now becomes the function itself
                        fun.captured = tuple(fun if v is None and k == key else v
                                             for k, v in zip(fun.code.free, fun.captured))
                    return run_body(f)
                return _loops_if(letrec, run_body)
            case c.LetTuple(names, bound, body):
                run_bound = self.term(bound, layout, None)
                first = layout.size
                olds = []
                for n in names:
                    olds.append(layout.slots.get((n, ())))
                    layout.slots[(n, ())] = layout.new_slot()
                last = first + len(names)
                run_body = self.term(body, layout, tail)
                for n, old in zip(names, olds):
                    _restore(layout, (n, ()), old)

                def let_tuple(f):
                    f[first:last] = run_bound(f)
                    return run_body(f)
                return _loops_if(let_tuple, run_body)
            case c.If(cond, then, else_):
                rc, rt, re_ = self.term(cond, layout, None), self.term(then, layout, tail), self.term(else_, layout, tail)

                def if_(f):
                    return rt(f) if rc(f) else re_(f)
                if_._loops = getattr(rt, "_loops", False) or getattr(re_, "_loops", False)
                return if_
            case c.Tuple(items):
                return self.sequence(items, layout, tuple)
            case c.List(items):
                return self.sequence(items, layout, list)
            case c.Prim():
                return self.primitive(e, layout)
            case c.LinLam() | c.LinApp() | c.DZero() | c.DSum():
                if self.linear is None:
                    raise AssertionError("a linear term outside a transformed program")
                return self.linear.compile(self, e, layout)
        raise AssertionError(e)

    def sequence(self, items, layout, kind) -> Run:
        runs = [self.term(i, layout, None) for i in items]
        if len(runs) == 2:
            a, b = runs
            if kind is tuple:
                return lambda f: (a(f), b(f))
            return lambda f: [a(f), b(f)]
        if kind is tuple:
            return lambda f: tuple([r(f) for r in runs])
        return lambda f: [r(f) for r in runs]

    def global_ref(self, key: tuple) -> Run:
        found = self.globals.get(key)
        if found is None:
            found = self.define_global(key)
        if isinstance(found, Cell):
            cell = found

            def read(f):
                try:
                    return cell.v
                except AttributeError:
                    return cell.force()
            return read
        return lambda f: found

    # ---- application
    def application(self, e: c.App, layout: FrameLayout, tail) -> Run:
        args = []
        head: c.Expr = e
        while isinstance(head, c.App):
            args.append(head.arg)
            head = head.fn
        args.reverse()
        runs = [self.term(a, layout, None) for a in args]
        if tail is not None and _is_self(head, tail[0]) and len(args) == tail[1]:
            return self.self_tail_call(runs)
        fn_run = self.term(head, layout, None)
        count = self.counting
        counters = self.counters
        if len(runs) == 1:
            (a,) = runs

            def app1(f):
                fn = fn_run(f)
                if count:
                    counters.betas += 1
                if fn.arity == 1:
                    return fn.body([fn.captured, a(f), *fn.pad])
                return apply(fn, (a(f),))
            return app1
        if len(runs) == 2:
            a, b = runs

            def app2(f):
                fn = fn_run(f)
                if count:
                    counters.betas += 1
                if fn.arity == 2:
                    return fn.body([fn.captured, a(f), b(f), *fn.pad])
                return apply(fn, (a(f), b(f)))
            return app2
        n = len(runs)

        def app_n(f):
            fn = fn_run(f)
            if count:
                counters.betas += 1
            values = [r(f) for r in runs]
            if fn.arity == n:
                return fn.body([fn.captured, *values, *fn.pad])
            return apply(fn, tuple(values))
        return app_n

    def self_tail_call(self, runs: list[Run]) -> Run:
        n = len(runs)
        count, counters = self.counting, self.counters
        if n == 1:
            (a,) = runs

            def jump1(f):
                if count:
                    counters.betas += 1
                f[1] = a(f)
                return _LOOP
            jump1._loops = True
            return jump1

        def jump(f):
            if count:
                counters.betas += 1
            f[1:n + 1] = [r(f) for r in runs]
            return _LOOP
        jump._loops = True
        return jump

    # ---- primitives
    def primitive(self, e: c.Prim, layout: FrameLayout) -> Run:
        prim = PRIMITIVES[e.op]
        runs = [self.term(a, layout, None) for a in e.args]
        if prim.kind == "ad":
            return self.machine.ad_primitive(self, e, runs)
        impl = prim.impl
        if prim.int_impl is not None and e.args and prune(e.args[0].ty) == INT:
            impl = prim.int_impl
        if prim.kind == "toreal" and not e.args:
            value = impl
            return lambda f: value
        run = _call(impl, runs)
        if prim.fails:
            run = _with_span(run, e.span)
        if self.counting:
            run = _counted(run, self.counters)
        return run


# ---- small closure builders ---------------------------------------------------


def _call(impl: Callable, runs: list[Run]) -> Run:
    if len(runs) == 1:
        (a,) = runs
        return lambda f: impl(a(f))
    if len(runs) == 2:
        a, b = runs
        return lambda f: impl(a(f), b(f))
    if len(runs) == 3:
        a, b, d = runs
        return lambda f: impl(a(f), b(f), d(f))
    return lambda f: impl(*[r(f) for r in runs])


def _with_span(run: Run, span) -> Run:
    def guarded(f):
        try:
            return run(f)
        except DlError as err:
            raise err.with_span(span)
    return guarded


def _counted(run: Run, counters: Counters) -> Run:
    def counted(f):
        counters.prims += 1
        return run(f)
    return counted


def _getter(kind: str, i: int) -> Run:
    if kind == "slot":
        return lambda f: f[i]
    return lambda f: f[0][i]


def _loops_if(run: Run, inner: Run) -> Run:
    run._loops = getattr(inner, "_loops", False)
    return run


def _restore(layout: FrameLayout, key: tuple, old: int | None) -> None:
    if old is None:
        layout.slots.pop(key, None)
    else:
        layout.slots[key] = old


def _lambda_chain(e: c.Lam) -> tuple[list[str], c.Expr]:
    """fun x -> fun y -> body  as  ([x, y], body)."""
    params = []
    while isinstance(e, c.Lam):
        params.append(e.param)
        e = e.body
    return params, e


def _is_self(head: c.Expr, self_ref) -> bool:
    if self_ref is None:
        return False
    kind, key = self_ref
    if kind == "global":
        return isinstance(head, c.Global) and (head.module, head.name, head.inst) == key
    return isinstance(head, c.Var) and (head.name, head.inst) == key


def _display(name: str, inst: tuple) -> str:
    from .mono import instance_name
    return instance_name(name, inst)


def function_arity(t) -> int:
    n, t = 0, prune(t)
    while isinstance(t, TFun):
        n, t = n + 1, prune(t.result)
    return n
