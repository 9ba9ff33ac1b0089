"""Every transformed definition type-checks, and every printed transform reads back (issues 3 and 4).

For each definition of the prelude and of every example program, at its
Real instance: ←D and →D (plain and simplified) are checked against the
transform of the definition's type, with the linearity discipline on every
backpropagator, and the printed term parses back to the same term. A
transform without array rules (delta) refuses a definition with arrays in
it, with the shared diagnostic, and nothing else.
"""
import glob
import os

import pytest

from conftest import ROOT, TRANSFORM_MODES, get, load_source, refuses_custom_rule
from lang.model.errors import DlRuntimeError
from lang.back.deep import run_deep
from lang.front.mono import Specializer
from lang.model import core as c
from lang.model.errors import DlRuntimeError
from lang.model.printer import show_term
from lang.transforms.check import check
from lang.transforms.read import parse_target
from lang.tools.workbench import default_instance, language, transform_term
from lang.transforms.common import mentions_array

EXAMPLES = sorted(glob.glob(str(ROOT / "examples" / "*.dl")))


def definitions(program, module_id):
    return [d for d in program.world.modules[module_id].defs]


def check_all(program, defs):
    spec = Specializer(program.world)
    module = program.module
    own = {d.name: (d.module, d.name) for d in module.defs}
    resolve = program.world.resolver(own, dict(module.exports))
    checked = 0
    for d in defs:
        e = spec.get(d.module, d.name, default_instance(d.scheme))
        for mode in map(get, TRANSFORM_MODES):
            lang = language(mode, spec)
            for simplify in (False, True):
                if refuses_custom_rule(mode.name, e):  # a diagnostic, not a term (custom_vjp)
                    with pytest.raises(DlRuntimeError, match="cannot use a custom rule"):
                        transform_term(e, mode, simplify)
                    checked += 1
                    continue
                try:
                    term = transform_term(e, mode, simplify)
                except DlRuntimeError as err:
                    if "arrays yet" not in err.message:  # the shared refusal, or a mode's own (lut)
                        raise
                    assert uses_arrays(e), (d.name, mode, err.message)  # refused for its arrays only
                    checked += 1
                    continue
                check(term, e.ty, lang)
                if d.module == module.id and mode.load_transform().parses_back:  # names resolve in the file's scope
                    back = parse_target(show_term(term), resolve, lang.d_type(e.ty), lang)
                    assert back == term, (d.name, mode, simplify)
                checked += 1
    return checked


def uses_arrays(e: c.Expr) -> bool:
    """Whether a term has a subterm of a type with an Array in it."""
    stack = [e]
    while stack:
        t = stack.pop()
        if t.ty is not None and mentions_array(t.ty):
            return True
        stack.extend(c.children(t))
    return False


def test_every_prelude_definition_transforms_and_checks():
    program = load_source("def main = 1.0")
    defs = definitions(program, "prelude")
    assert len(defs) > 40
    assert run_deep(lambda: check_all(program, defs)) == 2 * len(TRANSFORM_MODES) * len(defs)


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_every_example_definition_transforms_checks_and_round_trips(path):
    with open(path, encoding="utf-8") as f:
        program = load_source(f.read(), name=path)
    defs = program.module.defs
    assert run_deep(lambda: check_all(program, defs)) == 2 * len(TRANSFORM_MODES) * len(defs)
