"""`node`: frozen, slotted dataclasses, made quickly (start-up).

The syntax trees, core terms and types are ~70 frozen slotted dataclasses,
and `dataclasses.dataclass` spends 2–3 ms on each (six `exec`s, a signature
for the docstring, the class made twice for its slots): most of `dl run`'s
start-up on a trivial file. `node` makes the same class — the same
`__init__` (positional fields, then keyword-only ones, defaults and
factories), `__eq__` and `__hash__` over the compared fields, `__repr__` over
the shown ones, `__match_args__`, `__slots__`, immutability, pickling, and the
`__dataclass_fields__` that `dataclasses.replace`, `fields` and `is_dataclass`
read — with one `exec` for `__init__` and plain closures for the rest.

    @node                                   is   @dataclass(frozen=True, slots=True)
    class Var:                                   (what it supports: field() with
        name: str                                 default, default_factory, init,
        span: Span = field(default=NO_SPAN,       repr, compare, hash, kw_only;
                           compare=False,         eq=False)
                           kw_only=True)

Anything else a class asks of `dataclass` (ClassVar, InitVar, __post_init__,
order, inheritance of fields) is refused with an error, not silently dropped.

`dataclasses` itself is not imported (it brings `inspect`, `ast`, `dis` and
`tokenize`, ~15 ms of a trivial run): `field` and `Field` here stand for
dataclasses' own, and `__dataclass_fields__` is made of real
`dataclasses.Field` objects on first use, so `dataclasses.fields`, `replace`
and `is_dataclass` work on a node as on a dataclass.  `node(frozen=False)`
makes a mutable class (eq without hash, as `dataclass` does), for the few
records that a run mutates (counters, compiled code, loaded modules).

`replace(obj, **changes)` is `dataclasses.replace` for a node, made cheap: inference rebuilds every
node of a term to fill in its type, and `dataclasses.replace` reads the class's field descriptions
and builds keyword arguments for `__init__` on each call (a quarter of the target checker's time on
a long `let` chain; issue 19 item 1).
"""
from __future__ import annotations

import sys
from operator import attrgetter
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any


class _MissingType:
    """No default (dataclasses.MISSING's stand-in: dataclasses is not imported at start-up)."""
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _MissingType()


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen node (dataclasses.FrozenInstanceError's stand-in)."""


class Field:
    """One field's description (dataclasses.Field's stand-in), from `field(...)` or a plain default."""
    __slots__ = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare", "kw_only")

    def __init__(self, default: Any, default_factory: Any, init: bool, repr: bool, hash: bool | None,
                 compare: bool, kw_only: Any) -> None:
        self.name, self.type = None, None
        self.default, self.default_factory = default, default_factory
        self.init, self.repr, self.hash, self.compare, self.kw_only = init, repr, hash, compare, kw_only


def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True, repr: bool = True,
          hash: bool | None = None, compare: bool = True, kw_only: Any = MISSING) -> Any:
    """`dataclasses.field`, for a node."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, init, repr, hash, compare, kw_only)


def node(cls: type | None = None, *, eq: bool = True, slots: bool = True, frozen: bool = True) -> Any:
    """`dataclass(frozen=frozen, slots=slots, eq=eq)`, made quickly (see the module's docstring)."""
    if cls is None:
        return lambda c: _make(c, eq, slots, frozen)
    return _make(cls, eq, slots, frozen)


def _own_field(value: Any) -> Field:
    """A class attribute as a Field: a `field(...)` here, a `dataclasses.field(...)` (if that module is in use
    already), or a plain default."""
    if isinstance(value, Field):
        return value
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is not None and isinstance(value, dataclasses.Field):
        def own(v: Any) -> Any:
            return MISSING if v is dataclasses.MISSING else v
        return Field(own(value.default), own(value.default_factory), value.init, value.repr, value.hash,
                     value.compare, own(value.kw_only))
    return field(default=value)


def _fields(cls: type) -> list[Field]:
    """The class's fields in order."""
    out = []
    namespace = cls.__dict__
    for name, annotation in namespace.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "InitVar", "typing.ClassVar")):
            raise TypeError(f"node {cls.__name__}.{name}: ClassVar and InitVar fields are not supported")
        f = _own_field(namespace.get(name, MISSING))
        if f.default is not MISSING and f.default.__class__ in (list, dict, set):
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not allowed: use default_factory")
        f.name, f.type = name, annotation
        if f.kw_only is MISSING:
            f.kw_only = False
        out.append(f)
    return out


