"""The tools measured: dl and its peers, each as `primal` and `vg` (value and gradient) callables.

A tool's `prepare(workload, n, args)` returns {kind: Impl} for the kinds it has ("primal", "vg"), or
raises NotApplicable. Every callable takes no arguments, starts from the workload's plain Python inputs
and returns plain Python data ((value, gradient) for "vg", with the gradient shaped like the
differentiated argument) — converting in and out is part of what is timed, for every tool.

Styles: *scalar* tools run the workload's own program operation by operation (the dl program's
structure: a Python loop of scalar operations); *vector* and *jit* rows are the peer's idiomatic
array program (numpy arrays, matrix products, lax.fori_loop under jax.jit), listed for context.
"""
from __future__ import annotations

import math
import os

import numpy as np
from dataclasses import dataclass
from typing import Any, Callable

from workloads import DL_DIR, Workload, flatten

# single-threaded peers (dl is single-threaded; the machine is shared): set before the imports
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


class NotApplicable(Exception):
    """This tool has no program for this workload (or size)."""


@dataclass
class Impl:
    fn: Callable[[], Any]
    style: str = "scalar"
    nogc: bool = False         # run with gc.disable() around the timed calls


# ---- trees: the differentiated argument as nested tuples/lists of floats ------------------------

def tree_map(f, x):
    if isinstance(x, tuple):
        return tuple(tree_map(f, y) for y in x)
    if isinstance(x, list):
        return [tree_map(f, y) for y in x]
    return f(x)


def rebuild(template, flat):
    it = iter(flat)
    return tree_map(lambda _: next(it), template)


# ---- the workloads' programs, written once over a namespace M of sin/log/tanh -------------------

def s_w1(M, p):
    x1, x2 = p
    return M.log(x1) + x1 * x2 - M.sin(x2)


def s_w2(M, n, x):
    for _ in range(n):
        x = 3.7 * x * (1.0 - x)
    return x


def s_w3(M, n, y):
    for _ in range(n):
        y = M.sin(y) * y + 0.5 * y
    return y


def s_w4(M, xs):
    acc = 0.0
    for x in xs:
        acc = acc + M.sin(x) * x
    return acc


def s_dot(row, h):
    acc = 0.0
    for a, b in zip(row, h):
        acc = acc + a * b
    return acc


def s_w5(M, x, t, layers):
    h = x
    for w, b in layers[:-1]:
        h = [M.tanh(s_dot(row, h) + bi) for row, bi in zip(w, b)]
    w, b = layers[-1]
    e = (s_dot(w[0], h) + b[0]) - t
    return e * e


def s_w6(M, p):
    y, mu, s = p
    return -0.5 * ((y - mu) / s) ** 2 - M.log(s)


def s_w7(M, n, p):
    x, a, b = p
    for _ in range(n):
        x = M.tanh(a * x + b)
    return x


SCALAR = {"W1": s_w1, "W2": s_w2, "W3": s_w3, "W4": s_w4, "W5": s_w5, "W6": s_w6, "W7": s_w7}


class Tool:
    name = "?"
    label = "?"
    grad = True       # has a gradient
    version = ""

    def prepare(self, w: Workload, n: int, args: tuple) -> dict[str, Impl]:
        raise NotImplementedError


# ---- plain Python and finite differences --------------------------------------------------------

class Python(Tool):
    name, label, grad = "python", "plain Python", False

    def prepare(self, w, n, args):
        f = w.python
        return {"primal": Impl(lambda: f(*args))}


class FiniteDifferences(Tool):
    name, label = "fd", "finite differences"

    def prepare(self, w, n, args):
        f, di = w.python, w.diff_index
        template = args[di]
        x0 = flatten(template)

        def at(flat):
            a = list(args)
            a[di] = rebuild(template, flat)
            return f(*a)

        def vg():
            v = f(*args)
            g = []
            xs = list(x0)
            for i, xi in enumerate(x0):
                h = 1e-6 * max(1.0, abs(xi))
                xs[i] = xi + h
                up = at(xs)
                xs[i] = xi - h
                down = at(xs)
                xs[i] = xi
                g.append((up - down) / (2 * h))
            return v, rebuild(template, g)
        return {"vg": Impl(vg)}

    @staticmethod
    def evaluations(w, args) -> int:
        return 2 * len(flatten(args[w.diff_index])) + 1


