"""The compiler: specialised core terms to Python functions, generated once per lambda.

Each lambda (uncurried: `fun x y -> e` has arity 2) becomes one Python
function `body(c, a0, a1)`, written as source and compiled once by Python:
its parameters and `let`-bound variables are Python locals, its free
variables are read from the tuple `c` of captured values (a flat closure,
lang/runtime.py), and every node of the term is a statement or an operand
decided here, at compile time — nothing dispatches on node types when the
program runs. `fun x -> x * (1.0 - x)` compiles to

    def body(c, a0):
        v0 = 1.0 - a0
        v1 = a0 * v0
        return v1

The primitive table says how each primitive is written: inline Python
(`py`), or a call of its implementation, guarded by try/except where a
fast implementation can raise and the total one gives inf or nan (`raw`),
or where a run-time error needs the source span (`fails`). A call in tail
position to the function being defined (a top-level `def` or a `let rec`)
rebinds the parameters and loops, so tail recursion runs in constant stack;
other deep recursion runs on a big-stack worker thread (lang/deep.py).
Generated functions of the same shape share one compiled template.

The same compiler runs the transforms' target languages: the linear
fragment (fun a -o t, x' e, 0, +) is written by a *linear backend* that
the mode supplies (lang/linear.py). Counting (the cost counters of
docs/transforms.md, Cost counters) is a compile-time choice: when off, no counting code exists.
"""
from __future__ import annotations

import math
import os
from operator import length_hint
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any, Callable

from ..model.nodes import field, node
from ..model import core as c
from ..model.errors import DlError, DlRuntimeError
from ..model.primitives import PRIMITIVES, Primitive, array_instance, array_kernel, count, out_of_memory, site_factory
from ..front.loader import PRELUDE
from ..model.values import Code, Fun, Text, apply, partial_code as partial_application
from ..model.scope import Scope
from ..model.spans import Framed, Span
from .replay import checkpoint_site, checkpointed, top_kept
from ..model.types import ARRAY, BOOL, INT, STRING, instance_name, prune

lambda_chain = c.lambda_chain

Key = tuple  # a local variable: (name, instance)


@node(slots=False, frozen=False)  # a mutable dataclass, made quickly (start-up)
class Counters:
    """Exact cost counters (docs/transforms.md, Cost counters)."""

    prims: int = 0            # primitive applications
    betas: int = 0            # function applications (beta steps)
    bp_created: int = 0       # backpropagators created
    bp_run: int = 0           # backpropagator bodies run
    merges: int = 0           # factoring merges: contributions added to an already pending backpropagator
    sink_updates: int = 0     # contributions that reached an input's sink
    peak_pending: int = 0     # most backpropagators pending at once in the backward sweep
    elements: int = 0         # array elements touched: the sizes of each array operation's array arguments
                              # and result (reported only when arrays ran)
    extra: dict = field(default_factory=dict)

    NAMES = ("prims", "betas", "bp_created", "bp_run", "merges", "sink_updates", "peak_pending")

    def reset(self) -> None:
        """Every counter back to zero."""
        for k in self.NAMES:
            setattr(self, k, 0)
        self.elements = 0
        self.extra.clear()

    def as_dict(self) -> dict:
        """The counters by name, the mode-specific extras after them."""
        out = {k: getattr(self, k) for k in self.NAMES}
        if self.elements:
            out["elements"] = self.elements
        out.update(self.extra)
        return out


def _lambda_nodes(e: c.Expr) -> int:
    """The nodes of the outermost lambdas of a term (iterative: terms can be deep)."""
    count, stack = 0, [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Lam):
            count += c.size(t)
        else:
            stack.extend(c.children(t))
    return count


