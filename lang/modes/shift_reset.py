"""The shift-reset mode's runtime: CPS terms run by a trampoline, each shift's post pushed on a stack.

The term K(f) (lang/transforms/shift_reset.py) says: at each real primitive,

    let y = f x in let y' = shift (fun a -> accum x' (∂f * a)) in k (y, y')

— call the rest of the program, and when it returns, pass y's adjoint on.
Run that way (Lantern's way) the host stack is the tape: one Python frame per
pending shift, and a 10^6-step fold needs 10^6 of them, more than dl's
recursion limit (lang/back/deep.py). So this runtime runs the same term
differently, and the difference is worth stating plainly:

1. **Trampoline.** Every call in a CPS term is in tail position (the
   discipline checked with the types). The generated Python returns each
   call to a driver loop instead of making it — `return (f, a, k)` — so the
   host stack stays flat at any depth.
2. **Post stack.** `let y' = shift (fun a -> P) in S` runs as: push P, then run S. Because
   continuations are one-shot and called in tail position, everything S
   does, up to the end of the forward pass, is pushed after P; popping the
   posts last-in first-out after the forward pass runs each P exactly when
   the faithful runtime would, after everything its `k y` did.
3. **Records.** A post `fun a -> accum x1' (∂1 * a); ...` is pushed as the
   record (x1', ∂1, ...) of its parents' cells and its partials, computed
   when it is pushed; y' is the record's position, and a cell is a slot of
   the adjoint array of the backward pass. That is exactly the record
   backprop's linear factoring makes for the backpropagator
   `fun a -o x1' (∂1 * a) + ...` (lang/back/linear.py), and the post stack is
   popped by the same sweep.

With the explicit stack the mode *is* a tape: the "no auxiliary data
structures" of the paper holds only while the host stack does the keeping.
What is its own is the program: a CPS term, printed and type-checked, whose
backward order comes from the continuations. Two further choices: a shift
whose arguments are all constants (their cell `nocell`) makes a constant and
pushes nothing (a cell nothing can reach is not allocated), and a post whose
cell received no contribution is skipped — running it would add ∂ · 0, which
turns an infinite partial of a value that never reaches the output into a
nan; backprop and tape skip it too.
"""
from __future__ import annotations

from typing import Any, Callable

from dataclasses import replace

from ..back.compiler import MAX_LOOP_NESTING, SPILL_DEPTH, Cell, Gen
from ..back.deep import RECURSION_LIMIT
from ..back.languages import TransformCompiler
from ..back.linear import Factoring
from ..model import core as c
from ..model.errors import DlRuntimeError
from ..model.values import Code, Fun
from ..transforms.check import TargetLanguage
from ..transforms.common import refuse_array_types
from ..transforms.cps import LOOPS_K, is_shift, post_body
from ..transforms.shift_reset import SHIFT_RESET
from .runtimes import Runtime
from .table import refusal

# ---- the trampoline --------------------------------------------------------------------
#
# A bounce is (f, a, k), a call of a CPS function, or (k, v, None), a call of a continuation; each
# generated function returns one, and the driver makes it. The final continuation returns None: the
# forward pass is over.


def drive(bounce: tuple | None) -> None:
    """Make the calls the CPS code returns until the final continuation has run."""
    while bounce is not None:
        fn, a, k = bounce
        bounce = fn.body(fn.captured, a) if k is None else fn.body(fn.captured, a, k)


def drive_counting(bounce: tuple | None, counters) -> None:
    """drive, counting continuation calls (k_calls) and the driver's rounds (bounces)."""
    extra = counters.extra
    rounds = k_calls = 0
    try:
        while bounce is not None:
            rounds += 1
            fn, a, k = bounce
            if k is None:
                k_calls += 1
                bounce = fn.body(fn.captured, a)
            else:
                bounce = fn.body(fn.captured, a, k)
    finally:
        extra["k_calls"] = extra.get("k_calls", 0) + k_calls
        extra["bounces"] = extra.get("bounces", 0) + rounds


def continuation(body: Callable[[Any, Any], tuple | None], name: str = "<continuation>") -> Fun:
    """A continuation implemented in Python: body(captured, v) returns the next bounce."""
    return Fun(Code(1, body, name=name, mode="shift-reset"), ())


