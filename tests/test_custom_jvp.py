"""Custom forward rules and captured variables (issue 18): `custom_jvp body rule x` with
`rule x x_dot = (y, y_dot)`, and what a custom rule (vjp or jvp) may close over.

A forward rule's Jacobian is read off the basis tangents (column j = y_dot at x_dot = e_j), so every mode
that uses custom rules uses it — forward mode, jvp-based jacfwd, and the reverse modes, which transpose the
materialised Jacobian exactly; numeric differentiates the body. Which modes use rules is the mode table's
`custom_rules` column (tests/test_custom_rules.py checks the column itself).

Oracles: Kepler's equation solved by Newton's method in plain Python floats, to convergence, with the
implicit-function-theorem derivative dE/dM = 1/(1 - e cos E), dE/de = sin E/(1 - e cos E) written by
hand; derivatives of small polynomials and of sin worked by hand (each test says which).
"""
import math

import pytest

from conftest import EXACT_MODES, MODES, close, diagnostic, dl, failure, get, run

RULE_MODES = [m for m in EXACT_MODES if get(m).custom_rules == "uses"]
REFUSING = [m for m in MODES if get(m).custom_rules == "refuses"]

KEPLER = """
def newton (m, e) = fold (fun ea _ -> ea - (ea - e * sin ea - m) / (1.0 - e * cos ea)) m (range 8)
def implicit (m, e) (dm, de) =
  let ea = newton (m, e) in
  (ea, (dm + de * sin ea) / (1.0 - e * cos ea))
def kepler p = custom_jvp newton implicit p
"""


def kepler_oracle(m: float, e: float) -> tuple[float, tuple[float, float]]:
    """E and (dE/dM, dE/de) by Newton's method run to convergence in Python, and the implicit function
    theorem on E - e sin E - M = 0: dE (1 - e cos E) = dM + sin E de."""
    ea = m
    for _ in range(100):
        ea -= (ea - e * math.sin(ea) - m) / (1.0 - e * math.cos(ea))
    slope = 1.0 - e * math.cos(ea)
    return ea, (1.0 / slope, math.sin(ea) / slope)


def tol(mode):
    return {"rel": 1e-12, "abs_": 0.0} if get(mode).tolerance <= 1e-9 else {"rel": 1e-6, "abs_": 1e-9}


def write(tmp_path, text):
    path = tmp_path / "t.dl"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("mode", RULE_MODES + ["numeric"])
@pytest.mark.parametrize("point", [(1.0, 0.5), (2.5, 0.9), (0.1, 0.3)])
def test_kepler_by_a_forward_rule_agrees_with_the_unrolled_newton_and_the_oracle(mode, point):
    """grad (reverse modes transpose the rule), jacfwd (one jvp per input), jvp and the value: the rule, the
    8 unrolled Newton steps and the oracle agree (8 Newton steps from E = M have converged at these
    points; at (0.1, 0.99) they have not, and the implicit derivative of an unconverged E is not the
    unrolled one)."""
    m, e = point
    value, gradient = kepler_oracle(m, e)
    source = KEPLER + (f"def main = (grad kepler ({m}, {e}), grad newton ({m}, {e}), jacfwd kepler ({m}, {e}), "
                       f"jvp kepler ({m}, {e}) (0.5, -2.0))")
    by_rule, unrolled, rows, (y, y_dot) = run(source, mode=mode)
    assert close(by_rule, gradient, **tol(mode)) and close(unrolled, gradient, **tol(mode))
    assert close(rows, [gradient], **tol(mode))
    assert close(y, value, rel=1e-14) and close(y_dot, 0.5 * gradient[0] - 2.0 * gradient[1], **tol(mode))


@pytest.mark.parametrize("mode", RULE_MODES)
def test_the_forward_rule_is_what_every_mode_uses(mode):
    """A rule that is deliberately not the body's derivative (3x² is the truth, the rule says 2x): every mode
    that uses rules gives the rule's number for grad, derivative, jvp, jacfwd and jacrev."""
    source = ("def body x = x * x * x\ndef wrong x dx = (body x, 2.0 * x * dx)\n"
              "def cube x = custom_jvp body wrong x\n"
              "def main = (grad cube 2.0, derivative cube 2.0, jvp cube 2.0 0.5, jacfwd cube 2.0, jacrev cube 2.0)")
    assert run(source, mode=mode) == (4.0, 4.0, (8.0, 2.0), [4.0], [4.0])


def test_numeric_differentiates_the_body_so_gradcheck_flags_a_wrong_forward_rule(tmp_path):
    """numeric runs primal code, where custom_jvp is its body: 3x² = 12 at 2, against the rule's 4."""
    source = ("def body x = x * x * x\ndef wrong x dx = (body x, 2.0 * x * dx)\n"
              "def cube x = custom_jvp body wrong x\n")
    assert close(run(source + "def main = grad cube 2.0", mode="numeric"), 12.0, rel=1e-6)
    path = write(tmp_path, source)
    out = dl("repl", input=f":load {path}\n:gradcheck cube 2.0\n:quit\n")
    assert "DISAGREEMENT: numeric differs from backprop" in out.stdout


