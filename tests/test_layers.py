"""The package is layered one way, and has no import cycle.

    model        spans, errors, syntax and core trees, types, values, the primitive table
    front        source text to typed, specialised core terms: parser, desugar, infer, mono, loader
    transforms   term to term: ←D, →D, simplification, the target checker and reader
    back         running terms: the compiler to Python, the linear runtime, the AD kernel, the machine
    modes        the mode table and the modes' runtimes
    tools        what users run: the pipeline, cli, compare, report, workbench, repl

A module may import from its own layer and the layers above it in this list,
never from one below (a *back edge*). Within and across layers the imports
form no cycle — counting imports inside functions, which hide a cycle
rather than remove it. An import inside a function is allowed only to keep
start-up quick (a command's own stages, an optional package), and says so
in a comment on its line.

Anyone can run the check: `pytest tests/test_layers.py`.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

LAYERS = ["model", "front", "transforms", "back", "modes", "tools"]
PACKAGE = ROOT / "lang"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "lang" or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The lang modules an import statement refers to."""
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    if not base.startswith("lang"):
        return []
    out = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        out.append(candidate if candidate in MODULES else base)
    return out


def _block(lines: list[str], i: int) -> str:
    """The contiguous block of import lines around line index i (one comment may speak for a group)."""
    def is_import(k: int) -> bool:
        return 0 <= k < len(lines) and lines[k].strip().startswith(("from ", "import "))
    lo, hi = i, i
    while is_import(lo - 1):
        lo -= 1
    while is_import(hi + 1):
        hi += 1
    return "\n".join(lines[lo:hi + 1])


def imports() -> list[tuple[str, str, int, bool, str]]:
    """(importer, imported, line, inside a function, its import block's text) for every lang import."""
    out = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        inside: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside |= {id(n) for n in ast.walk(node) if n is not node}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                targets = resolve(module, path.name == "__init__.py", node)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("lang")]
            for t in targets:
                if t != module and t in MODULES:
                    out.append((module, t, node.lineno, id(node) in inside, _block(lines, node.lineno - 1)))
    return out


IMPORTS = imports()


def test_every_module_is_in_a_layer():
    loose = [m for m in MODULES if layer(m) is None and m not in ("lang", "lang.__main__")]
    assert loose == []


def test_no_back_edge():
    back = [f"{a} (layer {LAYERS[layer(a)]}) imports {b} (layer {LAYERS[layer(b)]}) at line {line}"
            for a, b, line, _, _ in IMPORTS
            if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert back == []


def test_no_import_cycle():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for a, b, *_ in IMPORTS:
        if not b.startswith(a + "."):  # a package's __init__ importing its own modules is not a cycle
            graph[a].add(b)
    colour: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        colour[m] = 1
        for n in sorted(graph[m]):
            if colour.get(n) == 1:
                cycles.append(" -> ".join(path[path.index(n):] + [n]) if n in path else f"{m} -> {n}")
            elif n not in colour:
                visit(n, path + [n])
        colour[m] = 2

    for m in sorted(graph):
        if m not in colour:
            visit(m, [m])
    assert cycles == []


def test_imports_inside_functions_say_why():
    silent = sorted({f"{a}:{line}: {text.strip()}" for a, b, line, inside, text in IMPORTS
                     if inside and "#" not in text})
    assert silent == []
