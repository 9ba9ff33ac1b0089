"""Custom derivatives (issue 18): `custom_vjp body rule x` and `custom_jvp body rule x`, a function with its
own reverse or forward rule.

Which modes use a rule is a column of the mode table (`Mode.custom_rules`): "uses" (backprop, backprop-naive,
forward, tape, symbolic, delta, delta-noshare: each turns the rule's Jacobian into its own kind of real),
"body" (numeric differentiates the body) or "refuses" (a diagnostic at the call). A nested derivative
through a rule is refused, and a rule that captures a variable carrying a derivative is refused by name.

Oracles: mpmath at 50 digits (the script is quoted at each constant), and Newton's method on Kepler's
equation in plain Python floats with the implicit-function-theorem derivative written by hand.
"""
import math

import pytest

from conftest import EXACT_MODES, MODES, close, dl, failure, get, run


RULE_MODES = [m for m in EXACT_MODES if get(m).custom_rules == "uses"]      # use the rule
BODY_MODES = [m for m in MODES if get(m).custom_rules == "body"]            # differentiate the body
REFUSING = [m for m in MODES if get(m).custom_rules == "refuses"]           # stop with a diagnostic


def test_the_mode_table_says_which_modes_use_custom_rules():
    """The column agrees with what each mode's language can do: a transform that applies rules is a "uses"
    mode, one that cannot is a "refuses" mode; numeric differentiates the body. (backprop, forward and tape
    must use them: the rest of this file would test nothing otherwise.)"""
    assert {"backprop", "forward", "tape", "symbolic", "delta"} <= set(RULE_MODES)
    assert BODY_MODES == ["numeric"]
    for m in MODES:
        transform = get(m).load_transform()
        if transform is not None:
            assert transform.custom_rules == (get(m).custom_rules == "uses"), m


SOFTPLUS = """
def naive x = log (1.0 + exp x)
def rule x = (naive x, fun ct -> ct * sigmoid x)
def softplus' x = custom_vjp naive rule x
"""

KEPLER = """
def newton (m, e) = fold (fun ea _ -> ea - (ea - e * sin ea - m) / (1.0 - e * cos ea)) m (range 8)
def implicit (m, e) =
  let ea = newton (m, e) in
  let slope = 1.0 - e * cos ea in
  (ea, fun ct -> (ct / slope, ct * sin ea / slope))
def kepler p = custom_vjp newton implicit p
"""
# mpmath: E = findroot(lambda E: E - e*sin(E) - m, m); (1, sin E) / (1 - e cos E), at (1, 0.5) and (2.5, 0.9)
KEPLER_GRADS = [((1.0, 0.5), (1.037362021893646, 1.0346672323734563)),
                ((2.5, 0.9), (0.5410544572517267, 0.1808359484985195))]


def tol(mode):
    return {"rel": 1e-12, "abs_": 0.0} if get(mode).tolerance <= 1e-9 else {"rel": 1e-5, "abs_": 1e-9}


@pytest.mark.parametrize("mode", RULE_MODES)
def test_a_stable_rule_gives_the_derivative_where_the_body_gives_nan(mode):
    """d/dx log (1 + e^x) = e^x / (1 + e^x) is inf / inf at 800; the rule's sigmoid x is 1 (mpmath: 1/(1+e^-800)).
    At 1 and -30 the rule agrees with mpmath: 0.7310585786300049, 9.357622968839299e-14."""
    got = run(SOFTPLUS + "def main = (grad softplus' 800.0, grad naive 800.0, grad softplus' 1.0, "
                         "grad softplus' (-30.0), softplus' 1.0)", mode=mode)
    assert got[0] == 1.0 and math.isnan(got[1])
    assert close(got[2:], (0.7310585786300049, 9.357622968839299e-14, 1.3132616875182228), rel=1e-15, abs_=0.0)


def test_numeric_differentiates_the_body():
    """numeric runs primal code, where custom_vjp is its body: at 800 the body's difference is nan, at 1 it
    agrees with the rule to the mode's tolerance."""
    got = run(SOFTPLUS + "def main = (grad softplus' 800.0, grad softplus' 1.0)", mode="numeric")
    assert math.isnan(got[0]) and close(got[1], 0.7310585786300049, rel=1e-6)


@pytest.mark.parametrize("mode", RULE_MODES + ["numeric"])
@pytest.mark.parametrize("point,expected", KEPLER_GRADS)
def test_kepler_by_the_implicit_function_theorem_agrees_with_the_unrolled_newton(mode, point, expected):
    source = KEPLER + f"def main = (grad kepler {point}, grad newton {point})"
    by_rule, unrolled = run(source, mode=mode)
    assert close(by_rule, expected, **tol(mode))
    assert close(unrolled, expected, **tol(mode))


@pytest.mark.parametrize("mode", RULE_MODES)
def test_the_rule_is_what_every_exact_mode_uses(mode):
    """A rule that is deliberately not the body's derivative: every exact mode gives the rule's number (so the
    rule is used, not the body), forward, jvp and derivative included; `:gradcheck` shows the numeric body
    disagreeing (test_gradcheck_flags_a_wrong_rule)."""
    source = ("def body x = x * x * x\ndef wrong x = (body x, fun ct -> 2.0 * x * ct)\n"
              "def cube x = custom_vjp body wrong x\n"
              "def main = (grad cube 2.0, derivative cube 2.0, jvp cube 2.0 0.5, value_and_grad cube 2.0)")
    assert run(source, mode=mode) == (4.0, 4.0, (8.0, 2.0), (8.0, 4.0))


