"""The worked examples of docs/transforms.md (Worked examples), exactly, in every mode that computes exact derivatives."""
import pytest

from conftest import close, run

EXACT_MODES = ["backprop", "backprop-naive", "forward"]

CASES = [
    ("def f (x1, x2) = sin ((x1 - x2) ^ 2)", "(1.3, 0.4)",
     (0.7242871743701426, (1.2410971793131444, -1.2410971793131444))),
    ("def f (x1, x2) = log x1 + x1 * x2 - sin x2", "(2.0, 5.0)",
     (11.652071455223084, (5.5, 1.7163378145367738))),
    ("def f (y, mu, s) = -0.5 * ((y - mu) / s) ^ 2 - log s", "(1.0, 0.0, 1.0)",
     (-0.5, (-1.0, 1.0, 0.0))),
]


@pytest.mark.parametrize("mode", EXACT_MODES)
@pytest.mark.parametrize("source,point,expected", CASES)
def test_value_and_gradient(source, point, expected, mode):
    value = run(f"{source}\ndef main = value_and_grad f {point}", mode=mode)
    assert close(value, expected, rel=1e-12)