def final(out: list) -> Fun:
    """reset's continuation: keep the value, end the forward pass."""
    return continuation(lambda _, v: out.append(v), "<reset>")


# ---- the loops and partial applications, in CPS ----------------------------------------


class Loops:
    """mapK, foldK, zipWithK and buildK: loops whose every step is a CPS call, made one bounce at a time.

    The function a loop is given is curried CPS (`fold`'s takes acc and gives a function of x); one element
    costs one beta. The methods are named after the target primitives they implement."""

    def __init__(self, counters, counting: bool):
        self.counters = counters
        self.counting = counting

    def _step(self) -> None:
        if self.counting:
            self.counters.betas += 1

    def mapK(self, f: Fun, xs: list, k: Fun) -> tuple:
        """f x1 (fun y1 -> f x2 (... k [y1, ...]))"""
        out: list = []
        items = iter(xs)

        def next_item(_, y):
            out.append(y)
            return start()

        def start():
            for x in items:
                self._step()
                return (f, x, receive)
            return (k, out, None)
        receive = continuation(next_item)
        return start()

    def foldK(self, f: Fun, z: Any, xs: list, k: Fun) -> tuple:
        """f z (fun g -> g x1 (fun acc1 -> f acc1 (... k acc)))"""
        items = iter(xs)
        current = [None]

        def step(_, acc):
            for x in items:
                self._step()
                current[0] = x
                return (f, acc, apply_to_element)
            return (k, acc, None)
        apply_to_element = continuation(lambda _, g: (g, current[0], after))   # (f acc) x
        after = continuation(step)
        return step(None, z)

    def zipWithK(self, f: Fun, xs: list, ys: list, k: Fun) -> tuple:
        """f x1 (fun g -> g y1 (fun v1 -> ... k [v1, ...]))"""
        out: list = []
        pairs = zip(xs, ys)
        current = [None]

        def start():
            for x, y in pairs:
                self._step()
                current[0] = y
                return (f, x, apply_to_second)
            return (k, out, None)

        def next_item(_, v):
            out.append(v)
            return start()
        apply_to_second = continuation(lambda _, g: (g, current[0], after))
        after = continuation(next_item)
        return start()

    def buildK(self, n: int, f: Fun, k: Fun) -> tuple:
        """mapK f [0, ..., n - 1] k"""
        if n < 0:
            raise DlRuntimeError(f"build of a negative count ({n})")
        return self.mapK(f, range(n), k)


def apply_cps(fn: Fun, args: tuple, k: Fun) -> tuple:
    """fn a1 ... an k, curried: fn a1 (fun g -> g a2 (... k))."""
    if len(args) == 1:
        return (fn, args[0], k)
    rest = args[1:]
    return (fn, args[0], continuation(lambda _, g: apply_cps(g, rest, k)))


def _partial_body(captured: tuple, x: Any, k: Fun) -> tuple:
    fn, given = captured
    return apply_cps(fn, given + (x,), k)


# A primal partial application `f a1 .. an` lifted here: a CPS function of one argument (the type K gives
# it), which applies the lifted f to a1 .. an and then to its own argument.
CPS_PARTIAL = Code(2, _partial_body, name="<partial>", mode="shift-reset")


# ---- the compiler ----------------------------------------------------------------------