@pytest.mark.parametrize("mode", RULE_MODES + ["numeric"])
def test_structured_input_and_output(mode):
    """Tuples and lists on both sides: the Jacobian through the rule is the body's (worked by hand:
    f (a, [b0, b1]) = (a b0, [sin a, a + b1]))."""
    source = ("def body (a, bs) = (a * get bs 0, [sin a, a + get bs 1])\n"
              "def rule (a, bs) = (body (a, bs), fun (u, vs) -> (u * get bs 0 + get vs 0 * cos a + get vs 1, "
              "[u * a, get vs 1]))\n"
              "def f p = custom_vjp body rule p\n"
              "def main = (jacobian f (0.5, [2.0, 3.0]), f (0.5, [2.0, 3.0]))")
    rows = [(2.0, [0.5, 0.0]), (math.cos(0.5), [0.0, 0.0]), (1.0, [0.0, 1.0])]
    assert close(run(source, mode=mode), (rows, (1.0, [math.sin(0.5), 3.5])), **tol(mode))


@pytest.mark.parametrize("mode", RULE_MODES)
def test_a_rule_inside_a_larger_program_chains(mode):
    """The rule's row multiplies the derivatives of its argument: d/da [softplus (a b) · a] at (2, 3) is
    3 a σ(ab) + softplus(ab), d/db is a² σ(ab) (mpmath: 11.987639946197923, 3.9901095073734614)."""
    got = run(SOFTPLUS + "def main = grad (fun (a, b) -> softplus' (a * b) * a) (2.0, 3.0)", mode=mode)
    assert close(got, (11.987639946197923, 3.9901095073734614), rel=1e-14, abs_=0.0)


def write(tmp_path, text):
    path = tmp_path / "t.dl"
    path.write_text(text)
    return str(path)


def test_a_rule_written_in_place_that_captures_the_differentiated_variable_is_refused(tmp_path):
    """The rule closes over x, the variable `grad` differentiates: its pullback would drop x's derivative
    through the capture (JAX's closure trap). Every rule-using mode refuses, at the rule, naming x; numeric
    differentiates the body (x * x: 6 at 3), which captures nothing."""
    line = "def main = grad (fun x -> custom_vjp body (fun y -> (y * y, fun ct -> x * ct)) x) 3.0"
    path = write(tmp_path, f"def body x = x * x\n{line}\n")
    for mode in RULE_MODES:
        d = failure(path, "--mode", mode)
        assert d["kind"] == "runtime" and (d["line"], d["col"]) == (2, line.index("fun y") + 1)
        assert "captures `x`, whose derivative it cannot give" in d["message"], mode
    out = dl("run", path, "--mode", "numeric")
    assert out.returncode == 0 and close(float(out.stdout.split()[0]), 6.0, rel=1e-6)


@pytest.mark.parametrize("mode", ["backprop", "forward", "delta"])
def test_a_derivative_of_a_derivative_through_a_rule_is_refused(mode, tmp_path):
    path = write(tmp_path, "def body x = x * x\ndef rule x = (x * x, fun ct -> 2.0 * x * ct)\n"
                           "def sq x = custom_vjp body rule x\n"
                           "def main = grad (fun x -> grad sq x) 3.0\n")
    d = failure(path, "--mode", mode)
    assert d["kind"] == "runtime" and d["line"] == 3
    assert "nested differentiation through the custom rule `rule`" in d["message"]


def test_a_rule_of_the_wrong_type_is_a_type_error_in_terms_of_the_transform(tmp_path):
    path = write(tmp_path, "def body (a, b) = a * b\ndef rule (a, b) = (a * b, fun ct -> ct * b)\n"
                           "def f p = custom_vjp body rule p\ndef main = grad f (2.0, 3.0)\n")
    d = failure(path)
    assert d["kind"] == "type"
    assert (d["line"], d["col"]) == (3, len("def f p = custom_vjp body ") + 1)
    assert "the rule given to `custom_vjp`" in d["message"] and "¬B" in d["message"]


def test_a_pullback_of_the_wrong_length_is_a_runtime_error(tmp_path):
    path = write(tmp_path, "def body xs = sum xs\ndef rule xs = (sum xs, fun ct -> [ct])\n"
                           "def f xs = custom_vjp body rule xs\ndef main = grad f [1.0, 2.0]\n")
    d = failure(path)
    assert d["kind"] == "runtime" and "pullback of the custom rule `rule`" in d["message"]


def test_a_function_valued_argument_is_a_type_error(tmp_path):
    path = write(tmp_path, "def body f = f 1.0\ndef rule f = (f 1.0, fun ct -> f)\n"
                           "def main = custom_vjp body rule sin\n")
    d = failure(path)
    assert d["kind"] == "type"


def test_gradcheck_flags_a_wrong_rule(tmp_path):
    """:gradcheck compares every mode with the others: numeric differentiates the body, so a wrong rule shows."""
    path = write(tmp_path, "def body x = x * x * x\ndef wrong x = (body x, fun ct -> 2.0 * x * ct)\n"
                           "def cube x = custom_vjp body wrong x\n")
    out = dl("repl", input=f":load {path}\n:gradcheck cube 2.0\n:quit\n")
    assert "DISAGREEMENT: numeric differs from backprop" in out.stdout


@pytest.mark.parametrize("mode", REFUSING)
def test_a_mode_that_cannot_apply_a_rule_says_so(mode, tmp_path):
    """Never the body's derivative under the rule's name: a diagnostic at the custom_vjp call."""
    path = write(tmp_path, SOFTPLUS + "def main = grad softplus' 1.0\n")
    d = failure(path, "--mode", mode)
    assert d["kind"] == "runtime" and d["line"] == 4
    assert f"the {mode} mode cannot use a custom rule" in d["message"]