class _Unset:
    """The value of a top-level definition not computed yet."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET = _Unset()


class Cell:
    """A top-level definition that is not a function: evaluated once, on first use."""

    __slots__ = ("v", "force", "name")

    def __init__(self, name: str = ""):
        """An empty cell for the definition `name`; `force` is set by the compiler (None: seeded)."""
        self.v = UNSET
        self.name = name


class Compiler:
    """Compiles terms of one language (primal, or a transform's target) for one machine."""

    depth = 0      # how many forward transforms deep this language is (AD primitives nest one more)
    nests = False  # whether differentiation primitives may run inside this language
    custom_rules = False  # whether a custom rule's Jacobian can enter this language's reals (first order)

    def primal_real(self, leaf: Any) -> float:
        """The value of one of this language's reals (a language with `custom_rules` defines it)."""
        raise AssertionError(f"the {self.name} language does not take custom rules")

    def custom_leaf(self, value: float, pairs: list) -> Any:
        """A real of this language with the given value whose derivative is Σ J·(the derivative of leaf), for
        the (leaf, J) pairs: one output real of a custom rule (docs/reference.md §7, Custom derivatives)."""
        raise AssertionError(f"the {self.name} language does not take custom rules")

    def varying_leaf(self, v: Any) -> bool | None:
        """Whether v, if it is one of this language's reals, carries a derivative (None: v is no real): a
        custom rule may capture only reals that do not (lang/back/custom.py)."""
        raise AssertionError(f"the {self.name} language does not take custom rules")

    def __init__(self, machine, linear=None, counting: bool = False, name: str = "primal"):
        """A compiler for the language `name` of `machine`; `linear`: the backend that writes the linear
        fragment (target languages of ←D), `counting`: write the counters' increments into the code."""
        self.machine = machine
        self.linear = linear        # the linear backend (lang/linear.py) for target terms, or None
        self.counting = counting
        self.counters: Counters = machine.counters
        self.name = name
        self.globals: dict[tuple, Any] = {}   # (module, name, inst) -> Fun or Cell
        self.term_size = 0                    # nodes of all the terms this compiler compiled
        self.stoppable: dict[tuple, Callable | None] = {}  # `stoppable_body`'s

    # ---- entry points
    def compile_closed(self, e: c.Expr, program: bool = False) -> Callable[[], Any]:
        """A term with no free local variables, as a function of no arguments.

        `program`: the term is a piece of the user's program (a REPL input, main's call), whose lambdas
        count in `term_size` as a definition's would: `grad (fun x -> x * sin x) 1.0` compiles the same
        term as `grad f 1.0` with `def f x = x * sin x`. The call around them does not count, nor do the
        terms a runtime compiles for itself (the tape's partial derivatives)."""
        if program:
            self.term_size += _lambda_nodes(e)
        code = Code(0, name="<expression>", mode=self.name)
        self.fill(code, [], e, None, closed=True)
        body = code.body
        return lambda: body(())

    def compile_open(self, e: c.Lam, name: str = "<fun>") -> Code:
        """A lambda compiled on its own: its free variables all captured (Code.free gives their order)."""
        params, body = lambda_chain(e)
        code = Code(len(params), name=name, lam=e, mode=self.name)
        code.info["origin"] = e.origin or e
        self.term_size += c.size(e)
        self.fill(code, params, body, None)
        return code

    def global_value(self, module: str, name: str, inst: tuple) -> Any:
        """The value of a top-level definition at an instance (functions compiled on first use)."""
        found = self.global_ref((module, name, inst))
        if isinstance(found, Cell):
            return found.v if found.v is not UNSET else found.force()
        return found

    def global_ref(self, key: tuple) -> Fun | Cell:
        """The function value or cell of a top-level definition at an instance, defined on first use."""
        found = self.globals.get(key)
        return found if found is not None else self.define_global(key)

    def define_global(self, key: tuple) -> Fun | Cell:
        """Compile a top-level definition: a function becomes a Fun with no captured values (registered
        before its body is compiled, so that recursion finds it); a value becomes a Cell computed on
        first use (a value that needs itself is a runtime error)."""
        module, name, inst = key
        expr = self.source_of_global(key)
        self.term_size += c.size(expr)
        if isinstance(expr, c.Lam):
            params, body = lambda_chain(expr)
            code = Code(len(params), name=instance_name(name, inst), lam=expr, mode=self.name)
            code.info["global"] = key
            fun = Fun(code, ())
            self.globals[key] = fun
            self.fill(code, params, body, ("global", key))
            fun.body = code.body
            return fun
        cell = Cell(name)
        self.globals[key] = cell
        busy = [False]
        compiled: list = []

        def force():
            """Compute the cell's value (once), reporting a definition that depends on its own value."""
            if busy[0]:
                d = self.machine.world.defs.get((module, name))
                raise DlRuntimeError(f"the value of `{name}` depends on itself", d.span if d else c.NO_SPAN)
            busy[0] = True
            try:
                if not compiled:
                    compiled.append(self.compile_closed(expr))
                cell.v = compiled[0]()
                return cell.v
            finally:
                busy[0] = False
        cell.force = force
        return cell

    def partial_code(self, code: Code) -> Code:
        """The code of a partial application lifted into this language (its function and arguments lifted,
        lang/back/kernel.py): the same code in every language that keeps the calling convention."""
        return code

    def seed_value(self, key: tuple, value: Any) -> None:
        """The value of the top-level definition `key`, known already: it will not be computed."""
        cell = Cell(key[1])
        cell.v, cell.force = value, None  # no code to compute it again: forget_values keeps it
        self.globals[key] = cell

    def forget_values(self) -> None:
        """Top-level values are computed again on next use (their code is kept): `dl compare` times
        the evaluation of a `main` that takes no argument this way."""
        for found in self.globals.values():
            if isinstance(found, Cell) and found.force is not None:
                found.v = UNSET

    def lifted_partial(self, code: Code) -> Code:
        """The code of a partial application `f a1 .. ak` of the language below, lifted into this one (its
        captured values, f and the arguments, lifted by the kernel): the same code wherever this language
        calls functions as the one below does; a target with another calling convention overrides it."""
        return code

    def prelude_source(self):
        """The prelude's Source, as its definitions' spans name it (a cached prelude keeps the path it
        was first loaded from), or None."""
        module = self.machine.world.modules.get(PRELUDE)
        return module.defs[0].span.source if module is not None and module.defs else None

    def source_of_global(self, key: tuple) -> c.Expr:
        """The term a global is compiled from: the specialised definition (transforms override)."""
        module, name, inst = key
        return self.machine.spec.get(module, name, inst)

    def fill(self, code: Code, params: list[str], body: c.Expr, self_ref, closed: bool = False) -> None:
        """Generate and compile the Python function for a lambda body; set code.body and code.free."""
        gen = self.written(params, body, self_ref, closed)
        code.free = tuple(gen.free)
        code.body = gen.build(code.name)
        code.info["python"] = gen.source  # the generated source, for reading and for golden tests

    def written(self, params: list[str], body: c.Expr, self_ref, closed: bool = False, stop: bool = False,
                on_top: bool = True) -> Gen:
        """The writer of a lambda body, its lines written: loop parameters unboxed, notes taken where the replay
        can use them (lang/back/replay.py), or (`stop`) a stop asked at each step's head instead; in such a loop,
        the Real's links written on top of the tape where that is right (lang/back/replay.py, `on_top`), else
        the lines written again without."""
        gen = self.generator(params, self_ref, closed)
        gen.unbox_loop_params(body)
        gen.stop = stop
        gen.checkpoints = not stop and checkpointed(self, gen, body)
        if gen.checkpoints and on_top:
            gen.top_link = gen.loop_targets[-1][1]
        gen.tail(body, 0)
        if gen.top_sites and not top_kept(gen):
            return self.written(params, body, self_ref, closed, stop, on_top=False)
        return gen

    def stoppable_body(self, key: tuple) -> Callable | None:
        """The top-level function `key`'s body compiled again as `body(c, stop, a0, ..)`: at the head of each
        step of its self tail loop, `stop((a0, ..))` (an unboxed parameter as its tuple) and, where that is true,
        `return None` (lang/back/replay.py); None where the body does not loop."""
        if key not in self.stoppable:
            params, body = lambda_chain(self.source_of_global(key))
            gen = self.written(params, body, ("global", key), stop=True)
            self.stoppable[key] = gen.build(instance_name(key[1], key[2])) if gen.loops and not gen.free else None
        return self.stoppable[key]

    def generator(self, params: list[str], self_ref, closed: bool = False) -> Gen:
        """The writer of one function's source: a target language with constructs of its own (the Delta
        constructors, lang/modes/delta.py) returns a Gen that writes them."""
        return Gen(self, params, self_ref, closed=closed)

    # ---- how each primitive is written (the overloading modes replace the real ones)
    def primitive_code(self, prim: Primitive, e: c.Prim) -> PrimCode:
        """How to write one application of `prim`: inline Python from its row, else a call of its
        implementation at the instance's type (the overloading modes override this)."""
        if prim.site is not None:  # made for this compiler (amap's reverse form needs the kernel)
            return PrimCode(fn=site_factory(prim.site)(self, e), fails=True)
        if array_instance(prim, [a.ty for a in e.args], e.ty):
            return self.array_code(prim, e)
        if prim.py is not None:  # written for every instance of the primitive
            return PrimCode(template=prim.py)
        at_int = bool(e.args) and prune(e.args[0].ty) == INT
        impl = prim.int_impl if at_int and prim.int_impl is not None else prim.impl
        raw = None if at_int and prim.int_impl is not None else prim.raw  # Int instances have no raw form
        return PrimCode(fn=impl, raw=raw)

    def array_code(self, prim: Primitive, e: c.Prim) -> PrimCode:
        """An operation on Arrays: a call of its kernel (lang/model/arrays.py), which may fail (a shape
        mismatch is reported at the call) and touches elements (the `elements` counter)."""
        if prim.array is None:
            raise AssertionError(f"the primitive {prim.name!r} has no Array kernel in the primitive table")
        return PrimCode(fn=array_kernel(prim.array), fails=True, elements=_array_cost(prim))


def _array_cost(prim: Primitive) -> str:
    """The cost class of an array operation: its row's, or "array" for a real row at Array (elementwise)."""
    return prim.cost if prim.kind in ("array", "effect") else "array"


@node(slots=False, frozen=False)
class PrimCode:
    """How a compiler writes one primitive application."""

    template: str | None = None      # inline Python, "{0} * {1}"
    fn: Callable | None = None       # else: call this
    raw: Callable | None = None      # first try this (falling back to fn on ArithmeticError/ValueError)
    fails: bool = False              # may raise a run-time error whatever its row says (Array instances)
    elements: str | None = None      # an array operation's cost class: what counting adds to `elements`
                                     # ("array": its arguments' and result's sizes, "index": its result's)


# ---- generating one Python function -------------------------------------------------

_TEMPLATES: dict[str, Callable] = {}  # generated source -> its compiled factory (shape-shared, immutable)
RUNTIME_NAMES = {"_DlError": DlError, "_apply": apply, "_Fun": Fun, "_UNSET": UNSET}  # what generated lines read

# CPython refuses more than 100 levels of indentation and 20 nested loop or try blocks in one
# function. Deeper than SPILL_DEPTH, a term becomes a function of its own, called in place; past
# MAX_LOOP_NESTING inlined loops, map and fold are called instead of written out.
SPILL_DEPTH = 60
MAX_LOOP_NESTING = 12


class Gen:
    """The Python source of one function: a lambda body, a closed expression, or a backpropagator."""

    def __init__(self, compiler: Compiler, params: list[str], self_ref, closed: bool = False,
                 param_keys: list[Key] | None = None):
        self.compiler = compiler
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.const_names: dict[int, str] = {}
        self.n = 0
        self.params = [f"a{i}" for i in range(len(params))]
        keys = param_keys or [(p, ()) for p in params]
        self.param_keys = list(keys)
        self.loop_targets: list[list[str] | None] = [None] * len(params)  # an unboxed parameter's parts
        self.unboxed: dict[str, list[str]] = {}  # an unboxed parameter's tuple display -> its parts
        self.env: Scope = Scope(zip(keys, self.params))  # variable -> its Python expression
        self.free: list[Key] = []
        self.self_ref = self_ref
        self.closed = closed
        self.loops = False
        self.loop_depth = 0  # inlined loops around the current line
        self.counting = compiler.counting
        self.prologue: dict[str, str] = {}  # locals computed once on entry: name -> expression
        self.chain = None  # the fold loop being compiled whose steps' records may chain (lang/back/chains.py)
        self.raw = None    # a parameter holding a [Real]'s floats for its dual pairs (lang/back/streams.py)
        self.raw_reads = 0  # reads of it other than by a fold's loop (any: the body is not usable)
        self.raw_folds = 0  # the fold loops over it
        self.sinks: set[str] = set()  # locals holding an input's sink identity (an Int, never None) there
        self.link_ids: set[str] = set()  # locals holding a link's identity (LinearBackend: a float record)
        self.checkpoints = False  # whether a self tail call notes where the loop is (lang/back/replay.py)
        self.stop = False  # whether the loop stops where a predicate says (replay.py: `Compiler.stoppable_body`)
        self.top_link: str | None = None  # the loop's Real's backpropagator, always the last record (replay.py `on_top`)
        self.top_sites: set[str] = set()  # the links written on top of it
        self.top_tails: list[str] = []  # what each self tail call passes on as that backpropagator
        self.tape_lines: set[str] = set()  # the lines that may name the tape there (`replay.top_kept`)
        self.spills = 0  # the parts of the body written as functions of their own (`spill`: their lines are not these)

    # ---- names
    def local(self) -> str:
        """A fresh Python local: v1, v2, ..."""
        self.n += 1
        return f"v{self.n}"

    def const(self, obj: Any) -> str:
        """The name under which `obj` is passed to the generated factory (k0, k1, ...): a primitive's
        implementation, a global's Fun, a span for an error message. Shared by identity."""
        name = self.const_names.get(id(obj))
        if name is None:
            name = f"k{len(self.consts)}"
            self.consts[name] = obj
            self.const_names[id(obj)] = name
        return name

    def line(self, indent: int, text: str) -> None:
        """Emit one line of the body at `indent` levels (the factory's own indentation is added later)."""
        self.lines.append("    " * indent + text)

    def lookup(self, key: Key) -> str:
        """The Python expression of a variable: a parameter `a0`, a local `v3`, or a captured value
        `c[2]` (its index in the closure's tuple, in order of first use; Code.free lists them)."""
        found = self.env.get(key)
        if found is not None:
            if found == self.raw:
                self.raw_reads += 1
            return found
        if self.closed:
            raise AssertionError(f"variable {key[0]!r} is not bound")
        if key not in self.free:
            self.free.append(key)
        return f"c[{self.free.index(key)}]"

    def literal(self, value: Any) -> str:
        """A literal as Python source: `2.5`, `(-1.0)`, `True`, `()`; inf and nan as constants."""
        if value is True or value is False:
            return repr(value)
        if type(value) is float:
            if math.isfinite(value):
                return f"({value!r})" if value < 0 or value == 0 and math.copysign(1, value) < 0 else repr(value)
            return self.const(value)
        if type(value) is int:
            return f"({value!r})" if value < 0 else repr(value)
        if value == ():
            return "()"
        return self.const(value)

    def count(self, indent: int, counter: str) -> None:
        """When counting, `k3.prims += 1` (k3 the machine's Counters); otherwise nothing at all."""
        if self.counting:
            self.line(indent, f"{self.const(self.compiler.counters)}.{counter} += 1")

    # ---- building the function
    def entry(self, name: str, expression: str) -> str:
        """A local computed once when the function is entered (hoisted out of its loop)."""
        self.prologue.setdefault(name, expression)
        return name

    def build(self, name: str) -> Callable:
        """The function, compiled by Python: the body wrapped in a factory of its constants,

            def factory(k0, k1):
                def body(c, a0):
                    <prologue: hoisted locals>
                    <the lines; inside `while True:` when a self tail call loops>
                return body

        compiled once per distinct source (terms of the same shape share it) and called with this
        function's constants."""
        params = ", ".join(["c"] + ["stop"] * self.stop + self.params)
        body = self.lines or ["return ()"]
        if self.loops:
            head = []
            if self.stop:  # (at each step's head, the parameters as the function was given them)
                state = [f"({', '.join(parts)})" if parts else p for p, parts in zip(self.params, self.loop_targets)]
                head = [f"    if stop(({', '.join(state)},)):", "        return None"]
            body = ["while True:"] + head + ["    " + ln for ln in body]
        body = [f"{k} = {v}" for k, v in self.prologue.items()] + body
        src = "def factory({}):\n    def body({}):\n{}\n    return body\n".format(
            ", ".join(self.consts), params, "\n".join("        " + ln for ln in body))
        self.source = src
        factory = _TEMPLATES.get(src)
        if factory is None:
            namespace = dict(RUNTIME_NAMES)
            exec(compile(src, f"<dl {name}>", "exec"), namespace)
            factory = namespace["factory"]
            _TEMPLATES[src] = factory
        return factory(**self.consts)

    # ---- statements
    def branches(self, e: c.If, ind: int, each: Callable[[c.Expr, int], None]) -> None:
        """if / elif / else: a chain of `else if`s stays at one indentation (Python allows 100 levels).

            if x < 0 then a else if x < 1 then b else c       v1 = a0 < 0.0
                                                               if v1: ...a
                                                               elif a0 < 1.0: ...b
                                                               else: ...c
        `each(branch, indent)` writes a branch (return it, or assign it)."""
        test = self.expr(e.cond, ind)
        self.line(ind, f"if {test}:")
        each(e.then, ind + 1)
        rest = e.else_
        while isinstance(rest, c.If):
            saved, self.lines = self.lines, []
            test = self.expr(rest.cond, ind + 1)
            computed, self.lines = self.lines, saved
            single = "    " * (ind + 1) + f"{test} = "
            if len(computed) == 1 and computed[0].startswith(single):  # one assignment: write it in place
                test, computed = computed[0][len(single):], []
            if computed:  # the test needs statements: it cannot be an elif
                self.line(ind, "else:")
                self.lines.extend(computed)
                self.line(ind + 1, f"if {test}:")
                each(rest.then, ind + 2)
                self.line(ind + 1, "else:")
                each(rest.else_, ind + 2)
                return
            self.line(ind, f"elif {test}:")
            each(rest.then, ind + 1)
            rest = rest.else_
        self.line(ind, "else:")
        each(rest, ind + 1)

    def tail(self, e: c.Expr, ind: int) -> None:
        """Statements that return the value of `e`; a self tail call rebinds the parameters and loops:

            def count (n : Int) (acc : Int) =                  while True:
              if n == 0 then acc                                  v1 = a0 == 0
              else count (n - 1) (acc + 1)                        if v1: return a1
                                                                  else:
                                                                      v2 = a0 - 1
                                                                      v3 = a1 + 1
                                                                      a0, a1 = v2, v3
                                                                      continue
        """
        if ind >= SPILL_DEPTH and _spillable(e):
            self.line(ind, f"return {self.spill(e, ind)}")
            return
        match e:
            case c.If():
                self.branches(e, ind, self.tail)
            case c.Let() | c.LetTuple() | c.LetRec():
                self.scoped(e, ind, lambda body: self.tail(body, ind))
            case c.App() if self.is_self_call(e):
                targets, values = [], []
                for param, parts, arg in zip(self.params, self.loop_targets, _spine(e)[1]):
                    if parts is None:
                        targets.append(param)
                        values.append(self.atom(arg, ind))
                    else:  # an unboxed tuple: its components, no tuple built (`unbox_loop_params`)
                        targets += parts
                        values += self.components(arg, len(parts), ind)
                self.count(ind, "betas")
                if self.top_link is not None:
                    self.top_tails.append(values[targets.index(self.top_link)])
                if self.checkpoints:
                    checkpoint_site(self, targets, values, ind)
                self.line(ind, f"{', '.join(targets)} = {', '.join(values)}")
                self.line(ind, "continue")
                self.loops = True
            case _:
                self.line(ind, f"return {self.expr(e, ind)}")

    def unbox_loop_params(self, body: c.Expr) -> None:
        """Scalar replacement of a self tail call's tuple-typed loop variables: a parameter that every
        self tail call passes a tuple written out (under `let`s), and that the body takes apart, is kept as one
        Python local per component, taken apart once on entry (the transformed programs' dual pairs
        `(value, backpropagator)` in a loop):

            def logistic n (x, x') = ...              a1_0, a1_1 = a1          (on entry)
              let (v, v') = x in                       while True: ...
              ... logistic (n - 1) (y, y')                 (v, v' are a1_0, a1_1: no unpacking)
                                                           a0, a1_0, a1_1 = v2, v7, v8
                                                           continue
        Any other use of the parameter reads the tuple display `(a1_0, a1_1)`, which builds it again
        (the base case's `return`). A generator that writes tail calls, tuples or variables its own way
        (a subclass overriding `tail`, `components` or `expr`) keeps its parameters boxed."""
        if self.self_ref is None or any(getattr(type(self), m) is not getattr(Gen, m)
                                        for m in ("tail", "components", "expr", "atom")):
            return
        calls = _self_tail_calls(self, body)
        if not calls:
            return
        taken_apart = _taken_apart(body)
        for i, (param, key) in enumerate(zip(self.params, self.param_keys)):
            widths = {_tuple_width(_spine(call)[1][i]) for call in calls}
            if len(widths) != 1 or min(widths) < 2 or key not in taken_apart:
                continue
            parts = [f"{param}_{j}" for j in range(widths.pop())]
            display = f"({', '.join(parts)})"
            self.env.bind(key, display)
            self.unboxed[display] = parts
            self.loop_targets[i] = parts
            self.prologue[", ".join(parts)] = param

    def assign(self, e: c.Expr, target: str, ind: int) -> None:
        """Statements that store the value of `e` in the local `target`."""
        if ind >= SPILL_DEPTH and _spillable(e):
            self.line(ind, f"{target} = {self.spill(e, ind)}")
            return
        match e:
            case c.If():
                self.branches(e, ind, lambda branch, i: self.assign(branch, target, i))
            case c.Let() | c.LetTuple() | c.LetRec():
                self.scoped(e, ind, lambda body: self.assign(body, target, ind))
            case _:
                self.line(ind, f"{target} = {self.expr(e, ind)}")

    def scoped(self, e: c.Expr, ind: int, rest: Callable[[c.Expr], Any]) -> Any:
        """Bind a let's variables, continue with its body (`rest`), unbind.

            let y = x * x in e         v1 = a0 * a0, then e with y as v1
            let (p, q) = t in e        p and q bound to t's components (no tuple built when t is one)
            let rec f = fun x -> e1    v1 = _Fun(k0, None); v1.captured = (..., v1, ...)
        """
        match e:
            case c.Let(name, bound, body, inst):
                value = self.expr(bound, ind)
                if not _is_local(value):
                    v = self.local()
                    self.line(ind, f"{v} = {value}")
                    value = v
                old = self.env.bind((name, inst), value)
                out = rest(body)
                self.env.restore((name, inst), old)
                return out
            case c.LetTuple(names, bound, body):
                parts = self.components(bound, len(names), ind)
                olds = [self.env.bind((n, ()), p) for n, p in zip(names, parts)]
                out = rest(body)
                for n, old in reversed(list(zip(names, olds))):
                    self.env.restore((n, ()), old)
                return out
            case c.LetRec(name, bound, body, inst):
                key = (name, inst)
                v = self.local()
                old = self.env.bind(key, v)
                self.closure(bound, ind, self_ref=("local", key), target=v)
                out = rest(body)
                self.env.restore(key, old)
                return out
        raise AssertionError(e)

    def components(self, e: c.Expr, n: int, ind: int) -> list[str]:
        """The n components of a tuple-valued term, without building the tuple when it is written out."""
        match e:
            case c.Tuple(items) if len(items) == n:
                return [self.atom(i, ind) for i in items]
            case c.Let() | c.LetTuple() | c.LetRec():
                return self.scoped(e, ind, lambda body: self.components(body, n, ind))
        value = self.expr(e, ind)
        if value in self.unboxed:  # an unboxed loop variable: its parts are locals already
            return list(self.unboxed[value])
        parts = [self.local() for _ in range(n)]
        self.line(ind, f"{', '.join(parts)} = {value}")
        return parts

    # ---- expressions
    def atom(self, e: c.Expr, ind: int) -> str:
        """`e` as a local, a parameter, a captured value, a constant or a literal (cheap to read again).

        Every expression is one of those already, except tuple and list displays."""
        value = self.expr(e, ind)
        if isinstance(e, (c.Tuple, c.List)) or value in self.unboxed:
            v = self.local()
            self.line(ind, f"{v} = {value}")
            return v
        return value

    def expr(self, e: c.Expr, ind: int) -> str:
        """Statements computing `e`, and a Python expression for its value (usually a local)."""
        match e:
            case c.Var(name, inst):
                return self.lookup((name, inst))
            case c.Global(name, module, inst):
                found = self.compiler.global_ref((module, name, inst))
                k = self.const(found)
                if isinstance(found, Cell):
                    v = self.local()
                    self.line(ind, f"{v} = {k}.v")
                    self.line(ind, f"if {v} is _UNSET: {v} = {k}.force()")
                    return v
                return k
            case c.Lit(value) if e.ty is not None and prune(e.ty) == ARRAY:
                return self.const(array_kernel("literal")(value))  # a 0-d array, which broadcasts
            case c.Lit(value) if isinstance(value, str):  # a String knows where it was written (data paths)
                return self.const(Text(value, _directory(e.span)))
            case c.Lit(value):
                return self.literal(value)
            case c.Lam():
                return self.closure(e, ind)
            case c.App():
                return self.call(e, ind)
            case c.Let() | c.LetTuple() | c.LetRec():
                return self.scoped(e, ind, lambda body: self.atom(body, ind))
            case c.If():
                v = self.local()
                self.branches(e, ind, lambda branch, i: self.assign(branch, v, i))
                return v
            case c.Tuple(items):
                return "(" + ", ".join(self.atom(i, ind) for i in items) + ("," if len(items) == 1 else "") + ")"
            case c.List(items):
                return "[" + ", ".join(self.atom(i, ind) for i in items) + "]"
            case c.Prim():
                return self.primitive(e, ind)
            case c.LinLam():
                if self.compiler.linear is None:
                    raise AssertionError("a linear abstraction outside a transformed program")
                return self.compiler.linear.create(self, e, ind)
            case c.LinApp() | c.DZero() | c.DSum():
                raise AssertionError("a term of type d outside a backpropagator's body")
        raise AssertionError(e)

    def spill(self, e: c.Expr, ind: int) -> str:
        """`e` as the body of a function of its own, applied at once: its statements start unindented
        (CPython refuses deeper nesting). `v9 = k4.body(k4.captured, None)`."""
        self.spills += 1
        f = self.closure(c.Lam("%spilled", e, span=e.span), ind)
        v = self.local()
        self.line(ind, f"{v} = {f}.body({f}.captured, None)")
        return v

    def closure(self, lam: c.Lam, ind: int, self_ref=None, target: str | None = None) -> str:
        """Creating a closure: compile the lambda's own function, capture its free variables.

            fun y -> x + y      v2 = _Fun(k0, (a0,))       (k0 the lambda's Code, x captured as c[0])
        A lambda with no free variables is one shared Fun, a constant."""
        compiler = self.compiler
        params, body = lambda_chain(lam)
        name = self_ref[1][0] if self_ref else "<fun>"
        code = Code(len(params), name=name, lam=lam, mode=compiler.name)
        code.info["origin"] = lam.origin or lam
        compiler.fill(code, params, body, self_ref)
        if self_ref is not None and self_ref[0] == "local" and self_ref[1] not in code.free:
            # a let rec whose calls of itself all became a loop still captures itself, last: the transform of
            # its lambda (compiled open, when a derivative lifts the closure) calls it by name
            code.free = code.free + (self_ref[1],)
        if not code.free:
            shared = Fun(code, ())
            if target is not None:
                self.line(ind, f"{target} = {self.const(shared)}")
                return target
            return self.const(shared)
        k = self.const(code)
        v = target or self.local()
        if self_ref is not None:  # let rec: the closure captures itself
            self.line(ind, f"{v} = _Fun({k}, None)")
            captured = [self.lookup(key) for key in code.free]
            self.line(ind, f"{v}.captured = ({', '.join(captured)},)")
        else:
            captured = [self.lookup(key) for key in code.free]
            self.line(ind, f"{v} = _Fun({k}, ({', '.join(captured)},))")
        return v

    def is_self_call(self, e: c.App) -> bool:
        """Whether `e` calls the function being compiled with all its parameters (a loop in tail position)."""
        if self.self_ref is None:
            return False
        head, args = _spine(e)
        kind, key = self.self_ref
        if len(args) != len(self.params):
            return False
        if kind == "global":
            return isinstance(head, c.Global) and (head.module, head.name, head.inst) == key
        return isinstance(head, c.Var) and (head.name, head.inst) == key

    def self_tail_calls(self, body: c.Expr) -> list[c.App]:
        """The applications in tail position in `body` written as loops (`tail`)."""
        return _self_tail_calls(self, body)

    def arguments(self, e: c.App, ind: int) -> list[str]:
        """The atoms of an application's arguments, in order."""
        _, args = _spine(e)
        return [self.atom(a, ind) for a in args]

    def call(self, e: c.App, ind: int) -> str:
        """An application `f a1 .. an`, uncurried: a known top-level function of arity n is called
        directly, anything else checks its arity and falls back to `apply` (partial application):

            sq 3.0          v1 = k0.body((), 3.0)
            g a b           v2 = c[0].body(c[0].captured, a0, a1) if c[0].arity == 2 else _apply(c[0], (a0, a1))
            logistic n      v3 = _Fun(k1, (k0, (a0,)))    (a known one given fewer: the partial application `apply` makes)
        A call of a prelude function from the user's program re-points a runtime error at the call."""
        head, args = _spine(e)
        n = len(args)
        known = partial = None
        if isinstance(head, c.Global):
            found = self.compiler.global_ref((head.module, head.name, head.inst))
            if isinstance(found, Fun) and found.arity == n:
                known = self.const(found)
            elif isinstance(found, Fun) and found.arity > n:  # (the Fun `apply` makes, made here: W2's `logistic n`)
                known, partial = self.const(found), self.const(partial_application(n, found.arity - n))
        fn = known or self.atom(head, ind)
        values = [self.atom(a, ind) for a in args]
        self.count(ind, "betas")
        v = self.local()
        joined = ", ".join(values)
        if partial is not None:
            call = f"{v} = _Fun({partial}, ({fn}, ({joined},)))"
        elif known is not None:
            call = f"{v} = {fn}.body((), {joined})"
        else:
            call = f"{v} = {fn}.body({fn}.captured, {joined}) if {fn}.arity == {n} else _apply({fn}, ({joined},))"
        self.call_line(call, head, e.span, ind)
        return v

    def partial_given(self, e: c.Expr, ind: int) -> tuple[str, list[str]] | None:
        """For a partial application of a known top-level function to Ints, Bools or Strings written in place
        (`recur n`, what `call` writes as `_Fun(partial, (k1, (a0,)))`): the function's constant and its
        arguments' atoms, computed here in the order `call` computes them; None for any other term (nothing
        written)."""
        head, args = _spine(e)
        if not args or not isinstance(head, c.Global) or \
                any(a.ty is None or prune(a.ty) not in (INT, BOOL, STRING) for a in args):
            return None  # (arguments the entry would not lift as they are: the closure, as before)
        found = self.compiler.global_ref((head.module, head.name, head.inst))
        if not isinstance(found, Fun) or found.arity <= len(args):
            return None
        return self.const(found), [self.atom(a, ind) for a in args]

    def call_line(self, call: str, head: c.Expr, span: Span, ind: int) -> None:
        """The statement of a call of `head` written at `span`: an error inside a prelude function is
        reported at the program's call of it."""
        prelude = self.compiler.prelude_source() if isinstance(head, c.Global) and head.module == PRELUDE else None
        if prelude is not None and span.source is not None and span.filename != prelude.name:
            self.line(ind, "try:")
            self.line(ind + 1, call)
            self.line(ind, "except _DlError as err:")
            self.line(ind + 1, f"raise {self.const(_raised_in_prelude)}(err, {self.const(span)}, "
                               f"{self.const(head.name)}, {self.const(prelude.name)})")
        else:
            self.line(ind, call)

    def primitive(self, e: c.Prim, ind: int) -> str:
        """A saturated primitive, as its row says (lang/model/primitives.py):

            x * y           v1 = a0 * a1                       (inline `py`)
            sin x           try: v1 = k0(a0)                   (fast `raw`, falling back to the total
                            except (ArithmeticError, ValueError): v1 = k1(a0)     implementation)
            floor x         try: ... except _DlError as err: raise err.with_span(k2)   (`fails`)
            grad f x        v1 = k0(a0, a1)                    (the kernel's function, lang/back/kernel.py)
        map, fold, zipWith and build on a lambda written in place become loops (`_LOOPS`)."""
        prim = PRIMITIVES[e.op]
        if prim.kind in ("ad", "custom"):
            fn = self.compiler.machine.ad.compile(self.compiler, e)
            given = self.partial_given(e.args[0], ind) if getattr(fn, "partial", None) is not None else None
            if given is not None:  # `value_and_grad (recur n) y`: the entry takes recur and n, no closure made
                g, values = given
                x = [self.atom(a, ind) for a in e.args[1:]]
                self.count(ind, "prims")
                v = self.local()
                self.line(ind, f"{v} = {self.const(fn.partial(len(values)))}({g}, {', '.join(values + x)})")
                return v
            args = [self.atom(a, ind) for a in e.args]
            self.count(ind, "prims")
            v = self.local()
            site = getattr(fn, "site", None)  # (a scalar entry's: what it calls may become a function of its own)
            call = f"{self.const(fn)}" if site is None else f"{self.const(site)}.call"
            self.line(ind, f"{v} = {call}({', '.join(args)})")
            return v
        if prim.kind == "toreal" and not e.args:
            if e.ty is not None and prune(e.ty) == ARRAY:
                return self.const(array_kernel("literal")(prim.impl))
            return self.literal(prim.impl)
        if prim.name in _LOOPS and _LOOPS[prim.name][0](e.args) and self.loop_depth < MAX_LOOP_NESTING:
            return _LOOPS[prim.name][1](self, e, ind)
        args = [self.atom(a, ind) for a in e.args]
        self.count(ind, "prims")
        how = self.compiler.primitive_code(prim, e)
        v = self.local()
        if how.template is not None:
            lines = [f"{v} = {how.template.format(*args)}"]
        elif how.raw is not None:
            joined = ", ".join(args)
            lines = ["try:", f"    {v} = {self.const(how.raw)}({joined})",
                     "except (ArithmeticError, ValueError):", f"    {v} = {self.const(how.fn)}({joined})"]
        else:
            lines = [f"{v} = {self.const(how.fn)}({', '.join(args)})"]
        if prim.fails or how.fails:
            if type(e.span) is Framed:  # (of a prelude function inlined: lang/transforms/fusion.py) the error as
                # the inlined call reports it (`call_line`): pointed at the call, the primitive's span in a note
                span = self.const(e.span.plain())
                framed = f"{self.const(e.span.call)}, {self.const(e.span.name)}, {self.const(e.span.prelude)}"

                def raised(err: str) -> str:
                    return f"{self.const(_raised_in_prelude)}({err}, {framed})"
            else:
                span = self.const(e.span)

                def raised(err: str) -> str:
                    return err
            lines = ["try:"] + ["    " + ln for ln in lines] + \
                    ["except _DlError as err:", f"    raise {raised(f'err.with_span({span})')}",
                     "except MemoryError as err:", "    err.__traceback__ = None",  # (frees what filled memory)
                     f"    raise {raised(f'{self.const(out_of_memory)}({span})')} from None"]
        if how.elements in ("array", "index") and self.counting:
            touched = [v, *args] if how.elements == "array" else [v]
            lines.append(f"{self.const(self.compiler.counters)}.elements += "
                         f"{self.const(array_kernel('touched'))}({', '.join(touched)})")
        for ln in lines:
            self.line(ind, ln)
        return v


def _directory(span: Span) -> str:
    """The directory of the file a span is in ("" for the REPL and the command line: the current one)."""
    name = span.source.name if span.source is not None else ""
    return os.path.dirname(os.path.abspath(name)) if name and not name.startswith("<") else ""


def _raised_in_prelude(err: DlError, call: Span, name: str, prelude: str) -> DlError:
    """A runtime error raised inside the prelude, pointed at the call that led there (GHC's `called at`)."""
    if err.span.source is not None and err.span.filename == prelude:
        err.notes = (*err.notes, f"  (raised inside the prelude's `{name}`, at {err.span})")
        err.span = call
    return err


# ---- map, fold, zipWith and build on a lambda written in place: a Python loop ------------------
#
#     fold (fun acc x -> acc + sin x * x) 0.0 xs      v1 = 0.0
#                                                      for v2 in xs:
#                                                          v3 = sin(v2) ... ; v1 = v1 + v5
#
# The lambda's body is compiled in place, its parameters bound to the loop's
# variables: no closure is made and no call happens per element. Counting
# still counts one application per element.


def _lambda_of(e: c.Expr, arity: int) -> bool:
    """Whether `e` is a lambda of exactly `arity` parameters written in place."""
    params, _ = lambda_chain(e) if isinstance(e, c.Lam) else ([], e)
    return len(params) == arity


def _inline_body(gen: Gen, lam: c.Lam, values: list[str], target: str, ind: int) -> None:
    """The lambda's body with its parameters bound to `values`, stored in `target`."""
    params, body = lambda_chain(lam)
    olds = [gen.env.bind((p, ()), v) for p, v in zip(params, values)]
    gen.count(ind, "betas")
    gen.loop_depth += 1
    gen.assign(body, target, ind)
    gen.loop_depth -= 1
    for p, old in reversed(list(zip(params, olds))):
        gen.env.restore((p, ()), old)


def _fold_loop(gen: Gen, e: c.Prim, ind: int) -> str:
    """fold on a lambda: the accumulator a local, the body in the loop (see above)."""
    fn, init, xs = e.args
    gen.count(ind, "prims")
    acc = gen.local()
    gen.line(ind, f"{acc} = {gen.atom(init, ind)}")
    widths = _pair_widths(fn) if ind + 1 < SPILL_DEPTH else None
    paired = _paired(xs) if widths is not None and widths[1] is not None and not gen.counting else None
    raw = widths is not None and widths[1] == [None, None] and isinstance(xs, c.Var) and \
        gen.raw is not None and gen.env.get((xs.name, xs.inst)) == gen.raw
    if raw:  # a [Real]'s floats for its dual pairs: numbered by the loop (lang/back/streams.py)
        items = gen.raw
        gen.raw_folds += 1
    elif paired is not None:  # fold over fusion's pairs: over `zip` itself, no list of pairs built
        items = f"zip({gen.atom(paired[0], ind)}, {gen.atom(paired[1], ind)})"
    else:
        items = gen.atom(xs, ind)
    x = gen.local()
    saved, start, spills = gen.chain, len(gen.lines), gen.spills
    chains = getattr(gen.compiler.linear, "fold_chain", None)  # (a sum's steps chained: lang/back/chains.py)
    gen.chain = chains(fn, gen.loop_depth + 1) if chains else None
    if widths is None:
        gen.line(ind, f"for {x} in {items}:")
        _inline_body(gen, fn, [acc, x], acc, ind + 1)
    else:
        _unboxed_fold(gen, fn, acc, x, items, widths, ind, raw)
    if gen.chain is not None and gen.spills == spills:  # (a chain always the last record: no test that it is)
        gen.chain.alone(gen, fn, start)
    if gen.chain is not None:  # each record site's chain: none before the loop
        gen.lines[start:start] = ["    " * ind + f"{g} = -1" for g in gen.chain.sites]
    gen.chain = saved
    return acc


def _pair_widths(fn: c.Lam) -> tuple[int, Any] | None:
    """How a fold's lambda takes its arguments apart: the accumulator's width, when the body takes it apart
    (`let (v, v') = acc` among the lets it starts with: a dual pair of ←D), and the element's pattern
    (`_pattern`); None where the body does not take the accumulator apart so."""
    params, body = lambda_chain(fn)
    if len(params) != 2 or params[0] == params[1]:
        return None
    acc = _split(body, params[0])
    if acc is None or len(acc[0]) < 2:
        return None
    return (len(acc[0]), _pattern(body, params[1], 2))


def _split(body: c.Expr, name: str) -> tuple[tuple[str, ...], c.Expr] | None:
    """The names and the body of the `let (x1, .., xn) = name` among the lets `body` starts with, where no let
    before it binds `name` again (so that it takes apart the variable in scope at `body`); None if none does."""
    while True:
        match body:
            case c.LetTuple(names, c.Var(v, ()), rest) if v == name:
                return names, rest
            case c.LetTuple(names, _, rest) if name not in names:
                body = rest
            case c.Let(v, _, rest) | c.LetRec(v, _, rest) if v != name:
                body = rest
            case _:
                return None


def _pattern(body: c.Expr, name: str, depth: int) -> list | None:
    """The pattern a fold's element is unpacked by in the `for` itself: None (a name) where the body does
    not take it apart (`_split`), else one sub-pattern per component, down to `depth` levels
    (`for (v16, v17), (v18, v19) in zip(xs, ys)`: a pair of dual pairs, W5's dot). The types make every
    element a tuple of that shape."""
    split = _split(body, name) if depth > 0 else None
    if split is None:
        return None
    names, rest = split
    return [_pattern(rest, n, depth - 1) for n in names]


def _unboxed_fold(gen: Gen, fn: c.Lam, acc: str, x: str, items: str, widths: tuple[int, Any], ind: int,
                  raw: bool = False) -> None:
    """A fold whose accumulator is a tuple the body takes apart (←D's dual pair): the accumulator kept as
    one local per component, taken apart once before the loop and assigned from the body's result
    without a tuple (as `Gen.unbox_loop_params` does for a self tail call's loop variables), and an element
    the body takes apart unpacked by the `for` itself (`_pattern`); the tuple is built once, after the loop:

        v4, v5 = v1                                  (v1: the initial accumulator)
        for v6, v7 in a0:
            ... v10 = v4 + v9 ... v11 = ...          (`let (acc, acc') = acc`: v4 and v5, no unpacking)
            v4, v5 = v10, v11
        v1 = (v4, v5)

    `raw`: items are a [Real]'s floats numbered, `enumerate(a0)`, for its dual pairs (x_k, k): the `for` binds
    the pair's parts the other way round, `for v7, v6 in ...`, and the chain the step grows knows its sink
    (lang/back/streams.py).
    """
    params, body = lambda_chain(fn)
    acc_parts = [gen.local() for _ in range(widths[0])]
    gen.line(ind, f"{', '.join(acc_parts)} = {acc}")
    acc_value = _unboxed(gen, acc_parts)
    x_target, x_value = _target(gen, widths[1], x)
    if raw:  # (the iterator's place gives a chain's first sink: `len(a0) - 1 - length_hint(it)`)
        real, sink = gen.unboxed[x_value]
        it = gen.local()
        gen.line(ind, f"{it} = iter({items})")
        x_target, items = f"{sink}, {real}", f"enumerate({it})"
        gen.sinks.add(sink)
        if gen.chain is not None:
            gen.chain.sink = sink
            gen.chain.index = f"len({gen.raw}) - 1 - {gen.const(length_hint)}({it})"
    header = len(gen.lines)
    gen.line(ind, f"for {x_target} in {items}:")
    olds = [gen.env.bind((p, ()), v) for p, v in zip(params, (acc_value, x_value))]
    gen.count(ind + 1, "betas")
    gen.loop_depth += 1
    result = gen.components(body, widths[0], ind + 1)
    gen.line(ind + 1, f"{', '.join(acc_parts)} = {', '.join(result)}")
    gen.loop_depth -= 1
    for p, old in reversed(list(zip(params, olds))):
        gen.env.restore((p, ()), old)
    if raw:
        import re  # (compiling a gradient: not at start-up)
        if not any(re.search(rf"\b{sink}\b", ln) for ln in gen.lines[header + 1:]):
            gen.lines[header] = "    " * ind + f"for {real} in {it}:"  # (the sink read nowhere: not numbered)
    gen.line(ind, f"{acc} = ({', '.join(acc_parts)})")


def _unboxed(gen: Gen, parts: list[str]) -> str:
    """The tuple display of unboxed parts, registered so that taking it apart reads the parts."""
    display = f"({', '.join(parts)})"
    gen.unboxed[display] = parts
    return display


def _target(gen: Gen, pattern: list | None, name: str | None = None) -> tuple[str, str]:
    """A `for` target unpacking by `pattern`, and the value it binds (a local, or an unboxed display)."""
    if pattern is None:
        v = name or gen.local()
        return v, v
    subs = [_target(gen, p) for p in pattern]
    return ", ".join(f"({t})" if p is not None else t for (t, _), p in zip(subs, pattern)), \
        _unboxed(gen, [v for _, v in subs])


def _paired(xs: c.Expr) -> tuple[c.Expr, c.Expr] | None:
    """The two lists of `zipWith (fun a b -> (a, b)) l1 l2` (fusion's pairing of a zipWith: `zip` itself)."""
    if not (isinstance(xs, c.Prim) and xs.op == "zipWith" and _lambda_of(xs.args[0], 2)):
        return None
    params, body = lambda_chain(xs.args[0])
    if params[0] != params[1] and isinstance(body, c.Tuple) and len(body.items) == 2 and \
            all(isinstance(v, c.Var) and v.name == p and v.inst == () for v, p in zip(body.items, params)):
        return xs.args[1], xs.args[2]
    return None


def _collect(gen: Gen, fn: c.Lam, loop_vars: list[str], iterable: str, ind: int, span: Span) -> str:
    """[fn v1 .. vk for (v1, .., vk) in iterable], as a loop with fn's body in place; running out of
    memory is reported at the call (`span`), after the list built so far is let go."""
    out, y = gen.local(), gen.local()
    if ind >= _GUARDED_DEPTH:  # (Python allows 20 nested blocks: a deep nest of loops goes unguarded)
        gen.line(ind, f"{out} = []")
        gen.line(ind, f"for {', '.join(loop_vars)} in {iterable}:")
        _inline_body(gen, fn, loop_vars, y, ind + 1)
        gen.line(ind + 1, f"{out}.append({y})")
        return out
    gen.line(ind, "try:")
    gen.line(ind + 1, f"{out} = []")
    gen.line(ind + 1, f"for {', '.join(loop_vars)} in {iterable}:")
    _inline_body(gen, fn, loop_vars, y, ind + 2)
    gen.line(ind + 2, f"{out}.append({y})")
    gen.line(ind, "except MemoryError:")
    gen.line(ind + 1, f"{out} = None")
    gen.line(ind + 1, f"raise {gen.const(out_of_memory)}({gen.const(span)}) from None")
    return out


_GUARDED_DEPTH = 6  # inlined loops nested deeper than this report running out of memory without a position


def _map_loop(gen: Gen, e: c.Prim, ind: int) -> str:
    """map on a lambda: `for v2 in xs: ...; v1.append(y)`."""
    fn, xs = e.args
    items = gen.atom(xs, ind)
    gen.count(ind, "prims")
    return _collect(gen, fn, [gen.local()], items, ind, e.span)


def _zip_with_loop(gen: Gen, e: c.Prim, ind: int) -> str:
    """zipWith on a lambda: `for v2, v3 in zip(xs, ys): ...`."""
    fn, xs, ys = e.args
    left, right = gen.atom(xs, ind), gen.atom(ys, ind)
    gen.count(ind, "prims")
    return _collect(gen, fn, [gen.local(), gen.local()], f"zip({left}, {right})", ind, e.span)


def _build_loop(gen: Gen, e: c.Prim, ind: int) -> str:
    """build on a lambda: `for v2 in range(n): ...`, after a check of n (`_checked_count`)."""
    n, fn = e.args
    count = gen.atom(n, ind)
    gen.count(ind, "prims")
    gen.line(ind, f"if not 0 <= {count} <= 1000000: {gen.const(_checked_count)}({count}, {gen.const(e.span)})")
    return _collect(gen, fn, [gen.local()], f"range({count})", ind, e.span)


def _checked_count(n: int, span) -> None:
    """`build`'s count checked before the loop allocates (negative, or more than memory can hold)."""
    try:
        count(n, "build")
    except DlError as err:
        raise err.with_span(span) from None


_LOOPS = {
    "fold": (lambda args: _lambda_of(args[0], 2), _fold_loop),
    "map": (lambda args: _lambda_of(args[0], 1), _map_loop),
    "zipWith": (lambda args: _lambda_of(args[0], 2), _zip_with_loop),
    "build": (lambda args: _lambda_of(args[1], 1), _build_loop),
}


_spine = c.spine


def _self_tail_calls(gen: Gen, body: c.Expr) -> list[c.App]:
    """The applications in tail position in `body` that `gen` writes as loops (Gen.tail)."""
    out, stack = [], [body]
    while stack:
        e = stack.pop()
        match e:
            case c.If():
                stack += [e.then, e.else_]
            case c.Let() | c.LetTuple() | c.LetRec():
                stack.append(e.body)
            case c.App() if gen.is_self_call(e):
                out.append(e)
    return out


def _tuple_width(e: c.Expr) -> int:
    """The components of a tuple written out, under `let`s (`let y = .. in (y, fun a -o ..)`); else 0."""
    while isinstance(e, (c.Let, c.LetTuple, c.LetRec)):
        e = e.body
    return len(e.items) if isinstance(e, c.Tuple) else 0


def _taken_apart(body: c.Expr) -> set[Key]:
    """The variables a `let (x1, .., xn) = v in ..` takes apart somewhere in `body` (not under a lambda)."""
    out, stack = set(), [body]
    while stack:
        e = stack.pop()
        if isinstance(e, c.LetTuple) and isinstance(e.bound, c.Var):
            out.add((e.bound.name, e.bound.inst))
        if not isinstance(e, (c.Lam, c.LinLam)):
            stack.extend(c.children(e))
    return out


def _spillable(e: c.Expr) -> bool:
    """Whether a term has statements of its own (variables, globals and literals have none)."""
    return not isinstance(e, (c.Var, c.Global, c.Lit))


def _is_local(text: str) -> bool:
    """Whether a Python expression is a plain name (cheap to read again)."""
    return text.isidentifier()


__all__ = ["Compiler", "Counters", "Gen", "Cell", "UNSET", "lambda_chain", "PrimCode"]
