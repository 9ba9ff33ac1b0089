"""The mode table: one row per way of computing derivatives.

A *mode* says how `grad`, `value_and_grad`, `vjp` (and `jvp`, `derivative`)
are computed when a program calls them. Every tool reads this table and
nothing else: the command line's `--mode` choices and help, `dl modes`, the
REPL's `:mode` and its completion, `dl compare`, `:gradcheck`, `dl transform`.
Adding a mode is adding a row here and the modules it names.

A row names its runtime and its term transform by import path
(`"module:attribute"`), resolved on first use, so that reading the table —
`dl --help`, `dl modes` — imports none of them:

    runtime     an object with vjp(kernel, f, x, in_t, out_t) -> (y, pullback) and
                jvp(kernel, f, x, v, in_t, out_t) -> (y, y_dot)   (lang/modes/runtimes.py: the base
                Runtime's jvp is J v from the rows of J, one pullback per output real)
    jvp         how `jvp` and `derivative` are computed from primal code under the mode, in
                words (`dl modes`). Every mode computes them its own way; inside code that is
                being differentiated they run forward mode one level deeper, whatever the mode
                (docs/reference.md §7, Nested derivatives)
    transform   a TermTransform (lang/transforms/common.py): the term and type transforms
                `dl transform` prints and the target checker checks; None for a mode that
                runs the untransformed program (tape, numeric) or unrolls it (symbolic)
"""
from __future__ import annotations

from functools import lru_cache
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

from ..model.nodes import node  # (a frozen dataclass, made quickly: start-up)
from ..model.primitives import imported


@node(slots=False)  # a frozen dataclass, made quickly (start-up), with a __dict__ as before
class Mode:
    """A row of the mode table."""

    name: str
    summary: str               # one line, for `dl modes` and --help
    source: str                # where it comes from (paper or textbook)
    runtime: str               # "module:attribute" of the object that computes derivatives
    transform: str | None      # "module:attribute" of its TermTransform, or None (no transformed term)
    nests: bool                # a derivative inside a function it differentiates: right (True) or refused
    jvp: str                   # how `derivative` and `jvp` are computed under this mode (its runtime's jvp)
    shows: str = "term"        # what `dl transform` shows: "term", "unrolled" or "linearized" (at a point),
                               # or "program"
    tolerance: float = 1e-9    # relative agreement expected with backprop (:gradcheck, dl compare)
    listed: bool = True        # False: the primal baseline that `dl compare` measures against
    compared: bool = True      # False: an intermediate stage of a chain (dualrev-*) or a variant (lut-recompute),
                               # run by `dl compare` and `:compare` only when named in --modes; every other
                               # tool lists it
    custom_rules: str = "refuses"  # custom_vjp/custom_jvp (docs/reference.md, Custom derivatives): "uses" the
                               # rule, differentiates the "body" (primal code: numeric), or "refuses" with a
                               # diagnostic at the call (lang/back/custom.py reads it)

    def load_runtime(self) -> Any:
        """The runtime object (imported on first use)."""
        return _attribute(self.runtime)

    def load_transform(self) -> Any:
        """The TermTransform, or None for a mode without a transformed term."""
        return _attribute(self.transform) if self.transform else None


@lru_cache(maxsize=None)
def _attribute(path: str) -> Any:
    module, _, name = path.partition(":")
    return imported(module, name)