class _Described:
    """A node class's `__dataclass_fields__` or `__dataclass_params__`, made on first use (importing dataclasses
    then): both are put on the class in place of their descriptors, so later reads are plain attributes."""

    def __init__(self, cls: type, fields: list[Field], eq: bool, frozen: bool, attr: str) -> None:
        self.cls, self.fields, self.eq, self.frozen, self.attr = cls, fields, eq, frozen, attr

    def __get__(self, obj: Any, owner: type) -> Any:
        import dataclasses

        def theirs(v: Any) -> Any:
            return dataclasses.MISSING if v is MISSING else v
        described = {}
        for f in self.fields:
            d = dataclasses.field(default=theirs(f.default), default_factory=theirs(f.default_factory), init=f.init,
                                  repr=f.repr, hash=f.hash, compare=f.compare, kw_only=f.kw_only)
            d.name, d.type = f.name, f.type
            d._field_type = dataclasses._FIELD  # what dataclasses.fields() and replace() look for
            described[f.name] = d
        type.__setattr__(self.cls, "__dataclass_fields__", described)
        type.__setattr__(self.cls, "__dataclass_params__",
                         dataclasses._DataclassParams(True, True, self.eq, False, False, self.frozen))
        return self.cls.__dict__[self.attr]


def _make(cls: type, eq: bool, slots: bool, frozen: bool = True) -> type:
    for base in cls.__mro__[1:-1]:
        if "_node_fields" in base.__dict__ or hasattr(base, "__dataclass_fields__"):
            raise TypeError(f"node {cls.__name__}: inheriting fields is not supported")
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"node {cls.__name__}: __post_init__ is not supported")
    fields = _fields(cls)
    names = tuple(f.name for f in fields)

    if slots:  # the class again, with slots (a class's __slots__ are fixed when it is made)
        namespace = {k: v for k, v in cls.__dict__.items() if k not in names and k not in ("__dict__", "__weakref__")}
        namespace["__slots__"] = names
        namespace["__qualname__"] = cls.__qualname__
        cls = type(cls)(cls.__name__, cls.__bases__, namespace)
    else:  # defaults stay class attributes, as dataclasses leaves them
        for f in fields:
            if f.name in cls.__dict__:  # (a plain default or a field(...))
                if f.default is MISSING:
                    delattr(cls, f.name)
                else:
                    setattr(cls, f.name, f.default)

    for attr in ("__dataclass_fields__", "__dataclass_params__"):
        setattr(cls, attr, _Described(cls, fields, eq, frozen, attr))
    cls._node_fields = tuple(fields)
    cls.__match_args__ = tuple(f.name for f in fields if f.init and not f.kw_only)
    cls.__init__ = _lazy_init(cls, fields)
    _add_repr(cls, [f.name for f in fields if f.repr])
    compared = [f.name for f in fields if f.compare]
    if eq:
        _add_eq_hash(cls, compared, [f.name for f in fields if (f.compare if f.hash is None else f.hash)], frozen)
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
    if slots:  # (a frozen class with a __dict__ pickles as any other)
        cls.__getstate__ = _state_of(names)
        cls.__setstate__ = _setstate_of(names)
        if frozen and all(f.init for f in fields):  # (a field not set by __init__ is not copied by replace)
            cls._node_replace = _lazy_replace(cls, names)
    return cls


def replace(obj: Any, /, **changes: Any) -> Any:
    """`dataclasses.replace(obj, **changes)`: a copy of `obj` with the fields `changes` set (a TypeError for a
    name that is not a field); quick for a slotted node, whose copy is made by one generated function."""
    fast = getattr(obj.__class__, "_node_replace", None)
    if fast is not None:
        return fast(obj, **changes)
    fields = getattr(obj.__class__, "_node_fields", None)
    if fields is None:
        import dataclasses
        return dataclasses.replace(obj, **changes)
    for f in fields:  # as dataclasses.replace: every init field, from the changes or from obj
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with replace()")
            continue
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)
def _lazy_replace(cls: type, names: tuple) -> Any:
    """The class's copy-with-changes function, written on its first call: `(obj, *, a=K, b=K)` making a new
    instance with each slot set to the change given or else `obj`'s (no `__init__`: the values are a
    node's already, and a frozen class's `__init__` sets each slot the same way)."""
    def first(obj: Any, **changes: Any) -> Any:
        consts: dict[str, Any] = {"_set": object.__setattr__, "_new": object.__new__, "_cls": cls, "_K": _KEEP}
        params = ", ".join(f"{n}=_K" for n in names)
        body = "".join(f"\n    _set(new, {n!r}, obj.{n} if {n} is _K else {n})" for n in names)
        exec(f"def _node_replace(obj, *, {params}):\n    new = _new(_cls){body}\n    return new\n",  # noqa: S102
             consts)
        cls._node_replace = staticmethod(consts["_node_replace"])
        return cls._node_replace(obj, **changes)
    return staticmethod(first)


