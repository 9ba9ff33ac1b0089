"""Evaluation (docs/reference.md, sections 3, 5, 11): every non-AD built-in, closures, recursion, printing of values, IEEE
arithmetic, and programs deep enough to break a naive recursive evaluator.

Values are checked as `dl run` prints them (`show_value`), so `7` (Int) and
`7.0` (Real) are different answers.
"""
from __future__ import annotations

import math
import time

import pytest

from conftest import run
from lang.model.errors import DlError
from lang.model.values import Code, Fun, show_value


def shown(text: str, args: list[str] | None = None) -> str:
    return show_value(run(text, args=args))


def main_is(expr: str) -> str:
    return shown(f"def main = {expr}")


# ---- values print as the language writes them (docs/reference.md, How values print) ---

PRINTED = [
    (3.0, "3.0"), (-0.5, "-0.5"), (7, "7"), (-7, "-7"), (True, "true"), (False, "false"), ((), "()"),
    ((1.0, 2.5), "(1.0, 2.5)"), ([1.0, 2.0], "[1.0, 2.0]"), ([], "[]"), (1e-08, "1e-08"), (0.1, "0.1"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"), (1e16, "1e+16"), (-0.0, "-0.0"),
    (123456789.0, "123456789.0"), (2 ** 70, "1180591620717411303424"),
    ((1, (True, [()])), "(1, (true, [()]))"), ([[1], [], [2, 3]], "[[1], [], [2, 3]]"),
    ([(1.0, 2)], "[(1.0, 2)]"), ((1, 2, 3), "(1, 2, 3)"),
    (Fun(Code(1, name="f"), ()), "<fun>"), ([Fun(Code(2), ())], "[<fun>]"),
]


@pytest.mark.parametrize("value,text", PRINTED, ids=[t for _, t in PRINTED])
def test_show_value(value, text):
    assert show_value(value) == text


def test_show_value_of_a_deeply_nested_list():
    v: list = []
    for _ in range(100_000):
        v = [v]
    text = show_value(v)
    assert text == "[" * 100_001 + "]" * 100_001


# ---- every non-AD built-in of docs/reference.md, Built-ins, exactly -------------------------

BUILTINS = [
    # real functions
    ("exp 0.0", "1.0"), ("exp 1.0", repr(math.e)), ("log 1.0", "0.0"), ("log (exp 2.0)", "2.0"),
    ("sin 0.0", "0.0"), ("cos 0.0", "1.0"), ("tan 0.0", "0.0"), ("tanh 0.0", "0.0"),
    ("sqrt 4.0", "2.0"), ("sqrt 2.0", repr(math.sqrt(2.0))), ("sigmoid 0.0", "0.5"),
    ("relu (-1.0)", "0.0"), ("relu 2.5", "2.5"), ("relu 0.0", "0.0"), ("abs (-2.5)", "2.5"),
    ("abs (-3 : Int)", "3"), ("abs 3", "3.0"),
    ("softplus 0.0", repr(math.log(2.0))), ("pow 2.0 3.0", "8.0"), ("pow 4.0 0.5", "2.0"),
    ("min 1.0 2.0", "1.0"), ("max 1.0 2.0", "2.0"), ("min 3 (2 : Int)", "2"), ("max (3 : Int) 2", "3"),
    ("atan2 1.0 1.0", repr(math.atan2(1.0, 1.0))), ("atan2 0.0 (-1.0)", repr(math.pi)),
    ("pi", repr(math.pi)), ("not true", "false"), ("not false", "true"),
    # non-differentiable conversions
    ("floor 2.7", "2"), ("floor (-2.7)", "-3"), ("ceil 2.1", "3"), ("ceil (-2.1)", "-2"),
    ("round 2.5", "3"), ("round (-2.5)", "-3"), ("round 2.4999", "2"), ("round 0.5", "1"),
    ("floor 1e20", "100000000000000000000"), ("float 3", "3.0"), ("float (0 - 4)", "-4.0"),
    ("div 7 2", "3"), ("mod 7 2", "1"), ("div (-7) 2", "-4"), ("mod (-7) 2", "1"), ("mod 7 (-2)", "-1"),
    # operators at Int and at Real
    ("2 + 3", "5.0"), ("(2 + 3 : Int)", "5"), ("7 - 3 - 2", "2.0"), ("2 * 3.5", "7.0"),
    ("12 / 3 / 2", "2.0"), ("1 / 3", repr(1 / 3)), ("2 ^ 10", "1024.0"), ("(2 ^ 10 : Int)", "1024"),
    ("2 ^ 3 ^ 2", "512.0"), ("-2 ^ 2", "-4.0"), ("(-2) ^ 2", "4.0"), ("2.0 ^ 0.5", repr(2 ** 0.5)),
    ("2 ^ (-1)", "0.5"), ("(3 ^ 0 : Int)", "1"), ("-(3 : Int)", "-3"), ("1 - -1", "2.0"),
    ("0.1 + 0.2", "0.30000000000000004"),
    # comparisons and booleans
    ("1 == 1", "true"), ("1 != 1", "false"), ("1.5 < 2.5", "true"), ("2 <= 2", "true"), ("3 > 4", "false"),
    ("3 >= 3", "true"), ("true == false", "false"), ("true != false", "true"), ("(1 < 2) == true", "true"),
    ("true && false", "false"), ("false || true", "true"), ("true || false && false", "true"),
    # structural built-ins
    ("fst (1, true)", "1.0"), ("snd (1, true)", "true"),
    ("map (fun x -> x * 2) [1, 2]", "[2.0, 4.0]"), ("map (fun x -> x) []", "[]"),
    ("fold (fun a x -> a - x) 10 [1, 2, 3]", "4.0"), ("fold (fun a x -> x :: a) [] [1, 2, 3]", "[3.0, 2.0, 1.0]"),
    ("zipWith (fun a b -> a * b) [1, 2, 3] [4, 5]", "[4.0, 10.0]"),
    ("zipWith (fun a b -> (a, b)) [1] [true]", "[(1.0, true)]"),
    ("length [1, 2, 3]", "3"), ("length []", "0"), ("range 3", "[0, 1, 2]"), ("range 0", "[]"),
    ("build 3 (fun i -> i * i)", "[0, 1, 4]"), ("build 2 (fun i -> float i)", "[0.0, 1.0]"),
    ("get [5, 6] 1", "6.0"), ("head [1, 2]", "1.0"), ("tail [1, 2]", "[2.0]"), ("tail [1]", "[]"),
    ("reverse [1, 2, 3]", "[3.0, 2.0, 1.0]"), ("reverse []", "[]"), ("isEmpty []", "true"),
    ("isEmpty [1]", "false"), ("1 :: [2]", "[1.0, 2.0]"), ("1 :: []", "[1.0]"), ("[1] ++ [2, 3]", "[1.0, 2.0, 3.0]"),
    ("[] ++ [true]", "[true]"), ("[[1]] ++ [[]]", "[[1.0], []]"),
    # literals of every kind
    ("()", "()"), ("(1, 2.5)", "(1.0, 2.5)"), ("[1.0, 2.0]", "[1.0, 2.0]"), ("1e-8", "1e-08"),
    ("-0.5", "-0.5"), ("2.5E+4", "25000.0"), ("(fun x -> x, 1)", "(<fun>, 1.0)"), ("[fun x -> x]", "[<fun>]"),
    # (a `main` that is itself a function takes arguments: given none, it is an error, tests/test_cli.py)
]


@pytest.mark.parametrize("expr,text", BUILTINS, ids=[b[0] for b in BUILTINS])
def test_builtins(expr, text):
    assert main_is(expr) == text


# ---- IEEE arithmetic: reals never stop a program (lang/realmath.py) -----------------------------

IEEE = [
    ("1.0 / 0.0", "inf"), ("-1.0 / 0.0", "-inf"), ("0.0 / 0.0", "nan"), ("1.0 / (-0.0)", "-inf"),
    ("log 0.0", "-inf"), ("log (-1.0)", "nan"), ("sqrt (-1.0)", "nan"), ("exp 1000.0", "inf"),
    ("exp (-1000.0)", "0.0"), ("pow 10.0 400.0", "inf"), ("10.0 ^ 400.0", "inf"), ("0.0 ^ (-1.0)", "inf"),
    ("(-8.0) ^ (1.0 / 3.0)", "nan"), ("sin (1.0 / 0.0)", "nan"), ("tanh 1000.0", "1.0"),
    ("sigmoid (-1000.0)", "0.0"), ("sigmoid 1000.0", "1.0"), ("softplus 1000.0", "1000.0"),
    ("1e308 * 10.0", "inf"), ("1e-400", "0.0"), ("float (2 ^ 2000)", "inf"), ("float (0 - 2 ^ 2000)", "-inf"),
    ("(0.0 / 0.0) == (0.0 / 0.0)", "false"), ("relu (0.0 / 0.0)", "nan"),
    # min and max propagate nan from either side (numpy's minimum/maximum), not Python's min/max
    ("max 1.0 (0.0 / 0.0)", "nan"), ("max (0.0 / 0.0) 1.0", "nan"), ("min 1.0 (0.0 / 0.0)", "nan"),
    ("min (0.0 / 0.0) 1.0", "nan"), ("maximum [1.0, 0.0 / 0.0, 3.0]", "nan"),
    ("1" + "0" * 400 + " * 1.0", "inf"),
]


@pytest.mark.parametrize("expr,text", IEEE, ids=[e[0][:40] for e in IEEE])
def test_ieee_reals(expr, text):
    assert main_is(expr) == text


def test_ints_are_unbounded():
    assert main_is("(2 ^ 100 : Int)") == str(2 ** 100)
    assert main_is("(div (2 ^ 100) 3 : Int)") == str(2 ** 100 // 3)


# ---- run-time errors of built-ins: kind, message, and where ----------------------------------

RUNTIME_ERRORS = [
    ("div 1 0", "division by zero (div)"),
    ("mod 1 0", "division by zero (mod)"),
    ("get [1, 2] 5", "index 5 out of range for a list of length 2"),
    ("get [1, 2] (-1)", "index -1 out of range for a list of length 2"),
    ("head []", "head of an empty list"),
    ("tail ([] : [Int])", "tail of an empty list"),
    ("range (-1)", "range of a negative count (-1)"),
    ("build (-2) (fun i -> i)", "build of a negative count (-2)"),
    ("range (2 ^ 100)", "no list can be that long"),
    ("floor (0.0 / 0.0)", "floor of nan is not an Int"),
    ("ceil (1.0 / 0.0)", "ceil of inf is not an Int"),
    ("round (-1.0 / 0.0)", "round of -inf is not an Int"),
    ("(2 ^ (-1) : Int)", "negative exponent in Int power"),
]


@pytest.mark.parametrize("expr,message", RUNTIME_ERRORS, ids=[e[0] for e in RUNTIME_ERRORS])
def test_runtime_errors(expr, message):
    with pytest.raises(DlError) as info:
        run(f"def main =\n  {expr}")
    assert info.value.kind == "runtime"
    assert message in info.value.message
    assert (info.value.span.line, info.value.span.col) >= (2, 3)


# ---- functions: closures, partial and over-application, recursion ------------------------------

PROGRAMS = [
    # closures capture their environment
    ("def adder n = fun x -> x + n\ndef main = (adder 1.0) 2.0", "3.0"),
    ("def main = let k = 10 in let f = fun x -> x + k in let k = 100 in f 1", "11.0"),
    ("def main = map (fun f -> f 1.0) (map (fun k -> fun x -> x * k) [1.0, 2.0, 3.0])", "[1.0, 2.0, 3.0]"),
    ("def counter = let step = 2 in fun n -> n * step\ndef main = counter 21", "42.0"),
    # partial application of definitions, lambdas and built-ins
    ("def add3 a b c = a + b + c\ndef main = let f = add3 1 in let g = f 2 in g 3", "6.0"),
    ("def add3 a b c = a + b + c\ndef main = map (add3 1 2) [10, 20]", "[13.0, 23.0]"),
    ("def main = map (fun a b -> a - b) [1, 2] |> map (fun f -> f 10)", "[-9.0, -8.0]"),
    ("def main = let m = map (fun x -> x + 1) in m [1, 2]", "[2.0, 3.0]"),
    ("def main = let z = zipWith (fun a b -> a * b) [1, 2] in z [3, 4]", "[3.0, 8.0]"),
    ("def main = let f = fold (fun a x -> a + x) in (f 0 [1, 2], f 10 [])", "(3.0, 10.0)"),
    ("def main = map (+) [1, 2] |> map (fun f -> f 1)", "[2.0, 3.0]"),
    ("def main = (fun (a, b) c -> a * b + c) (2, 3) 4", "10.0"),
    # over-application: a function returning a function, applied to all arguments at once
    ("def k x = fun y -> fun z -> x + y + z\ndef main = k 1 2 3", "6.0"),
    ("def pick b = if b then fst else snd\ndef main = pick false (1, 2)", "2.0"),
    ("def compose f g x = f (g x)\ndef main = compose (fun x -> x * 2) (fun x -> x + 1) 5", "12.0"),
    ("def main = (fun f -> f) (fun x y -> x - y) 10 3", "7.0"),
    ("def main = fst (fun x -> x + 1, 0) 41", "42.0"),
    # pipelines and sections
    ("def main = 3 |> (fun x -> x * x) |> (fun y -> y + 1)", "10.0"),
    ("def main = [1, 2, 3] |> map (fun x -> x * 10) |> fold (+) 0", "60.0"),
    ("def main = ((-) 10 3, (::) 1 [], (++) [1] [2], (&&) true false, (||) false true, (|>) 2 (fun x -> x))",
     "(7.0, [1.0], [1.0, 2.0], false, true, 2.0)"),
    ("def main = ((<) 1 2, (==) true true, (^) 2 3)", "(true, true, 8.0)"),
    # let forms and patterns
    ("def main = let (a, b) = (1, 2) in a - b", "-1.0"),
    ("def main = let (a, (b, c)) = (1, (2, 3)) in a + b * c", "7.0"),
    ("def main = let (a, _, c) = (1, true, 3) in a + c", "4.0"),
    ("def main = let () = () in 1", "1.0"),
    ("def main = let (x : Int) = 3 in x", "3"),
    ("def main = let _ = 1 in 2", "2.0"),
    ("def main = let f (a, b) = a * b in f (3, 4)", "12.0"),
    ("def main = (fun _ -> 5) true", "5.0"),
    ("def main = (fun () -> 5) ()", "5.0"),
    ("def main = let x = 1 in let x = x + 1 in x * 10", "20.0"),
    # short-circuit: the right operand is not evaluated when the left decides
    ("def main = false && (div 1 0 == 0)", "false"),
    ("def main = true || (head [] == 1)", "true"),
    ("def main = if true then 1 else div 1 0", "1"),
    # let rec, local and top level
    ("def main = let rec fact n = if n == 0 then 1 else n * fact (n - 1) in fact 20", "2.43290200817664e+18"),
    ("def main = let rec fact n = if n == 0 then 1 else n * fact (n - 1) in (fact 20 : Int)",
     "2432902008176640000"),
    ("def main = let rec fib n = if n < 2 then n else fib (n - 1) + fib (n - 2) in fib 15", "610.0"),
    ("def main = let rec go xs acc = if isEmpty xs then acc else go (tail xs) (head xs + acc) in go [1, 2, 3] 0",
     "6.0"),
    # top-level mutual recursion, in either order
    ("def even n = if n == 0 then true else odd (n - 1)\ndef odd n = if n == 0 then false else even (n - 1)\n"
     "def main = (even 10, odd 7, even 7)", "(true, true, false)"),
    ("def main = ping 5\ndef ping n = if n <= 0 then 0 else 1 + pong (n - 1)\n"
     "def pong n = if n <= 0 then 0 else 10 + ping (n - 1)", "23.0"),
    # polymorphic definitions and locals used at Int and at Real
    ("def sq x = x * x\ndef main = (sq 3, sq 2.5, sq (length [1, 2]))", "(9.0, 6.25, 4)"),
    ("def main = let sq y = y * y in (sq 2.5, sq (length [1, 2, 3]), sq 2)", "(6.25, 9, 4.0)"),
    ("def main = let id y = y in (id true, id [1], id ())", "(true, [1.0], ())"),
    ("def twice f x = f (f x)\n"
     "def main = (twice (fun x -> x * 2) 3, twice not true, twice (fun n -> n + 1) (length []))",
     "(12.0, true, 2)"),
    ("def main = let rec len xs = if isEmpty xs then 0 else 1 + len (tail xs) in (len [true], (len [1] : Int))",
     "(1.0, 1)"),
    ("def eq a b = a == b\ndef main = (eq 1 1, eq true false, eq 2.5 2.5)", "(true, false, true)"),
    # a definition may shadow a prelude name
    ("def sum xs = 42\ndef main = sum [1, 2]", "42.0"),
    # annotations do not change values
    ("def main = (1 : Real)", "1.0"), ("def main = (1 : Int)", "1"),
    ("def f (x : Int) : Int = x * 2\ndef main = f 4", "8"),
]


@pytest.mark.parametrize("source,text", PROGRAMS, ids=[p[0].replace("\n", " ; ")[:70] for p in PROGRAMS])
def test_programs(source, text):
    assert shown(source) == text


def test_main_applied_to_arguments():
    assert shown("def main x y = x * y", ["3", "2.5"]) == "7.5"
    assert shown("def main (x : Int) xs = x + length xs", ["-2", "[1, 2, 3]"]) == "1"
    assert shown("def main (a, b) = a - b", ["(1.0, -2)"]) == "3.0"


# ---- deep programs: no RecursionError, in reasonable time ----------------------------------------

DEEP = [
    ("def loop n acc = if n == 0 then acc else loop (n - 1) (acc + 1)\ndef main = loop 1000000 0", "1000000.0"),
    ("def main = let rec loop n acc = if n == 0 then acc else loop (n - 1) (acc + 2) in (loop 1000000 0 : Int)",
     "2000000"),
    ("def down n = if n == 0 then 0 else 1 + down (n - 1)\ndef main = down 100000", "100000.0"),
    ("def main = let rec down n = if n == 0 then 0 else 1 + down (n - 1) in down 100000", "100000.0"),
    ("def main = fold (fun a x -> a + x) 0 (range 1000000)", "499999500000"),
    ("def main = length (build 1000000 (fun i -> i))", "1000000"),
    ("def main = fold (fun a x -> a + x) 0.0 (map float (range 1000000))", "499999500000.0"),
    # (cons copies its list: building a list of n by recursion costs n^2 / 2 copies, so 10^4 here)
    ("def build_list n = if n == 0 then [] else n :: build_list (n - 1)\n"
     "def main = length (build_list 10000)", "10000"),
]


@pytest.mark.parametrize("source,text", DEEP, ids=[d[0].split("\n")[-1][:60] for d in DEEP])
def test_deep_programs(source, text):
    start = time.monotonic()
    assert shown(source) == text
    assert time.monotonic() - start < 20


# ---- deeply nested source: the generated Python stays within CPython's nesting limits ------------

def _else_ifs(n: int, test: str) -> str:
    return " ".join(f"if {test.format(i)} then {i} else" for i in range(n)) + " 0"


NESTED = [
    (f"def f x = {_else_ifs(150, 'x == {}')}\ndef main = f 120.0", "120.0"),
    (f"def f (x : Int) = {_else_ifs(150, 'x == {}')}\ndef main = f 149", "149.0"),
    (f"def f x = {_else_ifs(150, 'x * x == {}')}\ndef main = f 11", "121.0"),
    ("def main = " + "if true then " * 150 + "1" + " else 0" * 150, "1.0"),
    ("def main = " + "let x = 1 in if x > 0 then " * 120 + "2" + " else 0" * 120, "2.0"),
    ("def main = " + "sum (map (fun x -> x + " * 30 + "1.0" + ") [1.0])" * 30, "31.0"),
    ("def main = " + "fold (fun a x -> a + x + " * 25 + "1" + ") 0 [1]" * 25, "26.0"),
    # a self tail call behind 120 branches is still a loop: no stack for 10^5 iterations
    ("def loop (n : Int) acc = if n == 0 then acc else "
     + " ".join(f"if n == {i} then loop (n - 1) (acc + 2) else" for i in range(1, 120))
     + " loop (n - 1) (acc + 1)\ndef main = loop 100000 0", "100119.0"),
]


@pytest.mark.parametrize("source,text", NESTED, ids=[d[0][:40] for d in NESTED])
def test_deeply_nested_programs(source, text):
    assert shown(source) == text


@pytest.mark.parametrize("mode", ["backprop", "backprop-naive", "forward", "tape"])
def test_gradients_through_deeply_nested_programs(mode):
    source = ("def g y = " + "sum (map (fun x -> x * y + " * 30 + "y" + ") [1.0])" * 30
              + f"\ndef h y = ({_else_ifs(150, 'y == {}')}) + y * y\ndef main = (grad g 0.5, grad h 3.0)")
    assert run(source, mode=mode) == (31.0, 6.0)


# ---- the deep worker under a tracer (lang/back/deep.py) -----------------------------------------------------------

def test_run_deep_returns_under_a_tracer():
    """Under sys.settrace (a debugger, hypothesis's explain phase) run_deep used to wait for ever once its
    worker had finished: the worker's taking back of a stop that was never sent left CPython 3.11's eval
    breaker set, and a traced thread re-ran the call it was entering. Run in a child with a timeout, so
    that a hang fails this test instead of holding the suite."""
    import subprocess
    import sys
    from conftest import ROOT
    child = ("import sys\n"
             "from lang.back.deep import run_deep\n"
             "sys.settrace(lambda frame, event, arg: None)\n"
             "print(run_deep(lambda: sum(range(10))))\n"
             "print(run_deep(lambda: sum(range(20))))\n")
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["45", "190"]