# ---- dl -------------------------------------------------------------------------------------------

class DL(Tool):
    name, label = "dl", "dl backprop"

    def __init__(self):
        from lang.front.loader import Loader, World
        from lang.back.machine import Machine
        from lang.model.values import apply
        from lang.modes.table import get
        self._Machine, self._apply, self._backprop = Machine, apply, get("backprop")  # a row of the mode table
        self.world = World()
        self.loader = Loader(self.world)
        self.loader.load_prelude()
        self.modules: dict[str, Any] = {}
        self.machines: dict[str, Any] = {}

    def module(self, w):
        if w.key not in self.modules:
            from lang.model.spans import Source
            path = DL_DIR / w.dl_file
            self.modules[w.key] = self.loader.load_source(Source(str(path), path.read_text()), w.dl_file)
            self.machines[w.key] = self._Machine(self.world, mode=self._backprop)
        return self.modules[w.key], self.machines[w.key]

    def prepare(self, w, n, args):
        mod, machine = self.module(w)
        fp = machine.global_value(mod.id, "primal", ())
        fg = machine.global_value(mod.id, "vg", ())
        ap = self._apply
        return {"primal": Impl(lambda: ap(fp, args)), "vg": Impl(lambda: ap(fg, args))}

    def count_prims(self, w, args) -> dict:
        """dl's own cost counters for one primal and one vg evaluation (a fresh counting machine)."""
        mod, _ = self.module(w)
        out = {}
        for kind in ("primal", "vg"):
            m = self._Machine(self.world, mode=self._backprop, counting=True)
            f = m.global_value(mod.id, kind, ())
            self._apply(f, args)
            out[kind] = m.counters.as_dict()
        return out


# ---- micrograd (PyPI 0.1.0), extended with sin, log, tanh the micrograd way ----------------------

class _MicrogradOps:
    def __init__(self, Value):
        self.Value = Value

    def sin(self, v):
        out = self.Value(math.sin(v.data), (v,), "sin")

        def _backward():
            v.grad += math.cos(v.data) * out.grad
        out._backward = _backward
        return out

    def log(self, v):
        out = self.Value(math.log(v.data), (v,), "log")

        def _backward():
            v.grad += out.grad / v.data
        out._backward = _backward
        return out

    def tanh(self, v):
        t = math.tanh(v.data)
        out = self.Value(t, (v,), "tanh")

        def _backward():
            v.grad += (1 - t * t) * out.grad
        out._backward = _backward
        return out


class Micrograd(Tool):
    name, label = "micrograd", "micrograd"

    def __init__(self, nogc=False):
        import micrograd
        from micrograd.engine import Value
        self.Value, self.M = Value, _MicrogradOps(Value)
        self.nogc = nogc
        self.version = getattr(micrograd, "__version__", "0.1.0")
        if nogc:
            self.name, self.label = "micrograd-nogc", "micrograd, gc.disable()"

    def prepare(self, w, n, args):
        prog, M, Value, di = SCALAR[w.key], self.M, self.Value, w.diff_index

        def run(backward):
            leaves = []

            def leaf(x):
                v = Value(x)
                leaves.append(v)
                return v
            a = list(args)
            a[di] = tree_map(leaf, args[di])
            y = prog(M, *a)
            if not backward:
                return y.data
            y.backward()
            return y.data, rebuild(args[di], [v.grad for v in leaves])
        return {"primal": Impl(lambda: run(False), nogc=self.nogc), "vg": Impl(lambda: run(True), nogc=self.nogc)}


# ---- HIPS autograd --------------------------------------------------------------------------------