ROWS: tuple[Mode, ...] = (
    Mode("backprop",
         "the BMP backpropagation transform ←D, run with linear factoring: linear cost",
         "Brunel, Mazza, Pagani, Backpropagation in the simply typed lambda-calculus with linear negation, "
         "POPL 2020",
         runtime="lang.modes.runtimes:FACTORING", transform="lang.transforms.backprop:PREACCUMULATED", nests=True,
         jvp="J v from one backward sweep per output real (derivative: one reverse pass)", custom_rules="uses"),
    Mode("backprop-naive",
         "the same term ←D, each backpropagator run as soon as it is called: exponential on sharing",
         "Brunel, Mazza, Pagani, POPL 2020 (without linear factoring)",
         runtime="lang.modes.runtimes:NAIVE", transform="lang.transforms.backprop:BACKPROP", nests=True,
         jvp="J v from one naive backward pass per output real (derivative: one reverse pass)",
         custom_rules="uses"),
    Mode("forward",
         "dual numbers →D: one pass per input direction",
         "Wengert 1964; dual numbers (Clifford 1873)",
         runtime="lang.modes.runtimes:FORWARD", transform="lang.transforms.forward:FORWARD", nests=True,
         jvp="one run of →D(f) with the tangent v", custom_rules="uses"),
    Mode("tape",
         "operator overloading: reals carry nodes of a dynamic tape, swept backwards (PyTorch, micrograd)",
         "Speelpenning 1980; Griewank and Walther, Evaluating Derivatives, 2008",
         runtime="lang.modes.tape:TAPE", transform=None, nests=False,
         jvp="J v from one recording and one sweep of the tape per output real", shows="program",
         custom_rules="uses"),
    Mode("symbolic",
         "the program unrolled at the point into one expression without sharing, differentiated by rules",
         "textbook symbolic differentiation (expression swell)",
         runtime="lang.modes.symbolic:SYMBOLIC", transform=None, nests=False,
         jvp="J v from the derivative expressions of the unrolled program", shows="unrolled",
         custom_rules="uses"),
    Mode("shift-reset",
         "delimited continuations: a CPS term with adjoint cells, each primitive a shift whose post "
         "runs when its continuation returns; run by a trampoline with a stack of posts (a tape)",
         "Wang, Zheng, Decker, Wu, Essertel, Rompf, Demystifying differentiable programming: shift/reset the "
         "penultimate backpropagator, ICFP 2019",
         runtime="lang.modes.shift_reset:SHIFT_RESET_RUNTIME", transform="lang.transforms.shift_reset:SHIFT_RESET",
         nests=False, jvp="J v from one backward pass per output real (derivative: one reverse pass)"),
    Mode("numeric",
         "central finite differences, step ε^(1/3)·max(1, |x|)",
         "numerical differentiation (central differences)",
         runtime="lang.modes.numeric:NUMERIC", transform=None, nests=True,
         jvp="one central difference in the direction v, (f(x+hv) - f(x-hv)) / 2h", shows="program",
         tolerance=1e-5, custom_rules="body"),
    Mode("delta",
         "Delta expressions Δ: each real carries first-order data describing its linear map, shared per "
         "primitive and transposed largest identity first: linear cost",
         "Krawiec, Peyton Jones, Krishnaswami, Ellis, Eisenberg, Fitzgibbon, Provably correct, asymptotically "
         "efficient, higher-order reverse-mode automatic differentiation, POPL 2022",
         runtime="lang.modes.delta:DELTA", transform="lang.transforms.delta:DELTA", nests=True,
         jvp="J v from one backward sweep per output real (derivative: one reverse pass)", custom_rules="uses"),
    Mode("delta-noshare",
         "the same Delta expressions without sharing identities: a node walked once per path, exponential on "
         "sharing",
         "Krawiec et al., POPL 2022 (without Share)",
         runtime="lang.modes.delta:DELTA_NOSHARE", transform="lang.transforms.delta:DELTA_NOSHARE", nests=True,
         jvp="J v from one backward sweep per output real (derivative: one reverse pass)", custom_rules="uses"),
    Mode("chad",
         "CHAD: each term returns its value and a linear map from its cotangent to its environment's; a "
         "function's cotangent is a copower, folded by running the function again: dense, not linear in general",
         "Vákár, Smeding, CHAD: Combinatory Homomorphic Automatic Differentiation, TOPLAS 44(3), 2022; "
         "VMatthijs/CHAD",
         runtime="lang.modes.chad:CHAD", transform="lang.transforms.chad:CHAD", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)"),
    Mode("chad-efficient",
         "CHAD with sparse cotangents accumulated in place and closure-converted function cotangents (no "
         "recomputation): linear cost",
         "Smeding, Vákár, Efficient CHAD, POPL 2024 (PACMPL 8, article 36)",
         runtime="lang.modes.chad:CHAD_EFFICIENT", transform="lang.transforms.chad:CHAD_EFFICIENT", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)"),
    Mode("ps",
         "a backpropagator per closure call: A-normal form, each function returns its value and a "
         "backpropagator to the sensitivities of its free variables and argument",
         "Pearlmutter, Siskind, Reverse-mode AD in a functional framework: Lambda the ultimate backpropagator, "
         "TOPLAS 30(2), 2008",
         runtime="lang.modes.ps:PS", transform="lang.transforms.ps:PS_TRANSFORM", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)"),
    # dual-numbers reverse AD, stage by stage (stage 0 is backprop-naive; docs/transforms.md, dualrev)
    Mode("dualrev-staged",
         "dualrev stage 1: linear factoring made explicit, backpropagators return their calls as data, "
         "merged and run oldest first",
         "Smeding, Vákár, Efficient dual-numbers reverse AD via well-known program transformations, POPL 2023 "
         "(stage 1: staging)",
         runtime="lang.modes.dualrev:STAGED", transform="lang.transforms.dualrev:STAGED_TRANSFORM", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)", compared=False),
    Mode("dualrev-cayley",
         "dualrev stage 2: Cayley-transformed backpropagators add their calls to the pending ones",
         "Smeding, Vákár, POPL 2023 (stage 2: the Cayley transform)",
         runtime="lang.modes.dualrev:CAYLEY", transform="lang.transforms.dualrev:CAYLEY_TRANSFORM", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)", compared=False),
    Mode("dualrev-ids",
         "dualrev stage 3: IDs from a supply the program threads; pending calls run largest ID first",
         "Smeding, Vákár, POPL 2023 (stage 3: IDs, resolved from the top); tomsmeding/ad-dualrev-th",
         runtime="lang.modes.dualrev:IDS", transform="lang.transforms.dualrev:IDS_TRANSFORM", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)", compared=False),
    Mode("dualrev-defun",
         "dualrev stage 4: backpropagators defunctionalised into Contrib records, resolved by ID",
         "Smeding, Vákár, POPL 2023 (stage 4: defunctionalisation); tomsmeding/ad-dualrev-th",
         runtime="lang.modes.dualrev:DEFUN", transform="lang.transforms.dualrev:DEFUN_TRANSFORM", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)", compared=False),
    Mode("dualrev",
         "dual-numbers reverse AD made linear: IDs threaded by the program, Contrib records, one sweep over "
         "mutable arrays",
         "Smeding, Vákár, Efficient dual-numbers reverse AD via well-known program transformations, POPL 2023; "
         "tomsmeding/ad-dualrev-th",
         runtime="lang.modes.dualrev:ARRAYS", transform="lang.transforms.dualrev:DEFUN_TRANSFORM", nests=False,
         jvp="J v from one backward pass per output real (derivative: one reverse pass)"),
    Mode("lut",
         "linearize, unzip, transpose: the program traced at the point into forward mode's equations, split "
         "into a primal program and a linear one (residuals stored), the linear one transposed",
         "Radul, Paszke, Frostig, Johnson, Maclaurin, You only linearize once: tangents transpose to gradients, "
         "POPL 2023",
         runtime="lang.modes.lut:LUT", transform=None, nests=False,
         jvp="the linear program (linearized at x) run on v, not transposed", shows="linearized"),
    Mode("lut-recompute",
         "the same, the residuals recomputed: the linear program keeps only the input and recomputes what "
         "it reads (rematerialisation)",
         "Radul et al., POPL 2023 (the other choice when unzipping); JAX's checkpoint policy nothing_saveable",
         runtime="lang.modes.lut:LUT_RECOMPUTE", transform=None, nests=False,
         jvp="the linear program (linearized at x) run on v, not transposed", shows="linearized",
         compared=False),  # a residual policy of lut: compared when named (docs/transforms.md, lut)
    Mode("primal",
         "the program with every derivative call replaced by a plain call: the baseline of `dl compare`",
         "-",
         runtime="lang.modes.runtimes:PRIMAL", transform=None, nests=True,
         jvp="the value only, a zero tangent", shows="program", listed=False, custom_rules="body"),
)

