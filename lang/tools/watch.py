"""Watching a derivative call: the data that `dl graph`, `:graph` and `:step` draw (docs/reference.md §15).

An expression is run once on a machine whose reverse runtime records on a
*watched* backend: a subclass of Factoring or Naive (lang/back/linear.py)
that writes down each step of the backward pass. The normal path is not
touched and pays nothing: linear.py does not know it can be watched, and
the subclasses only override the places where the backward pass hands out
work —

    Factoring._sweep       the sweep from the largest identity down, written again here with a log
                           (tests/test_stepper.py checks that it gives the real sweep's gradient to
                           the last bit, and the counting sweep's bp_run and merges)
    Factoring.contribute   a call of a backpropagator: a seed, or a call from a generic body
    Naive.run              every call, recursively, as it happens

For the watched derivative call (the `call`-th that primal code makes) the watch keeps

    Computation   the differentiated function's computation graph at the point: the
                  untransformed function run once more on the tape mode's nodes
                  (lang/modes/tape.py), each operation with its primitive and its value
    Pass          its first backward pass: the records (the graph of backpropagators: record k
                  calls its parents with weights), the seeds, every step, and what reached
                  each input's sink

The tape and ←D create their records in the same order, so node k of the
computation is usually the operation whose backpropagator has identity k;
`labels` says so only when the two graphs have the same parents everywhere.
A Pass logs at most LIMIT steps (naive mode on a long chain makes millions);
the rest are counted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..back.deep import Timeout, run_deep
from ..back.linear import GENERIC, Factoring, Naive
from ..back.machine import Machine
from ..model import core as c
from ..model.errors import DlError, DlRuntimeError
from ..model.primitives import PRIMITIVES
from ..model.values import call1
from ..modes.runtimes import Reverse
from ..modes.tape import Node, Tape, TapeCompiler
from ..transforms.common import mentions_array

LIMIT = 5000  # steps logged per backward pass


# ---- what is kept ---------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    """A constant operand of an operation (a real that carries no derivative)."""
    value: Any


@dataclass(frozen=True)
class Op:
    """One operation of the computation: `name(args) = value`; an argument is a node index or a Const."""
    name: str
    args: tuple
    value: float


@dataclass
class Computation:
    """The computation graph of the differentiated function at the point (nodes 0..n-1 are its inputs)."""
    inputs: list[float]
    ops: dict[int, Op]
    outputs: list                 # per output real: a node index or a Const
    parents: list[tuple]          # the tape's parents of every node
    refused: str | None = None    # why there is none (the tape mode does not nest)


@dataclass(frozen=True)
class Call:
    """One call of a backpropagator: from `source` (None: a seed), to `target`, on `value`. Under
    factoring, `merged` says it was added to a call already pending for `target`."""
    source: int | None
    target: int
    value: float
    merged: bool = False


@dataclass(frozen=True)
class Step:
    """A backpropagator body run on `argument`. Factoring: once, on the sum of `calls`, the calls
    pending for it; naive: once per call (`calls` is that one call), `depth` deep in the call tree.
    A naive step on a sink (node < n_sinks) is the call that adds into the gradient."""
    node: int
    argument: float
    calls: tuple
    depth: int = 0


@dataclass
class Pass:
    """One backward pass, as it ran."""
    mode: str
    records: list = field(default_factory=list)
    n_sinks: int = 0
    seeds: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    sink_calls: list = field(default_factory=list)   # per sink, the calls that reached it (logged ones)
    sink_counts: list = field(default_factory=list)  # per sink, how many calls reached it
    gradient: list = field(default_factory=list)     # what reached each sink, summed
    unlogged: int = 0                                # steps past LIMIT, counted only

    @property
    def runs(self) -> int:
        """Backpropagator bodies run (what the bp_run counter counts: naive counts sink calls too)."""
        return len(self.steps) + self.unlogged

    @property
    def merges(self) -> int:
        """Calls added to a pending call (the factoring rule applied; what the merges counter counts)."""
        calls = [x for s in self.steps for x in s.calls] + [x for cs in self.sink_calls for x in cs]
        return sum(1 for x in calls if x.merged)


@dataclass
class Watch:
    """What one watched run saw: the expression's value, how many derivative calls it made, and the
    watched one's computation and first backward pass (None when it made fewer calls)."""
    mode: str
    value: Any = None
    calls: int = 0
    computation: Computation | None = None
    backward: Pass | None = None


# ---- the watched backends -------------------------------------------------------------


