"""`max`/`min` at a tie (issue 18): the derivative is split evenly, 0.5 to each argument, in every mode; the
array reductions `amax`/`amin`/`amaxAxis`/`aminAxis` split it evenly among the tied elements.

Oracle: the peers' rules, from their sources (jax and torch are not installed here, so the values are
read off the rules, not computed by them):
- JAX, jax/_src/lax/lax.py: `max_p`'s JVP is `g * _balanced_eq(x, ans, y)`, 1 where x alone is the result,
  0.5 where x == y; so jax.grad(jnp.maximum, argnums=(0, 1))(2., 2.) = (0.5, 0.5), and the same for
  jnp.minimum. Reductions (`_reduce_chooser_jvp_rule`): the tangent at the positions equal to the result,
  divided by their count: jax.grad(jnp.max)(jnp.array([1., 3., 3.])) = [0., 0.5, 0.5].
- PyTorch, tools/autograd/derivatives.yaml: `maximum`/`minimum` give `grad / 2` to each input where
  self == other; torch.amax/amin "evenly distribute gradient between equal values".
numeric agrees without being told: a central difference at a tie of max x y in x is
(x + h - (x)) / 2h = 0.5.
"""
import pytest

from conftest import MODES, close, get, run

ARRAY_MODES = ["backprop", "backprop-naive", "forward", "tape", "numeric"]  # as tests/test_arrays_ad.py


def tol(mode):
    return {"rel": 0.0, "abs_": 0.0} if get(mode).tolerance <= 1e-9 else {"rel": 1e-6, "abs_": 1e-9}


REALS = """
def main = (grad (fun (x, y) -> max x y) (2.0, 2.0), grad (fun (x, y) -> min x y) (2.0, 2.0),
            grad (fun (x, y) -> max x y) (3.0, 2.0), grad (fun (x, y) -> min x y) (3.0, 2.0),
            grad (fun x -> max x 0.0) 0.0, grad (fun x -> max x x) 1.5,
            jvp (fun (x, y) -> max x y) (1.0, 1.0) (1.0, 3.0))
"""
# JAX: (0.5, 0.5) twice at the tie; (1, 0) and (0, 1) off it; d/dx maximum(x, 0) at 0 = 0.5; max x x is x
# (0.5 + 0.5 = 1); the jvp at the tie is 0.5 · 1 + 0.5 · 3 = 2
REALS_EXPECTED = ((0.5, 0.5), (0.5, 0.5), (1.0, 0.0), (0.0, 1.0), 0.5, 1.0, (1.0, 2.0))


@pytest.mark.parametrize("mode", MODES)
def test_a_tie_splits_the_derivative_evenly_in_every_mode(mode):
    assert close(run(REALS, mode=mode), REALS_EXPECTED, **tol(mode))


ARRAYS = """
def main = (grad (fun (a, b) -> asum (max a b)) (fromList [1.0, 2.0, 3.0], fromList [1.0, 5.0, 0.0]),
            grad (fun (a, b) -> asum (min a b)) (fromList [1.0, 2.0, 3.0], fromList [1.0, 5.0, 0.0]),
            grad amax (fromList [1.0, 3.0, 3.0]), grad amin (fromList [2.0, 2.0, 2.0, 7.0]),
            grad (fun a -> asum (amaxAxis 0 a)) (array [[1.0, 2.0], [1.0, 0.0]]),
            jvp amax (fromList [1.0, 3.0, 3.0]) (fromList [5.0, 1.0, 2.0]))
"""
# JAX: maximum/minimum elementwise 0.5 where equal; reduce_max over [1, 3, 3] -> [0, 0.5, 0.5]; reduce_min
# over [2, 2, 2, 7] -> [1/3, 1/3, 1/3, 0]; max over axis 0 of [[1, 2], [1, 0]] -> [[0.5, 1], [0.5, 0]]; the jvp
# of amax at [1, 3, 3] in the direction [5, 1, 2] is (1 + 2) / 2 = 1.5
ARRAYS_EXPECTED = (([0.5, 0.0, 1.0], [0.5, 1.0, 0.0]), ([0.5, 1.0, 0.0], [0.5, 0.0, 1.0]),
                   [0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3, 0.0], [[0.5, 1.0], [0.5, 0.0]], (3.0, 1.5))


def as_lists(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, (tuple, list)):
        return type(v)(as_lists(x) for x in v)
    return v


@pytest.mark.parametrize("mode", ARRAY_MODES)
def test_a_tie_in_an_array_reduction_splits_the_derivative_among_the_tied_elements(mode):
    """numeric agrees at two-way ties; at the three-way tie of amin it cannot: moving one of three equal
    elements by ±h moves the minimum by h one way and not at all the other, so each central difference is
    0.5 (a limit of numeric, documented in docs/reference.md, Conventions)."""
    got = as_lists(run(ARRAYS, mode=mode))
    if mode == "numeric":
        assert close(got[3], [0.5, 0.5, 0.5, 0.0], **tol(mode))
        got, expected = got[:3] + got[4:], ARRAYS_EXPECTED[:3] + ARRAYS_EXPECTED[4:]
        assert close(got, expected, **tol(mode))
    else:
        assert close(got, ARRAYS_EXPECTED, rel=1e-15, abs_=0.0)


@pytest.mark.parametrize("mode", ["backprop", "forward", "tape"])
def test_a_nan_extreme_gives_its_derivative_to_the_first_nan(mode):
    """No element equals a nan maximum, so there is no tie to split: the first nan takes the derivative (as
    before the tie rule; JAX's rule gives nan/0 there, an arbitrary choice either way)."""
    got = as_lists(run("def main = grad amax (fromList [1.0, 0.0 / 0.0, 0.0 / 0.0])", mode=mode))
    assert got == [0.0, 1.0, 0.0]