ALL: dict[str, Mode] = {m.name: m for m in ROWS}
MODES: tuple[str, ...] = tuple(m.name for m in ROWS if m.listed)  # the modes a user chooses, in table order
DEFAULT = ALL["backprop"]
REFERENCE = DEFAULT  # what `dl compare` and :gradcheck measure errors against


def get(name: str) -> Mode:
    """The row for a mode name (KeyError when there is none)."""
    return ALL[name]


def listed() -> list[Mode]:
    """The modes a user chooses, in table order."""
    return [m for m in ROWS if m.listed]


def compared() -> list[Mode]:
    """The modes `dl compare` and `:compare` run when not told which: the listed ones but the
    intermediate stages of a chain."""
    return [m for m in ROWS if m.listed and m.compared]


def nesting() -> list[str]:
    """The names of the listed modes that differentiate through nested derivatives."""
    return [m.name for m in ROWS if m.listed and m.nests]


def refusal(mode: str, e) -> Any:
    """What a derivative call `e` (a core Prim) becomes in the code of a mode that does not nest: a
    function that stops with a diagnostic naming the call and the modes that do nest."""
    from ..back.kernel import NestedDifferentiation  # the table itself imports nothing it names (start-up)
    name, span = e.op, e.span

    def refuse(*args):
        raise NestedDifferentiation(
            f"nested differentiation: this `{name}` runs inside a function that the {mode} mode is "
            f"differentiating, and that mode does not nest ({', '.join(nesting())} do)", span)
    return refuse


def describe() -> str:
    """`dl modes`: every mode with its line, where it comes from, and how jvp behaves under it."""
    width = max(len(m.name) for m in listed())
    lines = []
    for m in listed():
        lines.append(f"{m.name:<{width}}  {m.summary}")
        lines.append(f"{'':<{width}}  source: {m.source}")
        facts = [f"derivative/jvp: {m.jvp}", "nests" if m.nests else "refuses nested derivatives",
                 {"term": "dl transform prints its term", "unrolled": "dl transform unrolls it at a point",
                  "linearized": "dl transform prints its three programs at a point",
                  "program": "no transformed term"}[m.shows],
                 {"uses": "uses custom rules", "body": "differentiates a custom rule's body",
                  "refuses": "refuses custom rules"}[m.custom_rules]]
        lines.append(f"{'':<{width}}  " + "; ".join(facts))
    return "\n".join(lines)
