"""`jvp` and `derivative` follow the mode (item 4 of "First contact").

Every mode computes them its own way from primal code, as its runtime's
`jvp` (lang/modes/runtimes.py): forward by one run of →D with the tangent v;
backprop, backprop-naive, tape and symbolic by J v from one backward pass
per output real; numeric by one central difference in the direction v.
Inside differentiated code they still run forward one level deeper
(tests/test_modes.py, tests/test_backprop.py: the nested tests).

Expected values: JAX (jax 0.4 with x64, `jax.jvp` / `jax.grad`, run outside
the repository), and sin 1 + cos 1 by hand.
"""
import math

import pytest

from conftest import EXACT_MODES, MODES, close, dl, get, run, run_with_machine

VECTOR = """
def f (a, b, c) = (a * b + sin c, [exp (a - c), a * b * c, tanh (b / (1.0 + c * c))])
"""

JVPS = [
    ("def main = derivative (fun x -> x * sin x) 1.0", 1.3817732906760363),
    ("def main = derivative (fun x -> exp (sin x) / (1.0 + x * x)) 0.7", -0.22336948720222993),
    (VECTOR + "def main = snd (jvp f (0.5, -1.25, 2.0) (1.0, 0.5, -2.0))",
     (-0.1677063269057152, [0.6693904804452895, -0.75, -0.2820044546419134])),
    ("def main = snd (jvp (fun xs -> fold (fun acc x -> acc + sin x * x) 0.0 xs) [0.1, 0.2, 0.3] [1.0, -1.0, 2.0])",
     0.9688934936093639),
    # an Int position in the output has the zero tangent 0
    ("def main = snd (jvp (fun (x, n) -> (x * float n, n)) (1.5, 3) (2.0, 0))", (6.0, 0)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source,expected", JVPS)
def test_every_mode_computes_jvp(source, expected, mode):
    rel = 1e-6 if get(mode).tolerance > 1e-9 else 1e-12
    assert close(run(source, mode=mode), expected, rel=rel, abs_=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_derivative_is_computed_by_the_modes_runtime(mode, monkeypatch):
    """The mode's own runtime computes `derivative` and `jvp` from primal code (not →D in every mode)."""
    runtime = get(mode).load_runtime()
    calls = []
    original = type(runtime).jvp

    def spy(self, *args):
        calls.append(self.name)
        return original(self, *args)
    monkeypatch.setattr(type(runtime), "jvp", spy)
    run("def main = (derivative (fun x -> x * sin x) 1.0, jvp (fun x -> (x, x)) 1.0 2.0)", mode=mode)
    assert calls == [runtime.name, runtime.name]


def test_each_mode_leaves_its_own_trace():
    """What ran, seen in the exact counters: a reverse pass (backpropagators), a tape, an unrolled
    expression, two evaluations of f — or →D alone."""
    source = "def main = derivative (fun x -> x * sin x) 1.0"
    counters = {mode: run_with_machine(source, mode)[1].counters for mode in MODES}
    assert counters["forward"].bp_created == 0 and counters["forward"].bp_run == 0
    for reverse in ("backprop-naive", "tape"):
        assert counters[reverse].bp_created == 2 and counters[reverse].bp_run >= 2, reverse
    # preaccumulated, sin's backpropagator is inlined into the product's (docs/transforms.md, Preaccumulation)
    assert counters["backprop"].bp_created == 1 and counters["backprop"].bp_run == 1
    assert counters["symbolic"].extra["expression_size"] == 4
    assert counters["numeric"].extra["evaluations"] == 3


def test_numeric_derivative_is_a_difference_not_the_exact_cosine():
    value = run("def main = derivative sin 1.0", mode="numeric")
    assert value != math.cos(1.0) and math.isclose(value, math.cos(1.0), rel_tol=1e-9)


def test_jvp_of_a_function_into_an_empty_list_and_a_zero_direction():
    assert run("def main = snd (jvp (fun x -> [] : Real -> [Real]) 1.0 1.0)", mode="backprop") == []
    for mode in MODES:
        assert run("def main = snd (jvp (fun x -> x * x) 3.0 0.0)", mode=mode) == 0.0, mode


@pytest.mark.parametrize("mode", EXACT_MODES)
def test_dot_product_identity_with_each_modes_own_jvp(mode):
    """<v, vjp(u)> = <jvp(v), u>, both computed by the mode itself."""
    x, v, u = (0.5, -1.25, 2.0), (1.0, 0.5, -2.0), (0.3, [1.0, -0.5, 2.0])
    src = VECTOR + (f"def main = let (y, pb) = vjp f {x!r} in let (y2, t) = jvp f {x!r} {v!r} in "
                    f"(pb ({u[0]!r}, {u[1]!r}), t)")
    g, (t0, t1) = run(src, mode=mode)
    lhs = sum(a * b for a, b in zip(v, g))
    rhs = t0 * u[0] + sum(a * b for a, b in zip(t1, u[1]))
    assert math.isclose(lhs, rhs, rel_tol=1e-12), mode


def test_dl_modes_says_how_each_mode_computes_jvp():
    out = dl("modes").stdout
    for mode in MODES:
        assert f"derivative/jvp: {get(mode).jvp}" in out, mode