class Pending:
    """Continuations made and not yet called: the CPS program's stack depth (each is called exactly once).
    The trampoline keeps the host stack flat, so a recursion that does not end would otherwise grow the
    chain of continuations until memory runs out; past the limit other modes' calls have, it stops."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


def _overflow() -> DlRuntimeError:
    return DlRuntimeError(f"stack overflow: more than {RECURSION_LIMIT} nested calls (a recursion that does not "
                          "end, or one too deep: make it tail-recursive, or use fold)")


def _is_continuation(params: list[str], body: c.Expr) -> bool:
    return len(params) == 1 and params[0] != "%spilled" and not isinstance(body, c.Lam)


class ShiftResetCompiler(TransformCompiler):
    """K(t), compiled to trampolined Python; posts recorded on a linear-factoring backend."""

    nests = False

    def __init__(self, machine):
        backend = Factoring(machine.counters, machine.counting)
        super().__init__(machine, linear=backend, counting=machine.counting, name="shift-reset")
        self.loops = Loops(machine.counters, machine.counting)
        self.pending = Pending()

    def transform(self, e: c.Expr) -> c.Expr:
        return SHIFT_RESET.simplify(SHIFT_RESET.term(e))

    def d_type(self, t):
        return SHIFT_RESET.type(t)

    def language(self) -> TargetLanguage:
        base = super().language()
        return TargetLanguage(base.name, base.d_type, base.global_type, SHIFT_RESET.checks)

    def lift_real(self, r: float) -> Any:
        return (r, None)

    def refuse_nested(self, e: c.Prim):
        """A derivative call inside a function being differentiated: refused, by name."""
        return refusal(self.name, e)

    def lifted_partial(self, code: Code) -> Code:
        return CPS_PARTIAL

    def define_global(self, key: tuple) -> Fun | Cell:
        """A top-level function: its CPS term. A top-level value is a constant (it cannot depend on the
        input): its primal value, lifted (reals with nocell), computed on first use."""
        module, name, inst = key
        if isinstance(self.machine.spec.get(module, name, inst), c.Lam):
            return super().define_global(key)
        cell = Cell(name)
        machine = self.machine

        def force():
            cell.v = machine.ad.lift(machine.primal.global_value(module, name, inst), self, {})
            return cell.v
        cell.force = force
        self.globals[key] = cell
        return cell

    def fill(self, code: Code, params: list[str], body: c.Expr, self_ref, closed: bool = False) -> None:
        gen = TrampolineGen(self, params, self_ref, closed=closed)
        head, args = c.spine(body)
        gen.passing = (len(params) == 1 and len(args) == 2 and isinstance(head, c.Var)
                       and (head.name, head.inst) == (params[0], ()))
        if _is_continuation(params, body):
            gen.line(0, f"{gen.const(self.pending)}.n -= 1")
        gen.tail(body, 0)
        code.free = tuple(gen.free)
        code.body = gen.build(code.name)

    def run(self, fn: Fun, x: Any) -> Any:
        """reset (fn x): the forward pass, to its end; its value."""
        return self.drive_to_end((fn, x))

    def reset(self, fn: Fun) -> Any:
        """`reset (fun k -> S)` met as a value: a forward pass of its own, run to its end."""
        return self.drive_to_end((fn, None))

    @staticmethod
    def with_final(call: tuple, out: list) -> tuple:
        """(f, x, final) or, for reset's (f, None), (f, final, None): the first bounce of a forward pass."""
        fn, x = call
        return (fn, final(out), None) if x is None else (fn, x, final(out))

    def drive_to_end(self, call: tuple) -> Any:
        out: list = []
        saved, self.pending.n = self.pending.n, 0
        try:
            if self.counting:
                drive_counting(self.with_final(call, out), self.counters)
            else:
                drive(self.with_final(call, out))
        finally:
            self.pending.n = saved
        return out[0]


