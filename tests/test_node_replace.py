"""lang/model/nodes.py `replace`: the same copy as dataclasses.replace, for every node class of the core terms."""
import dataclasses

import pytest

from lang.model import core as c
from lang.model.nodes import replace
from lang.model.spans import Span
from lang.model.types import REAL, TFun


def test_replace_is_dataclasses_replace_on_core_nodes():
    span = Span(None, 3, 4, 3, 9)
    nodes = [c.Var("x", ("Real",), ty=REAL, span=span), c.Lit(1.5, ty=REAL),
             c.Lam("x", c.Var("x"), ty=TFun(REAL, REAL)),
             c.Let("y", c.Lit(2.0), c.Var("y"), ("Real",), qvars=("a",), ty=REAL),
             c.Prim("sin", (c.Var("x"),), ty=REAL), c.DZero(), c.LinLam("a", c.DZero())]
    for e in nodes:
        fast, slow = replace(e, ty="T"), dataclasses.replace(e, ty="T")
        assert type(fast) is type(slow)
        for f in dataclasses.fields(e):  # every field, the ones left out of equality (ty, span, qvars) too
            assert getattr(fast, f.name) == getattr(slow, f.name), (e, f.name)
        assert getattr(e, "ty") != "T"  # the original is unchanged
    with pytest.raises(TypeError):
        replace(c.Var("x"), nmae="y")