class Autograd(Tool):
    name, label = "autograd", "HIPS autograd"

    def __init__(self):
        import autograd
        import autograd.numpy as anp
        self.anp, self.value_and_grad = anp, autograd.value_and_grad
        from importlib.metadata import version
        self.version = version("autograd")

    def prepare(self, w, n, args):
        anp, vag, di = self.anp, self.value_and_grad, w.diff_index
        if w.key == "W4":
            # autograd's element access on an array or a list costs O(n) per element (its VJP builds a
            # full-size zero container), so the scalar program would be O(n^2): use the array program
            def f(x):
                return anp.sum(anp.sin(x) * x)
            g = vag(f)
            (xs,) = args

            def vg():
                v, gr = g(anp.array(xs))
                return float(v), gr.tolist()
            return {"primal": Impl(lambda: float(f(anp.array(xs))), "vector"), "vg": Impl(vg, "vector")}
        if w.key == "W5":
            x, t, layers = args

            def f(params, xv):
                w1, b1, w2, b2 = params
                h = anp.tanh(anp.dot(w1, xv) + b1)
                e = (anp.dot(w2, h) + b2)[0] - t
                return e * e
            g = vag(f)

            def arrays():
                (w1, b1), (w2, b2) = layers
                return (anp.array(w1), anp.array(b1), anp.array(w2), anp.array(b2)), anp.array(x)

            def vg():
                params, xv = arrays()
                v, gr = g(params, xv)
                return float(v), [(gr[0].tolist(), gr[1].tolist()), (gr[2].tolist(), gr[3].tolist())]
            return {"primal": Impl(lambda: float(f(*arrays())), "vector"), "vg": Impl(vg, "vector")}
        prog = SCALAR[w.key]

        def f(d):
            a = list(args)
            a[di] = d
            return prog(anp, *a)
        g = vag(f)

        def vg():
            v, gr = g(args[di])
            return float(v), tree_map(float, gr)
        return {"primal": Impl(lambda: float(f(args[di]))), "vg": Impl(vg)}


# ---- PyTorch eager --------------------------------------------------------------------------------

class Torch(Tool):
    name, label = "torch", "PyTorch eager"

    def __init__(self, vector=False):
        import torch
        torch.set_num_threads(1)
        self.torch = torch
        self.version = torch.__version__
        self.vector = vector
        if vector:
            self.name, self.label = "torch-vec", "PyTorch eager, arrays"

    def prepare(self, w, n, args):
        torch, di = self.torch, w.diff_index
        f64 = torch.float64
        if self.vector:
            return self._vector(w, args)
        prog = SCALAR[w.key]

        def vg():
            leaves = []

            def leaf(x):
                v = torch.tensor(x, dtype=f64, requires_grad=True)
                leaves.append(v)
                return v
            a = list(args)
            a[di] = tree_map(leaf, args[di])
            y = prog(torch, *a)
            grads = torch.autograd.grad(y, leaves)
            return y.item(), rebuild(args[di], torch.stack(grads).tolist())

        def primal():
            with torch.no_grad():
                a = list(args)
                a[di] = tree_map(lambda x: torch.tensor(x, dtype=f64), args[di])
                return prog(torch, *a).item()
        return {"primal": Impl(primal), "vg": Impl(vg)}

    def _vector(self, w, args):
        torch = self.torch
        f64 = torch.float64
        if w.key == "W4":
            (xs,) = args

            def vg():
                x = torch.tensor(xs, dtype=f64, requires_grad=True)
                y = (torch.sin(x) * x).sum()
                (g,) = torch.autograd.grad(y, x)
                return y.item(), g.tolist()

            def primal():
                with torch.no_grad():
                    x = torch.tensor(xs, dtype=f64)
                    return (torch.sin(x) * x).sum().item()
            return {"primal": Impl(primal, "vector"), "vg": Impl(vg, "vector")}
        if w.key == "W5":
            x, t, layers = args
            (lw1, lb1), (lw2, lb2) = layers

            def f(rg):
                ps = [torch.tensor(p, dtype=f64, requires_grad=rg) for p in (lw1, lb1, lw2, lb2)]
                w1, b1, w2, b2 = ps
                h = torch.tanh(w1 @ torch.tensor(x, dtype=f64) + b1)
                e = (w2 @ h + b2)[0] - t
                return e * e, ps

            def vg():
                y, ps = f(True)
                g = torch.autograd.grad(y, ps)
                return y.item(), [(g[0].tolist(), g[1].tolist()), (g[2].tolist(), g[3].tolist())]

            def primal():
                with torch.no_grad():
                    return f(False)[0].item()
            return {"primal": Impl(primal, "vector"), "vg": Impl(vg, "vector")}
        raise NotApplicable("no array form (a scalar recurrence)")


