"""Arrays (docs/reference.md §5, Arrays): values, every operation's result, shapes, errors, printing, typing.

Expected values are computed here with numpy by hand (the oracle), never by dl:
each row of OPERATIONS is a dl expression and the numpy expression it must equal.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, dl, run
from lang.model.errors import DlError
from lang.model.values import show_value

M = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])           # (2, 3)
V = np.array([0.25, -1.0, 2.0])                               # (3,)
W = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]])           # (3, 2)
PRELUDE = ("let m = array [[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]] in let v = fromList [0.25, -1.0, 2.0] in "
           "let w = array [[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]] in ")


def value(expr: str):
    return run(f"def main = {PRELUDE}{expr}")


OPERATIONS = [
    # construction
    ("array [[1.0, 2.0], [3.0, 4.0]]", np.array([[1.0, 2.0], [3.0, 4.0]])),
    ("array [[[1, 2]], [[3, 4]]]", np.array([[[1.0, 2.0]], [[3.0, 4.0]]])),
    ("array []", np.zeros(0)),
    ("fromList [1.0, 2.5]", np.array([1.0, 2.5])),
    ("zeros [2, 0, 3]", np.zeros((2, 0, 3))),
    ("ones [2]", np.ones(2)),
    ("full [2, 2] 7.5", np.full((2, 2), 7.5)),
    ("scalar 3.0", np.array(3.0)),
    ("eye 3", np.eye(3)),
    ("arange 4", np.array([0.0, 1.0, 2.0, 3.0])),
    ("alinspace 0.0 1.0 5", np.array([0.0, 0.25, 0.5, 0.75, 1.0])),
    ("azerosLike m", np.zeros((2, 3))),
    ("(2.0 : Array)", np.array(2.0)),
    # shape
    ("shape m", [2, 3]), ("size m", 6), ("ndim v", 1), ("dim 1 m", 3), ("dim (-1) m", 3),
    ("reshape [3, 2] m", M.reshape(3, 2)), ("reshape [-1] m", M.reshape(-1)),
    ("atranspose m", M.T), ("swapaxes 0 1 m", M.T),
    ("broadcastTo [2, 3] v", np.broadcast_to(V, (2, 3))),
    # elementwise, with broadcasting
    ("m + v", M + V), ("m - v * 2.0", M - V * 2.0), ("m * m", M * M), ("v / m", V / M),
    ("2.0 * m + 1", 2.0 * M + 1.0), ("-m", -M), ("m ^ 2.0", M ** 2.0), ("pow (abs m) 0.5", np.abs(M) ** 0.5),
    ("sin m", np.sin(M)), ("cos m", np.cos(M)), ("tan v", np.tan(V)), ("exp m", np.exp(M)),
    ("log (abs m)", np.log(np.abs(M))), ("sqrt (abs m)", np.sqrt(np.abs(M))), ("tanh m", np.tanh(M)),
    ("sigmoid m", 1.0 / (1.0 + np.exp(-M))), ("relu m", np.maximum(M, 0.0)),
    ("softplus m", np.log1p(np.exp(M))), ("abs m", np.abs(M)), ("sign m", np.sign(M)),
    ("atan2 m (m + 1.0)", np.arctan2(M, M + 1.0)), ("min m v", np.minimum(M, V)), ("max m v", np.maximum(M, V)),
    ("sin m * m + 2.0", np.sin(M) * M + 2.0), ("pi * v", np.pi * V),
    ("greater m v", (M > V).astype(float)), ("lessEq m 0.5", (M <= 0.5).astype(float)),
    ("equal m m", np.ones((2, 3))), ("less v 0.0", (V < 0).astype(float)), ("greaterEq v 2.0", (V >= 2).astype(float)),
    ("where (greater m 0.0) m (m * 10.0)", np.where(M > 0, M, M * 10.0)),
    # reductions
    ("asum m", float(M.sum())), ("amean m", float(M.mean())), ("amax m", 4.0), ("amin m", -2.0),
    ("aargmax m", 4), ("aargmin v", 1),
    ("alogsumexp m", float(np.log(np.sum(np.exp(M))))),
    ("alogsumexp (fromList [1000.0, 1000.0])", 1000.0 + float(np.log(2.0))),
    ("asumAxis 0 m", M.sum(axis=0)), ("asumAxis (-1) m", M.sum(axis=1)), ("ameanAxis 1 m", M.mean(axis=1)),
    ("amaxAxis 0 m", M.max(axis=0)), ("aminAxis 1 m", M.min(axis=1)),
    ("alogsumexpAxis 1 m", np.log(np.sum(np.exp(M), axis=1))),
    ("cumsum 1 m", np.cumsum(M, axis=1)), ("cumsum 0 m", np.cumsum(M, axis=0)),
    # products
    ("adot v v", float(V @ V)), ("amatmul m w", M @ W), ("amatmul v w", V @ W), ("amatmul m v", M @ V),
    ("amatmul (stack 0 [m, m * 2.0]) w", np.stack([M, 2 * M]) @ W), ("aouter v (fromList [1.0, 2.0])",
                                                                     np.outer(V, [1.0, 2.0])),
    # indexing and joining
    ("aget m [1, 2]", -1.5), ("aget m [-1, 0]", 0.5), ("agetFlat m 4", 4.0),
    ("index 0 1 m", M[1]), ("index 1 2 m", M[:, 2]), ("slice 1 1 3 m", M[:, 1:3]),
    ("atake 1 [2, 0, 0] m", M[:, [2, 0, 0]]), ("atake 0 [-1] m", M[[-1]]),
    ("aconcat 0 [m, m]", np.concatenate([M, M])), ("aconcat 1 [m, w |> atranspose]", np.concatenate([M, W.T], 1)),
    ("stack 1 [v, v * 2.0]", np.stack([V, 2 * V], 1)), ("length (unstack 0 m)", 2),
    ("index 0 1 (stack 0 (unstack 0 m))", M[1]),
    ("toList m", M.ravel().tolist()),
    # amap: a dl function per element, `if` inside
    ("amap (fun x -> if x > 1.0 then x * x else 0.0 - x) m", np.where(M > 1.0, M * M, -M)),
]


def _same(got, want) -> bool:
    if isinstance(want, np.ndarray):
        return type(got) is np.ndarray and got.dtype == np.float64 and got.shape == want.shape and \
            np.allclose(got, want, rtol=1e-13, atol=1e-15)
    if isinstance(want, float):
        return type(got) is float and abs(got - want) <= 1e-13 * max(1.0, abs(want))
    return got == want and type(got) is type(want)


@pytest.mark.parametrize("expr,want", OPERATIONS, ids=[e for e, _ in OPERATIONS])
def test_operation(expr, want):
    got = value(expr)
    assert _same(got, want), (got, want)


def test_random_arrays_are_numpy_pcg64_from_the_seed():
    got = value("(normalArray 7 [2, 3], uniformArray 7 [4], normalArray 7 [2, 3])")
    rng = np.random.default_rng(7)
    assert np.array_equal(got[0], rng.standard_normal((2, 3)))
    assert np.array_equal(got[1], np.random.default_rng(7).random(4))
    assert np.array_equal(got[0], got[2])  # the same seed, the same array


def test_ieee_values_elementwise_as_for_real_and_no_numpy_warning(tmp_dl):
    path = tmp_dl("ieee.dl", "def main = (log (fromList [-1.0, 0.0, 1.0]), fromList [1.0, -1.0, 0.0] / zeros [3], "
                             "sqrt (fromList [-4.0]), exp (fromList [1000.0]))\n")
    r = dl("run", path)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.strip() == "(array([nan, -inf, 0.0]), array([inf, -inf, nan]), array([nan]), array([inf]))"


def test_arrays_are_never_mutated_by_an_operation():
    got = value("let a = fromList [1.0, 2.0] in let b = reshape [2, 1] a in let c = atranspose b in (a, b + 1.0, c)")
    assert np.array_equal(got[0], [1.0, 2.0])


# ---- shape errors: runtime errors at the operation, naming both shapes --------------------------

ERRORS = [
    ("m + w", "shape mismatch in `+`: [2, 3] and [3, 2] do not broadcast"),
    ("amatmul m m", "shape mismatch in `amatmul`: [2, 3] and [2, 3]"),
    ("adot v (fromList [1.0])", "shape mismatch in `adot`: [3] and [1] (the same shape is needed)"),
    ("reshape [4] m", "`reshape`: an array of shape [2, 3] (6 elements) cannot take the shape [4]"),
    ("asumAxis 2 m", "`asumAxis`: axis 2 is out of range for an array of shape [2, 3]"),
    ("aget m [2, 0]", "`aget`: index [2, 0] is out of range for an array of shape [2, 3]"),
    ("aget m [0]", "`aget`: an index of 1 Int [0] for an array of shape [2, 3] (2 axes)"),
    ("slice 1 2 5 m", "`slice`: 2..5 is not a range within axis 1 of an array of shape [2, 3] (0 <= start <= stop <= 3)"),
    ("atake 0 [0, 5] m", "`atake`: index 5 is out of range for axis 0 of an array of shape [2, 3]"),
    ("aconcat 0 [m, v]", "shape mismatch in `aconcat`: [2, 3], [3] do not join along axis 0"),
    ("stack 0 [m, w]", "shape mismatch in `stack`: [2, 3], [3, 2] (every array must have the same shape)"),
    ("amax (zeros [0])", "`amax` of an empty array (shape [0])"),
    ("zeros [-1]", "`zeros`: [-1] is not a shape (sizes must be >= 0)"),
    ("array [[1.0], [2.0, 3.0]]", "`array`: ragged rows: row [1] has 2 elements, but row [0] has 1"),
    ("where (greater m 0.0) m w", "shape mismatch in `where`: [2, 3], [2, 3] and [3, 2] do not broadcast"),
]


@pytest.mark.parametrize("expr,message", ERRORS, ids=[e for e, _ in ERRORS])
def test_shape_errors_are_runtime_errors_naming_the_shapes(expr, message):
    with pytest.raises(DlError) as info:
        value(expr)
    assert info.value.kind == "runtime"
    assert info.value.message == message


def test_a_shape_mismatch_points_at_the_operation(tmp_dl):
    from conftest import diagnostic
    path = tmp_dl("mismatch.dl", "def f (a : Array) (b : Array) = sin a + b\n\n"
                                 "def main = f (ones [2, 3]) (ones [4])\n")
    r = dl("run", path)
    d = diagnostic(r.stderr)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert (d["line"], d["col"], d["kind"]) == (1, 33, "runtime")
    assert d["message"] == "shape mismatch in `+`: [2, 3] and [4] do not broadcast"
    assert d["caret"] == "    " + " " * 32 + "^" * len("sin a + b")


# ---- printing ------------------------------------------------------------------------------------

PRINTED = [
    (np.array([[1.0, 2.0], [3.0, 4.0]]), "array([[1.0, 2.0], [3.0, 4.0]])"),
    (np.array(2.5), "array(2.5)"), (np.zeros(0), "array([])"), (np.array([np.nan, -np.inf, 1e-08]),
                                                                "array([nan, -inf, 1e-08])"),
    ((np.ones(1), [np.zeros((1, 1))]), "(array([1.0]), [array([[0.0]])])"),
    (np.arange(2000.0), "array([0.0, 1.0, 2.0, ..., 1997.0, 1998.0, 1999.0], shape [2000])"),
]


@pytest.mark.parametrize("v,text", PRINTED, ids=[t[:30] for _, t in PRINTED])
def test_arrays_print_as_nested_lists(v, text):
    assert show_value(v) == text


def test_dl_run_prints_an_array(tmp_dl):
    r = dl("run", tmp_dl("p.dl", "def main = reshape [2, 2] (arange 4)\n"))
    assert r.stdout == "array([[0.0, 1.0], [2.0, 3.0]])\n"


def test_the_repl_prints_arrays_with_their_type():
    from lang.tools.repl.core import execute, new_state
    state = new_state()
    state, out = execute(state, "fromList [1.0, 2.0] * 2.0")
    assert out.text == "array([2.0, 4.0]) : Array"
    state, out = execute(state, ":type fun a -> asum (sin a * a)")
    assert out.text.endswith(": Array -> Real")


# ---- typing: one expression for Real and Array; mixing needs `scalar` ------------------------------


def test_one_definition_serves_reals_and_arrays():
    got = run("def f x = sin x * x + 2.0\n"
              "def main = (f 0.5, f (fromList [0.5, 1.0]))\n")
    assert got[0] == np.sin(0.5) * 0.5 + 2.0
    assert np.allclose(got[1], np.sin([0.5, 1.0]) * [0.5, 1.0] + 2.0, rtol=1e-15)


def test_a_real_variable_and_an_array_do_not_mix_without_scalar():
    with pytest.raises(DlError) as info:
        run("def f (r : Real) (a : Array) = r * a\ndef main = f 2.0 (ones [2])\n")
    assert info.value.kind == "type"
    got = run("def f (r : Real) (a : Array) = scalar r * a\ndef main = f 2.0 (ones [2])\n")
    assert np.array_equal(got, [2.0, 2.0])


def test_comparisons_and_equality_are_not_defined_on_arrays():
    for src in ("def main = ones [1] < ones [1]\n", "def main = ones [1] == ones [1]\n"):
        with pytest.raises(DlError) as info:
            run(src)
        assert info.value.kind == "type"


def test_array_takes_nested_lists_of_reals_only():
    with pytest.raises(DlError) as info:
        run("def main = array [(1.0, 2.0)]\n")
    assert info.value.kind == "type" and "a Real or a nested list of Reals" in info.value.message


# ---- numpy is imported only by programs that use arrays --------------------------------------------


def test_a_program_without_arrays_does_not_import_numpy(tmp_path):
    scalar = tmp_path / "scalar.dl"
    scalar.write_text("def f x = sin x * x\ndef main = (grad f 1.0, map f [1.0, 2.0], sum [1.0, 2.0])\n")
    arrays = tmp_path / "arrays.dl"
    arrays.write_text("def main = asum (ones [3])\n")
    probe = ("import sys, contextlib, io\nfrom lang.tools.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    code = main(['run', sys.argv[1]])\n"
             "print(code, 'numpy' in sys.modules)\n")
    env_path = str(ROOT)
    for path, imported in ((scalar, False), (arrays, True)):
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True,
                             cwd=env_path, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=60)
        assert out.stdout.split() == ["0", str(imported)], out.stderr
