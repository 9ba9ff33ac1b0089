"""Bad input never crashes dl: random text and random mutations of valid programs, through the command line.

Whatever the input, `dl run` and `dl check` exit with 0 or 1, print either a
value or a diagnostic (docs/reference.md, Diagnostics), never a Python traceback or an "internal
error", and stop in bounded time (`--budget` stops a runaway evaluation).
Most examples run `lang.tools.cli.main` in this process (the path `dl` takes,
without an interpreter start per example); a few run the real subprocess.
"""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DIAGNOSTIC, cli, dl

SEEDS = [
    "def sq x = x * x\ndef main = (sq 3, sq 2.5, 2 + 3, range (2 + 3))\n",
    "def f (x1, x2) = log x1 + x1 * x2 - sin x2\ndef main = value_and_grad f (2.0, 5.0)\n",
    "-- lists\ndef main = fold (fun acc x -> acc + x) 0 (map (fun x -> x * 2) [1, 2, 3])\n",
    "def main =\n  let (a, b) = (1.5, true) in\n  if b && a > 1.0 then [a, a ^ 2] else []\n",
    "{- block {- nested -} -}\ndef pair = (fst (1, 2), snd (true, ()))\ndef main = pair\n",
    "def mean xs = sum xs / float (length xs)\ndef main = mean [1.0, 2.0, 4.0] |> (fun m -> m * 2.0)\n",
    "def main = grad (fun (x : Real) -> x * x + relu x) 3.0\n",
    "def main = zipWith (fun a b -> (a, b)) (range 3) [true, false, true]\n",
    "def g f x = f (f x)\ndef main = g (fun y -> y - 1) (get [10, 20] 1)\n",
    "def main = let id y = y in (id 1, id [id true], (+) 1 2, (::) 1 [])\n",
    "def main x (y : Int) = x * float y\n",
]

TOKENS = ["def", "main", "x", "f", "=", "(", ")", "[", "]", ",", "+", "-", "*", "/", "^", "::", "++", "|>", "&&",
          "||", "<", "==", "fun", "->", "\\", "let", "rec", "in", "if", "then", "else", "import", '"a.dl"', "0", "1",
          "2.5", "1e-3", "true", "()", ":", "Real", "Int", "'a", "=>", "_", "@", "~", "-o", "--", "{-", "-}", "\n",
          ".", "`", "\t", "λ", "head []", "div 1 0", "grad", "range", "fst", "main main", "sq", "Num 'a =>"]

_TOKEN_TEXT = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_']*|[0-9.]+|.")


@st.composite
def mutated_programs(draw) -> str:
    """A seed program with 1–4 random edits: deletions, token insertions, swaps, duplications."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate"]))
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 12)))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            tokens = _TOKEN_TEXT.findall(text)
            if len(tokens) >= 2:
                a = draw(st.integers(0, len(tokens) - 1))
                b = draw(st.integers(0, len(tokens) - 1))
                tokens[a], tokens[b] = tokens[b], tokens[a]
                text = "".join(tokens)
    return text


random_text = st.lists(st.sampled_from(list("def main=()[],+-*/^:<>|&\\'\"_.{}@~ \n\t0123456789xyλ¬")
                                       + ["fun ", "let ", " in ", "if ", " then ", " else ", " -> ", "::"]),
                       max_size=40).map("".join)


def assert_clean(code: int, out: str, err: str, command: str) -> None:
    """Exit 0 with a value (run) or the types (check), or exit 1 with a diagnostic; never a traceback."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 1), (code, err)
    if code == 1:
        assert out == ""
        first = err.split("\n")[0]
        assert re.match(DIAGNOSTIC, first) or re.match(r"^dl: (syntax|name|type|runtime|import) error: ", first), err
    elif command == "run":
        assert out.endswith("\n") and out.count("\n") == 1 and err == "", (out, err)
    else:
        assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_']* : .+", line) for line in out.splitlines()), out


def run_both(text: str) -> None:
    """`dl check` the text, and `dl run` it when it defines main."""
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "fuzz.dl")
        Path(path).write_text(text, encoding="utf-8")
        start = time.monotonic()
        code, out, err = cli("check", path)
        assert_clean(code, out, err, "check")
        if code == 0 and re.search(r"^main : ", out, re.MULTILINE):
            main_type = re.search(r"^main : (.*)$", out, re.MULTILINE).group(1)
            args = ["1"] * main_type.count("->") if "=>" not in main_type else []
            code, out, err = cli("run", path, "--budget", "1", *args)
            assert_clean(code, out, err, "run")
        assert time.monotonic() - start < 15


@given(mutated_programs())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_programs(text):
    run_both(text)


@given(random_text)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_text(text):
    run_both(text)


@given(st.sampled_from(SEEDS[:-1]))
@settings(max_examples=len(SEEDS) - 1, deadline=None)
def test_the_seeds_are_valid_programs(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "seed.dl"
        path.write_text(text)
        code, out, err = cli("run", str(path))
        assert (code, err) == (0, "") and out.count("\n") == 1


@given(mutated_programs())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_programs_in_a_subprocess(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.dl"
        path.write_text(text, encoding="utf-8")
        r = dl("run", str(path), "--budget", "2", timeout=30)
        assert_clean(r.returncode, r.stdout, r.stderr, "run")
