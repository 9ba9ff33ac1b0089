"""Derivatives of any shape (issue 18): jacobian (jacrev), jacfwd, jacobianT, hessian, hvp, value_and_grad_aux
and grad_aux, for inputs and outputs that are tuples, lists and nested data, in every mode.

Conventions (docs/reference.md, Jacobians, Hessians and auxiliary outputs): `jacobian f x` is a list with one
row per real of `f x` (in the order `f x` prints them), each row shaped like `x` — for f : [Real] -> [Real]
the m × n matrix JAX's `jacobian` gives; `jacobianT f x` is the n columns, each shaped like `f x`.

The oracle: sympy, exact derivatives evaluated at the points (the script, run once, is quoted at each table).
"""
import pytest

from conftest import MODES, close, diagnostic, dl, get, run
from lang.modes.table import nesting

# sympy: F = [v0*v1*sin(v2), exp(v0) + v1**2*v2]; [[diff(f, x).subs(p) for x in (v0, v1, v2)] for f in F]
# at p = {v0: 0.5, v1: -1.2, v2: 2.0}
J1 = [[-1.091156912190818, 0.45464871341284085, 0.24968810192828544], [1.6487212707001282, -4.8, 1.44]]
F1 = "def f v = [get v 0 * get v 1 * sin (get v 2), exp (get v 0) + get v 1 ^ 2 * get v 2]\n"
X1 = "[0.5, -1.2, 2.0]"

# sympy: outs = [a*c, b0*b1, sin(a)*b1 + c]; rows [diff(o, x) for x in (a, b0, b1, c)] at
# {a: 0.3, b0: 2.0, b1: -0.5, c: 1.5}
J2 = [[1.5, 0.0, 0.0, 0.3], [0.0, -0.5, 2.0, 0.0], [-0.477668244562803, 0.0, 0.29552020666133955, 1.0]]
F2 = "def f (a, (bs, c)) = (a * c, [get bs 0 * get bs 1, sin a * get bs 1 + c])\n"
X2 = "(0.3, ([2.0, -0.5], 1.5))"


def nested_like_x2(row):
    a, b0, b1, c = row
    return (a, ([b0, b1], c))


# sympy: rb = sum(100*(x1 - x0**2)**2 + (1 - x0)**2 for x0, x1 in ((v0, v1), (v1, v2)));
# [[diff(rb, x, y).subs(p3) ...]] at p3 = {v0: 0.5, v1: -0.3, v2: 1.1}; H v for v = [1.0, -2.0, 0.5]
H3 = [[422.0, -200.0, 0.0], [-200.0, -130.00000000000006, 120.0], [0.0, 120.0, 200.0]]
HV3 = [822.0, 120.00000000000011, -140.0]
F3 = ("def rb v = let t x0 x1 = 100.0 * (x1 - x0 * x0) ^ 2 + (1.0 - x0) ^ 2 in "
      "t (get v 0) (get v 1) + t (get v 1) (get v 2)\n")
X3 = "[0.5, -0.3, 1.1]"

# sympy: g = a**2*b0 + exp(b1)*a + log(1 + b0*b1) at {a: 1.5, b0: 2.0, b1: 0.5}: its Hessian, value, gradient
H4 = [[4.0, 3.0, 1.6487212707001282], [3.0, -0.0625, 0.25], [1.6487212707001282, 0.25, 1.4730819060501923]]
G4 = (7.666229086610137, [7.648721270700128, 2.5, 3.4730819060501923])
F4 = "def g (a, bs) = a * a * get bs 0 + exp (get bs 1) * a + log1p (get bs 0 * get bs 1)\n"
X4 = "(1.5, [2.0, 0.5])"


def tolerance(mode: str, nested: bool = False) -> dict:
    """Exact modes to rounding; numeric to its tolerance, and a finite difference of a finite difference
    (a nested derivative under numeric) to what two levels of central differences resolve."""
    if get(mode).tolerance <= 1e-9:
        return {"rel": 1e-12, "abs_": 1e-12}
    return {"rel": 1e-3, "abs_": 1e-3} if nested else {"rel": 1e-5, "abs_": 1e-7}


