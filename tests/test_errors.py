"""Diagnostics (docs/reference.md, Diagnostics): every kind of error in a user's program, where it points, and how it is printed.

    FILE:LINE:COL: KIND error: message
        the source line
        ^^^^ under the span

then exit code 1, nothing on stdout, and never a Python traceback.
"""
from __future__ import annotations

import pytest

from conftest import cli, diagnostic, dl
from lang.model.errors import DlError, DlTypeError, render
from lang.model.spans import Source, Span

# source, kind, (line, col), caret width, words the message must contain
ERRORS = [
    # syntax
    ("def main = 1 +", "syntax", (1, 14), 1, "unexpected end of input: expected an expression after '+'"),
    ("def main = (1 + 2", "syntax", (1, 17), 1, "expected ')' or ',' or ':' after '2'"),
    ("def main = [1, 2", "syntax", (1, 16), 1, "expected ',' or ']' after '2'"),
    ("def main = )", "syntax", (1, 12), 1, "unexpected ')': expected an expression after '='"),
    ("def main = 1 < 2 < 3", "syntax", (1, 18), 1, "comparisons do not chain"),
    ("def main =\n  if x then 1", "syntax", (2, 13), 1, "expected 'else' after '1'"),
    ("def main = let in = 1 in 2", "syntax", (1, 16), 2, "unexpected keyword 'in'"),
    ("def f x = x\n\ndef main = f then", "syntax", (3, 14), 4, "unexpected keyword 'then'"),
    ("def main = 1.", "syntax", (1, 13), 1, "write `1.0`"),
    ("def main = 1 {- never closed", "syntax", (1, 14), 2, "unterminated block comment"),
    ("def main = 1 -}", "syntax", (1, 14), 2, "no `{-` is open"),
    ("def main = x = 3", "syntax", (1, 14), 1, "to compare, write `==`"),
    ("def main = fun x -> x : Int", "syntax", (1, 23), 1, "a type annotation goes in parentheses"),
    ("def main = map (+ 1) [1]", "syntax", (1, 19), 1, "an operator section has no operand"),
    ("def main = λ", "syntax", (1, 12), 1, "unexpected character 'λ'"),
    ("def main = f@Real", "syntax", (1, 12), 6, "only in printed transforms"),
    ("def main = fun a -o a", "syntax", (1, 12), 10, "only in printed transforms"),
    ("def main = _", "syntax", (1, 12), 1, "`_` is a pattern; it cannot be used as a value"),
    # Haskell habits: what dl writes instead
    ("def main = [1..10]", "syntax", (1, 14), 1,
     "dl has no `[a..b]` ranges: `range n` is [0, 1, ..., n - 1] and `build n f` is [f 0, ..., f (n - 1)]; "
     "[1..10] is `build 10 (fun i -> i + 1)`"),
    ("def main = sum [0 .. 9]", "syntax", (1, 19), 1, "dl has no `[a..b]` ranges: `range n` is [0, 1, ..., "
     "n - 1] and `build n f` is [f 0, ..., f (n - 1)]; [0..9] is `range 10`"),
    ("def main n = [1..n]", "syntax", (1, 16), 1, "`build n f` is [f 0, ..., f (n - 1)]"),
    ("def main = x * 2\n  where x = 3", "syntax", (2, 11), 1,
     "unexpected '=': expected an operator or an argument after 'x' (dl has no `where`: bind before the body "
     "with `let x = ... in ...`)"),
    ("def main = f 2 where f y = y", "syntax", (1, 26), 1, "(dl has no `where`: bind before the body with "
     "`let f y = ... in ...`)"),
    # name
    ("def main = f 3", "name", (1, 12), 1, "unbound name `f`"),
    ("def main = lenght [1]", "name", (1, 12), 6, "unbound name `lenght`; did you mean `length`?"),
    ("def main = let x = 1 in y", "name", (1, 25), 1, "unbound name `y`"),
    ("def f x = x\ndef f y = y\ndef main = 1", "name", (2, 5), 1,
     "`f` is defined twice in this file (first on line 1)"),
    ("def main = fun x x -> x", "name", (1, 18), 1, "`x` is bound twice in the same pattern"),
    ("def main = let (a, a) = (1, 2) in a", "name", (1, 20), 1, "`a` is bound twice"),
    ("def _ = 1\ndef main = 2", "name", (1, 5), 1, "`_` cannot be defined"),
    ("def main = let _ x = x in 1", "name", (1, 16), 1, "`_` cannot be defined as a function"),
    ("def main = neg 3", "name", (1, 12), 3, "unbound name `neg`"),
    ("def main = (1 : Foo)", "name", (1, 17), 3, "unknown type `Foo`"),
    # type
    ("def main = 1 + true", "type", (1, 16), 4, "`true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)"),
    ("def f (x : Int) = x / 2\ndef main = f 1", "type", (1, 19), 1, "first argument of `/` must be a real number (Real or Array)"),
    ("def main = if 1 then 2 else 3", "type", (1, 15), 1, "the condition of `if` must be Bool"),
    ("def main =\n  let f (x : Int) : Real = x in f 1", "type", (2, 28), 1, "not the annotated Real"),
    ("def main = (fun x -> x) 1 2", "type", (1, 12), 14,
     "`(fun x -> x) 1` has type Num 'a => 'a; it is not a function"),
    ("def main = grad (fun f -> f 1.0) (fun x -> x)", "type", (1, 18), 14, "not differentiable data"),
    # import
    ('import "nope.dl"\ndef main = 1', "import", (1, 1), 16, 'cannot import "nope.dl": no such file'),
    # runtime
    ("def main = div 1 0", "runtime", (1, 12), 7, "division by zero (div)"),
    ("def main = mod 7 (1 - 1)", "runtime", (1, 12), 13, "division by zero (mod)"),
    ("def main = get [1, 2] 5", "runtime", (1, 12), 12, "index 5 out of range for a list of length 2"),
    ("def main = head []", "runtime", (1, 12), 7, "head of an empty list"),
    ("def main = tail ([] : [Int])", "runtime", (1, 12), 17, "tail of an empty list"),
    ("def main = range (-1)", "runtime", (1, 12), 10, "range of a negative count (-1)"),
    ("def main = build (0 - 3) (fun i -> i)", "runtime", (1, 12), 26, "build of a negative count (-3)"),
    ("def main = floor (0.0 / 0.0)", "runtime", (1, 12), 17, "floor of nan is not an Int"),
    ("def main = main", "runtime", (1, 1), 15, "the value of `main` depends on itself"),
    ("def main = let (y, back) = vjp (fun a -> [a, a * a]) 2.0 in back [1.0]", "runtime", (1, 28), 29,
     "the cotangent given to the pullback of this vjp has a list of length 1 where the value has length 2"),
    ("def f xs = head xs\ndef main =\n  f ([] : [Real])", "runtime", (1, 12), 7, "head of an empty list"),
]


