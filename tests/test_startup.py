"""Start-up: what `dl run` on a small program does not do, and the caches it reads instead (issue 16).

Timing is measured by benchmarks/startup_ratio.py, never here. These tests hold the shortcuts to
their meaning: a trivial run imports none of what it does not use; `dl run FILE ARG...` read without
argparse is the namespace argparse gives; the prelude read back from its cache, its bodies on first
use, is the prelude typed from source — shared type variables included — and a damaged, stale or
unwritable cache changes nothing but the time.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import fields, is_dataclass

import pytest

from conftest import ROOT
from lang.front import loader as loader_module
from lang.front import preludecache
from lang.front.loader import Loader, Module, World
from lang.model.spans import Source
from lang.model.types import TVar
from lang.tools.arguments import parse
from lang.tools.cli import quick_run

SCALAR = "def main = 1 + 2\n"
PRELUDE_USER = ("def f x = sum (map (fun y -> y * x) [1.0, 2.0])\n"
                "def main = (grad f 3.0, foldr (fun a b -> a + b) 0 [1, 2, 3], length (range 4))\n")
PRELUDE_USER_OUT = "(3.0, 6.0, 4)\n"  # d(3x)/dx; 1+2+3 (numbers default to Real); 0..3


def _dl(path: str, cache: str, *extra: str, probe: str = "") -> subprocess.CompletedProcess:
    """`dl run path` in a fresh interpreter with its own cache directory; `probe` runs after it (in-process;
    `before`: the modules the interpreter had loaded before dl's, such as an editable install's finder's)."""
    code = ("import sys\nbefore = set(sys.modules)\nfrom lang.tools.cli import main\n"
            f"code = main(['run', {path!r}, *{list(extra)!r}])\n{probe}\nsys.exit(code)\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DL_CACHE_DIR": cache}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), env=env,
                          timeout=120)


# ---- what a trivial run does not import --------------------------------------------------------------------

NOT_FOR_A_TRIVIAL_RUN = ["numpy", "lark", "argparse", "shutil", "urllib.parse", "ctypes", "signal", "unicodedata", "traceback",
                         "dataclasses", "inspect", "typing", "re", "pickle", "importlib", "contextlib", "lang.back.kernel",
                         "lang.back.languages", "lang.transforms.backprop", "lang.transforms.check",
                         "lang.front.parser"]


def test_a_trivial_run_imports_neither_numpy_lark_argparse_nor_the_ad_kernel(tmp_path):
    program = tmp_path / "trivial.dl"
    program.write_text(SCALAR)
    probe = f"print(sorted(m for m in {NOT_FOR_A_TRIVIAL_RUN!r} if m in sys.modules and m not in before))"
    cache = str(tmp_path / "cache")
    first = _dl(str(program), cache, probe=probe)  # (parses the file and types the prelude: Lark is allowed)
    assert first.returncode == 0 and first.stdout.startswith("3.0\n"), first.stderr
    second = _dl(str(program), cache, probe=probe)  # both caches warm: the start-up the benchmark measures
    assert (second.returncode, second.stdout, second.stderr) == (0, "3.0\n[]\n", "")


def test_a_program_that_differentiates_still_gets_the_kernel(tmp_path):
    program = tmp_path / "grad.dl"
    program.write_text(PRELUDE_USER)
    probe = "print('lang.back.kernel' in sys.modules)"
    cache = str(tmp_path / "cache")
    for _ in range(2):  # typing the prelude, then reading it from the cache
        out = _dl(str(program), cache, probe=probe)
        assert (out.returncode, out.stdout, out.stderr) == (0, PRELUDE_USER_OUT + "True\n", "")