def test_gradcheck_passes_a_right_forward_rule(tmp_path):
    path = write(tmp_path, KEPLER)
    out = dl("repl", input=f":load {path}\n:gradcheck kepler (1.0, 0.5)\n:quit\n")
    assert "DISAGREEMENT" not in out.stdout and "1.0373620218" in out.stdout


@pytest.mark.parametrize("mode", RULE_MODES + ["numeric"])
def test_structured_input_and_output(mode):
    """f (a, [b0, b1]) = (a b0, [sin a, a + b1]); its Jacobian worked by hand: rows (b0, [a, 0]),
    (cos a, [0, 0]), (1, [0, 1])."""
    source = ("def body (a, bs) = (a * get bs 0, [sin a, a + get bs 1])\n"
              "def rule (a, bs) (da, dbs) = (body (a, bs), (da * get bs 0 + a * get dbs 0, "
              "[cos a * da, da + get dbs 1]))\n"
              "def f p = custom_jvp body rule p\n"
              "def main = (jacrev f (0.5, [2.0, 3.0]), jacfwd f (0.5, [2.0, 3.0]), f (0.5, [2.0, 3.0]))")
    rows = [(2.0, [0.5, 0.0]), (math.cos(0.5), [0.0, 0.0]), (1.0, [0.0, 1.0])]
    assert close(run(source, mode=mode), (rows, rows, (1.0, [math.sin(0.5), 3.5])), **tol(mode))


@pytest.mark.parametrize("mode", RULE_MODES)
def test_a_stable_forward_rule_where_the_body_gives_nan(mode):
    """d/dx log (1 + e^x) is inf / inf = nan at 800 by the body; the rule says sigmoid x = 1 there."""
    source = ("def naive x = log (1.0 + exp x)\ndef rule x dx = (naive x, sigmoid x * dx)\n"
              "def softplus' x = custom_jvp naive rule x\n"
              "def main = (grad softplus' 800.0, derivative softplus' 800.0, grad naive 800.0)")
    got = run(source, mode=mode)
    assert got[:2] == (1.0, 1.0) and math.isnan(got[2])


def test_a_forward_rule_of_the_wrong_type_is_a_type_error_in_terms_of_the_forward_transform(tmp_path):
    """A pullback-shaped rule given to custom_jvp: the error is at the rule and explains the type by →D."""
    path = write(tmp_path, "def body x = x * x\ndef rule x = (x * x, fun ct -> 2.0 * x * ct)\n"
                           "def f x = custom_jvp body rule x\ndef main = grad f 2.0\n")
    d = failure(path)
    assert d["kind"] == "type"
    assert (d["line"], d["col"]) == (3, len("def f x = custom_jvp body ") + 1)
    assert "the rule given to `custom_jvp`" in d["message"] and "→D" in d["message"]


def test_a_tangent_of_the_wrong_length_is_a_runtime_error(tmp_path):
    path = write(tmp_path, "def body xs = [sum xs]\ndef rule xs dxs = ([sum xs], [sum dxs, 0.0])\n"
                           "def f xs = custom_jvp body rule xs\ndef main = jacfwd f [1.0, 2.0]\n")
    d = failure(path)
    assert d["kind"] == "runtime" and d["line"] == 3
    assert "the tangent returned by the custom rule `rule`" in d["message"]


@pytest.mark.parametrize("mode", ["backprop", "forward", "delta"])
def test_a_derivative_of_a_derivative_through_a_forward_rule_is_refused(mode, tmp_path):
    path = write(tmp_path, "def body x = x * x\ndef rule x dx = (x * x, 2.0 * x * dx)\n"
                           "def sq x = custom_jvp body rule x\n"
                           "def main = grad (fun x -> grad sq x) 3.0\n")
    d = failure(path, "--mode", mode)
    assert d["kind"] == "runtime" and d["line"] == 3
    assert "nested differentiation through the custom rule `rule`" in d["message"]


@pytest.mark.parametrize("mode", REFUSING)
def test_a_mode_that_cannot_apply_a_forward_rule_says_so(mode, tmp_path):
    path = write(tmp_path, KEPLER + "def main = grad kepler (1.0, 0.5)\n")
    d = failure(path, "--mode", mode)
    assert d["kind"] == "runtime" and d["line"] == 6
    assert f"the {mode} mode cannot use a custom rule (custom_jvp)" in d["message"]


# ---- captured variables (both kinds of rule)

CONSTANT_CAPTURES = """
def main =
  let c = 3.0 in
  let k = 2 in
  (grad (fun x -> custom_vjp (fun y -> c * y * y) (fun y -> (c * y * y, fun ct -> 2.0 * c * y * ct)) x) 2.0,
   grad (fun x -> custom_jvp (fun y -> c * y * y) (fun y dy -> (c * y * y, 2.0 * c * y * dy)) x) 2.0,
   jacfwd (fun x -> custom_jvp (fun y -> c * pow y (float k)) (fun y dy -> (c * pow y (float k), c * float k * y * dy)) x) 2.0)
"""