class TrampolineGen(Gen):
    """A function of the CPS target language as Python: each call is returned to the driver, each shift
    pushes its post's record before it goes on."""

    inline: tuple[str, str] | None = None  # in a loop body written in place: (its k, the local k's value goes to)

    def tail(self, e: c.Expr, ind: int) -> None:
        match e:
            case c.Let(y_cell, c.Prim("shift", (c.Lam(param, post),)), rest):
                self.shift(y_cell, param, post, rest, ind)
            case c.App() if self.inline is not None:       # k v ends an iteration: v is its value
                k, target = self.inline
                head, args = c.spine(e)
                assert isinstance(head, c.Var) and head.name == k and len(args) == 1, "a call in a loop body"
                self.line(ind, f"{target} = {self.atom(args[0], ind)}")
            case c.App() if not self.is_self_call(e):
                self.bounce(e, ind)
            case c.Prim(op) if op in LOOPS_K:
                self.loop(e, ind)
            case _:
                super().tail(e, ind)

    def shift(self, y_cell: str, param: str, post: c.Expr, rest: c.Expr, ind: int) -> None:
        """let y' = shift (fun a -> P) in S:  push P's record (its position is y'); then S. P is the
        backpropagator fun a -o Σ xi' (∂i * a) of ←D, recorded as backprop records it."""
        a = "%a"
        body = post_body(post, param, a)
        if body is None:
            raise AssertionError("a shift's post is not a sequence of `accum x' (∂ * a)` or `if`s of them")
        ident = self.compiler.linear.create(self, c.LinLam(a, body), ind)
        old_cell = self.env.bind((y_cell, ()), ident)
        self.tail(rest, ind)
        self.env.restore((y_cell, ()), old_cell)

    def closure(self, lam: c.Lam, ind: int, self_ref=None, target: str | None = None) -> str:
        """A closure; a continuation made is one more pending (see Pending)."""
        v = super().closure(lam, ind, self_ref, target)
        params, body = c.lambda_chain(lam)
        if _is_continuation(params, body):
            pending = self.const(self.compiler.pending)
            self.line(ind, f"{pending}.n += 1")
            self.line(ind, f"if {pending}.n > {RECURSION_LIMIT}: raise {self.const(_overflow)}()")
        return v

    def bounce(self, e: c.App, ind: int) -> None:
        """A call: `return (f, a, k)` or `return (k, v, None)`, made by the driver. One beta per application of a
        source function: not again for the call in `fun g -> g a k`, which only passes the next argument of
        an application `f x a` already counted."""
        head, args = c.spine(e)
        fn = self.atom(head, ind)
        values = [self.atom(a, ind) for a in args]
        if len(args) == 2 and not self.passing:
            self.count(ind, "betas")
        if len(args) not in (1, 2):
            raise AssertionError(f"a CPS call of {len(args)} arguments")
        self.line(ind, f"return ({fn}, {values[0]}, {values[1] if len(values) == 2 else None})")

    passing = False  # this function is a continuation `fun g -> g a k` (set by ShiftResetCompiler.fill)

    def loop(self, e: c.Prim, ind: int) -> None:
        """mapK f xs k, ...: written in place as a Python loop when f is a lambda whose body calls nothing
        but its continuation (each `k v` then ends an iteration: see `inline`); else the loop's first
        bounce (Loops)."""
        found = _loop_body(e)
        if found is not None and self.loop_depth < MAX_LOOP_NESTING and ind + 2 + _if_depth(found[1]) < SPILL_DEPTH:
            self.inline_loop(e, *found, ind)
            return
        args = [self.atom(a, ind) for a in e.args]
        self.count(ind, "prims")
        fn = self.const(getattr(self.compiler.loops, e.op))
        call = f"return {fn}({', '.join(args)})"
        if e.op == "buildK":
            self.line(ind, "try:")
            self.line(ind + 1, call)
            self.line(ind, "except _DlError as err:")
            self.line(ind + 1, f"raise err.with_span({self.const(e.span)})")
        else:
            self.line(ind, call)

    def inline_loop(self, e: c.Prim, params: list[str], body: c.Expr, k: str, ind: int) -> None:
        """for x in xs: <body, its `k v` storing v>; then the loop's continuation, with what it built."""
        self.count(ind, "prims")
        match e.op:
            case "mapK" | "buildK":
                source = e.args[1] if e.op == "mapK" else e.args[0]
                items = self.atom(source, ind)
                if e.op == "buildK":
                    self.line(ind, f"if {items} < 0: raise {self.const(_negative_count)}({items}, {self.const(e.span)})")
                    items = f"range({items})"
                loop_vars, out, acc = [self.local()], self.local(), None
            case "zipWithK":
                left, right = self.atom(e.args[1], ind), self.atom(e.args[2], ind)
                items, loop_vars, out, acc = f"zip({left}, {right})", [self.local(), self.local()], self.local(), None
            case _:                                         # foldK f z xs k
                acc = self.local()
                self.line(ind, f"{acc} = {self.atom(e.args[1], ind)}")
                items, loop_vars, out = self.atom(e.args[2], ind), [self.local()], None
        k_value = self.atom(e.args[-1], ind)
        if out is not None:
            self.line(ind, f"{out} = []")
        self.line(ind, f"for {', '.join(loop_vars)} in {items}:")
        bound = ([acc] if acc is not None else []) + loop_vars
        olds = [self.env.bind((p, ()), v) for p, v in zip(params, bound)]
        target = acc if acc is not None else self.local()
        self.count(ind + 1, "betas")
        saved, self.inline = self.inline, (k, target)
        self.loop_depth += 1
        self.tail(body, ind + 1)
        self.loop_depth -= 1
        self.inline = saved
        for p, old in reversed(list(zip(params, olds))):
            self.env.restore((p, ()), old)
        if out is not None:
            self.line(ind + 1, f"{out}.append({target})")
        self.line(ind, f"return ({k_value}, {out if out is not None else acc}, None)")

    def primitive(self, e: c.Prim, ind: int) -> str:
        match e.op:
            case "nocell":
                return "None"
            case "reset":
                f = self.atom(e.args[0], ind)
                v = self.local()
                self.line(ind, f"{v} = {self.const(self.compiler.reset)}({f})")
                return v
            case "shift" | "accum":
                raise AssertionError(f"`{e.op}` outside a shift")
        if e.op in LOOPS_K:
            raise AssertionError(f"`{e.op}` outside tail position")
        return super().primitive(e, ind)

    def call(self, e: c.App, ind: int) -> str:
        raise AssertionError("a call outside tail position in a CPS term")


