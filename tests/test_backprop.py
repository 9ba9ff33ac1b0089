"""Reverse mode (issue 3): grad / value_and_grad / vjp on every kind of function value and data.

Each gradient is checked against an exact value where one is known and
against central finite differences computed here, independently of dl's
own numeric mode.
"""
import math

import pytest

from conftest import close, dl, load_source, run, run_with_machine
from lang.model.errors import DlError

REVERSE = ["backprop", "backprop-naive"]


def fd(f, xs, h=1e-6):
    """Central differences of a Python function of a list of floats (the independent oracle)."""
    out = []
    for i in range(len(xs)):
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        out.append((f(up) - f(down)) / (2 * h))
    return out


# (dl definition of f over a tuple/list, the same f in Python, the point)
AGAINST_FD = [
    ("def f (x, y) = x * y + sin (x * y) / (1.0 + y * y)", lambda v: v[0] * v[1] + math.sin(v[0] * v[1]) / (1 + v[1] ** 2),
     (0.7, -1.3)),
    ("def f (x, y) = let z = x * x + y in z * z * tanh z", lambda v: (v[0] ** 2 + v[1]) ** 2 * math.tanh(v[0] ** 2 + v[1]),
     (0.3, 0.2)),
    ("def f (x, y) = exp (x - y) * sqrt (x * x + 1.0) - log (1.0 + y * y)",
     lambda v: math.exp(v[0] - v[1]) * math.sqrt(v[0] ** 2 + 1) - math.log(1 + v[1] ** 2), (0.5, 0.25)),
    ("def f (x, y) = atan2 y x + pow x y + max x y * min x y",
     lambda v: math.atan2(v[1], v[0]) + v[0] ** v[1] + max(v) * min(v), (1.5, 0.5)),
    ("def f (x, y) = sigmoid x * softplus y + relu (x - y) + abs (y - 2.0 * x)",
     lambda v: 1 / (1 + math.exp(-v[0])) * math.log1p(math.exp(v[1])) + max(v[0] - v[1], 0) + abs(v[1] - 2 * v[0]),
     (0.9, -0.4)),
    ("def f (x, y) = fold (fun acc i -> acc * x + float i * y) 1.0 (range 6)",
     None, (0.8, 1.1)),
]


def _python_fold(v):
    acc = 1.0
    for i in range(6):
        acc = acc * v[0] + i * v[1]
    return acc


@pytest.mark.parametrize("mode", REVERSE)
@pytest.mark.parametrize("source,py,point", AGAINST_FD)
def test_gradient_against_finite_differences(source, py, point, mode):
    py = py or _python_fold
    got = run(f"{source}\ndef main = grad f {point!r}".replace("'", ""), mode=mode)
    want = fd(py, list(point))
    assert close(list(got), want, rel=1e-6, abs_=1e-8)


EXACT = [
    # grad of a primitive, a partial application of a primitive, a prelude function
    ("def main = grad sin 1.0", math.cos(1.0)),
    ("def main = grad (pow 2.0) 3.0", 8 * math.log(2)),
    ("def main = grad sum [1.0, 2.0, 3.0]", [1.0, 1.0, 1.0]),
    ("def main = grad (dot [1.0, 2.0]) [5.0, 7.0]", [1.0, 2.0]),
    # a closure passed in as an argument, and a closure over a captured real
    ("def apply_grad f x = grad f x\ndef main = apply_grad (fun x -> x ^ 3) 2.0", 12.0),
    ("def main = let k = 3.0 in grad (fun x -> k * x * x) 2.0", 12.0),
    ("def scaled k = fun x -> k * sin x\ndef main = grad (scaled 2.0) 0.0", 2.0),
    # partial application of a top-level function; recursion
    ("def power n x = if n == 0 then 1.0 else x * power (n - 1) x\ndef main = grad (power 5) 2.0", 80.0),
    # let rec inside the differentiated function
    ("def main = grad (fun x -> let rec go n acc = if n == 0 then acc else go (n - 1) (acc * x) in go 4 1.0) 2.0",
     32.0),
    # Int, Bool and Unit positions get 0, false and ()
    ("def main = grad (fun (x, n, b, u) -> if b then x * float n else 0.0) (2.0, 3, true, ())", (3.0, 0, False, ())),
    # nested data: a list of tuples; a list cotangent has the list's length
    ("def main = grad (fun ps -> sum (map (fun (a, b) -> a * b) ps)) [(1.0, 2.0), (3.0, 4.0)]",
     [(2.0, 1.0), (4.0, 3.0)]),
    ("def main = grad (fun xs -> get xs 1 * 2.0) [1.0, 2.0, 3.0, 4.0]", [0.0, 2.0, 0.0, 0.0]),
    ("def main = grad (fun xs -> 1.0) []", []),
    # shared subterms accumulate (conformance 14)
    ("def main = grad (fun xs -> get xs 0 * get xs 0 + get xs 0 * get xs 2 + get xs 2) [2.0, 7.0, 1.0]",
     [5.0, 0.0, 3.0]),
    # value_and_grad
    ("def main = value_and_grad (fun x -> (x - 1.0) ^ 2) 0.5", (0.25, -1.0)),
    # kinks follow the usual convention
    ("def main = (grad relu 0.0, grad abs 0.0, grad relu 2.0, grad abs (-2.0))", (0.0, 0.0, 1.0, -1.0)),
    # the branch taken is differentiated (docs/transforms.md, Almost everywhere): identity whose AD derivative at 0 is 0
    ("def g x = if x > 0.0 then x else (if 0.0 - x > 0.0 then x else 0.0)\ndef main = (grad g 0.0, grad g 1.0)",
     (0.0, 1.0)),
]


