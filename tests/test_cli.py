"""The command line (docs/reference.md, sections 2, 9, 11-13) as a user meets it: `dl run` and `dl check`.

Exit codes: 0 success, 1 an error in the program (a diagnostic on stderr),
2 a usage error. stdout carries only the value of `main`. Most tests start a
real `python -m lang` process; the long tables run `lang.tools.cli.main` in this
process (the same code, without an interpreter start per row), with one row
of each also as a subprocess.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, cli, diagnostic, dl

SQ = "def sq x = x * x\ndef main = (sq 3, sq 2.5, 2 + 3, range (2 + 3))\n"


def test_run_prints_the_value_of_main(tmp_dl):
    r = dl("run", tmp_dl("sq.dl", SQ))
    assert (r.returncode, r.stdout, r.stderr) == (0, "(9.0, 6.25, 5.0, [0, 1, 2, 3, 4])\n", "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("how", ["module", "script"])
def test_output_to_a_full_device_is_a_diagnostic_not_an_internal_error(tmp_dl, how):
    """`dl run f.dl > /dev/full`: the write fails with ENOSPC; dl says so and exits 74 (an output error), with no
    traceback, no `internal error` and no second complaint at exit."""
    path = tmp_dl("sq.dl", SQ)
    script = Path(sys.executable).parent / "dl"
    if how == "script" and not script.exists():
        pytest.skip("no installed `dl` script beside this interpreter")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [str(script)] if how == "script" else [sys.executable, "-m", "lang"]
    with open("/dev/full", "w") as full:
        r = subprocess.run([*command, "run", path], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                           env=env, cwd=str(ROOT))
    assert (r.returncode, r.stderr) == (74, "dl: cannot write the output: No space left on device\n")


def test_python_dash_m_lang_is_the_dl_command(tmp_dl):
    script = Path(sys.executable).parent / "dl"
    if not script.exists():
        pytest.skip("no installed `dl` script beside this interpreter")
    path = tmp_dl("sq.dl", SQ)
    installed = subprocess.run([str(script), "run", path], capture_output=True, text=True, timeout=60)
    module = dl("run", path)
    assert (installed.returncode, installed.stdout, installed.stderr) == (module.returncode, module.stdout,
                                                                          module.stderr)
    assert module.stdout == "(9.0, 6.25, 5.0, [0, 1, 2, 3, 4])\n"


def test_check_prints_every_definition_with_its_type(tmp_dl):
    r = dl("check", tmp_dl("sq.dl", SQ))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "sq : Num 'a => 'a -> 'a\nmain : Real * Real * Real * [Int]\n"


def test_check_does_not_run_the_program(tmp_dl):
    r = dl("check", tmp_dl("boom.dl", "def main = div 1 0\n"))
    assert (r.returncode, r.stdout, r.stderr) == (0, "main : Int\n", "")


def test_check_the_prelude():
    prelude = ROOT / "stdlib" / "prelude.dl"
    r = dl("check", str(prelude))
    assert (r.returncode, r.stderr) == (0, "")
    defined = re.findall(r"^def\s+([A-Za-z_][A-Za-z0-9_']*)", prelude.read_text(), re.MULTILINE)
    lines = r.stdout.splitlines()
    assert [line.split(" : ")[0] for line in lines] == defined
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_']* : \S.*", line) for line in lines)
    assert "sum : Num 'a => ['a] -> 'a" in lines


# ---- arguments of main (docs/reference.md, Programs and imports) ------------------------------

ARGS = [
    ("def main x = x * 2", ["3"], "6.0"),
    ("def main x = x * 2", ["-3"], "-6.0"),
    ("def main x = x * 2", ["2.5"], "5.0"),
    ("def main x = x", ["-0.5"], "-0.5"),
    ("def main x = x", ["1e-3"], "0.001"),
    ("def main (x : Int) = x * 2", ["-3"], "-6"),
    ("def main x y = x - y", ["1", "-2"], "3.0"),
    ("def main (a, b) = a * b", ["(2.0, -3)"], "-6.0"),
    ("def main p = p", ["(1, true, [2.5])"], "(1.0, true, [2.5])"),
    ("def main xs = sum xs", ["[1, 2, 3]"], "6.0"),
    ("def main (xs : [Int]) = sum xs", ["[1, -2, 3]"], "2"),
    ("def main xs = length xs", ["[]"], "0"),
    ("def main xs = xs", ["[[1], []]"], "[[1.0], []]"),
    ("def main b = not b", ["true"], "false"),
    ("def main u = u", ["()"], "()"),
    ("def main x = x", ["{- a comment -} 1"], "1.0"),
    ("def main x = x", ["  2  "], "2.0"),
]


@pytest.mark.parametrize("source,args,value", ARGS, ids=[f"{a[0]} {' '.join(a[1])}" for a in ARGS])
def test_main_applied_to_literal_arguments(tmp_dl, source, args, value):
    assert cli("run", tmp_dl("m.dl", source + "\n"), *args) == (0, value + "\n", "")


def test_literal_arguments_in_a_subprocess(tmp_dl):
    r = dl("run", tmp_dl("m.dl", "def main (x : Int) (a, b) xs = (x, a * b, sum xs)\n"), "-3", "(2.0, -3)", "[1, 2]")
    assert (r.returncode, r.stdout, r.stderr) == (0, "(-3, -6.0, 3.0)\n", "")


BAD_ARGS = [
    ("def main x = x", ["foo"], "argument 1 `foo` is not a literal"),
    ("def main x = x", ["1 +"], "argument 1 `1 +` is not a literal: unexpected end of input"),
    ("def main x = x", ["f 1"], "is not a literal"),
    ("def main x = x", [""], "argument 1 `` is not a literal"),
    ("def main x = x", ["1 2"], "is not a literal"),
    ("def main x = x", ["[1, true]"], "argument 1 `[1, true]` is not a well-typed literal"),
    ("def main (x : Int) = x", ["2.5"], "argument 1 `2.5` has type Real, but main expects Int there"),
    ("def main (x : Bool) = x", ["(1, 2)"], "has type Real * Real, but main expects Bool there"),
    ("def main x y = x", ["1"], "main takes 2 arguments, but 1 was given on the command line"),
    ("def main = 1", ["1"], "main takes 0 arguments, but 1 was given"),
    ("def main x = x", ["1", "2"], "main takes 1 argument, but 2 were given"),
]


@pytest.mark.parametrize("source,args,message", BAD_ARGS, ids=[f"{a[0]} {' '.join(a[1])}" for a in BAD_ARGS])
def test_arguments_that_do_not_parse_or_fit(tmp_dl, source, args, message):
    code, out, err = cli("run", tmp_dl("m.dl", source + "\n"), *args)
    assert (code, out) == (1, "")
    d = diagnostic(err)
    assert d["kind"] == "runtime" and message in d["message"]
    assert (d["line"], d["col"]) == (1, 5)  # main's name in its definition


def test_a_bad_argument_in_a_subprocess(tmp_dl):
    path = tmp_dl("m.dl", "def main (x : Int) = x\n")
    r = dl("run", path, "2.5")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"{path}:1:5: runtime error: argument 1 `2.5` has type Real, but main expects Int there "
                        "(main : Int -> Int)\n    def main (x : Int) = x\n        ^^^^\n")


def test_flags_may_come_anywhere_and_do_not_eat_negative_arguments(tmp_dl):
    path = tmp_dl("m.dl", "def main x y = x - y\n")
    r = dl("run", path, "-1", "-2", "--mode", "forward")
    assert (r.returncode, r.stdout, r.stderr) == (0, "1.0\n", "")
    for argv in (["run", "--mode", "forward", path, "-1", "-2"], ["run", path, "--mode=forward", "-1", "-2"],
                 ["run", path, "--", "-1", "-2"], ["run", path, "-1", "--cost", "-2"]):
        code, out, _ = cli(*argv)
        assert (code, out) == (0, "1.0\n"), argv


# ---- --cost, --mode, --budget ------------------------------------------------------------------

def test_cost_prints_counters_to_stderr(tmp_dl):
    r = dl("run", tmp_dl("g.dl", "def f x = x * x + sin x\ndef main = grad f 1.0\n"), "--cost")
    assert r.returncode == 0
    assert r.stdout == f"{2 * 1.0 + 0.5403023058681398}\n"
    lines = r.stderr.splitlines()
    assert lines[0] == "cost (backprop mode)"
    counters = dict(re.fullmatch(r"\s+(.*?)\s+(\d+)", line).groups() for line in lines[1:])
    assert int(counters["primitive applications"]) > 0
    assert int(counters["backpropagators created"]) > 0


def test_cost_names_the_mode(tmp_dl):
    r = dl("run", tmp_dl("g.dl", "def main = grad (fun x -> x * x) 3.0\n"), "--cost", "--mode", "forward")
    assert (r.returncode, r.stdout) == (0, "6.0\n")
    assert r.stderr.splitlines()[0] == "cost (forward mode)"


def test_without_cost_stderr_is_empty(tmp_dl):
    r = dl("run", tmp_dl("g.dl", "def main = grad (fun x -> x * x) 3.0\n"))
    assert (r.returncode, r.stdout, r.stderr) == (0, "6.0\n", "")


def test_a_byte_order_mark_is_not_part_of_the_program(tmp_path):
    path = tmp_path / "bom.dl"
    path.write_bytes("\ufeffdef main = 1 + 2\n".encode("utf-8"))
    assert cli("run", str(path)) == (0, "3.0\n", "")


def test_a_file_that_is_not_utf8_is_a_diagnostic_at_the_byte(tmp_path):
    path = tmp_path / "latin1.dl"
    path.write_bytes(b"def main =\n  1 + \xff2\n")
    code, out, err = cli("run", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"{path}:2:7: import error: cannot read {path}: it is not UTF-8 text (byte 0xff")


def test_budget_stops_a_runaway_program(tmp_dl):
    r = dl("run", tmp_dl("loop.dl", "def f x = f x\ndef main = f 1\n"), "--budget", "0.5", timeout=30)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "dl: runtime error: evaluation stopped after 0.5 seconds (--budget)\n"


# ---- usage errors exit 2 -----------------------------------------------------------------------

USAGE = [
    (["run", "{file}", "--bogus"], "unrecognized arguments: --bogus"),
    (["--bogus", "run", "{file}"], "unrecognized arguments: --bogus"),
    (["check", "{file}", "--cost"], "unrecognized arguments: --cost"),
    (["run", "{dir}/nope.dl"], "dl: no such file: {dir}/nope.dl"),
    (["check", "{dir}/nope.dl"], "dl: no such file: {dir}/nope.dl"),
    (["run", "{dir}"], "dl: a directory, not a file: {dir}"),
    (["run"], "the following arguments are required: file"),
    (["frob"], "invalid choice: 'frob'"),
    (["run", "{file}", "--mode", "bogus"], "argument --mode: invalid choice: 'bogus'"),
    (["run", "{file}", "--mode"], "argument --mode: expected one argument"),
    (["run", "{file}", "--budget", "soon"], "argument --budget: expected a positive number of seconds, not 'soon'"),
    (["run", "{file}", "--budget", "-1"], "argument --budget: expected a positive number of seconds, not '-1'"),
    (["compare", "{file}", "--sweep", "n=abc"], "argument --sweep: 'abc' in 'n=abc' is not an integer"),
    (["compare", "{file}", "--sweep", "n=1.5"], "argument --sweep: '1.5' in 'n=1.5' is not an integer"),
    (["compare", "{file}", "--sweep", "10,100"], "argument --sweep: expected n=10,100,1000 or n=1..10, not '10,100'"),
    (["compare", "{file}", "--sweep", "n="], "argument --sweep: expected n=10,100,1000"),
    (["compare", "{file}", "--sweep", "n=5..2"], "argument --sweep: the range in 'n=5..2' is empty"),
    (["transform", "{file}", "--mode", "symbolic", "--sweep", "m=2"], "argument --sweep: expected n="),
    (["compare", "{file}", "--plot", "{dir}/nope/out.png"], "argument --plot: '{dir}/nope/out.png': no such directory"),
    (["compare", "{file}", "--plot", "{dir}/out.txt"], "argument --plot: '{dir}/out.txt': the plot is written as .png"),
    (["compare", "{file}", "--budget", "0"], "argument --budget: expected a positive number of seconds, not '0'"),
    (["transform", "{file}", "--sweep", "n=1..3"], "dl: transform: --sweep is for --mode symbolic"),
]


@pytest.mark.parametrize("argv,message", USAGE, ids=[" ".join(u[0]) for u in USAGE])
def test_usage_errors_exit_2(tmp_dl, tmp_path, argv, message):
    path = tmp_dl("m.dl", "def main = 1\n")
    fill = {"file": path, "dir": str(tmp_path)}
    code, out, err = cli(*[a.format(**fill) for a in argv])
    assert (code, out) == (2, "")
    assert message.format(**fill) in err


def test_usage_errors_in_a_subprocess(tmp_dl, tmp_path):
    path = tmp_dl("m.dl", "def main = 1\n")
    for argv, message in ((["run", path, "--bogus"], "unrecognized arguments: --bogus"),
                          (["run", str(tmp_path / "nope.dl")], f"dl: no such file: {tmp_path / 'nope.dl'}")):
        r = dl(*argv)
        assert (r.returncode, r.stdout) == (2, "")
        assert message in r.stderr and "Traceback" not in r.stderr


def test_help_exits_0():
    code, out, _ = cli("run", "--help")
    assert code == 0 and "usage: dl run" in out


def test_compare_help_shows_the_default_budget_and_the_memory_option():
    code, out, _ = cli("compare", "--help")
    assert code == 0
    assert re.search(r"--budget SECONDS\s+seconds one evaluation of main may take.*\(default: 20\)", out, re.S)
    assert "--memory" in out


def test_plot_without_matplotlib_is_a_usage_error_before_any_measuring(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    code, out, err = cli("compare", "examples/sharing.dl", "--sweep", "n=4", "--plot", str(tmp_path / "p.png"))
    assert (code, out) == (2, "")
    assert "argument --plot: needs matplotlib, which is not installed (pip install 'dl-lang[plot]')" in err
    assert not (tmp_path / "p.png").exists()


def test_the_progress_bar_is_drawn_only_at_a_terminal(monkeypatch):
    """Redrawn with carriage returns, it would pile up in a log; a long run makes no difference."""
    import io
    import itertools
    import time

    from lang.tools import cli as cli_module

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    clock = itertools.count(0.0, 100.0)  # every reading 100 s later: the run is long
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    for stream, drawn in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        progress = cli_module._Progress()
        progress("n=10 backprop", 1, 3)
        progress("done", 3, 3)
        assert ("\r[" in stream.getvalue()) is drawn


# ---- errors in programs exit 1 with one diagnostic ---------------------------------------------

def test_an_error_is_one_diagnostic_on_stderr(tmp_dl):
    path = tmp_dl("bad.dl", "def main =\n  1 + true\n")
    r = dl("run", path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"{path}:2:7: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)\n"
                        "      1 + true\n"
                        "          ^^^^\n")


def test_check_reports_errors_like_run(tmp_dl):
    path = tmp_dl("bad.dl", "def f x = x +\n")
    r = dl("check", path)
    assert (r.returncode, r.stdout) == (1, "")
    d = diagnostic(r.stderr)
    assert (d["file"], d["line"], d["col"], d["kind"]) == (path, 1, 13, "syntax")


def test_missing_main(tmp_dl):
    """No line of the file is wrong: the error names the file and shows no source line or caret."""
    path = tmp_dl("nomain.dl", "-- a comment on line 1\ndef f = 1\n")
    r = dl("run", path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"dl: name error: `main` is not defined in {path}\n"
    assert dl("check", path).returncode == 0


def test_a_missing_definition_has_no_made_up_position():
    code, out, err = cli("transform", "examples/seeds.dl", "--def", "nosuch")
    assert (code, out, err) == (1, "", "dl: name error: `nosuch` is not defined in examples/seeds.dl\n")


def test_a_main_that_takes_arguments_and_gets_none_is_an_error():
    """Its value would be a function, printed `<fun>`: the error says what main takes."""
    code, out, err = cli("run", "examples/sharing.dl")
    assert (code, out) == (1, "")
    d = diagnostic(err)
    assert (d["line"], d["col"], d["kind"]) == (18, 5, "runtime")
    assert d["message"] == ("main takes 1 argument (main : Int -> Real), but none was given: write it after "
                            "the file name")
    code, out, err = cli("transform", "examples/sharing.dl", "--mode", "symbolic")
    assert code == 1 and "main takes 1 argument" in err


def test_a_main_that_is_a_function_value_is_refused_too(tmp_dl):
    path = tmp_dl("f.dl", "def main = fun x y -> x * y\n")
    code, out, err = cli("run", path)
    assert (code, out) == (1, "")
    assert diagnostic(err)["message"].startswith("main takes 2 arguments (main : Real -> Real -> Real), but none")


def test_debug_shows_the_traceback_of_an_error(tmp_dl):
    path = tmp_dl("bad.dl", "def main = head ([] : [Int])\n")
    plain, debug = dl("run", path), dl("--debug", "run", path)
    assert plain.returncode == debug.returncode == 1
    assert "Traceback" not in plain.stderr and "Traceback" in debug.stderr
    assert debug.stderr.startswith(plain.stderr)


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "bin.dl"
    path.write_bytes(b"def main = 1 \xff\n")
    r = dl("run", str(path))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith(f"{path}:1:14: import error: cannot read {path}: it is not UTF-8 text "
                               "(byte 0xff at offset 13)\n")
    assert "Traceback" not in r.stderr


def test_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.dl"
    path.write_bytes(b"def main = 1\r\ndef g = 1 +\r\n")
    r = dl("run", str(path))
    assert r.returncode == 1
    d = diagnostic(r.stderr)
    assert (d["line"], d["col"], d["kind"]) == (2, 11, "syntax")
    assert "\r" not in r.stderr


# ---- imports (docs/reference.md, Programs and imports) -------------------------------------------

def test_imports_are_relative_to_the_importing_file(tmp_dl, tmp_path):
    main = tmp_dl("app/main.dl", 'import "lib/b.dl"\ndef main = bval + 1.0\n')
    tmp_dl("app/lib/b.dl", 'import "c.dl"\ndef bval = cval * 2.0\n')
    tmp_dl("app/lib/c.dl", "def cval = 3.0\n")
    # a relative path from one working directory, an absolute one from another
    r = subprocess.run([sys.executable, "-m", "lang", "run", "app/main.dl"], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (r.returncode, r.stdout, r.stderr) == (0, "7.0\n", "")
    r = dl("run", main)
    assert (r.returncode, r.stdout, r.stderr) == (0, "7.0\n", "")


def test_an_import_shadows_the_prelude_and_a_later_import_an_earlier(tmp_dl):
    main = tmp_dl("main.dl", 'import "one.dl"\nimport "two.dl"\ndef main = (v, sum 0)\n')
    tmp_dl("one.dl", "def v = 1\n")
    tmp_dl("two.dl", "def v = 2\ndef sum x = x + 40\n")
    r = dl("run", main)
    assert (r.returncode, r.stdout) == (0, "(2.0, 40.0)\n")


def test_a_missing_import(tmp_dl):
    main = tmp_dl("main.dl", 'def f = 1\nimport "nope.dl"\ndef main = f\n')
    r = dl("run", main)
    assert r.returncode == 1
    d = diagnostic(r.stderr)
    assert (d["file"], d["line"], d["col"], d["kind"]) == (main, 2, 1, "import")
    assert d["message"].startswith('cannot import "nope.dl": no such file')
    assert d["caret"] == "    " + "^" * len('import "nope.dl"')


def test_an_import_cycle_names_the_cycle(tmp_dl):
    main = tmp_dl("x.dl", 'import "y.dl"\ndef main = yv\n')
    tmp_dl("y.dl", 'import "z.dl"\ndef yv = zv\n')
    z = tmp_dl("z.dl", 'import "y.dl"\ndef zv = 1\n')
    r = dl("run", main)
    assert r.returncode == 1
    d = diagnostic(r.stderr)
    assert (d["file"], d["line"], d["col"], d["kind"]) == (z, 1, 1, "import")
    assert re.fullmatch(r"import cycle: \S*y\.dl -> \S*z\.dl -> \S*y\.dl", d["message"]), d["message"]


def test_a_file_importing_itself(tmp_dl):
    main = tmp_dl("self.dl", 'import "self.dl"\ndef main = 1\n')
    d = diagnostic(dl("run", main).stderr)
    assert d["kind"] == "import" and re.fullmatch(r"import cycle: \S*self\.dl -> \S*self\.dl", d["message"])


def test_an_error_inside_an_imported_file_points_into_that_file(tmp_dl):
    main = tmp_dl("main.dl", 'import "lib.dl"\ndef main = 1\n')
    lib = tmp_dl("lib.dl", "def ok = 1\ndef f = 1 +\n")
    r = dl("run", main)
    d = diagnostic(r.stderr)
    assert (r.returncode, d["file"], d["line"], d["col"], d["kind"]) == (1, lib, 2, 11, "syntax")
