"""Loading programs: files, imports, the prelude, and the scope each module sees.

A *module* is one loaded file (or one REPL input). Its names, most local
first: its own definitions, then what its imports export (a later import
shadows an earlier one, as OCaml's `open`), then the prelude, then the
built-ins. A module exports its own definitions and everything it imports.

The `World` holds every typed definition loaded so far, keyed by
(module, name); stages after inference look definitions up there.
"""
from __future__ import annotations

import os
from functools import lru_cache

from ..model.nodes import field, node
from ..model import syntax as s
from ..model import core as c
from .desugar import Definition, Desugarer, Fresh, names_in
from .files import Unreadable, read_source
from ..model.errors import DlImportError, DlNameError
from .infer import Inferencer, TypedDef
from .parsecache import parse_program_cached  # Lark only on a file not parsed before (start-up)
from . import preludecache
from ..model.primitives import OPERATOR_NAMES, PRIMITIVES, user_visible
from .resources import cache_dir, grammar_path, prelude_path, sha256
from ..model.spans import Source, Span
from ..model.types import Scheme

PRELUDE = "prelude"

_LOADED_PRELUDES: dict[str, "Module"] = {}  # cache key -> the typed prelude: a pure memo (see load_prelude)


@node(slots=False, frozen=False)  # a mutable dataclass, made quickly (start-up)
class Module:
    """A loaded module: its id, its own definitions, and the names it exports."""

    id: str
    path: str | None
    defs: list[TypedDef]
    exports: dict[str, tuple[str, str]]  # name -> (module, name)
    imports: list[str] = field(default_factory=list)


class World:
    """Every definition loaded so far (prelude, files, REPL inputs), typed."""

    def __init__(self) -> None:
        self.defs: dict[tuple[str, str], TypedDef] = {}
        self.schemes: dict[tuple[str, str], Scheme] = {}
        self.modules: dict[str, Module] = {}
        self.prelude_exports: dict[str, tuple[str, str]] = {}

    def add(self, module: Module) -> None:
        self.modules[module.id] = module
        for d in module.defs:
            self.defs[(d.module, d.name)] = d
            self.schemes[(d.module, d.name)] = d.scheme

    # -- scopes
    def resolver(self, own: dict[str, tuple[str, str]], imported: dict[str, tuple[str, str]]):
        """The name resolution function of a module (see the module docstring)."""

        def resolve(name: str):
            key = own.get(name) or imported.get(name) or self.prelude_exports.get(name)
            if key is not None:
                return c.Global(key[1], key[0])
            if name in PRIMITIVES and name not in OPERATOR_NAMES:
                return PRIMITIVES[name]  # (a target-only primitive is refused by the desugarer in a program)
            return None

        return resolve

    def names_in_scope(self, own: dict, imported: dict) -> list[str]:
        builtins = user_visible()
        return list(own) + list(imported) + list(self.prelude_exports) + builtins


