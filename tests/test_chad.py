"""The chad and chad-efficient modes (docs/transforms.md, chad): the transform, the counters, the claim.

Every expected number here is derived by hand (the derivation is beside it)
or computed in Python, never by running dl. The agreement of both modes with
every other mode on the shared tables, the random programs, the zeros rule and
the type-check and read-back of every prelude and example definition is in
test_modes.py, test_ad_random.py, test_zeros.py and test_transform_check.py,
which read the mode table.
"""
import math

import pytest

from conftest import ROOT, cli, close, diagnostic, run, run_with_machine
from lang.model.types import ENV, REAL, TFun, TList, TTuple, linear
from lang.model.types import show as show_type
from lang.transforms.chad_target import Types

MODES = ["chad", "chad-efficient"]
ENVIRONMENT = (ROOT / "examples" / "environment.dl").read_text()


# ---- the transform ---------------------------------------------------------------------------------

# Dr(fun x -> x * sin x) in Γ = () by the rules (lang/transforms/chad.py): inside the λ, Γ = (x), whose
# cotangent is Real itself (a tuple of one), so x's one-hot map is `fun ct -o ct`. `sin x`'s argument is a
# variable, written in place: (sin x, fun ct -o lapp (x's map) (lscale (cos x) ct)). The product binds sin x
# as (v1, v1') and writes x in place. The λ is closed (a definition): its entry returns the map to
# (x's cotangent, the function's own), and the function's own is zero.
X_SIN_X = """fun x ->
  let (y2, y2') =
    let (v1, v1') = (sin x, fun ct -o lapp (fun ct -o ct) (lscale (cos x) ct)) in
    (x * v1,
     fun ct -o lplus (lapp (fun ct -o ct) (lscale v1 ct)) (lapp v1' (lscale x ct)))
  in
  (y2, fun ct -o let c3 = lapp y2' ct in (c3, lzero))"""

# the same, simplified: the one-hot maps β-reduced (lapp (fun ct -o ct) t -> t), v1' substituted (used once)
X_SIN_X_SIMPLIFIED = """fun x ->
  let v1 = sin x in
  (x * v1, fun ct -o (lplus (lscale v1 ct) (lscale (cos x) (lscale x ct)), lzero))"""


@pytest.mark.parametrize("mode,own", [("chad", "Copow(Real, Real)"), ("chad-efficient", "Env")])
@pytest.mark.parametrize("simplify", [False, True])
def test_transform_prints_the_typed_term(mode, own, simplify, tmp_dl):
    path = tmp_dl("f.dl", "def f (x : Real) = x * sin x\ndef main = grad f 1.0\n")
    code, out, err = cli("transform", path, "--def", "f", "--mode", mode, *(["--simplify"] if simplify else []))
    assert code == 0, err
    assert out.rstrip("\n").split("\n") == [
        f"-- Dr(f) in {mode} mode{', simplified' if simplify else ''}", "-- source type: Real -> Real",
        f"-- target type: Real -> Real * (Real ⊸ Real * {own})",
        *(X_SIN_X_SIMPLIFIED if simplify else X_SIN_X).split("\n")]


def test_the_type_transforms():
    """Dr1(A -> B) = Dr1 A -> Dr1 B * (Dr2 B ⊸ Dr2 A * Dr2(A -> B)); Dr2(A -> B) is a copower of (argument,
    cotangent) pairs in chad and the closure's environment cotangent in chad-efficient; lists keep lists."""
    basic, efficient = Types(False), Types(True)
    f = TFun(REAL, REAL)
    assert show_type(basic.d1(f)) == "Real -> Real * (Real ⊸ Real * Copow(Real, Real))"
    assert show_type(efficient.d1(f)) == "Real -> Real * (Real ⊸ Real * Env)"
    assert basic.d2(TTuple((REAL, TList(REAL)))) == TTuple((REAL, TList(REAL)))
    assert efficient.d2(f) == ENV
    assert basic.d1(TFun(TList(REAL), REAL)) == TFun(TList(REAL), TTuple((REAL, linear(
        REAL, TTuple((TList(REAL), basic.d2(TFun(TList(REAL), REAL))))))))


# ---- counters, by hand ----------------------------------------------------------------------------------

# grad f 1.0, f x = x * sin x, running the simplified term above:
#   prims       grad, sin x, x * v1, and the partial cos x in the linear map: 4 (lscale and lplus are the
#               backward pass's arithmetic, not primitives of the program)
#   betas       0 (the kernel's call of f is not counted)
#   bp_created  1 (the one `fun ct -o`), bp_run 1 (the kernel applies it)
#   merges      1: lplus of two non-zero reals
#   ct_leaves   4: three lscale (one real each) and the one lplus
X_SIN_X_COST = {"prims": 4, "betas": 0, "bp_created": 1, "bp_run": 1, "merges": 1, "ct_leaves": 4}


@pytest.mark.parametrize("mode", MODES)
def test_counters_of_x_sin_x(mode):
    value, machine = run_with_machine("def f (x : Real) = x * sin x\ndef main = grad f 1.0", mode=mode)
    assert close(value, math.sin(1.0) + math.cos(1.0), rel=1e-15)
    k = machine.counters
    got = {"prims": k.prims, "betas": k.betas, "bp_created": k.bp_created, "bp_run": k.bp_run,
           "merges": k.merges, "ct_leaves": k.extra.get("ct_leaves", 0)}
    assert got == X_SIN_X_COST
    assert k.sink_updates == 0 and k.peak_pending == 0  # no sinks, no pending queue (docs: Cost counters)


