"""The runtimes of the modes built into the kernel: backprop (factoring or naive), forward, primal.

A runtime is what a row of the mode table names: how a derivative call made
from primal code is computed. `vjp` gives the value and a pullback; `jvp`
gives the value and a tangent (`derivative f x` is `jvp f x 1.0`). The
kernel (lang/back/kernel.py) does the work; these objects choose which of
its paths a mode takes.

The interface, for a new mode:

    vjp(kernel, f, x, in_t, out_t) -> (y, pullback)    required
    jvp(kernel, f, x, v, in_t, out_t) -> (y, y_dot)    default: J v from the rows of J, one pullback
                                                        per output real (a reverse mode's way); a mode
                                                        with a better way overrides it (forward, numeric)
    exact                                               True: the derivatives are the chain rule's, so
                                                        the kernel may ask again with `Paths` seeds where a
                                                        result is not finite (docs/transforms.md, Zeros and
                                                        infinities); False for an approximation
    metrics(machine)                                    what `dl compare` reports

What a pullback or a jvp returns may hold the symbolic zero and, given
`Paths` seeds, sums over paths (lang/model/zeros.py): the kernel settles
them. A pullback must accept cotangents of those types, which arithmetic
on Python numbers does without knowing. A pullback may carry a `settling`
attribute, a function of the same cotangent whose result the kernel's
order-free pass settles at once (backprop's sweeps it on floats where the
kinds cannot matter, lang/back/linear.py `Factoring.paths_values`).
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any, Callable

from ..back.linear import Factoring, Naive


class Runtime:
    """The base of every runtime: jvp from vjp, by rows of the Jacobian."""

    name = "runtime"
    exact = True  # the chain rule's derivatives (not an approximation)
    # its vjp is the kernel's vjp_reverse on a Factoring backend, so a `grad` or `value_and_grad` call
    # site of primal code may run a generated entry instead (lang/back/entries.py)
    scalar_entries = False

    def vjp(self, kernel, f, x, in_t, out_t) -> tuple[Any, Callable]:
        raise NotImplementedError

    def jvp(self, kernel, f, x, v, in_t, out_t) -> tuple[Any, Any]:
        """J v: one pullback of the mode's vjp per output real (one backward pass for `derivative`)."""
        return kernel.jvp_by_rows(self, f, x, v, in_t, out_t)

    def metrics(self, machine) -> dict:
        """The cost of a run as `dl compare` reports it (docs/transforms.md, The counters): the size of the
        terms the mode compiled and the counters of what ran."""
        counts = machine.counters
        return {"term": self.term_size(machine), "prims": counts.prims, "apps": counts.betas,
                "bp_apps": counts.bp_run}

    def term_size(self, machine) -> int:
        """Nodes of the terms this mode ran: its transformed definitions and lambdas."""
        return sum(comp.term_size for comp in machine.ad.compilers.values())


class Untransformed(Runtime):
    """A mode that runs the untransformed program (tape, numeric): its term is the program's."""

    def term_size(self, machine) -> int:
        return machine.primal.term_size


class Reverse(Runtime):
    """←D, with the linear fragment run by factoring or naively (lang/back/linear.py)."""

    def __init__(self, name: str, backend: type):
        self.name = name
        self.backend = backend  # the LinearBackend class: Factoring or Naive
        # (a subclass that watches or changes vjp, lang/tools/watch.py, keeps the general path)
        self.scalar_entries = backend is Factoring and type(self).vjp is Reverse.vjp

    def vjp(self, kernel, f, x, in_t, out_t):
        return kernel.vjp_reverse(f, x, in_t, out_t, self)


class Forward(Runtime):
    """→D: a vjp is one forward pass per input real."""

    name = "forward"

    def vjp(self, kernel, f, x, in_t, out_t):
        return kernel.vjp_forward(f, x, in_t, out_t, kernel.machine.primal)

    def jvp(self, kernel, f, x, v, in_t, out_t):
        """One run of →D(f) with the tangent v."""
        return kernel.jvp_forward(f, x, v, in_t, out_t, kernel.machine.primal)


class Primal(Untransformed):
    """The baseline `dl compare` divides by: the function's value, zero derivatives, nothing else."""

    name = "primal"
    exact = False  # no derivative at all

    def vjp(self, kernel, f, x, in_t, out_t):
        return kernel.vjp_primal(f, x, in_t, out_t)

    def jvp(self, kernel, f, x, v, in_t, out_t):
        return kernel.jvp_primal(f, x, out_t)


FACTORING = Reverse("backprop", Factoring)
NAIVE = Reverse("backprop-naive", Naive)
FORWARD = Forward()
PRIMAL = Primal()
