"""The prelude's array definitions (docs/reference.md §6, Arrays): values and gradients against numpy by hand.

tests/test_stdlib.py checks that every prelude name occurs in a value test; the array
names occur in ARRAY_VALUES here.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import MODES, run
from lang.model.errors import DlError
from test_arrays_ad import ARRAY_MODES

Z = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 5.0]])
T = np.array([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
L = np.array([2.0, 0.0])
X = np.array([[0.3, -0.7, 1.1], [0.2, 0.4, -1.0]])
W1, B1 = np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]]), np.array([0.1, -0.1])
W2, B2 = np.array([[1.0, -1.0, 0.5], [0.5, 0.2, -0.3]]), np.array([0.0, 0.2, -0.2])
DEFS = ("let z = array [[1.0, 2.0, 3.0], [1.0, 1.0, 5.0]] in let t = array [[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]] in "
        "let x = array [[0.3, -0.7, 1.1], [0.2, 0.4, -1.0]] in "
        "let l1 = (array [[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], fromList [0.1, -0.1]) in "
        "let l2 = (array [[1.0, -1.0, 0.5], [0.5, 0.2, -0.3]], fromList [0.0, 0.2, -0.2]) in ")


def lse(z, axis):
    m = z.max(axis=axis, keepdims=True)
    return np.log(np.exp(z - m).sum(axis=axis, keepdims=True)) + m


def log_softmax(z, axis=-1):
    return z - lse(z, axis)


def adam_numpy(grad, p, rate, n):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, n + 1):
        g = grad(p)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        u = (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        p = p - rate * u
    return p


def _init(seed, n_in, n_out):
    return np.random.default_rng(seed).standard_normal((n_in, n_out)) * (1.0 / np.sqrt(n_in)), np.zeros(n_out)


C = np.array([1.0, -2.0, 0.5])
ARRAY_VALUES = [
    ("alogSoftmax 1 z", log_softmax(Z, 1)),
    ("asoftmax 1 z", np.exp(log_softmax(Z, 1))),
    ("asoftmax 0 (fromList [1000.0, 1000.0])", np.array([0.5, 0.5])),
    ("acrossEntropy z t", -np.sum(T * log_softmax(Z)) / 2),
    ("acrossEntropy (fromList [1.0, 2.0]) (fromList [0.0, 1.0])", -log_softmax(np.array([1.0, 2.0]))[1]),
    ("oneHot 3 (fromList [2.0, 0.0])", np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])),
    ("aaccuracy z (fromList [2.0, 0.0])", 0.5),
    ("adense tanh l1 x", np.tanh(X @ W1 + B1)),
    ("amlp tanh [l1, l2] x", np.tanh(X @ W1 + B1) @ W2 + B2),
    ("ainitLayer 3 2 5", _init(5, 3, 2)),
    ("ainitMlp [3, 4, 2] 1", [_init(1000, 3, 4), _init(1001, 4, 2)]),
    ("alayers (fun a b -> a + b) [l1] [l2 |> fun (w, b) -> (atranspose w, fromList [1.0, 2.0])]",
     [(W1 + W2.T, B1 + np.array([1.0, 2.0]))]),
    ("azeros alayers [l1, l2]", [(np.zeros((3, 2)), np.zeros(2)), (np.zeros((2, 3)), np.zeros(3))]),
    ("agdStep alayers 0.5 [l1] [l1]", [(0.5 * W1, 0.5 * B1)]),
    ("aadamStep real 0.1 (0, fromList [1.0, 2.0], zeros [2], zeros [2]) (fromList [0.5, -4.0])",
     (1, np.array([1.0, 2.0]) - 0.1 * np.array([0.5, -4.0]) / (np.abs([0.5, -4.0]) + 1e-8),
      np.array([0.05, -0.4]), 0.001 * np.array([0.25, 16.0]))),
    ("agradientDescent real 0.1 50 (fun p -> asum ((p - fromList [1.0, -2.0, 0.5]) ^ 2.0)) (zeros [3])",
     C - C * 0.8 ** 50),
    ("aadam real 0.05 200 (fun p -> asum ((p - fromList [1.0, -2.0, 0.5]) ^ 2.0)) (zeros [3])",
     adam_numpy(lambda p: 2 * (p - C), np.zeros(3), 0.05, 200)),
]


def _close(got, want, tol=1e-12):
    if isinstance(want, (list, tuple)):
        return type(got) is type(want) and len(got) == len(want) and all(_close(g, w, tol) for g, w in zip(got, want))
    if isinstance(want, np.ndarray):
        return isinstance(got, np.ndarray) and got.shape == want.shape and np.allclose(got, want, rtol=tol, atol=tol)
    return abs(got - want) <= tol * max(1.0, abs(want))


@pytest.mark.parametrize("source,want", ARRAY_VALUES, ids=[v[0][:60] for v in ARRAY_VALUES])
def test_array_prelude_value(source, want):
    got = run(f"def main = {DEFS}{source}")
    assert _close(got, want, 1e-10), (got, want)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_of_an_mlp_loss_through_the_array_prelude(mode):
    """amlp + acrossEntropy: the gradient with respect to the layers, against central differences in numpy
    (a mode without array rules refuses, with the shared diagnostic)."""
    source = f"def main = {DEFS}grad (fun ls -> acrossEntropy (amlp tanh ls x) t) [l1, l2]"
    if mode not in ARRAY_MODES:
        with pytest.raises(DlError, match="arrays yet"):  # the shared refusal, or a mode's own (lut)
            run(source, mode=mode)
        return
    got = run(source, mode=mode)
    params = [W1, B1, W2, B2]

    def loss(ps):
        w1, b1, w2, b2 = ps
        z = np.tanh(X @ w1 + b1) @ w2 + b2
        return -np.sum(T * log_softmax(z)) / 2
    flat = [g for pair in got for g in pair]
    for k, p in enumerate(params):
        want = np.zeros_like(p)
        for i in np.ndindex(*p.shape):
            up = [q.copy() for q in params]
            down = [q.copy() for q in params]
            up[k][i] += 1e-6
            down[k][i] -= 1e-6
            want[i] = (loss(up) - loss(down)) / 2e-6
        np.testing.assert_allclose(flat[k], want, rtol=1e-5, atol=1e-8)