class WatchedFactoring(Factoring):
    """Linear factoring, logging each body run with the calls that were merged into its argument."""

    links = False  # every record as (parent, weight, ...): the log shows each one's parents

    def __init__(self, counters):
        super().__init__(counters, counting=False)
        self.log: Pass | None = None
        self.current: int | None = None   # the identity whose body is running (None: seeding)
        self.pending: dict[int, list[Call]] = {}

    def backward(self, records: list, seeds: list, n_sinks: int) -> list:
        log = self.log
        if log is None:
            return super().backward(records, seeds, n_sinks)
        log.records, log.n_sinks, log.seeds = list(records), n_sinks, list(seeds)
        self.pending, self.current = {}, None
        out = super().backward(records, seeds, n_sinks)   # seeds through contribute, then _sweep
        log.sink_calls = [self.pending.get(k, []) for k in range(n_sinks)]
        log.sink_counts = [len(x) for x in log.sink_calls]
        log.gradient = list(out)
        return out

    def contribute(self, p: int, value: float) -> None:
        if self.log is None:
            return super().contribute(p, value)
        merged = self.adj[p] is not None
        super().contribute(p, value)
        self.pending.setdefault(p, []).append(Call(self.current, p, value, merged))

    def _sweep(self, records: list, adj: list, n_sinks: int) -> None:
        log = self.log
        if log is None:
            return super()._sweep(records, adj, n_sinks)
        for i in range(len(records) - 1, n_sinks - 1, -1):  # as Factoring._sweep: sinks run no body
            ct = adj[i]
            if ct is None:
                continue
            if len(log.steps) < LIMIT:
                log.steps.append(Step(i, ct, tuple(self.pending.get(i, ()))))
            else:
                log.unlogged += 1
            rec = records[i]
            self.current = i
            if rec[0] is GENERIC:
                rec[1].body(rec[2], ct)  # its calls come back through contribute
            else:
                for k in range(0, len(rec), 2):
                    self.contribute(rec[k], rec[k + 1] * ct)
        self.current = None


class WatchedNaive(Naive):
    """Naive application, logging every call as it runs, with its depth in the call tree.

    Past LIMIT calls it only counts, and looks at the clock every 4096 calls: a run past `deadline`
    stops with Timeout (it does not rely on run_deep's budget alone, whose exception a finalizer
    running at that moment would swallow)."""

    def __init__(self, counters):
        super().__init__(counters, counting=False)
        self.log: Pass | None = None
        self.caller: int | None = None
        self.depth = 0
        self.deadline: float | None = None

    def backward(self, records: list, seeds: list, n_sinks: int) -> list:
        log = self.log
        if log is None:
            return super().backward(records, seeds, n_sinks)
        log.records, log.n_sinks, log.seeds = list(records), n_sinks, list(seeds)
        log.sink_calls = [[] for _ in range(n_sinks)]
        log.sink_counts = [0] * n_sinks
        self.caller, self.depth = None, 0
        out = super().backward(records, seeds, n_sinks)
        log.gradient = list(out)
        return out

    def run(self, p: int, ct: float) -> None:
        log = self.log
        if log is None:
            return super().run(p, ct)
        logged = len(log.steps) < LIMIT
        if logged:
            call = Call(self.caller, p, ct)
            log.steps.append(Step(p, ct, (call,), self.depth))
            if p < log.n_sinks:
                log.sink_calls[p].append(call)
        else:
            log.unlogged += 1
            if log.unlogged & 0xFFF == 0 and self.deadline is not None and time.monotonic() > self.deadline:
                raise Timeout
        if p < log.n_sinks:
            log.sink_counts[p] += 1
        caller, self.caller = self.caller, p
        self.depth += 1
        try:
            super().run(p, ct)  # its calls come back here: Naive.run calls self.run
        finally:
            self.caller = caller
            self.depth -= 1


BACKENDS = {"backprop": WatchedFactoring, "backprop-naive": WatchedNaive}


# ---- the computation graph, on the tape mode's nodes ----------------------------------


class NamingTapeCompiler(TapeCompiler):
    """The tape mode's compiler, also writing down each recorded node's primitive and operands."""

    def __init__(self, machine):
        super().__init__(machine)
        self.ops: dict[int, Op] = {}

    def overload(self, prim, impl):
        record = super().overload(prim, impl)

        def named(*args):
            tape = self.tape
            before = len(tape.parents)
            out = record(*args)
            if len(tape.parents) > before:
                operands = tuple(a.index if type(a) is Node else Const(a) for a in args)
                self.ops[before] = Op(prim.name, operands, out.value)
            return out
        return named


def computation(kernel, f, x, in_t, out_t) -> Computation:
    """The computation graph of `f` at `x`: f's untransformed code run on tape nodes (as
    lang/modes/tape.py's vjp_tape does), each node's operation noted."""
    compiler = kernel.language("tape (watched)", NamingTapeCompiler)
    saved = compiler.tape
    tape = compiler.tape = Tape()
    compiler.ops = {}
    try:
        x_nodes = kernel.shapes.map_reals(x, in_t, tape.input)
        y_nodes = call1(kernel.lift_fun(f, compiler, {}), x_nodes)
    except DlError as e:  # a derivative inside f: the tape mode does not nest
        return Computation([], {}, [], [], refused=e.message)
    finally:
        compiler.tape = saved
    inputs = [n.value for n in kernel.shapes.flatten(x_nodes, in_t)]
    outputs = [o.index if type(o) is Node else Const(o) for o in kernel.shapes.flatten(y_nodes, out_t)]
    return Computation(inputs, dict(compiler.ops), outputs, list(tape.parents))


