"""A machine: the compilers and run-time state of one program run or REPL session.

It owns the specialiser, the cost counters, the differentiation mode (a row
of the mode table, lang/modes/table.py, and the runtime that row names), and
one compiler per language: the primal program, and each transform's target
(created on demand by the kernel, lang/back/kernel.py). Compiled code is
cached per compiler, so a definition is compiled once per language.
"""
from __future__ import annotations

from functools import cached_property
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

from ..front.loader import World
from ..front.mono import Specializer
from ..model import core as c
from ..model.errors import DlRuntimeError
from .compiler import Compiler, Counters
from .deep import RECURSION_LIMIT


class Machine:
    def __init__(self, world: World, mode, counting: bool = False, check_transforms: bool = False,
                 progress=None, preaccumulate: bool = True):
        """`mode`: a row of the mode table (anything with `name` and `load_runtime()`); `progress`: told
        about long runs of passes; `preaccumulate`: the factoring runtime runs ←D's term preaccumulated
        (lang/transforms/preaccumulate.py), False: as ←D writes it."""
        self.world = world
        self.preaccumulate = preaccumulate
        self.check_transforms = check_transforms  # type-check every transformed term (dl --debug)
        self.spec = Specializer(world)
        self.counters = Counters()
        self.mode = mode
        self.runtime = mode.load_runtime()
        self.counting = counting
        # progress(mode, done, total, per), or None: told before and during a derivative that makes one pass of
        # the function per input real (forward and numeric modes; PASSES_WORTH_SAYING or more of them)
        self.progress = progress
        self.primal = Compiler(self, counting=counting)
        self.primal.nests = True
        self.symbolic_reports: list[dict] = []  # what symbolic mode unrolled, for `dl transform`

    @cached_property
    def ad(self):
        """The differentiation kernel (lang/back/kernel.py), made when a program first differentiates: a
        program that does not never imports the kernel, the transforms or their languages (start-up)."""
        from .kernel import ADKernel  # only for a program that differentiates (start-up)
        return ADKernel(self)

    def global_value(self, module: str, name: str, inst: tuple = ()) -> Any:
        """Evaluate (once) a top-level definition at an instance."""
        return self.primal.global_value(module, name, inst)

    def seed_value(self, module: str, name: str, value: Any) -> None:
        """A monomorphic top-level value known already (the REPL's `it`): it is not computed again."""
        self.primal.seed_value((module, name, ()), value)

    def forget_values(self) -> None:
        """Every top-level value is computed again on next use, in every language; code is kept."""
        for compiler in [self.primal, *self.ad.compilers.values()]:
            compiler.forget_values()

    def compile_expression(self, typed: c.Expr):
        """Specialise and compile a typed closed expression (a REPL input, `main` applied to arguments).

        Python's recursion limit ending a dl recursion is reported at the expression."""
        run = self.primal.compile_closed(self.spec.expression(typed), program=True)
        span = typed.span

        def evaluate():
            try:
                return run()
            except RecursionError:
                raise DlRuntimeError(f"stack overflow: more than {RECURSION_LIMIT} nested calls (a recursion "
                                     "that does not end, or one too deep: make it tail-recursive, or use fold)",
                                     span) from None
        return evaluate