@pytest.mark.parametrize("mode", REVERSE)
@pytest.mark.parametrize("source,expected", EXACT)
def test_exact_gradients(source, expected, mode):
    assert close(run(source, mode=mode), expected, rel=1e-12)


def test_vjp_pullback_many_outputs_and_many_calls():
    src = """
def f (x, y) = (x * y, [sin x, y * y])
def main = let (v, pb) = vjp f (2.0, 3.0) in (v, pb (1.0, [0.0, 0.0]), pb (0.0, [1.0, 0.0]), pb (0.0, [0.0, 1.0]))
"""
    value, g1, g2, g3 = run(src)
    assert close(value, (6.0, [math.sin(2.0), 9.0]))
    assert close(g1, (3.0, 2.0)) and close(g2, (math.cos(2.0), 0.0)) and close(g3, (0.0, 6.0))


def test_vjp_cotangent_of_the_wrong_length_is_a_runtime_error():
    src = "def main = let (v, pb) = vjp (fun xs -> map sin xs) [1.0, 2.0] in pb [1.0]"
    with pytest.raises(DlError) as e:
        run(src)
    assert e.value.kind == "runtime" and "length" in e.value.message


@pytest.mark.parametrize("source,line,col", [
    ("def main = grad (fun f -> f 1.0) (fun x -> x)", 1, 18),   # a function-typed input
    ("def main = grad (fun x -> (x, x)) 1.0", 1, 18),            # a non-Real output for grad
    ("def g h = grad h (fun x -> x)\ndef main = 1.0", 1, 19),    # caught before anything runs
])
def test_type_errors_before_running(source, line, col):
    with pytest.raises(DlError) as e:
        load_source(source)
    assert e.value.kind == "type" and (e.value.span.line, e.value.span.col) == (line, col)


NESTED = [
    # d/dx [d/dy (x y^2) at y = 1] = d/dx (2x) = 2: the inner gradient by forward passes inside ←D
    ("grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0", 2.0),
    ("grad (fun x -> derivative sin x) 1.0", -math.sin(1.0)),                    # reverse over forward
    ("derivative (fun x -> grad (fun y -> x * y * y) 2.0) 3.0", 4.0),            # forward over reverse
    ("grad (fun (a, b) -> snd (value_and_grad (fun (x, y) -> a * x * y + b * sin x) (1.0, 2.0)) |> fst) "
     "(0.5, 0.25)", (2.0, math.cos(1.0))),
    ("grad (fun x -> grad (fun y -> grad (fun z -> x * y * z * z) 1.0) 1.0) 1.0", 2.0),
    ("let (y, pb) = vjp (fun x -> derivative (fun t -> t * t * x) x) 3.0 in (y, pb 1.0)", (18.0, 12.0)),
]


@pytest.mark.parametrize("mode", ["backprop", "backprop-naive", "forward"])
@pytest.mark.parametrize("source,expected", NESTED)
def test_nested_differentiation_gives_the_right_number(source, expected, mode):
    assert close(run(f"def main = {source}", mode=mode), expected, rel=1e-12)


@pytest.mark.parametrize("mode", ["tape", "symbolic"])
def test_nesting_inside_an_overloading_mode_is_a_clean_error_naming_the_inner_grad(mode):
    src = "def main = grad (fun x -> grad (fun y -> x * y * y) 1.0) 3.0"
    with pytest.raises(DlError) as e:
        run(src, mode=mode)
    assert e.value.kind == "runtime"
    assert (e.value.span.line, e.value.span.col) == (1, 27)  # the inner grad
    assert "nested differentiation" in e.value.message


def test_deep_differentiation_through_a_recursion_of_100000_steps():
    src = "def go n acc x = if n == 0 then acc else go (n - 1) (acc * 0.99999 + x) x\n" \
          "def main = grad (go 100000 0.0) 1.0"
    got = run(src)
    want = (1 - 0.99999 ** 100000) / (1 - 0.99999)
    assert close(got, want, rel=1e-9)


def test_deep_differentiation_through_a_non_tail_recursion():
    src = "def sumTo n x = if n == 0 then 0.0 else x + sumTo (n - 1) x\ndef main = grad (sumTo 50000) 1.0"
    assert run(src) == 50000.0


def test_cli_cost_prints_the_counters():
    p = dl("run", "examples/sharing.dl", "10", "--cost")
    assert p.returncode == 0
    assert "backpropagator bodies run" in p.stderr
    assert " 10\n" in p.stderr.split("backpropagator bodies run")[1]


def test_counters_read_through_the_api():
    text = "def sq n x = if n == 0 then x else sq (n - 1) (x * x)\ndef main = grad (sq 6) 1.1"
    _, machine = run_with_machine(text, preaccumulate=False)
    c = machine.counters
    assert c.bp_run == 6 and c.bp_created == 6 and c.bp_run <= c.bp_created
    assert c.sink_updates == 2  # x is used twice by the first square
    _, machine = run_with_machine(text)  # preaccumulated: x' (x * a) + x' (x * a) is x' ((x + x) * a)
    c = machine.counters
    assert (c.bp_run, c.bp_created, c.merges, c.sink_updates) == (6, 6, 0, 1)
