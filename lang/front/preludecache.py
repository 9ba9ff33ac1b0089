"""The typed prelude, cached on disk between processes; each definition's body read on first use (start-up).

Typing stdlib/prelude.dl costs far more than a small program's own work, so the typed module is
pickled under a key of its text and of every stage that produced it (the loader's
`_prelude_cache_key`: an edit or an upgrade is a new key, never a stale entry). Reading all of it
back was still the largest part of `dl run` on a trivial file, and most of it is the bodies (core
terms) of definitions a small program never calls. So an entry holds two pickles:

    head     the module's id, path, exports and imports, and per definition its name, module,
             scheme and spans: all that loading a file and typing it against the prelude read;
    bodies   every definition's core term, read the first time any definition's `expr` is asked for
             (specialising or compiling a call to it), all at once.

The bodies share objects with the head: the schemes' type variables (specialisation substitutes a
scheme's variables in its definition's body: they must be the very same objects) and the prelude's
Source (a span's source is compared by identity). Those are pickled by reference (`persistent_id`)
to the head's objects, which the head lists first, so the bodies read back point at them as one
pickle would. The head carries the bodies' SHA-256, checked when the entry is read: a damaged entry
is rebuilt then, never found broken when a body is first needed.

Layout: 8 bytes (the head's length, big-endian), the head, the bodies.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Any

from ..model.spans import Source
from ..model.types import TVar
from .infer import TypedDef
from .resources import sha256

_LENGTH = 8


def write(path: Any, module: Any) -> None:
    """Write `module` (a loader Module) as an entry at `path`, atomically; never fail the run."""
    try:
        rows = [(d.name, d.module, d.scheme, d.span, d.name_span) for d in module.defs]
        payload = (module.id, module.path, module.exports, module.imports, rows)
        shared = _shared(payload)
        index = {id(obj): k for k, obj in enumerate(shared)}
        bodies = io.BytesIO()
        pickler = pickle.Pickler(bodies, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = lambda obj: index.get(id(obj)) if isinstance(obj, (TVar, Source)) else None
        pickler.dump([d.expr for d in module.defs])
        blob = bodies.getvalue()
        head = pickle.dumps((sha256(blob).digest(), shared, payload), protocol=pickle.HIGHEST_PROTOCOL)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(len(head).to_bytes(_LENGTH, "big") + head + blob)
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
        digest, shared, (module_id, module_path, exports, imports, rows) = pickle.loads(data[_LENGTH:_LENGTH + n])
        blob = data[_LENGTH + n:]
        if sha256(blob).digest() != digest:
            return None
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 — a stale or broken entry is rebuilt
        return None
    bodies = _Bodies(blob, shared)
    defs = [_lazy(name, module, scheme, span, name_span, bodies, k)
            for k, (name, module, scheme, span, name_span) in enumerate(rows)]
    return module_class(module_id, module_path, defs, exports, imports)


def _shared(payload: Any) -> list:
    """The type variables and Sources in `payload`, in a fixed order (found by pickling it once)."""
    found: list = []
    seen: set[int] = set()

    def note(obj: Any) -> None:
        if isinstance(obj, (TVar, Source)) and id(obj) not in seen:
            seen.add(id(obj))
            found.append(obj)
        return None
    pickler = pickle.Pickler(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = note
    pickler.dump(payload)
    return found


class _Bodies:
    """The definitions' bodies of one entry: unpickled on the first request, then kept."""

    def __init__(self, blob: bytes, shared: list) -> None:
        self.blob: bytes | None = blob
        self.shared = shared
        self.exprs: list | None = None

    def get(self, k: int) -> Any:
        if self.exprs is None:
            unpickler = pickle.Unpickler(io.BytesIO(self.blob))
            unpickler.persistent_load = self.shared.__getitem__
            self.exprs = unpickler.load()
            self.blob = None
        return self.exprs[k]


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
