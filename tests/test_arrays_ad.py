"""Derivatives of array programs in every mode (docs/transforms.md, Arrays), against independent oracles.

- Every vector–Jacobian rule is checked against central differences of the same
  function written in numpy here, by hand (GRADIENTS), in every mode.
- The dot-product test <v, vjp(u)> == <jvp(v), u> at random points, with jvp(v)
  also checked against numpy's central differences (DOT_PRODUCT).
- An MLP loss's gradient against a backward pass written by hand in numpy.
- Every mode agrees or refuses with the shared "does not support arrays yet"
  diagnostic (a mode added to the table is picked up here); the modes that
  implement arrays must compute.
- Counters: one backpropagator per array operation, whatever the size.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import MODES, get, run, run_with_machine
from lang.model.errors import DlError

ARRAY_MODES = ["backprop", "backprop-naive", "forward", "tape", "numeric"]  # the modes that differentiate arrays
REFUSAL = "arrays yet"  # the shared refusal ("does not support arrays yet"), or a mode's own (lut)


def lit(a) -> str:
    """An ndarray as dl source (exact: repr of each float)."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return f"(scalar {float(a)!r})"

    def nested(x) -> str:
        return "[" + ", ".join(nested(y) if isinstance(y, list) else repr(float(y)) for y in x) + "]"
    return f"(array {nested(a.tolist())})"


def consts(named: dict) -> str:
    return "".join(f"def {k} = {lit(v)}\n" for k, v in named.items())


def central(f, x: np.ndarray) -> np.ndarray:
    """∂f/∂x by central differences in numpy (the oracle): step 1e-6 · max(1, |x_i|)."""
    g = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        h = 1e-6 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (up[i] - down[i])
    return g


def in_mode(source: str, mode: str):
    """The value of main in a mode; None when the mode refuses arrays with the shared diagnostic."""
    try:
        return run(source, mode=mode)
    except DlError as e:
        if REFUSAL in e.message and mode not in ARRAY_MODES:
            return None
        raise


RNG = np.random.default_rng(20251130)
X34 = RNG.uniform(-1.5, 1.5, (3, 4))
POS34 = RNG.uniform(0.5, 2.0, (3, 4))
C = {"c34": RNG.normal(size=(3, 4)), "c4": RNG.normal(size=4), "c3": RNG.normal(size=3),
     "w42": RNG.normal(size=(4, 2)), "c43": RNG.normal(size=(4, 3)), "c234": RNG.normal(size=(2, 3, 4)),
     "c64": RNG.normal(size=(6, 4)), "c32": RNG.normal(size=(3, 2)), "c22": RNG.normal(size=(2, 2)),
     "c12": RNG.normal(size=12), "c31": RNG.normal(size=(3, 1))}
c = C  # numpy's names for the constants in the lambdas below

sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731


def lse(z, axis=None):
    m = np.max(z, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(z - m), axis=axis)) + np.squeeze(m, axis=axis)