@pytest.mark.parametrize("source,kind,where,width,words", ERRORS, ids=[e[0].replace("\n", " ; ") for e in ERRORS])
def test_diagnostics(tmp_dl, source, kind, where, width, words):
    path = tmp_dl("prog.dl", source + "\n")
    code, out, err = cli("run", path)
    assert (code, out) == (1, "")
    d = diagnostic(err)
    assert (d["file"], d["kind"], (d["line"], d["col"])) == (path, kind, where), err
    assert words in d["message"]
    assert d["source"] == "    " + source.split("\n")[where[0] - 1]
    assert d["caret"] == "    " + " " * (where[1] - 1) + "^" * width
    assert len(err.rstrip("\n").split("\n")) == 3  # nothing else


@pytest.mark.parametrize("source,where,width,words,inside", [
    ("def main = maximum ([] : [Real])", (1, 12), 21, "head of an empty list", "maximum"),
    ("def f xs = 1.0 + last xs\ndef main = f []", (1, 18), 7, "out of range for a list of length 0", "last"),
])
def test_an_error_inside_the_prelude_points_at_the_call(tmp_dl, source, where, width, words, inside):
    """As GHC's `called at`: the program's line, and a note saying where in the prelude it was raised."""
    path = tmp_dl("prog.dl", source + "\n")
    code, out, err = cli("run", path)
    assert (code, out) == (1, "")
    d = diagnostic(err)
    assert (d["file"], d["kind"], (d["line"], d["col"])) == (path, "runtime", where), err
    assert words in d["message"]
    assert d["caret"] == "    " + " " * (where[1] - 1) + "^" * width
    note = err.rstrip("\n").split("\n")[3]
    assert note.startswith(f"  (raised inside the prelude's `{inside}`, at ") and "prelude.dl:" in note