class WatchedReverse(Reverse):
    """←D on a watched backend: the `watch.which`-th derivative call is watched (its computation graph
    drawn first, its first backward pass logged); every other call runs unlogged."""

    def __init__(self, name: str, watch: Watch, which: int, deadline: float | None = None):
        super().__init__(name, lambda counters, counting: BACKENDS[name](counters))
        self.watch = watch
        self.which = which
        self.deadline = deadline

    def vjp(self, kernel, f, x, in_t, out_t):
        watch = self.watch
        watch.calls += 1
        if watch.calls != self.which:
            return super().vjp(kernel, f, x, in_t, out_t)
        if mentions_array(in_t) or mentions_array(out_t):  # the graph and the log are drawn real by real
            raise DlRuntimeError("the graph and the stepper show derivative calls of Reals, tuples and lists; "
                                 "this one has an Array (not drawn yet: run it with :gradcheck or dl compare)")
        watch.computation = computation(kernel, f, x, in_t, out_t)
        y, pullback = super().vjp(kernel, f, x, in_t, out_t)
        backend = kernel.backends[self.name]

        def watched(u):
            if watch.backward is not None:  # a pullback used again: only its first pass is kept
                return pullback(u)
            backend.log = watch.backward = Pass(self.name)
            backend.deadline = self.deadline
            try:
                return pullback(u)
            finally:
                backend.log = None
        return y, watched


@dataclass(frozen=True)
class WatchedMode:
    """What a Machine needs of a mode row (a name, a runtime), with a watched runtime."""
    name: str
    runtime: Any

    def load_runtime(self) -> Any:
        return self.runtime


def watch(world, typed: c.Expr, mode: str = "backprop", which: int = 1, budget: float | None = None) -> Watch:
    """Run a typed closed expression with its `which`-th derivative call watched, under `mode`
    (backprop or backprop-naive). The run is stopped (Timeout) after `budget` seconds."""
    if mode not in BACKENDS:
        raise ValueError(f"only {' and '.join(BACKENDS)} can be watched, not {mode}")
    seen = Watch(mode)
    deadline = None if budget is None else time.monotonic() + budget
    # the paper's term, one backpropagator per primitive: what the graph and the stepper explain
    machine = Machine(world, WatchedMode(mode, WatchedReverse(mode, seen, which, deadline)), preaccumulate=False)
    seen.value = run_deep(lambda: machine.compile_expression(typed)(), budget=budget)
    return seen


# ---- names for what was seen -----------------------------------------------------------


def input_name(k: int, n: int) -> str:
    """The name of input k of n: x, or x1, x2, ..."""
    return "x" if n == 1 else f"x{k + 1}"


def node_name(k: int, n_inputs: int) -> str:
    """The name of node k: an input's, or v{k} for an operation."""
    return input_name(k, n_inputs) if k < n_inputs else f"v{k}"


def show_number(v: Any) -> str:
    """A number as a reader takes it in at a glance: 8 significant digits."""
    if isinstance(v, float):
        return f"{v:.8g}"
    return str(v)


def show_op(op: Op, n_inputs: int) -> str:
    """An operation as dl writes it: `v1 * v1`, `sin x`, `-v2`."""
    args = [show_number(a.value) if isinstance(a, Const) else node_name(a, n_inputs) for a in op.args]
    prim = PRIMITIVES.get(op.name)
    if op.name == "neg" and len(args) == 1:
        return f"-{args[0]}"
    if len(args) == 2 and prim is not None and not op.name[0].isalpha():
        return f"{args[0]} {op.name} {args[1]}"
    return " ".join([op.name, *args])


def record_parents(record: tuple) -> tuple:
    """The identities a non-generic record calls, in order (None for a generic record)."""
    if record and record[0] is GENERIC:
        return None
    return tuple(record[0::2])


def labels(comp: Computation | None, backward: Pass) -> dict[int, str]:
    """The operation that created each backpropagator, `v2 = v1 * v1`, when the computation graph
    and the records have the same nodes and parents (else nothing: the records are shown bare)."""
    if comp is None or comp.refused or len(comp.parents) != len(backward.records):
        return {}
    if len(comp.inputs) != backward.n_sinks:
        return {}
    for k in range(backward.n_sinks, len(backward.records)):
        if record_parents(backward.records[k]) != tuple(comp.parents[k]):
            return {}
    n = len(comp.inputs)
    return {k: f"{node_name(k, n)} = {show_op(op, n)}" for k, op in comp.ops.items()}