# (name, dl body of f x, numpy f, the point)
GRADIENTS = [
    ("elementwise", "asum (sin x * x + exp (x / 3.0) - sqrt (x * x + 1.0) * tanh x + cos x / (2.0 + x))",
     lambda x: np.sum(np.sin(x) * x + np.exp(x / 3) - np.sqrt(x * x + 1) * np.tanh(x) + np.cos(x) / (2 + x)), X34),
    ("broadcasting", "asum (x * c4 + sigmoid (x - c4) * c31 + softplus (c31 - x))",
     lambda x: np.sum(x * c["c4"] + sig(x - c["c4"]) * c["c31"] + np.log1p(np.exp(c["c31"] - x))), X34),
    ("broadcast operand", "asum (c34 * reshape [3, 1] (toList x |> fromList)) + asum (c31 + x)",
     lambda x: np.sum(c["c34"] * x.reshape(3, 1)) + np.sum(c["c31"] + x), RNG.normal(size=3)),
    ("kinks", "asum (relu x * c34 + abs x * c34 + max x c4 + min x 0.3 + sign x)",
     lambda x: np.sum(np.maximum(x, 0) * c["c34"] + np.abs(x) * c["c34"] + np.maximum(x, c["c4"])
                      + np.minimum(x, 0.3) + np.sign(x)), X34),
    ("powers", "asum (pow x 3.0 + x ^ 2.5 + log x * c34 + atan2 x (x + 1.0))",
     lambda x: np.sum(x ** 3 + x ** 2.5 + np.log(x) * c["c34"] + np.arctan2(x, x + 1)), POS34),
    ("exponent", "asum (pow (abs c4 + 0.5) x)", lambda x: np.sum((np.abs(c["c4"]) + 0.5) ** x), X34),
    ("matmul", "asum (tanh (amatmul x w42) * c32)", lambda x: np.sum(np.tanh(x @ c["w42"]) * c["c32"]), X34),
    ("matmul, left", "let z = amatmul c43 x * c43 in asum (z * z)",
     lambda x: np.sum(((c["c43"] @ x) * c["c43"]) ** 2), RNG.normal(size=(3, 3))),
    ("matmul of vectors", "adot (amatmul x c43) c3 + asum (amatmul c43 (slice 0 0 3 x))",
     lambda x: (x @ c["c43"]) @ c["c3"] + np.sum(c["c43"] @ x[0:3]), RNG.normal(size=4)),
    ("batched matmul", "asum (sin (amatmul (reshape [2, 3, 2] x) (reshape [2, 2, 3] c12)))",
     lambda x: np.sum(np.sin(x.reshape(2, 3, 2) @ c["c12"].reshape(2, 2, 3))), RNG.normal(size=12)),
    ("logsumexp", "alogsumexp x * 2.0 + asum (alogsumexpAxis 1 x * c3) + asum (alogsumexpAxis 0 x * c4)",
     lambda x: 2 * lse(x) + np.sum(lse(x, 1) * c["c3"]) + np.sum(lse(x, 0) * c["c4"]), X34),
    ("max, min", "amax x * 3.0 + amin x + asum (amaxAxis 0 x * c4) + asum (aminAxis 1 x * c3)",
     lambda x: 3 * x.max() + x.min() + np.sum(x.max(0) * c["c4"]) + np.sum(x.min(1) * c["c3"]), X34),
    ("means", "amean (x * x) + asum (ameanAxis 1 x * c3)",
     lambda x: np.mean(x * x) + np.sum(x.mean(1) * c["c3"]), X34),
    ("cumsum", "asum (cumsum 1 x * c34) + asum (cumsum 0 (sin x) * c34)",
     lambda x: np.sum(np.cumsum(x, 1) * c["c34"]) + np.sum(np.cumsum(np.sin(x), 0) * c["c34"]), X34),
    ("reshape, transpose", "asum (reshape [4, 3] x * c43) + asum (atranspose x * c43) + asum (swapaxes 0 1 x * c43)",
     lambda x: np.sum(x.reshape(4, 3) * c["c43"]) + 2 * np.sum(x.T * c["c43"]), X34),
    ("broadcastTo", "asum (broadcastTo [2, 3, 4] x * c234)", lambda x: np.sum(x * c["c234"]), X34),
    ("indexing", "aget x [1, 2] * aget x [0, 0] + asum (index 0 1 x * c4) + asum (index 1 3 x * c3) "
                 "+ asum (slice 1 1 3 x * c32) + agetFlat x 7",
     lambda x: x[1, 2] * x[0, 0] + np.sum(x[1] * c["c4"]) + np.sum(x[:, 3] * c["c3"]) + np.sum(x[:, 1:3] * c["c32"])
     + x.flat[7], X34),
    ("take with repeats", "asum (atake 1 [0, 2, 2, 3] x * c34) + asum (atake 0 [2, 2] x |> sin)",
     lambda x: np.sum(x[:, [0, 2, 2, 3]] * c["c34"]) + np.sum(np.sin(x[[2, 2]])), X34),
    ("concat, stack, unstack", "asum (aconcat 0 [x, x * x] * c64) + asum (stack 0 [x, sin x] * c234) "
                               "+ fold (fun acc r -> acc + asum (r * r * c4)) 0.0 (unstack 0 x)",
     lambda x: np.sum(np.concatenate([x, x * x]) * c["c64"]) + np.sum(np.stack([x, np.sin(x)]) * c["c234"])
     + np.sum(x * x * c["c4"]), X34),
    ("where", "asum (where (greater x 0.0) (x * x) (sin x) * c34) + asum (where (less x c4) x 0.0)",
     lambda x: np.sum(np.where(x > 0, x * x, np.sin(x)) * c["c34"]) + np.sum(np.where(x < c["c4"], x, 0.0)), X34),
    ("lists", "sum (map (fun v -> v * v * v) (toList x)) + asum (fromList (toList x) * c12) "
              "+ asum (array [[aget x [0, 0], 2.0], [aget x [1, 1], aget x [0, 0]]] * c22)",
     lambda x: np.sum(x ** 3) + np.sum(x.ravel() * c["c12"])
     + np.sum(np.array([[x[0, 0], 2.0], [x[1, 1], x[0, 0]]]) * c["c22"]), X34),
    ("amap", "asum (amap (fun v -> if v > 0.0 then v * v * sin v else exp v / 2.0) x * c34)",
     lambda x: np.sum(np.where(x > 0, x * x * np.sin(x), np.exp(x) / 2) * c["c34"]), X34),
    ("products", "adot x c34 * adot x x + asum (aouter (index 0 0 x) c3 * c43)",
     lambda x: np.sum(x * c["c34"]) * np.sum(x * x) + np.sum(np.outer(x[0], c["c3"]) * c["c43"]), X34),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,body,f_np,x", GRADIENTS, ids=[g[0] for g in GRADIENTS])
def test_gradient_against_numpy_central_differences(name, body, f_np, x, mode):
    source = consts(C) + f"def f (x : Array) = {body}\ndef main = value_and_grad f {lit(x)}\n"
    got = in_mode(source, mode)
    if got is None:
        return
    value, grad = got
    assert abs(value - f_np(x)) <= 1e-9 * max(1.0, abs(f_np(x))), (value, f_np(x))
    want = central(f_np, x)
    assert type(grad) is np.ndarray and grad.shape == x.shape
    tol = 1e-5 if mode == "numeric" else 1e-6
    np.testing.assert_allclose(grad, want, rtol=tol, atol=tol)


# (name, dl body of f x : Array -> Array, numpy f, the point)
DOT_PRODUCT = [
    ("elementwise", "sin x * x + exp (0.0 - x) * c34", lambda x: np.sin(x) * x + np.exp(-x) * c["c34"], X34),
    ("broadcast", "x * c4 + c31 / (2.0 + x)", lambda x: x * c["c4"] + c["c31"] / (2 + x), X34),
    ("unbroadcast", "asumAxis 1 (x * c34) + reshape [3] x", lambda x: np.sum(x * c["c34"], 1) + x.reshape(3),
     RNG.normal(size=(3, 1))),
    ("matmul", "amatmul (tanh x) w42", lambda x: np.tanh(x) @ c["w42"], X34),
    ("layout", "swapaxes 0 1 (reshape [2, 6] x) * reshape [6, 2] c12 |> reshape [3, 4]",
     lambda x: (np.swapaxes(x.reshape(2, 6), 0, 1) * c["c12"].reshape(6, 2)).reshape(3, 4), X34),
    ("reductions", "aconcat 0 [alogsumexpAxis 0 x, amaxAxis 0 (x * x), cumsum 0 x |> index 0 2]",
     lambda x: np.concatenate([lse(x, 0), (x * x).max(0), np.cumsum(x, 0)[2]]), X34),
    ("gather and slices", "stack 0 [atake 1 [3, 3, 0, 1] x, slice 0 1 3 (aconcat 0 [x, x]) |> index 0 0 "
                          "|> broadcastTo [3, 4]]",
     lambda x: np.stack([x[:, [3, 3, 0, 1]], np.broadcast_to(np.concatenate([x, x])[1:3][0], (3, 4))]), X34),
    ("where and amap", "where (greater x 0.0) (amap (fun v -> v * v * v) x) (x * 0.5)",
     lambda x: np.where(x > 0, x ** 3, 0.5 * x), X34),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,body,f_np,x", DOT_PRODUCT, ids=[g[0] for g in DOT_PRODUCT])
def test_dot_product_vjp_against_jvp(name, body, f_np, x, mode):
    """<v, vjp(u)> == <jvp(v), u> at a random point, u and v random; jvp(v) against numpy's central
    difference along v."""
    y = f_np(x)
    u, v = RNG.normal(size=y.shape), RNG.normal(size=x.shape)
    source = consts(C) + (f"def f (x : Array) = {body}\n"
                          f"def main = let (y, pb) = vjp f {lit(x)} in (y, pb {lit(u)}, snd (jvp f {lit(x)} {lit(v)}))\n")
    got = in_mode(source, mode)
    if got is None:
        return
    y_dl, vjp_u, jvp_v = got
    np.testing.assert_allclose(y_dl, y, rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = (f_np(x + h * v) - f_np(x - h * v)) / (2 * h)
    np.testing.assert_allclose(jvp_v, fd, rtol=1e-5, atol=1e-6)
    tol = 1e-5 if mode == "numeric" else 1e-10
    assert abs(np.vdot(v, vjp_u) - np.vdot(jvp_v, u)) <= tol * max(1.0, abs(np.vdot(jvp_v, u)))


# ---- an MLP loss: the gradient of a list of (W, b) against a hand-written backward pass -----------

MLP = """
def logits (x : Array) (layers : [Array * Array]) =
  let h = fold (fun h (w, b) -> tanh (amatmul h w + b)) x (init layers) in
  let (w, b) = last layers in
  amatmul h w + b

def loss (x : Array) (t : Array) (layers : [Array * Array]) =
  let z = logits x layers in
  0.0 - asum (t * (z - reshape [dim 0 z, 1] (alogsumexpAxis 1 z))) / float (dim 0 z)
"""


def mlp_numpy(x, t, layers):
    """Value and gradient of the same loss, the backward pass written by hand (the oracle)."""
    hs = [x]
    for w, b in layers[:-1]:
        hs.append(np.tanh(hs[-1] @ w + b))
    w, b = layers[-1]
    z = hs[-1] @ w + b
    n = z.shape[0]
    p = np.exp(z - lse(z, 1)[:, None])
    loss = -np.sum(t * (z - lse(z, 1)[:, None])) / n
    dz = (p * t.sum(1, keepdims=True) - t) / n
    grads = []
    for k in range(len(layers) - 1, -1, -1):
        w, b = layers[k]
        grads.append((hs[k].T @ dz, dz.sum(0)))
        if k:
            dz = (dz @ w.T) * (1 - hs[k] ** 2)
    return loss, grads[::-1]


@pytest.mark.parametrize("mode", MODES)
def test_mlp_gradient_against_a_hand_written_backward_pass(mode):
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=(5, 4)), np.eye(3)[rng.integers(0, 3, 5)]
    layers = [(rng.normal(size=(4, 6)) / 2, rng.normal(size=6) / 4), (rng.normal(size=(6, 3)) / 2, rng.normal(size=3))]
    ls = "[" + ", ".join(f"({lit(w)}, {lit(b)})" for w, b in layers) + "]"
    source = MLP + f"def main = value_and_grad (loss {lit(x)} {lit(t)}) {ls}\n"
    got = in_mode(source, mode)
    if got is None:
        return
    value, grads = got
    want_value, want = mlp_numpy(x, t, layers)
    assert abs(value - want_value) <= 1e-12 * abs(want_value)
    tol = 1e-6 if mode == "numeric" else 1e-10
    for (gw, gb), (ww, wb) in zip(grads, want):
        np.testing.assert_allclose(gw, ww, rtol=tol, atol=tol)
        np.testing.assert_allclose(gb, wb, rtol=tol, atol=tol)


# ---- inputs of every shape of differentiable data; captured arrays and reals -------------------------


@pytest.mark.parametrize("mode", MODES)
def test_gradients_of_tuples_of_reals_and_arrays_and_of_captured_values(mode):
    source = ("def a0 = fromList [1.0, 2.0, 3.0]\n"
              "def f (p : Real * Array) = let (r, a) = p in asum (scalar r * a * a0) + r * asum a\n"
              "def g (r : Real) = asum (amap (fun v -> r * v * v) a0)\n"            # amap capturing r
              "def h (a : Array) = grad (fun r -> asum (scalar r * a)) 2.0\n"        # a captured by a nested grad
              "def main = (grad f (0.5, fromList [1.0, -1.0, 2.0]), grad g 1.5, h (fromList [1.0, 2.0]))\n")
    got = in_mode(source, mode)
    if got is None:
        return
    (gr, ga), gg, hh = got
    a, a0, r = np.array([1.0, -1.0, 2.0]), np.array([1.0, 2.0, 3.0]), 0.5
    assert abs(gr - (np.sum(a * a0) + np.sum(a))) < 1e-6
    np.testing.assert_allclose(ga, r * a0 + r, rtol=1e-6)
    assert abs(gg - np.sum(a0 * a0)) < 1e-6
    assert abs(hh - 3.0) < 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_a_gradient_that_never_reaches_an_array_input_is_zeros_of_its_shape(mode):
    got = in_mode("def main = grad (fun (a : Array) -> 2.0) (ones [2, 3])\n", mode)
    if got is not None:
        assert type(got) is np.ndarray and np.array_equal(got, np.zeros((2, 3)))


def test_a_cotangent_of_the_wrong_shape_is_an_error_at_the_vjp():
    with pytest.raises(DlError) as info:
        run("def main = let (y, pb) = vjp (fun (a : Array) -> a * 2.0) (ones [3]) in pb (ones [2])\n")
    assert info.value.kind == "runtime"
    assert "has an array of shape [2] where the value has shape [3]" in info.value.message
    assert info.value.span.col == 26


# ---- the refusal is the shared diagnostic ----------------------------------------------------------


def test_symbolic_mode_refuses_arrays_with_the_shared_diagnostic():
    with pytest.raises(DlError) as info:
        run("def main = grad (fun (a : Array) -> asum a) (ones [2])\n", mode="symbolic")
    assert info.value.message == ("differentiating a function of an Array: the symbolic mode does not support "
                                  "arrays yet (backprop, backprop-naive, forward, tape and numeric do)")
    with pytest.raises(DlError) as info:
        run("def main = grad (fun x -> asum (scalar x * ones [2])) 1.0\n", mode="symbolic")
    assert info.value.message.startswith("the array operation `scalar`: the symbolic mode does not support")
    assert info.value.span.col == 33


def test_a_transform_without_array_rules_refuses_through_the_shared_helper():
    """A new mode built on Homomorphism inherits the refusal (lang/transforms/common.py)."""
    from lang.front.desugar import Fresh
    from lang.transforms.common import Homomorphism
    from lang.model import core as c
    from lang.model.types import ARRAY, REAL

    class NewMode(Homomorphism):
        real_pair = REAL
    e = c.Prim("asum", (c.Var("a", ty=ARRAY),), ty=REAL)
    with pytest.raises(DlError) as info:
        NewMode(Fresh(set())).term(e)
    assert info.value.message.startswith("the array operation `asum`: the newmode mode does not support arrays yet")


# ---- counters: one backpropagator per array operation, not per element ------------------------------


@pytest.mark.parametrize("mode", ["backprop", "backprop-naive", "tape"])
def test_one_backpropagator_per_array_operation_whatever_the_size(mode):
    counts = []
    for n in (10, 1000):
        _, machine = run_with_machine(f"def f (x : Array) = asum (sin x * x)\n"
                                      f"def main = grad f (alinspace 0.0 1.0 {n})\n", mode=mode)
        counts.append((machine.counters.bp_created, machine.counters.bp_run, machine.counters.prims))
    assert counts[0] == counts[1]
    assert counts[0][0] == 3  # sin, *, asum


def test_elements_touched_are_counted_per_array_operation():
    _, machine = run_with_machine("def main = asum (sin (ones [7]) * ones [7])\n", mode="backprop")
    # ones [7] twice (7 each), sin (7 in, 7 out), * (7, 7 and 7 out), asum (7 in)
    assert machine.counters.elements == 7 + 7 + 14 + 21 + 7
    assert machine.counters.as_dict()["elements"] == 56


def test_reading_elements_in_a_loop_touches_each_element_a_constant_number_of_times():
    """Each read's cotangent is sparse, added in place into the array's accumulator: the backward pass
    touches O(n) elements for n reads, where a one-hot cotangent per read would touch n² (the `elements`
    counter counts what the accumulations touch too)."""
    touched = []
    for n in (200, 800):
        _, machine = run_with_machine(
            f"def f (x : Array) = fold (fun acc i -> acc + agetFlat x i * agetFlat x i) 0.0 (range {n})\n"
            f"def main = grad f (alinspace 0.0 1.0 {n})\n", mode="backprop")
        touched.append(machine.counters.elements)
    assert touched[1] < 5 * touched[0]  # 4x the reads: 4x the elements, not 16x


def test_modes_listed_for_arrays_are_rows_of_the_mode_table():
    for m in ARRAY_MODES:
        assert get(m).name == m


# ---- every transformed array definition type-checks (linearity included) and reads back ------------


def test_array_definitions_transform_check_and_round_trip():
    from conftest import TRANSFORM_MODES, load_source
    from lang.back.deep import run_deep
    from test_transform_check import check_all
    source = consts(C) + "".join(f"def f{k} (x : Array) = {body}\n" for k, (_, body, _, _) in enumerate(GRADIENTS)) \
        + "".join(f"def g{k} (x : Array) = {body}\n" for k, (_, body, _, _) in enumerate(DOT_PRODUCT)) + MLP
    program = load_source(source)
    defs = [d for d in program.module.defs if d.name[0] in "fgl"]
    assert run_deep(lambda: check_all(program, defs)) == 2 * len(TRANSFORM_MODES) * len(defs)


# ---- the tools read arrays: :gradcheck and dl compare ------------------------------------------------


def test_gradcheck_compares_array_gradients_in_every_mode():
    from lang.tools.repl.core import execute, new_state
    _, out = execute(new_state(), ":gradcheck (fun a -> asum (sin a * a)) (fromList [0.5, 1.0, 2.0])")
    lines = out.text.split("\n")
    assert lines[2].split()[0] == "backprop" and lines[2].split()[-1] == "reference"
    assert "symbolic" in out.text and REFUSAL in out.text     # symbolic refuses, with the shared diagnostic
    assert "DISAGREEMENT" not in out.text


def test_compare_measures_the_error_of_array_values(tmp_path):
    from conftest import cli
    prog = tmp_path / "c.dl"
    prog.write_text("def f (a : Array) = asum (sin a * a)\ndef main = grad f (alinspace 0.0 1.0 50)\n")
    code, out, err = cli("compare", str(prog), "--modes", "backprop,forward,numeric", "--format", "csv",
                         "--budget", "30")
    assert code == 0, err
    header = out.split("\n")[0].split(",")
    mode, error = header.index("mode"), header.index("error")
    rows = {r.split(",")[mode]: r.split(",") for r in out.strip().split("\n")[1:]}
    assert float(rows["forward"][error]) < 1e-12 and 0 < float(rows["numeric"][error]) < 1e-6


@pytest.mark.parametrize("mode", ["backprop", "backprop-naive", "tape"])
def test_the_backward_pass_counts_the_elements_it_merges(mode):
    """x of 3 elements read by a second `asum`: that asum touches 3 elements, its vjp `full` makes 3, and
    its contribution is merged into the first one's: 3 more, in every reverse mode."""
    def elements(body):
        _, machine = run_with_machine(f"def f (x : Array) = {body}\n"
                                      f"def main = grad f (fromList [0.1, 0.2, 0.3])\n", mode=mode)
        return machine.counters.elements
    assert elements("asum x + asum x") - elements("asum x") == 3 + 3 + 3


@pytest.mark.parametrize("command", [":graph", ":step"])
def test_graph_and_stepper_refuse_arrays_with_a_diagnostic(command):
    """They draw a derivative call real by real: an Array is refused at the call, not a traceback."""
    from lang.tools.repl.core import execute, new_state
    _, out = execute(new_state(), f"{command} grad (fun (a : Array) -> asum (sin a * a)) (fromList [0.5, 1.0])")
    assert out.error and "runtime error: the graph and the stepper show derivative calls of Reals" in out.text
    assert out.text.split("\n")[0].endswith(f":1:{len(command) + 2}: runtime error: the graph and the stepper "
                                            "show derivative calls of Reals, tuples and lists; this one has an "
                                            "Array (not drawn yet: run it with :gradcheck or dl compare)")


@pytest.mark.parametrize("mode", ["backprop", "backprop-naive", "tape"])
def test_a_partial_zero_by_construction_is_never_multiplied_elementwise(mode):
    """relu's cotangent is `where (a > 0) c 0`, not `where (a > 0) 1 0 * c`: an infinite cotangent element
    where a <= 0 gives 0 (as `ZERO * inf` does for a Real), not nan; the oracle is numpy's where by hand.
    (Forward mode's vjp multiplies its Jacobian columns by u, so it is not held to this: transforms.md,
    Arrays.)"""
    a, u = np.array([-1.0, 2.0, 0.0]), np.array([np.inf, 3.0, -np.inf])
    got = run("def main = let (y, pb) = vjp (fun (a : Array) -> relu a) (fromList [-1.0, 2.0, 0.0]) in "
              "pb (fromList [1.0 / 0.0, 3.0, -1.0 / 0.0])\n", mode=mode)
    np.testing.assert_array_equal(got, np.where(a > 0, u, 0.0))
    got = run("def main = grad (fun (a : Array) -> asum (sign a * a)) (fromList [-1.0, 2.0, 0.0])\n", mode=mode)
    np.testing.assert_array_equal(got, np.sign(a))  # sign's partial is zero: only the factor a's path counts
