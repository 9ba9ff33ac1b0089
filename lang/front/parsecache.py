"""Parsed files, cached on disk between processes (start-up).

Building the LALR parser — importing Lark, reading its cached tables,
compiling the lexer's regular expressions — costs more than everything else
`dl run` does on a small file. Like Python's bytecode cache, a file that
parsed before is read back instead: its syntax tree, pickled under a digest
of its text and of every stage that produced it (the grammar, the parser,
the data model: the loader's stages digest). A file that fails to parse is
never cached, so its diagnostic comes from the parser, as before; a cached
tree is the parser's own output, so every later stage sees the same tree,
spans included.

The tree's spans point at the `Source` they were parsed from; that object
is pickled by reference (`persistent_id`), so the tree read back points at
the Source of this run (its name and text), not at a copy.
"""
from __future__ import annotations

import _pickle  # pickle's own C reader, without pickle.py's imports (re, enum: start-up); pickle writes
import io
import os

from ..model import syntax as s
from ..model.spans import Source
from .resources import cache_dir, sha256

MAX_ENTRIES = 512  # past this many cached files, the oldest half is removed


def parse_program_cached(source: Source, stages: bytes) -> s.Program:
    """`parser.parse_program(source)`, read from the cache when this text parsed before under these stages."""
    directory = cache_dir()
    if directory is None:
        return _parse(source)
    folder = os.path.join(directory, "parsed")
    path = os.path.join(folder, f"{sha256(stages + source.text.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}.pickle")
    try:
        with open(path, "rb") as f:
            unpickler = _pickle.Unpickler(f)
            unpickler.persistent_load = lambda pid: source if pid == "source" else None
            program = unpickler.load()
        if isinstance(program, s.Program):
            return program
    except FileNotFoundError:
        pass
    except Exception:  # noqa: BLE001 — a stale or broken entry is parsed again
        pass
    program = _parse(source)
    _store(folder, path, program, source)
    return program


def _parse(source: Source) -> s.Program:
    from .parser import parse_program  # Lark only when a file is parsed (start-up)
    return parse_program(source)


def _store(folder, path, program: s.Program, source: Source) -> None:
    """Write the entry atomically (a concurrent dl reads a whole entry or none); never fail the run."""
    import pickle
    try:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = lambda obj: "source" if obj is source else None
        pickler.dump(program)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
        _prune(folder)
    except (OSError, pickle.PicklingError, RecursionError):
        pass


def _prune(folder) -> None:
    """Keep the cache bounded: past MAX_ENTRIES files, remove the least recently written half."""
    entries = list(os.scandir(folder))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime)
    for e in entries[: len(entries) // 2]:
        try:
            os.remove(e.path)
        except OSError:
            pass
