"""lang/model/nodes.py: `node` makes the class `dataclass` would, without importing dataclasses (start-up).
Each behaviour is checked against a real dataclass declared the same way."""
import copy
import dataclasses
import pickle

import pytest

from lang.model.nodes import FrozenInstanceError, field, node, replace


def _pair(frozen: bool, slots: bool, eq: bool = True):
    """The same class twice: made by `node` and by `dataclasses.dataclass`."""
    def body(name, fld):
        return type(name, (), {"__annotations__": {"a": "int", "b": "list", "c": "str", "d": "int"},
                               "b": fld(default_factory=list), "c": fld(default="c", compare=False),
                               "d": fld(default=4, kw_only=True, repr=False), "__qualname__": name})
    ours = node(body("Thing", field), frozen=frozen, slots=slots, eq=eq)
    theirs = dataclasses.dataclass(body("Thing", dataclasses.field), frozen=frozen, slots=slots, eq=eq)
    return ours, theirs


@pytest.mark.parametrize("frozen", [True, False])
@pytest.mark.parametrize("slots", [True, False])
@pytest.mark.parametrize("eq", [True, False])
def test_a_node_behaves_as_the_dataclass(frozen, slots, eq):
    ours, theirs = _pair(frozen, slots, eq)
    x, y = ours(1, [2], "x", d=5), theirs(1, [2], "x", d=5)
    assert repr(x) == repr(y) == "Thing(a=1, b=[2], c='x')"
    assert ours.__match_args__ == theirs.__match_args__ == ("a", "b", "c")
    assert (x == ours(1, [2], "other", d=5)) == (y == theirs(1, [2], "other", d=5))  # c is not compared
    assert (x == ours(1, [3], "x", d=5)) == (y == theirs(1, [3], "x", d=5)) == False  # noqa: E712
    assert (ours.__hash__ is None) == (theirs.__hash__ is None)
    assert ours(1).b == [] and ours(1).b is not ours(1).b  # a fresh default each time
    assert hasattr(x, "__dict__") == hasattr(y, "__dict__")
    if frozen:
        with pytest.raises(FrozenInstanceError):
            x.a = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            y.a = 2
        assert isinstance(FrozenInstanceError(), AttributeError)
    else:
        x.a = y.a = 7
        assert x.a == y.a == 7
    # what dataclasses reads of a class: its fields, made on first use
    assert dataclasses.is_dataclass(x) and dataclasses.is_dataclass(ours)
    assert [(f.name, f.init, f.repr, f.compare, f.kw_only) for f in dataclasses.fields(x)] == \
           [(f.name, f.init, f.repr, f.compare, f.kw_only) for f in dataclasses.fields(y)]
    assert ours.__dataclass_params__.frozen == frozen and ours.__dataclass_params__.eq == eq
    changed, theirs_changed = replace(x, a=9), dataclasses.replace(y, a=9)
    assert (changed.a, changed.b, changed.c, changed.d) == (theirs_changed.a, theirs_changed.b, 'x', 5)
    assert dataclasses.replace(x, c="z").c == "z"
    with pytest.raises(TypeError):
        replace(x, nope=1)
    copied = copy.deepcopy(x)
    assert (copied.a, copied.b, copied.c, copied.d) == (x.a, x.b, x.c, x.d)


@node(frozen=False)
class Mutable:
    a: int
    b: list = field(default_factory=list)


@node
class Frozen:
    a: int
    b: tuple = ()


@pytest.mark.parametrize("make", [lambda: Mutable(1, [2.5]), lambda: Frozen(1, (2.5,))])
def test_a_node_pickles(make):
    x = make()
    back = pickle.loads(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(back) is type(x) and (back.a, back.b) == (x.a, x.b)


def test_field_refuses_both_defaults_and_mutable_defaults():
    with pytest.raises(ValueError):
        field(default=1, default_factory=list)
    with pytest.raises(ValueError):
        node(type("Bad", (), {"__annotations__": {"a": "list"}, "a": []}))


def test_inheriting_fields_and_post_init_are_refused():
    base = node(type("Base", (), {"__annotations__": {"a": "int"}}))
    with pytest.raises(TypeError):
        node(type("Sub", (base,), {"__annotations__": {"b": "int"}}))
    with pytest.raises(TypeError):
        node(type("Post", (), {"__annotations__": {"a": "int"}, "__post_init__": lambda self: None}))


def test_mutable_records_of_a_run_are_unhashable_and_compare_by_fields():
    from lang.back.compiler import Counters
    from lang.model.values import Code
    a, b = Counters(), Counters()
    assert a == b and Counters.__hash__ is None
    a.prims += 1
    assert a != b and a.extra is not b.extra
    c = Code(1)
    assert c != Code(1) and hash(c) == hash(c)  # eq=False: identity