# ---- JAX: eager (op by op) and jit ----------------------------------------------------------------

class Jax(Tool):
    name, label = "jax", "JAX eager"

    def __init__(self, jit=False):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp
        self.version = jax.__version__
        self.jit = jit
        if jit:
            self.name, self.label = "jax-jit", "JAX jit"

    def prepare(self, w, n, args):
        if self.jit:
            return self._jit(w, n, args)
        jax, jnp, di = self.jax, self.jnp, w.diff_index
        prog = SCALAR[w.key]

        def f(d):
            a = list(args)
            a[di] = d
            return prog(jnp, *a)
        g = jax.value_and_grad(f)

        def vg():
            v, gr = g(args[di])
            leaves = [float(x) for x in jax.device_get(jax.tree_util.tree_leaves(gr))]
            return float(v), rebuild(args[di], leaves)

        def primal():
            return float(f(tree_map(jnp.asarray, args[di])))
        return {"primal": Impl(primal), "vg": Impl(vg)}

    def _jit(self, w, n, args):
        jax, jnp = self.jax, self.jnp
        lax = jax.lax
        tolist = lambda a: jax.device_get(a).tolist()  # noqa: E731
        k = w.key
        if k == "W1":
            f = lambda p: jnp.log(p[0]) + p[0] * p[1] - jnp.sin(p[1])  # noqa: E731
            conv = lambda: (jnp.asarray(args[0][0]), jnp.asarray(args[0][1]))  # noqa: E731
            out = lambda g: (float(g[0]), float(g[1]))  # noqa: E731
        elif k == "W6":
            f = lambda p: -0.5 * ((p[0] - p[1]) / p[2]) ** 2 - jnp.log(p[2])  # noqa: E731
            conv = lambda: tuple(jnp.asarray(v) for v in args[0])  # noqa: E731
            out = lambda g: tuple(float(v) for v in g)  # noqa: E731
        elif k in ("W2", "W3"):
            step = (lambda i, x: 3.7 * x * (1.0 - x)) if k == "W2" else (lambda i, y: jnp.sin(y) * y + 0.5 * y)
            f = lambda x: lax.fori_loop(0, n, step, x)  # noqa: E731
            conv = lambda: jnp.asarray(args[1])  # noqa: E731
            out = float
        elif k == "W7":
            def f(p):
                x, a, b = p
                return lax.fori_loop(0, n, lambda i, x: jnp.tanh(a * x + b), x)
            conv = lambda: tuple(jnp.asarray(v) for v in args[1])  # noqa: E731
            out = lambda g: tuple(float(v) for v in g)  # noqa: E731
        elif k == "W4":
            f = lambda x: jnp.sum(jnp.sin(x) * x)  # noqa: E731
            conv = lambda: jnp.asarray(np.asarray(args[0]))  # noqa: E731  (jnp.asarray of a long list is slow)
            out = tolist
        elif k == "W5":
            x, t, layers = args
            (lw1, lb1), (lw2, lb2) = layers

            def f(params):
                w1, b1, w2, b2, xv = params
                h = jnp.tanh(w1 @ xv + b1)
                e = (w2 @ h + b2)[0] - t
                return e * e
            conv = lambda: tuple(jnp.asarray(p) for p in (lw1, lb1, lw2, lb2, x))  # noqa: E731
            out = lambda g: [(tolist(g[0]), tolist(g[1])), (tolist(g[2]), tolist(g[3]))]  # noqa: E731
        else:
            raise NotApplicable(k)
        jf = jax.jit(f)
        jg = jax.jit(jax.value_and_grad(f))
        style = "jit, vector" if k in ("W4", "W5") else "jit, fori_loop" if w.sized else "jit"

        def vg():
            v, g = jg(conv())
            return float(v), out(g)

        return {"primal": Impl(lambda: float(jf(conv())), style), "vg": Impl(vg, style)}