def test_the_dl_script_imports_only_what_a_trivial_run_does(tmp_path):
    """The installed `dl` is bin/dl (pyproject's script-files): the wrapper pip writes for an entry point would
    import `re` first (about 5 ms of a trivial run's 90). The script itself, run as pip installs it."""
    program = tmp_path / "trivial.dl"
    program.write_text(SCALAR)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DL_CACHE_DIR": str(tmp_path / "cache")}

    def imported(*args: str) -> set[str]:
        out = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env=env,
                             timeout=120)
        assert out.returncode == 0 and out.stdout == ("" if "-c" in args else "3.0\n"), out.stderr
        return {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    imported(str(ROOT / "bin" / "dl"), "run", str(program))  # (parses the file and types the prelude: Lark)
    # both caches warm, without `site` (an editable install's finder imports `re` itself: -S leaves it out, and
    # a trivial run needs nothing from site-packages)
    before = imported("-S", "-c", "pass")
    after = imported("-S", str(ROOT / "bin" / "dl"), "run", str(program))
    assert "lang.tools.cli" in after
    assert not (after - before) & set(NOT_FOR_A_TRIVIAL_RUN), (after - before) & set(NOT_FOR_A_TRIVIAL_RUN)


# ---- `dl run FILE ARG...` without argparse -------------------------------------------------------------------

QUICK = [["run", "f.dl"], ["run", "f.dl", "3", "2.5"], ["run", "f.dl", "(1.0, 2.0)", "[1, 2]", "true"],
         ["run", "run"], ["run", "f.dl", "data.csv"], ["run", "a b.dl", ""]]
NOT_QUICK = [["run"], [], ["check", "f.dl"], ["run", "f.dl", "-2.5"], ["run", "--cost", "f.dl"],
             ["run", "f.dl", "--mode", "tape"], ["run", "-h"], ["run", "f.dl", "--"], ["transform", "f.dl"],
             ["--debug", "run", "f.dl"], ["run", "f.dl", "--budget", "3"], ["repl"]]


@pytest.mark.parametrize("argv", QUICK, ids=lambda a: " ".join(a))
def test_quick_run_reads_what_argparse_reads(argv):
    assert vars(quick_run(argv)) == vars(parse(argv))


@pytest.mark.parametrize("argv", NOT_QUICK, ids=lambda a: " ".join(a) or "(none)")
def test_quick_run_leaves_options_and_other_commands_to_argparse(argv):
    assert quick_run(argv) is None


# ---- the prelude's cache -------------------------------------------------------------------------------------


def _typed_prelude() -> Module:
    """The prelude typed from its source (no cache, no memo)."""
    world = World()
    loader = Loader(world)
    with open(loader_module.prelude_path(), encoding="utf-8") as f:
        text = f.read()
    return loader.load_source(Source(loader_module.prelude_path(), text), loader_module.PRELUDE,
                              with_prelude=False)


def _canonical(obj, names: dict):
    """obj as nested tuples, each type variable named by the order in which it is first met (by identity):
    two structures that share variables the same way are equal, whatever the variables' addresses."""
    if isinstance(obj, TVar):
        if obj.link is not None:
            return _canonical(obj.link, names)
        return ("tvar", names.setdefault(id(obj), len(names)), obj.constraint)
    if isinstance(obj, Source):
        return ("source", obj.name)
    if isinstance(obj, (list, tuple)):
        return tuple(_canonical(x, names) for x in obj)
    if is_dataclass(obj):
        return (type(obj).__name__,) + tuple(_canonical(getattr(obj, f.name), names) for f in fields(obj))
    return obj


def _variables(canonical) -> set[int]:
    """The numbers of the type variables in a canonical structure."""
    if isinstance(canonical, tuple):
        if len(canonical) == 3 and canonical[0] == "tvar":
            return {canonical[1]}
        return set().union(*(_variables(x) for x in canonical))
    return set()


def _sharing(module: Module) -> list:
    """Every definition's name, scheme and body, canonically, with the variables numbered across the module."""
    names: dict[int, int] = {}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        return [(d.name, _canonical(d.scheme, names), _canonical(d.expr, names)) for d in module.defs]
    finally:
        sys.setrecursionlimit(limit)


def test_the_cached_prelude_is_the_typed_prelude_bodies_read_on_first_use(tmp_path):
    fresh = _typed_prelude()
    path = tmp_path / "prelude.pickle"
    preludecache.write(path, fresh)
    cached = preludecache.read(path, Module)
    assert cached is not None
    assert (cached.id, cached.path, cached.exports, cached.imports) == \
           (fresh.id, fresh.path, fresh.exports, fresh.imports)
    assert all("expr" not in vars(d) for d in cached.defs)  # nothing unpickled yet
    fresh_sharing = _sharing(fresh)
    shared = [n for n, scheme, body in fresh_sharing if _variables(scheme) & _variables(body)]
    assert len(shared) > 10  # bodies do mention their schemes' variables: the comparison below sees identity
    assert _sharing(cached) == fresh_sharing
    assert all(d.span.source is cached.defs[0].span.source for d in cached.defs)
    body_spans = [e.span.source for d in cached.defs for e in [d.expr] if e.span.source is not None]
    assert body_spans and all(s is cached.defs[0].span.source for s in body_spans)
    copy = pickle.loads(pickle.dumps(cached.defs[0]))  # pickled as the TypedDef it stands for
    assert type(copy).__name__ == "TypedDef" and copy.name == cached.defs[0].name


def test_a_damaged_prelude_entry_is_refused_and_rebuilt(tmp_path):
    path = tmp_path / "prelude.pickle"
    preludecache.write(path, _typed_prelude())
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # a body's byte
    path.write_bytes(bytes(data))
    assert preludecache.read(path, Module) is None
    path.write_bytes(b"\x00" * 5)
    assert preludecache.read(path, Module) is None
    assert preludecache.read(tmp_path / "absent.pickle", Module) is None


def test_runs_agree_whatever_the_cache_holds(tmp_path):
    """Cold, warm, damaged and unwritable caches: the same output; a damaged entry is written again."""
    program = tmp_path / "p.dl"
    program.write_text(PRELUDE_USER)
    cache = tmp_path / "cache"
    for _ in range(2):
        out = _dl(str(program), str(cache))
        assert (out.returncode, out.stdout, out.stderr) == (0, PRELUDE_USER_OUT, "")
    [entry] = cache.glob("prelude-*.pickle")
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])  # cut short, as by a full disk
    out = _dl(str(program), str(cache))
    assert (out.returncode, out.stdout, out.stderr) == (0, PRELUDE_USER_OUT, "")
    assert preludecache.read(entry, Module) is not None  # (written again, whole)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    out = _dl(str(program), str(blocked / "cache"))  # no cache directory can be made: typed every time
    assert (out.returncode, out.stdout, out.stderr) == (0, PRELUDE_USER_OUT, "")


def test_the_prelude_key_follows_its_text_and_the_stages():
    key = loader_module._prelude_cache_key
    assert key("def a = 1\n", "/a/prelude.dl") != key("def a = 2\n", "/a/prelude.dl")
    # another installation's prelude, the same text: its own entry (its spans name its own path)
    assert key("def a = 1\n", "/a/prelude.dl") != key("def a = 1\n", "/b/prelude.dl")
    assert key("def a = 1\n", "/a/prelude.dl") == key("def a = 1\n", "/a/prelude.dl")
    assert len(loader_module._stages_digest()) == 32


# ---- the primitive table's schemes, parsed on first use ------------------------------------------------------


def test_every_primitive_scheme_parses_and_reads_as_written():
    from lang.model.primitives import PRIMITIVES
    from lang.model.types import show_scheme
    for p in PRIMITIVES.values():
        assert p.scheme.body is not None, p.name  # (a malformed row fails here, not in a user's run)
    assert show_scheme(PRIMITIVES["+"].scheme) == "Num 'a => 'a -> 'a -> 'a"
    assert show_scheme(PRIMITIVES["<"].scheme) == "Ord 'a => 'a -> 'a -> Bool"