@pytest.mark.parametrize("mode", MODES)
def test_jacobian_of_a_vector_function_is_the_m_by_n_matrix(mode):
    """R^3 -> R^2: two rows of three, by reverse (jacobian = jacrev) and by forward (jacfwd) alike;
    jacobianT gives the three columns."""
    value = run(F1 + f"def main = (jacobian f {X1}, jacfwd f {X1}, jacobianT f {X1})", mode=mode)
    columns = [list(col) for col in zip(*J1)]
    assert close(value, (J1, J1, columns), **tolerance(mode))


@pytest.mark.parametrize("mode", MODES)
def test_jacobian_over_nested_tuples_and_lists(mode):
    """Input (Real, ([Real], Real)), output (Real, [Real]): one row per output real, each shaped like the
    input; a column per input real, each shaped like the output."""
    value = run(F2 + f"def main = (jacobian f {X2}, jacfwd f {X2}, jacobianT f {X2})", mode=mode)
    rows = [nested_like_x2(r) for r in J2]
    columns = [(col[0], [col[1], col[2]]) for col in zip(*J2)]
    assert close(value, (rows, rows, columns), **tolerance(mode))


@pytest.mark.parametrize("mode", MODES)
def test_jacobian_edge_shapes(mode):
    """A Real -> Real function has a 1-row Jacobian; Int positions of the input get 0 in every row; an output
    without reals has no rows, and an input without reals gives rows of nothing to differentiate."""
    source = ("def main = (jacobian sin 0.5, jacobian (fun (x, n) -> [x * float n, x]) (2.0, 3), "
              "jacobian (fun x -> length [x]) 1.0, jacobianT (fun x -> (x, x * x)) 3.0, "
              "jacfwd (fun n -> [float n]) 4)")
    # by hand: cos 0.5 = 0.8775825618903728
    expected = ([0.8775825618903728], [(3.0, 0), (1.0, 0)], [], [(1.0, 6.0)], [0])
    assert close(run(source, mode=mode), expected, **tolerance(mode))


@pytest.mark.parametrize("mode", nesting())
def test_hessian_and_hvp_of_a_list_function(mode):
    value = run(F3 + f"def main = (hessian rb {X3}, hvp rb {X3} [1.0, -2.0, 0.5])", mode=mode)
    assert close(value, (H3, HV3), **tolerance(mode, nested=True))


@pytest.mark.parametrize("mode", nesting())
def test_hessian_over_a_tuple_input_has_rows_shaped_like_it(mode):
    value = run(F4 + f"def main = (hessian g {X4}, hvp g {X4} (1.0, [0.0, 2.0]))", mode=mode)
    rows = [(r[0], [r[1], r[2]]) for r in H4]
    hv = [sum(H4[i][j] * v for j, v in enumerate([1.0, 0.0, 2.0])) for i in range(3)]
    assert close(value, (rows, (hv[0], hv[1:])), **tolerance(mode, nested=True))


@pytest.mark.parametrize("mode", sorted(set(MODES) - set(nesting())))
def test_hessian_in_a_mode_that_does_not_nest_is_a_diagnostic(mode, tmp_path):
    path = tmp_path / "h.dl"
    path.write_text(F3 + f"def main = hessian rb {X3}\n")
    out = dl("run", str(path), "--mode", mode)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    d = diagnostic(out.stderr)
    assert d["kind"] == "runtime" and "does not nest" in d["message"] and d["line"] == 2


@pytest.mark.parametrize("mode", MODES)
def test_value_and_grad_with_an_auxiliary_output(mode):
    """f x = (loss, aux): aux comes back as computed, Int and list parts included, and does not enter
    the gradient even though it depends on x (JAX's has_aux)."""
    source = F4 + (f"def h (a, bs) = (g (a, bs), (a * 10.0, [length bs]))\n"
                   f"def main = (value_and_grad_aux h {X4}, grad_aux h {X4})")
    value, grad = G4
    g = (grad[0], grad[1:])
    expected = (((value, (15.0, [2])), g), (g, (15.0, [2])))
    assert close(run(source, mode=mode), expected, **tolerance(mode))


def test_a_jacobian_of_a_function_valued_output_is_a_type_error(tmp_path):
    path = tmp_path / "j.dl"
    path.write_text("def main = jacobian (fun x -> fun y -> x * y) 1.0\n")
    out = dl("run", str(path))
    d = diagnostic(out.stderr)
    assert out.returncode == 1 and d["kind"] == "type" and "not differentiable data" in d["message"]