@pytest.mark.parametrize("mode", RULE_MODES + ["numeric"])
def test_a_rule_written_in_place_may_capture_constants(mode):
    """c and k are bound outside the derivative: constants, so nothing is dropped. d/dx 3x² at 2 = 12 (by
    hand), twice, and 3 · 2 · x = 12 for c · x^k with k = 2."""
    assert close(run(CONSTANT_CAPTURES, mode=mode), (12.0, 12.0, [12.0]), **tol(mode))


DIFFERENTIATED_CAPTURES = [
    # (what, source, the column of the closure that captures, the name)
    ("a vjp rule", "def main = grad (fun (a, x) -> custom_vjp (fun y -> y * y) "
                   "(fun y -> (y * y, fun ct -> 2.0 * a * ct)) x) (3.0, 2.0)", "(fun y -> (y", "a"),
    ("a jvp rule", "def main = grad (fun (a, x) -> custom_jvp (fun y -> y * y) "
                   "(fun y dy -> (y * y, 2.0 * a * dy)) x) (3.0, 2.0)", "(fun y dy", "a"),
    ("the body", "def main = grad (fun (a, x) -> custom_jvp (fun y -> a * y * y) sqRule x) (3.0, 2.0)",
     "(fun y -> a", "a"),
    ("a variable bound inside", "def main = grad (fun x -> let s = sin x in custom_jvp (fun y -> y * y) "
                                "(fun y dy -> (y * y, 2.0 * s * dy)) x) 0.5", "(fun y dy", "s"),
]


@pytest.mark.parametrize("mode", RULE_MODES)
@pytest.mark.parametrize("what,line,at,name", DIFFERENTIATED_CAPTURES, ids=[c[0] for c in DIFFERENTIATED_CAPTURES])
def test_a_capture_that_carries_a_derivative_is_refused_by_name(mode, what, line, at, name, tmp_path):
    """The rule says how the result depends on x only; the captured variable depends on the differentiated
    input, so its derivative would be dropped (JAX's and Futhark's trap): refused at the closure, naming it —
    in forward mode too, where only a direction in which the capture moves shows it."""
    path = write(tmp_path, f"def sqRule y dy = (y * y, 2.0 * y * dy)\n{line}\n")
    out = dl("run", path, "--mode", mode)
    d = diagnostic(out.stderr)
    assert out.returncode == 1 and d["kind"] == "runtime", out.stderr
    assert (d["line"], d["col"]) == (2, line.index(at) + 2), d
    assert f"captures `{name}`, whose derivative it cannot give" in d["message"]


@pytest.mark.parametrize("mode", RULE_MODES)
def test_a_capture_whose_tangent_is_exactly_zero_drops_nothing(mode):
    """jvp in a direction where the captured a does not move: under forward mode a's tangent is exactly zero,
    so nothing is dropped and the rule is used (d/dx x² at 2 in the direction (0, 1) = 4, by hand); the
    other modes compute J v from reverse passes, where a has a backpropagator, and refuse by name. Never a
    wrong number."""
    source = ("def main = jvp (fun (a, x) -> custom_jvp (fun y -> y * y) (fun y dy -> (y * y, 2.0 * y * dy + 0.0 * a))"
              " x) (3.0, 2.0) (0.0, 1.0)")
    if mode == "forward":
        assert run(source, mode=mode) == (4.0, 4.0)
    else:
        with pytest.raises(Exception, match="captures `a`, whose derivative it cannot give"):
            run(source, mode=mode)


@pytest.mark.parametrize("mode", ["backprop", "forward", "tape"])
def test_a_rule_for_a_function_of_an_array_is_refused_not_a_crash(mode, tmp_path):
    """Arrays are not read into a rule's Jacobian yet: a diagnostic at the call (it was a Python error)."""
    path = write(tmp_path, "def body a = asum (a * a)\ndef rule a = (body a, fun ct -> scalar (2.0 * ct) * a)\n"
                           "def f a = custom_vjp body rule a\ndef main = grad f (fromList [1.0, 2.0])\n")
    d = failure(path, "--mode", mode)
    assert d["kind"] == "runtime" and (d["line"], d["col"]) == (3, 11)
    assert "custom_vjp of a function of an Array is not supported yet" in d["message"]


@pytest.mark.parametrize("mode", ["backprop", "forward", "tape"])
def test_a_captured_array_that_carries_a_derivative_is_refused_by_name(mode, tmp_path):
    line = ("def main = grad (fun a -> custom_jvp (fun y -> y * asum a) (fun y dy -> (y * asum a, dy * asum a)) 2.0)"
            " (fromList [1.0, 2.0])")
    d = failure(write(tmp_path, line + "\n"), "--mode", mode)
    assert (d["line"], d["col"]) == (1, line.index("(fun y ->") + 2)
    assert "captures `a`, whose derivative it cannot give" in d["message"]