def _negative_count(n: int, span) -> DlRuntimeError:
    return DlRuntimeError(f"build of a negative count ({n})", span)


def _loop_body(e: c.Prim) -> tuple[list[str], c.Expr, str] | None:
    """(parameters, body, its k) of a loop's function when it is a lambda whose body only calls its k:
    `fun x k -> S` (mapK, buildK), or `fun a k1 -> <lets> k1 (fun b k2 -> S)` (foldK, zipWithK: the
    CPS of a two-parameter lambda), the lets kept in front of S."""
    f = e.args[1] if e.op == "buildK" else e.args[0]
    match f:
        case c.Lam(x, c.Lam(k, body)) if e.op in ("mapK", "buildK"):
            return ([x], body, k) if _leaf(body, k) else None
        case c.Lam(a, c.Lam(k1, outer)) if e.op in ("foldK", "zipWithK"):
            lets = []
            while (isinstance(outer, c.Let) and not is_shift(outer)) or isinstance(outer, c.LetTuple):
                lets.append(outer)
                outer = outer.body
            match outer:
                case c.App(c.Var(name), c.Lam(b, c.Lam(k2, body))) if name == k1 and _leaf(body, k2):
                    for let in reversed(lets):
                        body = replace(let, body=body)
                    return [a, b], body, k2
    return None


def _leaf(e: c.Expr, k: str) -> bool:
    """A serious term that calls nothing but `k` (shifts, lets, ifs): it can run in place."""
    match e:
        case c.App(c.Var(name), _):
            return name == k
        case c.Let(_, c.Lam(_, body), _) if not isinstance(body, c.Lam):
            return False                                    # a join point: a continuation made
        case c.Let(body=body) | c.LetTuple(body=body) | c.LetRec(body=body):
            return _leaf(body, k)
        case c.If(_, then, else_):
            return _leaf(then, k) and _leaf(else_, k)
    return False


def _if_depth(e: c.Expr) -> int:
    """How deeply `if`s nest in a serious term (the indentation writing it in place takes)."""
    match e:
        case c.If(_, then, else_):
            return 1 + max(_if_depth(then), _if_depth(else_))
        case c.Let(body=body) | c.LetTuple(body=body) | c.LetRec(body=body):
            return _if_depth(body)
    return 0


# ---- the runtime -------------------------------------------------------------------------


class ShiftResetRuntime(Runtime):
    """vjp: lift f into the CPS language, run it with the inputs' cells first on the post stack, and
    give a pullback that pops the stack (any number of times)."""

    name = "shift-reset"

    def vjp(self, kernel, f, x, in_t, out_t):
        refuse_array_types(self.name, in_t, out_t)  # no array rules yet: refused before a gradient of the wrong kind
        compiler: ShiftResetCompiler = kernel.language("shift-reset", ShiftResetCompiler)
        return kernel.vjp_recorded(f, x, in_t, out_t, compiler, compiler.linear, compiler.run)


SHIFT_RESET_RUNTIME = ShiftResetRuntime()

__all__ = ["SHIFT_RESET_RUNTIME", "ShiftResetCompiler", "drive"]