class Loader:
    """Loads files with their imports into a World."""

    def __init__(self, world: World):
        self.world = world
        self.loading: list[str] = []  # the chain of files being loaded, for cycle errors

    # -- the prelude
    def load_prelude(self) -> None:
        """Load stdlib/prelude.dl: once per process (a memo shared by every world: the typed prelude is
        never changed after loading — later stages instantiate its schemes, they do not unify with
        them), and from the on-disk cache when nothing it depends on changed."""
        path = prelude_path()
        with open(path, encoding="utf-8") as f:
            text = f.read()
        key = _prelude_cache_key(text, path)
        module = _LOADED_PRELUDES.get(key)
        if module is not None:
            self.world.add(module)
            self.world.prelude_exports = dict(module.exports)
            return
        directory = cache_dir()
        cached = os.path.join(directory, f"prelude-{key}.pickle") if directory else None
        if cached is not None:
            module = preludecache.read(cached, Module)  # (its definitions' bodies are read on first use)
        if module is None:
            module = self.load_source(Source(path, text), PRELUDE, with_prelude=False)
            if cached is not None:
                preludecache.write(cached, module)
        else:
            self.world.add(module)
        _LOADED_PRELUDES[key] = module
        self.world.prelude_exports = dict(module.exports)

    # -- files
    def load_file(self, path: str, span: Span | None = None, written: str | None = None) -> Module:
        """Load a file and (first) everything it imports (`written`: the path as the import wrote it)."""
        full = os.path.abspath(path)
        if full in self.world.modules:
            return self.world.modules[full]
        if full in self.loading:
            chain = self.loading[self.loading.index(full):] + [full]
            names = " -> ".join(os.path.relpath(p) for p in chain)
            raise DlImportError(f"import cycle: {names}", span or Span(None, 0, 0, 0, 0))
        try:  # (only a regular file of bounded size: lang/front/files.py; a byte-order mark is not the program's)
            text = read_source(full).decode("utf-8-sig")
        except (Unreadable, UnicodeDecodeError) as e:
            if isinstance(e, UnicodeDecodeError):
                reason = f"it is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})"
            else:
                reason = str(e)
            if span is None and isinstance(e, UnicodeDecodeError):  # the file given: point at the byte
                before = e.object[:e.start].decode("utf-8", "replace")
                line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
                shown = Source(path, e.object.decode("utf-8", "replace"))
                raise DlImportError(f"cannot read {path}: {reason}", Span(shown, line, col, line, col + 1)) from None
            if span is None:  # the file given on the command line
                raise DlImportError(f"cannot read {path}: {reason}") from None
            raise DlImportError(f'cannot import "{written or path}": {reason} (looked for {full})', span) from None
        self.loading.append(full)
        try:
            return self.load_source(Source(path, text), full)
        finally:
            self.loading.pop()

    def load_source(self, source: Source, module_id: str, with_prelude: bool = True,
                    base_dir: str | None = None) -> Module:
        """Parse, resolve imports, desugar and type a module's text."""
        program = parse_program_cached(source, _stages_digest())
        directory = base_dir if base_dir is not None else os.path.dirname(os.path.abspath(source.name))
        module, _ = self.declare(list(program.decls), source, module_id, {}, directory, path=source.name)
        return module

    def declare(self, decls: list, source: Source, module_id: str, scope: dict[str, tuple[str, str]],
                base_dir: str, path: str | None = None) -> tuple[Module, list[Module]]:
        """Add one unit of declarations — a file, or a REPL input — to the world (PLZoo's
        `exec(env, command) -> env`): its imports first (relative to `base_dir`), then its definitions,
        typed together, seeing `scope` (what is already in scope: a REPL session's names), the imports'
        exports and one another. Returns the module and the modules it imported."""
        imported: dict[str, tuple[str, str]] = {}
        modules = []
        for decl in decls:
            if isinstance(decl, s.Import):
                written = os.path.expanduser(decl.path)
                target = written if os.path.isabs(written) else os.path.join(base_dir, written)
                mod = self.load_file(shown_path(target), decl.span, decl.path)
                imported.update(mod.exports)
                modules.append(mod)
        defs = [d for d in decls if isinstance(d, s.Def)]
        own = self.own_names(defs, module_id)
        typed = self.define(defs, source, module_id, own, {**scope, **imported}, default_main=module_id != PRELUDE)
        module = Module(module_id, path, typed, {**imported, **own}, [m.id for m in modules])
        if defs or path is not None:  # a REPL input that only imports adds no module
            self.world.add(module)
        return module, modules

    def own_names(self, defs: list[s.Def], module_id: str) -> dict[str, tuple[str, str]]:
        own: dict[str, tuple[str, str]] = {}
        first: dict[str, s.Def] = {}
        for d in defs:
            if d.name in first:
                raise DlNameError(f"`{d.name}` is defined twice in this file (first on line {first[d.name].span.line})",
                                  d.name_span)
            if d.name == "_":
                raise DlNameError("`_` cannot be defined", d.name_span)
            first[d.name] = d
            own[d.name] = (module_id, d.name)
        return own

    def define(self, defs: list[s.Def], source: Source, module_id: str, own: dict, imported: dict,
               default_main: bool) -> list[TypedDef]:
        """Desugar and infer a batch of definitions that see `own` and `imported` names."""
        resolve = self.world.resolver(own, imported)
        desugarer = Desugarer(resolve, Fresh(names_in(source.text)), lambda: self.world.names_in_scope(own, imported))
        core_defs: list[Definition] = [desugarer.definition(d, module_id) for d in defs]
        return infer_definitions(core_defs, dict(self.world.schemes), default_main=default_main)


def shown_path(path: str) -> str:
    """A path as a user would write it: relative to the current directory when below it."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else path


def infer_definitions(defs: list[Definition], globals_: dict, default_main: bool = True) -> list[TypedDef]:
    """Infer a batch of top-level definitions, a strongly connected group at a time, dependencies first:
    mutually recursive definitions are monomorphic among themselves and polymorphic to the rest."""
    inf = Inferencer(globals_)
    order = {(d.module, d.name): k for k, d in enumerate(defs)}
    typed: list[TypedDef] = []
    for group in components(defs):
        typed.extend(inf.infer_group(group, default_main))
    typed.sort(key=lambda t: order[(t.module, t.name)])
    return typed


def globals_of(e: c.Expr, out: set) -> set:
    """The (module, name) keys of the top-level definitions `e` refers to."""
    stack = [e]
    while stack:
        t = stack.pop()
        if isinstance(t, c.Global):
            out.add((t.module, t.name))
        else:
            stack.extend(c.children(t))
    return out


def components(defs: list) -> list[list]:
    """Tarjan's algorithm, iteratively: groups of mutually recursive definitions, dependencies first."""
    by_key = {(d.module, d.name): d for d in defs}
    deps = {k: [x for x in sorted(globals_of(d.expr, set())) if x in by_key] for k, d in by_key.items()}
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    out: list[list] = []

    def visit(node) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in by_key:
        if root in index:
            continue
        visit(root)
        work = [(root, iter(deps[root]))]
        while work:
            node, successors = work[-1]
            for v in successors:
                if v not in index:
                    visit(v)
                    work.append((v, iter(deps[v])))
                    break
                if v in on_stack:
                    low[node] = min(low[node], index[v])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        v = stack.pop()
                        on_stack.discard(v)
                        group.append(by_key[v])
                        if v == node:
                            break
                    out.append(group[::-1])
    return out


def _prelude_cache_key(text: str, path: str) -> str:
    """Changes when the prelude or any stage that produced the cached result changes: the grammar and
    every module of the data model and the front end; and with the prelude's path, which its spans hold (an
    error raised inside the prelude names it): two installations with the same prelude keep an entry each."""
    h = sha256(text.encode())
    h.update(b"\0" + path.encode("utf-8", "surrogateescape"))
    h.update(_stages_digest())
    return h.hexdigest()[:20]


@lru_cache(maxsize=1)
def _stages_digest() -> bytes:
    """A digest of the grammar and the model and front-end modules (they do not change while dl runs)."""
    h = sha256()
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for layer in ("model", "front"):
        folder = os.path.join(package, layer)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    h.update(f.read())
    with open(grammar_path(), "rb") as f:
        h.update(f.read())
    return h.digest()