_KEEP = object()  # (a field not among the changes keeps its value)


def _lazy_init(cls: type, fields: list[Field]) -> Any:
    """An `__init__` that writes the real one on its first call (most node classes are never built by a
    run that loads the prelude from its cache) and then hands over to it."""
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        real = _init(cls, fields)
        cls.__init__ = real
        real(self, *args, **kwargs)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _init(cls: type, fields: list[Field]) -> Any:
    """`__init__(self, a, b=..., *, span=...)`, setting each slot (one exec per class)."""
    consts: dict[str, Any] = {"_set": object.__setattr__, "MISSING": MISSING}
    params, kw_params, body = ["self"], [], []
    for f in fields:
        if not f.init:
            if f.default is not MISSING:
                consts[f"_d_{f.name}"] = f.default
                body.append(f"_set(self, {f.name!r}, _d_{f.name})")
            elif f.default_factory is not MISSING:
                consts[f"_f_{f.name}"] = f.default_factory
                body.append(f"_set(self, {f.name!r}, _f_{f.name}())")
            continue
        if f.default is not MISSING:
            consts[f"_d_{f.name}"] = f.default
            param, value = f"{f.name}=_d_{f.name}", f.name
        elif f.default_factory is not MISSING:
            consts[f"_f_{f.name}"] = f.default_factory
            param, value = f"{f.name}=MISSING", f"_f_{f.name}() if {f.name} is MISSING else {f.name}"
        else:
            param, value = f.name, f.name
        (kw_params if f.kw_only else params).append(param)
        body.append(f"_set(self, {f.name!r}, {value})")
    if kw_params:
        params += ["*"] + kw_params
    source = f"def __init__({', '.join(params)}):\n    " + ("\n    ".join(body) or "pass") + "\n"
    exec(source, consts)  # noqa: S102 — the source is made here, from field names
    init = consts["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _add_repr(cls: type, shown: list[str]) -> None:
    getters = [(n, attrgetter(n)) for n in shown]
    qualname = cls.__qualname__

    def __repr__(self) -> str:
        return f"{qualname}(" + ", ".join(f"{n}={g(self)!r}" for n, g in getters) + ")"
    cls.__repr__ = __repr__


def _add_eq_hash(cls: type, compared: list[str], hashed: list[str], frozen: bool) -> None:
    """__eq__ and __hash__ as dataclasses writes them: over the tuple of compared fields; a mutable class is
    unhashable."""
    key = _key(compared)
    hash_key = _key(hashed)

    def __eq__(self, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(hash_key(self))
    cls.__eq__ = __eq__
    cls.__hash__ = __hash__ if frozen else None


def _key(names: list[str]) -> Any:
    """A function from an object to the tuple of its fields `names` (always a tuple, as dataclasses')."""
    if not names:
        return lambda self: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda self: (one(self),)
    return attrgetter(*names)


def _frozen_setattr(self, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _state_of(names: tuple) -> Any:
    get = _key(list(names))

    def __getstate__(self) -> tuple:
        return get(self)
    return __getstate__


def _setstate_of(names: tuple) -> Any:
    """`__setstate__` (unpickling: the prelude's cache holds thousands of nodes), written on first use as
    one assignment per slot."""
    def __setstate__(self, state: tuple) -> None:
        cls = type(self)
        consts: dict[str, Any] = {"_set": object.__setattr__}
        body = "".join(f"\n    _set(self, {n!r}, state[{i}])" for i, n in enumerate(names)) or "\n    pass"
        exec(f"def __setstate__(self, state):{body}\n", consts)  # noqa: S102 — made here, from field names
        cls.__setstate__ = consts["__setstate__"]
        cls.__setstate__(self, state)
    return __setstate__


__all__ = ["node", "replace", "field", "Field", "MISSING", "FrozenInstanceError"]