# g xs = get xs 0 * get xs 2 at a list of 4, simplified to
#   (v1 * v2, fun ct -o (lplus (lonehot (length xs) 0 (lscale v2 ct)) (lonehot (length xs) 2 (lscale v1 ct)), 0))
# prims: grad, get, get, *, and length twice in the map: 6 in both modes.
#   chad (dense):  2 lscale + 2 one-hot lists of 4 entries + lplus of two lists of 4 (4 leaves, each a real
#                  plus the symbolic zero: no merge) = 2 + 8 + 4 = 14 leaves, 0 merges
#   chad-efficient: 2 lscale + 2 one-hot entries + lplus of two sparse lists with no common index = 4, 0 merges
@pytest.mark.parametrize("mode,leaves", [("chad", 14), ("chad-efficient", 4)])
def test_a_one_hot_list_is_dense_in_chad_and_one_entry_in_chad_efficient(mode, leaves):
    value, machine = run_with_machine(
        "def g (xs : [Real]) = get xs 0 * get xs 2\ndef main = grad g [1.0, 2.0, 3.0, 4.0]", mode=mode)
    assert value == [3.0, 0.0, 1.0, 0.0]
    k = machine.counters
    assert (k.prims, k.bp_created, k.bp_run, k.merges, k.extra.get("ct_leaves")) == (6, 1, 1, 0, leaves)


# ---- the claim: basic CHAD's cotangent work grows faster than the program, efficient CHAD's does not ----


def _leaves(mode: str, n: int) -> int:
    value, machine = run_with_machine(ENVIRONMENT, mode=mode, args=[str(n)])
    assert close(value, 2.0 * (n - 1), rel=1e-9)  # the gradient's entries sum to 2(n - 1) (test_examples.py)
    return machine.counters.extra["ct_leaves"]


def test_basic_chad_writes_quadratically_many_cotangent_leaves_and_efficient_chad_linearly():
    """examples/environment.dl at n, 2n, 4n: chad's ct_leaves are exactly a n² + b n with a > 0 (each of the
    n elements writes dense lists of length n), chad-efficient's exactly c n."""
    n = 20
    dense = [_leaves("chad", m) for m in (n, 2 * n, 4 * n)]
    sparse = [_leaves("chad-efficient", m) for m in (n, 2 * n, 4 * n)]
    # a n² + b n: dense[k] / (n 2^k) is linear in n 2^k, so its differences double
    per = [d / (n * 2 ** k) for k, d in enumerate(dense)]
    assert per[2] - per[1] == pytest.approx(2 * (per[1] - per[0])) and per[1] > per[0]
    assert sparse[1] == 2 * sparse[0] and sparse[2] == 4 * sparse[0]
    assert dense[2] / sparse[2] > 3 * dense[0] / sparse[0]  # the ratio grows about linearly with n


# ---- recursion and refusals -------------------------------------------------------------------------------

# powerLocal n y = y^n by a local recursion; d/dy at y = 1.5 is n 1.5^(n-1)
LETREC = """def powerLocal (n : Int) y =
  let rec go (k : Int) = if k == 0 then 1.0 else y * go (k - 1) in
  go n
def powerTop (n : Int) y = if n == 0 then 1.0 else y * powerTop (n - 1) y
def main (n : Int) = (grad (powerLocal n) 1.5, grad (powerTop n) 1.5)
"""


@pytest.mark.parametrize("mode", MODES)
def test_recursion_local_and_top_level(mode):
    n = 12
    expected = n * 1.5 ** (n - 1)
    local, top = run(LETREC, mode=mode, args=[str(n)])
    assert close(local, expected, rel=1e-12) and close(top, expected, rel=1e-12)


def test_a_local_recursion_is_rerun_per_copower_entry_in_chad_only():
    """grad (powerLocal n): go's copower gets one entry per call, go n .. go 0, n + 1 in all. chad's `lfix`
    folds each entry by running that call again (a beta for the entry and one for the call of the body's
    function), and the call of go k re-runs its recursion forward, go (k - 1) .. go 0: k more calls. So chad
    makes Σ_k (2 + k) = 2(n + 1) + n(n + 1)/2 applications more than backprop, and `recomputed` = n + 1;
    chad-efficient's go returns its environment's cotangent packed and runs nothing again."""
    program = LETREC.replace("(grad (powerLocal n) 1.5, grad (powerTop n) 1.5)", "grad (powerLocal n) 1.5")
    for n in (10, 30):
        _, reference = run_with_machine(program, mode="backprop", args=[str(n)])
        _, basic = run_with_machine(program, mode="chad", args=[str(n)])
        _, efficient = run_with_machine(program, mode="chad-efficient", args=[str(n)])
        assert basic.counters.extra["recomputed"] == n + 1
        assert basic.counters.betas == reference.counters.betas + 2 * (n + 1) + n * (n + 1) // 2
        assert efficient.counters.betas == reference.counters.betas
        assert "recomputed" not in efficient.counters.extra


@pytest.mark.parametrize("mode", MODES)
def test_nested_differentiation_is_refused_with_a_diagnostic(mode, tmp_dl):
    path = tmp_dl("n.dl", "def f x = x * grad (fun y -> x * y * y) 1.0\ndef main = grad f 2.0\n")
    code, out, err = cli("run", path, "--mode", mode)
    assert code == 1 and out == ""
    d = diagnostic(err)
    assert (d["line"], d["col"]) == (1, 15)
    assert f"the {mode} mode is differentiating, and that mode does not nest" in d["message"]
