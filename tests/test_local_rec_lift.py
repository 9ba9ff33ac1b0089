"""A local `let rec` function lifted into a derivative's language: the closure whose recursive calls all became
a loop in the primal code still captures itself, since its transform (compiled open when the closure is lifted)
calls it by name. Before, every mode that lifts closures failed with an internal error (tuple.index) on the
first program below. Expected values worked out by hand."""
import pytest

from conftest import listed, run

MODES = [m.name for m in listed()]

# (program, expected, what is differentiated)
PROGRAMS = [
    # p n x = 2^n x, a loop: d/dx at any point is 8
    ("def main = map (fun a -> let rec p (n : Int) (x : Real) = if n == 0 then x else p (n - 1) (2.0 * x) "
     "in grad (p 3) a) [1.0, 2.0]", [8.0, 8.0]),
    # a loop capturing the enclosing Real a: q 3 x = a^3 x, d/dx = a^3
    ("def main = map (fun a -> let rec q (n : Int) (x : Real) = if n == 0 then x else q (n - 1) (a * x) "
     "in grad (q 3) 1.5) [2.0, -1.0]", [8.0, -1.0]),
    # not a loop: f n x = x^n, value 1.5^3 = 3.375 and derivative 3 * 1.5^2 = 6.75
    ("def main = let rec f (n : Int) (x : Real) = if n == 0 then 1.0 else x * f (n - 1) x "
     "in value_and_grad (f 3) 1.5", (3.375, 6.75)),
    # the loop captured by the differentiated closure: d/dx (8x * x) = 16x
    ("def main = let rec p (n : Int) (x : Real) = if n == 0 then x else p (n - 1) (2.0 * x) "
     "in map (grad (fun x -> p 3 x * x)) [1.0, 2.0]", [16.0, 32.0]),
]


def flat(v):
    return [x for item in v for x in flat(item)] if isinstance(v, (list, tuple)) else [v]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text, expected", PROGRAMS)
def test_a_local_loop_lifts_in_every_mode(mode, text, expected):
    got = run(text, mode=mode)
    tol = max(get_tol(mode), 1e-12)
    assert len(flat(got)) == len(flat(expected))
    for g, e in zip(flat(got), flat(expected)):
        assert abs(g - e) <= tol * max(1.0, abs(e)), (mode, got, expected)


def get_tol(mode):
    return next(m.tolerance for m in listed() if m.name == mode)


@pytest.mark.parametrize("text, expected", PROGRAMS[:2])
def test_counting_machine_agrees(text, expected):
    assert run(text, counting=True) == expected