def test_an_error_in_a_function_given_to_the_prelude_stays_in_the_program(tmp_dl):
    path = tmp_dl("prog.dl", "def main = sum (map (fun xs -> head xs) [[1.0], []])\n")
    code, _, err = cli("run", path)
    d = diagnostic(err)
    assert (code, d["line"], d["col"], d["message"]) == (1, 1, 32, "head of an empty list")
    assert "prelude" not in err


def test_check_reports_the_same_diagnostics_except_runtime_ones(tmp_dl):
    for source, kind, where, _, words in ERRORS:
        if kind == "runtime" or "`main` is not defined" in words:
            continue
        code, _, err = cli("check", tmp_dl("prog.dl", source + "\n"))
        d = diagnostic(err)
        assert (code, d["kind"], (d["line"], d["col"])) == (1, kind, where)


def test_the_whole_diagnostic_from_a_subprocess(tmp_dl):
    path = tmp_dl("prog.dl", "-- a test\ndef main =\n  let xs = [1, 2, 3] in\n  get xs 3\n")
    r = dl("run", path)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"{path}:4:3: runtime error: index 3 out of range for a list of length 3\n"
                        "      get xs 3\n"
                        "      ^^^^^^^^\n")


def test_an_error_in_a_subprocess_has_no_traceback(tmp_dl):
    for source in ("def main = 1 +", "def main = f", "def main = 1 + true", "def main = div 1 0",
                   'import "x.dl"\ndef main = 1'):
        r = dl("run", tmp_dl("prog.dl", source + "\n"))
        assert r.returncode == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr
        diagnostic(r.stderr)


# ---- rendering -----------------------------------------------------------------------------------

def test_render_a_span_over_several_lines_underlines_to_the_end_of_its_first_line():
    src = Source("f.dl", "def main =\n  (1,\n   2)")
    text = render(DlTypeError("boom", Span(src, 2, 3, 3, 6)))
    assert text == "f.dl:2:3: type error: boom\n      (1,\n      ^^^"


def test_render_counts_a_tab_as_one_column():
    src = Source("f.dl", "def main =\n\t1 + true")
    text = render(DlTypeError("boom", Span(src, 2, 6, 2, 10)))
    assert text.split("\n")[1:] == ["     1 + true", "         ^^^^"]


def test_render_shows_a_window_of_a_very_long_line():
    line = "def main = " + "+".join(["1"] * 500) + " + true + 1"
    col = line.index("true") + 1
    text = render(DlTypeError("boom", Span(Source("f.dl", line), 1, col, 1, col + 4)))
    head, shown, caret = text.split("\n")
    assert head == f"f.dl:1:{col}: type error: boom"
    assert len(shown) < 140 and shown.startswith("    ...")
    assert shown[caret.index("^"):caret.index("^") + 4] == "true" and caret.strip() == "^^^^"


def test_render_without_a_position():
    assert render(DlError("stack overflow")) == "dl: runtime error: stack overflow"
