"""The tools measured on the array workloads: the `TOOLS` table, name -> maker.

A tool's `prepare(workload, case)` returns {"primal": Impl, "vg": Impl} or raises NotApplicable (no
program for this workload) or Skip (the tool cannot run at all yet: dl before it has arrays). Every
callable starts from the case's numpy float64 arrays and returns a float or (float, [numpy arrays in
the case's diff order]): converting in and out is timed, for every tool. Index arrays and other
structural constants are converted once, in prepare.

dl plugs in as the `dl` entry: it compiles `benchmarks/arrays/workloads/<file>.dl` in-process (its
`primal` and `vg` definitions, mode backprop) and calls them with numpy arrays. Were dl's Array type
missing, the entry would be skipped, never faked: prepare raises Skip("dl has no arrays yet: ...") with
the compiler's own message for a one-line probe program.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

# single-threaded peers (dl is single-threaded; the machine is shared): set before numpy/torch/jax load
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from array_workloads import DL_DIR, Ops, TorchOps, JaxOps, Workload, Case  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class NotApplicable(Exception):
    """This tool has no program for this workload."""


class Skip(Exception):
    """This tool cannot run yet (the reason is reported in the tables, nothing is timed)."""


@dataclass
class Impl:
    fn: Callable[[], Any]
    style: str = "array"


def _floats(gs) -> list:
    return [np.asarray(g, dtype=np.float64) for g in gs]


class Tool:
    name = "?"
    label = "?"
    version = ""

    def prepare(self, w: Workload, case: Case) -> dict[str, Impl]:
        raise NotImplementedError


# ---- the floor: numpy with a hand-written gradient ----------------------------------------------------

class Numpy(Tool):
    name, label = "numpy", "numpy, hand-written gradient"

    def __init__(self):
        self.version = np.__version__

    def prepare(self, w, case):
        return {"primal": Impl(lambda: w.floor_primal(case), "floor"),
                "vg": Impl(lambda: w.floor_vg(case), "floor")}


class Python(Tool):
    """A plain Python loop with a hand-written derivative (A1 only): the scalar side of the crossover."""
    name, label = "python", "plain Python loop, hand-written gradient"

    def prepare(self, w, case):
        if w.scalar_python is None:
            raise NotApplicable("no scalar program")
        fns = w.scalar_python(case)
        return {"primal": Impl(fns["primal"], "scalar"), "vg": Impl(fns["vg"], "scalar")}


# ---- HIPS autograd ---------------------------------------------------------------------------------------

class Autograd(Tool):
    name, label = "autograd", "HIPS autograd"

    def __init__(self):
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp
        from importlib.metadata import version
        self.anp, self.value_and_grad = anp, autograd.value_and_grad
        self.M = Ops(anp, logsumexp)
        self.version = version("autograd")

    def prepare(self, w, case):
        M, consts = self.M, dict(case.consts)
        if "qidx" in consts:
            consts["qidx"] = M.index(consts["qidx"])
        k = len(case.diff)

        def f(*d):
            return w.program(M, consts, *d)
        g = self.value_and_grad(f, tuple(range(k)))
        diff = case.diff

        def vg():
            v, gr = g(*diff)
            return float(v), _floats(gr)
        return {"primal": Impl(lambda: float(f(*diff))), "vg": Impl(vg)}


# ---- PyTorch eager ----------------------------------------------------------------------------------------

class Torch(Tool):
    name, label = "torch", "PyTorch eager"

    def __init__(self):
        import torch
        torch.set_num_threads(1)
        self.torch = torch
        self.M = TorchOps(torch)
        self.version = torch.__version__

    def prepare(self, w, case):
        torch, M = self.torch, self.M
        consts = dict(case.consts)
        if "qidx" in consts:
            consts["qidx"] = M.index(consts["qidx"])
        arrays = [k for k, v in consts.items() if isinstance(v, np.ndarray) and k != "qidx"]
        diff = case.diff
        from_numpy = torch.from_numpy

        def inputs(rg):
            c = dict(consts)
            for k in arrays:
                c[k] = from_numpy(case.consts[k])
            ps = [from_numpy(d).requires_grad_(rg) for d in diff]
            return c, ps

        def vg():
            c, ps = inputs(True)
            y = w.program(M, c, *ps)
            gs = torch.autograd.grad(y, ps)
            return y.item(), [g.numpy() for g in gs]

        def primal():
            with torch.no_grad():
                c, ps = inputs(False)
                return w.program(M, c, *ps).item()
        return {"primal": Impl(primal), "vg": Impl(vg)}


# ---- JAX: eager (op by op) and jit ---------------------------------------------------------------------------

class Jax(Tool):
    name, label = "jax", "JAX eager"

    def __init__(self, jit=False):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp
        self.jax, self.jnp = jax, jnp
        self.M = JaxOps(jnp, logsumexp)
        self.version = jax.__version__
        self.jit = jit
        if jit:
            self.name, self.label = "jax-jit", "JAX jit"

    def prepare(self, w, case):
        jax, M = self.jax, self.M
        consts = dict(case.consts)
        if "qidx" in consts:
            consts["qidx"] = M.index(consts["qidx"])
        arrays = [k for k, v in consts.items() if isinstance(v, np.ndarray) and k != "qidx"]
        scalars = {k: v for k, v in consts.items() if k not in arrays}
        k = len(case.diff)

        def f(data, *d):
            return w.program(M, dict(scalars, **data), *d)
        vgf = jax.value_and_grad(f, tuple(range(1, k + 1)))
        if self.jit:
            f, vgf = jax.jit(f), jax.jit(vgf)
        diff = case.diff
        # numpy arrays go straight in: jax converts them on the call (jit's fast path; an explicit
        # jnp.asarray per array cost ~40 µs each here), and np.asarray takes the results out (float()
        # on a jax scalar costs ~9 µs, on np.asarray of it ~1 µs)
        data = {a: case.consts[a] for a in arrays}

        def vg():
            v, gs = vgf(data, *diff)
            return float(np.asarray(v)), [np.asarray(g) for g in gs]

        def primal():
            return float(np.asarray(f(data, *diff)))
        style = "jit" if self.jit else "array"
        return {"primal": Impl(primal, style), "vg": Impl(vg, style)}


# ---- dl: the stub that becomes the real entry once dl has arrays -----------------------------------------------

class DL(Tool):
    """dl's `primal` and `vg` of benchmarks/arrays/workloads/<file>.dl, compiled once, called in-process.

    Skipped, with the compiler's message, if a one-line program over `Array` does not compile.
    `variant` picks other definitions of the same file: "Map" runs `primalMap` / `vgMap` (A1 through
    `amap`, forward mode per element) where the file has them."""
    name, label = "dl", "dl arrays"
    PROBE = "def probe (x : Array) = asum x\n"

    def __init__(self, variant: str = ""):
        sys.path.insert(0, str(ROOT))
        from lang.back.machine import Machine
        from lang.front.loader import Loader, World
        from lang.model.errors import DlError
        from lang.model.spans import Source
        from lang.model.values import apply
        from lang.modes.table import get
        self._Machine, self._apply, self._Source, self._mode = Machine, apply, Source, get("backprop")
        self.variant = variant
        if variant:
            self.name, self.label = f"dl-{variant.lower()}", f"dl arrays, {variant} definitions"
        self.world = World()
        self.loader = Loader(self.world)
        self.loader.load_prelude()
        self.modules: dict[str, Any] = {}
        try:
            self.loader.load_source(Source("<array probe>", self.PROBE), "array_probe.dl")
            self.unavailable = ""
        except DlError as e:
            self.unavailable = f"dl has no arrays yet (`{self.PROBE.strip()}`: {e})"
        try:
            out = os.popen(f"git -C {ROOT} rev-parse --short HEAD 2>/dev/null").read().strip()
            self.version = f"commit {out}" if out else ""
        except OSError:
            self.version = ""

    def prepare(self, w, case):
        if self.unavailable:
            raise Skip(self.unavailable)
        if w.dl_file not in self.modules:
            path = DL_DIR / w.dl_file
            mod = self.loader.load_source(self._Source(str(path), path.read_text()), w.dl_file)
            self.modules[w.dl_file] = (mod, self._Machine(self.world, mode=self._mode))
        mod, machine = self.modules[w.dl_file]
        names = (f"primal{self.variant}", f"vg{self.variant}")
        try:
            fp, fg = (machine.global_value(mod.id, n, ()) for n in names)
        except Exception as e:  # noqa: BLE001 — a file without the variant's definitions
            raise NotApplicable(f"{w.dl_file} has no {' / '.join(names)}: {e}") from e
        ap, args = self._apply, w.dl_args(case)

        def vg():
            v, g = ap(fg, args)
            return float(v), w.dl_grad(g)
        return {"primal": Impl(lambda: float(ap(fp, args))), "vg": Impl(vg)}


TOOLS: dict[str, Callable[[], Tool]] = {
    "numpy": Numpy,
    "python": Python,
    "dl": DL,                                   # dl's arrays, mode backprop (see the class)
    "dl-map": lambda: DL(variant="Map"),        # A1 through `amap`: a dl function per element
    "torch": Torch,
    "autograd": Autograd,
    "jax": Jax,
    "jax-jit": lambda: Jax(jit=True),
}
TOOL_ORDER = tuple(TOOLS)
