"""The typed prelude, cached on disk between processes; each definition's body read on first use (start-up).

Typing stdlib/prelude.dl costs far more than a small program's own work, so the typed module is
pickled under a key of its text and of every stage that produced it (the loader's
`_prelude_cache_key`: an edit or an upgrade is a new key, never a stale entry). Reading all of it
back was still the largest part of `dl run` on a trivial file, and most of it is the bodies (core
terms) of definitions a small program never calls. So an entry holds

    a head   the module's id, path, exports and imports, and per definition its name, module,
             scheme and spans: all that loading a file and typing it against the prelude read;
    bodies   one pickle per definition's core term, read the first time that definition's `expr`
             is asked for (specialising or compiling a call to it).

The pickles share objects, as one pickle of the module would: the schemes' type variables
(specialisation substitutes a scheme's variables in its definition's body: they must be the very
same objects), variables that two bodies mention (a recursive group is typed together), and the
prelude's Source (a span's source is compared by identity). The head lists them first; the bodies
refer to them by index (`persistent_id`), so what is read back points at the same objects. The head
carries the bodies' SHA-256, checked when the entry is read: a damaged entry is rebuilt then, never
found broken when a body is first needed.

Layout: 8 bytes (the head's length, big-endian), the head, the bodies one after the other.
"""
from __future__ import annotations

import _pickle  # pickle's own C reader, without pickle.py's imports (re, enum: start-up); pickle writes
import io
import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

from ..model.spans import Source
from ..model.types import TVar
from .infer import TypedDef
from .resources import sha256

_LENGTH = 8


def write(path: Any, module: Any) -> None:
    """Write `module` (a loader Module) as an entry at `path`, atomically; never fail the run."""
    import pickle
    try:
        rows = [(d.name, d.module, d.scheme, d.span, d.name_span) for d in module.defs]
        payload = (module.id, module.path, module.exports, module.imports, rows)
        exprs = [d.expr for d in module.defs]
        shared = _shared(payload, exprs)
        index = {id(obj): k for k, obj in enumerate(shared)}
        blob, bounds = io.BytesIO(), []
        for e in exprs:
            start = blob.tell()
            pickler = pickle.Pickler(blob, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.persistent_id = lambda obj: index.get(id(obj)) if isinstance(obj, (TVar, Source)) else None
            pickler.dump(e)
            bounds.append((start, blob.tell()))
        data = blob.getvalue()
        head = pickle.dumps((sha256(data).digest(), shared, payload, bounds), protocol=pickle.HIGHEST_PROTOCOL)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(len(head).to_bytes(_LENGTH, "big") + head + data)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, RecursionError):
        pass


def read(path: Any, module_class: type) -> Any | None:
    """The module of the entry at `path` (a `module_class`), its bodies not yet read; None when there is
    no entry or it is damaged (the caller types the prelude again and writes a new one)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:_LENGTH], "big")
        digest, shared, (module_id, module_path, exports, imports, rows), bounds = \
            _pickle.loads(data[_LENGTH:_LENGTH + n])
        blob = data[_LENGTH + n:]
        if sha256(blob).digest() != digest or len(bounds) != len(rows):
            return None
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 — a stale or broken entry is rebuilt
        return None
    bodies = _Bodies(blob, bounds, shared)
    defs = [_lazy(name, module, scheme, span, name_span, bodies, k)
            for k, (name, module, scheme, span, name_span) in enumerate(rows)]
    return module_class(module_id, module_path, defs, exports, imports)


def _shared(payload: Any, exprs: list) -> list:
    """The objects that the head and the bodies share, in a fixed order: every type variable and Source
    of the head, every Source of the bodies, every variable that more than one body mentions — and
    every variable reachable from those (a variable bound to a type mentions that type's)."""
    owners: dict[int, int] = {}
    found: dict[int, Any] = {}
    for e in exprs:
        for obj in _found(e):
            owners[id(obj)] = owners.get(id(obj), 0) + 1
            found[id(obj)] = obj
    head = _found(payload)
    inside = {id(obj) for obj in head}
    more = [obj for i, obj in found.items() if i not in inside and (owners[i] > 1 or isinstance(obj, Source))]
    return _found((head, more))


def _found(obj: Any) -> list:
    """The type variables and Sources reachable from `obj`, in a fixed order (found by pickling it once)."""
    found: list = []
    seen: set[int] = set()

    def note(o: Any) -> None:
        if isinstance(o, (TVar, Source)) and id(o) not in seen:
            seen.add(id(o))
            found.append(o)
        return None
    import pickle
    pickler = pickle.Pickler(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = note
    pickler.dump(obj)
    return found


class _Bodies:
    """The definitions' bodies of one entry, each unpickled on its first request, then kept."""

    def __init__(self, blob: bytes, bounds: list, shared: list) -> None:
        self.blob = blob
        self.bounds = bounds
        self.shared = shared
        self.exprs: dict[int, Any] = {}

    def get(self, k: int) -> Any:
        e = self.exprs.get(k)
        if e is None:
            start, end = self.bounds[k]
            unpickler = _pickle.Unpickler(io.BytesIO(self.blob[start:end]))
            unpickler.persistent_load = self.shared.__getitem__
            e = self.exprs[k] = unpickler.load()
        return e


class LazyTypedDef(TypedDef):
    """A prelude definition read from the cache: a TypedDef whose `expr` is unpickled when first read."""

    @property
    def expr(self) -> Any:
        state = self.__dict__
        if "expr" not in state:
            bodies, k = state.pop("_body")
            state["expr"] = bodies.get(k)
        return state["expr"]

    @expr.setter
    def expr(self, value: Any) -> None:  # (TypedDef's __init__ sets it, as for a TypedDef)
        self.__dict__["expr"] = value

    def __reduce__(self) -> tuple:
        """Pickled (and copied) as the plain TypedDef it stands for."""
        return TypedDef, (self.name, self.module, self.expr, self.scheme, self.span, self.name_span)


def _lazy(name: str, module: str, scheme: Any, span: Any, name_span: Any, bodies: _Bodies, k: int) -> LazyTypedDef:
    d = object.__new__(LazyTypedDef)
    d.__dict__.update(name=name, module=module, scheme=scheme, span=span, name_span=name_span, _body=(bodies, k))
    return d
