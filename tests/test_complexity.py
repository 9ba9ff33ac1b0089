"""Complexity on the exact cost counters, not on wall time (docs/transforms.md, Complexity claims).

- repeated squaring n times: linear factoring runs each backpropagator body
  once (n bodies); naive application runs 2^(n+1) - 1 backpropagators;
- (forward + backward steps) / primal steps stays bounded by one constant as
  programs grow, on the logistic map, a map/fold sum and an MLP loss;
- bodies run never exceed backpropagators created.
"""
import pytest

from conftest import run_with_machine

SQUARING = "def sq n x = if n == 0 then x else sq (n - 1) (x * x)\ndef main n = grad (sq n) 1.0000001"


@pytest.mark.parametrize("n", [4, 8, 16, 32, 64])
def test_factoring_runs_each_body_once(n):
    _, m = run_with_machine(SQUARING, "backprop", [str(n)], preaccumulate=False)
    assert m.counters.bp_run == n
    assert m.counters.bp_created == n
    assert m.counters.merges == n  # every body is called twice: one merge each


@pytest.mark.parametrize("n", [4, 8, 16, 32, 64])
def test_preaccumulation_merges_at_compile_time(n):
    """Preaccumulated, x' (x * a) + x' (x * a) is x' ((x + x) * a): the same n bodies, no merge at run
    time, one sink update, and one more primitive (the +) per square (docs/transforms.md, Cost counters)."""
    _, faithful = run_with_machine(SQUARING, "backprop", [str(n)], preaccumulate=False)
    _, m = run_with_machine(SQUARING, "backprop", [str(n)])
    c = m.counters
    assert (c.bp_run, c.bp_created, c.merges, c.sink_updates) == (n, n, 0, 1)
    assert c.prims == faithful.counters.prims + n


@pytest.mark.parametrize("n", [4, 8, 12, 16])
def test_naive_application_is_exponential(n):
    _, m = run_with_machine(SQUARING, "backprop-naive", [str(n)])
    assert m.counters.bp_run == 2 ** (n + 1) - 1


def steps(counters) -> int:
    return counters.prims + counters.betas + counters.bp_run


PROGRAMS = {
    "logistic": """
def logistic n x = if n == 0 then x else logistic (n - 1) (3.7 * x * (1.0 - x))
def main n = grad (logistic n) 0.3
""",
    "map_fold_sum": """
def loss xs = fold (fun acc x -> acc + sin x * x) 0.0 xs
def main n = grad loss (build n (fun i -> float i / float n))
""",
    "mlp_loss": """
def layer (w, b) xs = map (fun (row, bi) -> tanh (dot row xs + bi)) (zip w b)
def net params xs = fold (fun h p -> layer p h) xs params
def loss params = let data = build 8 (fun i -> float i / 8.0) in
                  sum (map (fun x -> let y = head (net params [x, 1.0 - x]) in (y - x) * (y - x)) data)
def init n = [(build n (fun i -> [0.1 * float i / float n, 0.2]), build n (fun i -> 0.01 * float i)),
              ([build n (fun i -> 0.3 / float n)], [0.0])]
def main n = grad loss (init n)
""",
}


def primal_of(program: str) -> str:
    """The same program with the derivative replaced by a plain call (the primal run)."""
    return program.replace("grad (logistic n) 0.3", "logistic n 0.3") \
        .replace("grad loss (build", "loss (build").replace("grad loss (init n)", "loss (init n)")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_gradient_cost_is_a_bounded_multiple_of_the_primal(name):
    sizes = [10, 100, 1000, 10000] if name != "mlp_loss" else [4, 16, 64, 256]
    ratios = []
    for n in sizes:
        _, grad = run_with_machine(PROGRAMS[name], "backprop", [str(n)])
        _, primal = run_with_machine(primal_of(PROGRAMS[name]), "backprop", [str(n)])
        assert grad.counters.bp_run <= grad.counters.bp_created
        ratios.append(steps(grad.counters) / steps(primal.counters))
    assert max(ratios) < 10, ratios
    assert max(ratios) / min(ratios) < 1.5, ratios  # flat: the constant does not grow with n
