"""The prelude (stdlib/prelude.dl): every definition's values are right.

(That every prelude definition's transforms type-check is tests/test_transform_check.py.)

1. Every definition has its type in a comment.
2. A table of (dl expression, expected value) with the expected values
   computed here in Python, independently of dl — including a Python
   reference of the prelude's MINSTD generator and its data sets.
   Every prelude name must occur in some row.
3. Gradients through the learning and linear-algebra definitions agree
   between the exact modes and central differences.
"""
from __future__ import annotations

import math
import re

import pytest

from conftest import ROOT, close, run

from lang.tools.pipeline import new_world


def prelude_names() -> list[str]:
    world, _ = new_world()
    return [d.name for d in world.modules["prelude"].defs]


PRELUDE_NAMES = prelude_names()


def test_every_prelude_definition_has_a_type_comment():
    text = (ROOT / "stdlib" / "prelude.dl").read_text()
    commented = set()
    for line in text.splitlines():
        m = re.match(r"--\s*([A-Za-z_][\w']*(?:\s*,\s*[A-Za-z_][\w']*)*)\s*:", line)
        if m:
            commented.update(n.strip() for n in m.group(1).split(","))
    missing = [n for n in PRELUDE_NAMES if n not in commented]
    assert missing == []


# ---- a Python reference of the prelude's generator and data sets ----------------

M = 2147483647


def rng_next(s: int) -> int:
    return 48271 * s % M


def rng_seed(n: int) -> int:
    return rng_next(rng_next(1 + (69069 * n + 1013904223) % (M - 1)))


def uniform(s: int) -> tuple[float, int]:
    s = rng_next(s)
    return s / 2147483647.0, s


def normal(s: int) -> tuple[float, int]:
    u1, s = uniform(s)
    u2, s = uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2), s


def draws(n: int, gen, s: int) -> tuple[list, int]:
    out = []
    for _ in range(n):
        x, s = gen(s)
        out.append(x)
    return out, s


def linear_data(n, a, b, noise, seed):
    def gen(s):
        u, s = uniform(s)
        x = -1.0 + (1.0 - -1.0) * u
        e, s = normal(s)
        return (x, a * x + b + noise * e), s
    return draws(n, gen, rng_seed(seed))[0]


def two_moons(n, noise, seed):
    def gen(s):
        u, s = uniform(s)
        t = 0.0 + (math.pi - 0.0) * u
        ex, s = normal(s)
        ey, s = normal(s)
        return (t, ex, ey), s
    raw = draws(n, gen, rng_seed(seed))[0]
    return [([math.cos(t) + noise * ex, math.sin(t) + noise * ey], 0.0) if i % 2 == 0 else
            ([1.0 - math.cos(t) + noise * ex, 0.5 - math.sin(t) + noise * ey], 1.0)
            for i, (t, ex, ey) in enumerate(raw)]


def xor_data(n, noise, seed):
    def gen(s):
        u, s = uniform(s)
        v, s = uniform(s)
        ex, s = normal(s)
        ey, s = normal(s)
        x = -1.0 if u < 0.5 else 1.0
        y = -1.0 if v < 0.5 else 1.0
        return ([x + noise * ex, y + noise * ey], 1.0 if x * y < 0 else 0.0), s
    return draws(n, gen, rng_seed(seed))[0]


def init_layer(n_in, n_out, s):
    ws, s = draws(n_in * n_out, normal, s)
    k = 1.0 / math.sqrt(n_in)
    return ([[k * w for w in ws[i * n_in:(i + 1) * n_in]] for i in range(n_out)], [0.0] * n_out), s


def init_mlp(sizes, seed):
    s, out = rng_seed(seed), []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layer, s = init_layer(n_in, n_out, s)
        out.append(layer)
    return out


def lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def softmax(xs):
    return [math.exp(x - lse(xs)) for x in xs]


def variance(xs):
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / len(xs)


# ---- 2. values --------------------------------------------------------------------

X = [3.0, 1.0, 4.0, 1.5]
NET = "[([[1.0, -1.0], [2.0, 0.0]], [0.0, 1.0]), ([[1.0, 1.0]], [0.5])]"

VALUES = [
    # functions
    ("id 3.5", 3.5),
    ("const 1.0 true", 1.0),
    ("flip (fun x y -> x - y) 1.0 3.0", 2.0),
    ("compose (fun x -> x * 2.0) (fun x -> x + 1.0) 3.0", 8.0),
    ("iterate 5 (fun x -> x * 2.0) 1.0", 32.0),
    ("(iterate 0 (fun x -> x + 1.0) 5.0, iterate (-2) (fun x -> x + 1.0) 5.0)", (5.0, 5.0)),
    ("curry (fun (x, y) -> x - y) 5.0 2.0", 3.0),
    ("uncurry (fun x y -> x - y) (5.0, 2.0)", 3.0),
    # numbers
    ("(square 3, square 1.5)", (9.0, 2.25)),
    ("(clamp 0.0 1.0 1.7, clamp 0.0 1.0 (-0.5), clamp 0.0 1.0 0.25)", (1.0, 0.0, 0.25)),
    ("(even 4, even 3, odd 3, odd (-3))", (True, False, True, True)),
    # lists
    ("sum [3.0, 1.0, 4.0, 1.5]", sum(X)),
    ("prod [3.0, 1.0, 4.0, 1.5]", 18.0),
    ("mean [3.0, 1.0, 4.0, 1.5]", sum(X) / 4),
    ("dot [1.0, 2.0, 3.0] [4.0, 5.0, 6.0]", 32.0),
    ("zip [1.0, 2.0] [true, false]", [(1.0, True), (2.0, False)]),
    ("unzip [(1.0, true), (2.0, false)]", ([1.0, 2.0], [True, False])),
    ("(take 2 [1.0, 2.0, 3.0], take 5 [1.0], take (-1) [1.0])", ([1.0, 2.0], [1.0], [])),
    ("(drop 2 [1.0, 2.0, 3.0], drop 5 [1.0], drop (-1) [1.0])", ([3.0], [], [1.0])),
    ("filter (fun x -> x > 1.2) [3.0, 1.0, 4.0, 1.5]", [3.0, 4.0, 1.5]),
    ("(replicate 3 true, replicate 0 true, replicate (-2) true)", ([True, True, True], [], [])),
    ("(linspace 0.0 1.0 5, linspace 2.0 3.0 1)", ([0.0, 0.25, 0.5, 0.75, 1.0], [2.0])),
    ("(maximum [3.0, 1.0, 4.0, 1.5], minimum [3.0, 1.0, 4.0, 1.5])", (4.0, 1.0)),
    ("(all (fun x -> x > 0.0) [1.0, 2.0], all (fun x -> x > 1.0) [1.0, 2.0], all (fun x -> x > 1.0) [])",
     (True, False, True)),
    ("(any (fun x -> x > 1.5) [1.0, 2.0], any (fun x -> x > 2.0) [1.0, 2.0])", (True, False)),
    ("(last [1.0, 2.0, 3.0], init [1.0, 2.0, 3.0])", (3.0, [1.0, 2.0])),
    ("concat [[1.0], [], [2.0, 3.0]]", [1.0, 2.0, 3.0]),
    ("concatMap (fun x -> [x, x * 10.0]) [1.0, 2.0]", [1.0, 10.0, 2.0, 20.0]),
    ("foldr (fun x acc -> x - acc) 0.0 [1.0, 2.0, 3.0]", 1.0 - (2.0 - (3.0 - 0.0))),
    ("scanl (fun acc x -> acc + x) 0.0 [1.0, 2.0, 3.0]", [0.0, 1.0, 3.0, 6.0]),
    ("enumerate [true, false]", [(0, True), (1, False)]),
    ("zip3 [1.0, 2.0] [true, false] [3, 4]", [(1.0, True, 3), (2.0, False, 4)]),
    ("(elem 2.0 [1.0, 2.0], elem 5.0 [1.0, 2.0])", (True, False)),
    ("(lookup 2 0.0 [(1, 1.5), (2, 2.5), (2, 3.5)], lookup 7 0.0 [(1, 1.5)])", (2.5, 0.0)),
    ("(chunks 2 [1.0, 2.0, 3.0, 4.0, 5.0], chunks 3 [1.0, 2.0, 3.0])",
     ([[1.0, 2.0], [3.0, 4.0], [5.0]], [[1.0, 2.0, 3.0]])),
    ("merge (fun (a, _) (b, _) -> a <= b) [(1.0, 0), (3.0, 0)] [(1.0, 1), (2.0, 1), (4.0, 1)]",
     [(1.0, 0), (1.0, 1), (2.0, 1), (3.0, 0), (4.0, 1)]),
    ("sortBy (fun (a, _) (b, _) -> a <= b) [(3.0, 1), (1.0, 2), (3.0, 0), (1.0, 5), (0.0, 9)]",  # stable
     [(0.0, 9), (1.0, 2), (1.0, 5), (3.0, 1), (3.0, 0)]),
    ("(sortBy (fun x y -> x >= y) [3.0, 1.0, 4.0, 1.5], sortBy (fun x y -> x <= y) [])",
     ([4.0, 3.0, 1.5, 1.0], [])),
    ("sort [5, 3, 9, 1, 3, 0, 7, 2, 8]", [0, 1, 2, 3, 3, 5, 7, 8, 9]),
    # long lists take the halving paths of filter, concat, scanl, merge and samples
    ("filter (fun x -> mod x 3 == 0) (range 1000)", [x for x in range(1000) if x % 3 == 0]),
    ("concat (map (fun i -> range (mod i 4)) (range 100))", [j for i in range(100) for j in range(i % 4)]),
    ("scanl (fun acc x -> acc + x) 0 (range 200)", [sum(range(k)) for k in range(201)]),
    ("sortBy (fun (a, _) (b, _) -> a <= b) (map (fun i -> (mod (i * 37) 11, i)) (range 300))",  # stable
     sorted([((i * 37) % 11, i) for i in range(300)], key=lambda t: t[0])),
    ("sort (map (fun i -> mod (i * 7919) 1009) (range 2000))", sorted((i * 7919) % 1009 for i in range(2000))),
    ("(countWhile (fun x -> x < 5) [1, 2, 7, 9], countWhile (fun x -> x < 5) [], countWhile (fun x -> x < 5) [1, 2])",
     (2, 0, 2)),
    ("(argmax [1.0, 5.0, 2.0, 5.0], argmin [3.0, 1.0, 4.0, 1.0])", (1, 1)),
    # statistics and learning
    ("variance [3.0, 1.0, 4.0, 1.5]", variance(X)),
    ("stddev [3.0, 1.0, 4.0, 1.5]", math.sqrt(variance(X))),
    ("norm [3.0, 4.0]", 5.0),
    ("mse [1.0, 2.0] [1.5, 0.0]", (0.25 + 4.0) / 2),
    ("(logsumexp [1.0, 2.0, 3.0], logsumexp [1000.0, 1000.0])", (lse([1.0, 2.0, 3.0]), 1000.0 + math.log(2.0))),
    ("softmax [1.0, 2.0, 3.0]", softmax([1.0, 2.0, 3.0])),
    ("(softmax [1e15, 1e15], logSoftmax [1e15, 1e15], crossEntropy [1e15, 1e15] [1.0, 0.0])",  # at scale
     ([0.5, 0.5], [-math.log(2.0), -math.log(2.0)], math.log(2.0))),
    ("logSoftmax [1.0, 2.0, 3.0]", [x - lse([1.0, 2.0, 3.0]) for x in [1.0, 2.0, 3.0]]),
    ("crossEntropy [1.0, 2.0, 3.0] [0.0, 0.25, 0.75]",
     -(0.25 * math.log(softmax([1.0, 2.0, 3.0])[1]) + 0.75 * math.log(softmax([1.0, 2.0, 3.0])[2]))),
    ("(binaryCrossEntropy 0.5 1.0, binaryCrossEntropy 0.5 0.0, binaryCrossEntropy (-800.0) 1.0)",
     (-math.log(1 / (1 + math.exp(-0.5))), -math.log(1 - 1 / (1 + math.exp(-0.5))), 800.0)),
    ("(binaryCrossEntropy 40.0 1.0, binaryCrossEntropy (-40.0) 0.0, binaryCrossEntropy 0.0 1.0)",
     (math.log1p(math.exp(-40.0)), math.log1p(math.exp(-40.0)), math.log(2.0))),
    # linear algebra
    ("scale 2.0 [1.0, -3.0]", [2.0, -6.0]),
    ("(add [1.0, 2.0] [10.0, 20.0], sub [1.0, 2.0] [10.0, 20.0], hadamard [1.0, 2.0] [10.0, 20.0])",
     ([11.0, 22.0], [-9.0, -18.0], [10.0, 40.0])),
    ("axpy 2.0 [1.0, 2.0] [10.0, 20.0]", [12.0, 24.0]),
    ("matvec [[1.0, 2.0], [3.0, 4.0]] [1.0, -1.0]", [-1.0, -1.0]),
    ("(transpose [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], transpose [])",
     ([[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]], [])),
    ("matmul [[1.0, 2.0], [3.0, 4.0]] [[0.0, 1.0], [1.0, 0.0]]", [[2.0, 1.0], [4.0, 3.0]]),
    ("outer [1.0, 2.0] [3.0, 4.0, 5.0]", [[3.0, 4.0, 5.0], [6.0, 8.0, 10.0]]),
    ("identity 3", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    ("solve [[2.0, 1.0], [1.0, 3.0]] [3.0, 5.0]", [0.8, 1.4]),
    ("solve [[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [4.0, 0.0, 0.0]] [1.0, 2.0, 3.0]", [0.75, 1.0, 1.0]),  # needs pivoting
    ("jacobian (fun v -> [get v 0 * get v 1, sin (get v 0)]) [2.0, 3.0]", [[3.0, 2.0], [math.cos(2.0), 0.0]]),
    ("hessian (fun v -> get v 0 * get v 0 * get v 1 + exp (get v 1)) [1.0, 2.0]",
     [[4.0, 2.0], [2.0, math.exp(2.0)]]),
    ("hvp (fun v -> get v 0 * get v 0 * get v 1 + exp (get v 1)) [1.0, 2.0] [1.0, 1.0]",
     [6.0, 2.0 + math.exp(2.0)]),                      # the Hessian above times [1, 1]
    ("grad_aux (fun x -> (x * x, x + 1.0)) 3.0", (6.0, 4.0)),
    # neural networks
    ("affine ([[1.0, 2.0], [3.0, 4.0]], [1.0, -1.0]) [1.0, 1.0]", [4.0, 6.0]),
    ("dense tanh ([[1.0, 2.0]], [0.5]) [0.25, -1.0]", [math.tanh(0.25 - 2.0 + 0.5)]),
    (f"mlp relu {NET} [3.0, 1.0]", [9.5]),               # hidden relu [2, 7]; 2 + 7 + 0.5
    (f"mlp relu {NET} [-3.0, 1.0]", [0.5]),              # hidden relu [-4, -5] = [0, 0]
    # pseudo-random numbers and data sets
    ("(rngSeed 0, rngSeed 1, rngSeed (-5))", (rng_seed(0), rng_seed(1), rng_seed(-5))),
    ("rngNext 1", 48271),
    ("uniform 1", uniform(1)),
    ("uniformIn 2.0 4.0 12345", (2.0 + 2.0 * uniform(12345)[0], uniform(12345)[1])),
    ("normal (rngSeed 3)", normal(rng_seed(3))),
    ("samples 3 uniform (rngSeed 4)", draws(3, uniform, rng_seed(4))),
    ("uniforms 4 (rngSeed 5)", draws(4, uniform, rng_seed(5))),
    ("normals 4 (rngSeed 6)", draws(4, normal, rng_seed(6))),
    ("linearData 5 2.0 1.0 0.1 7", linear_data(5, 2.0, 1.0, 0.1, 7)),
    ("twoMoons 6 0.1 8", two_moons(6, 0.1, 8)),
    ("xorData 6 0.2 9", xor_data(6, 0.2, 9)),
    ("initLayer 3 2 (rngSeed 10)", init_layer(3, 2, rng_seed(10))),
    ("initMlp [2, 3, 1] 11", init_mlp([2, 3, 1], 11)),
    # shapes and optimisers
    ("real (fun a b -> a - b) 5.0 2.0", 3.0),
    ("listOf real (fun a b -> a - b) [5.0, 1.0] [2.0, 1.0]", [3.0, 0.0]),
    ("pairOf real vector (fun a b -> a * b) (2.0, [1.0, 2.0]) (3.0, [4.0, 5.0])", (6.0, [4.0, 10.0])),
    ("tripleOf real real matrix (fun a b -> a + b) (1.0, 2.0, [[3.0]]) (10.0, 20.0, [[30.0]])",
     (11.0, 22.0, [[33.0]])),
    ("vector (fun a b -> a + b) [1.0, 2.0] [3.0, 4.0]", [4.0, 6.0]),
    ("matrix (fun a b -> a * b) [[1.0, 2.0]] [[3.0, 4.0]]", [[3.0, 8.0]]),
    ("layer (fun a b -> a - b) ([[1.0]], [2.0]) ([[0.5]], [0.5])", ([[0.5]], [1.5])),
    (f"layers (fun a b -> a + b) {NET} {NET}",
     [([[2.0, -2.0], [4.0, 0.0]], [0.0, 2.0]), ([[2.0, 2.0]], [1.0])]),
    (f"zerosLike layers {NET}", [([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]), ([[0.0, 0.0]], [0.0])]),
    ("gdStep (pairOf real vector) 0.1 (1.0, [2.0]) (10.0, [-10.0])", (0.0, [3.0])),
    ("momentumStep vector 0.1 0.9 ([1.0], [1.0]) [1.0]", ([1.0 - 0.1 * 1.9], [1.9])),
    ("adamStep vector 0.1 (0, [1.0], [0.0], [0.0]) [2.0]",
     (1, [1.0 - 0.1 * ((0.1 * 2.0) / (1 - 0.9)) / (math.sqrt((0.001 * 4.0) / (1 - 0.999)) + 1e-8)],
      [0.1 * 2.0], [0.001 * 4.0])),
    ("gradientDescent vector 0.25 60 (fun v -> square (get v 0 - 3.0) + square (get v 1 + 1.0)) [0.0, 0.0]",
     [3.0, -1.0], 1e-6),
    ("momentum real 0.05 0.9 300 (fun x -> square (x - 3.0)) 0.0", 3.0, 1e-6),
    ("adam real 0.1 500 (fun x -> square (x - 3.0)) 0.0", 3.0, 1e-6),
    # ordinary differential equations
    ("euler real (fun t y -> y) 0.1 (0.0, 1.0)", (0.1, 1.1)),
    ("euler (pairOf real real) (fun t (x, v) -> (v, -x)) 0.5 (1.0, (1.0, 0.0))", (1.5, (1.0, -0.5))),
    ("rk4 real (fun t y -> y) 0.1 (0.0, 1.0)", (0.1, 1 + 0.1 + 0.1 ** 2 / 2 + 0.1 ** 3 / 6 + 0.1 ** 4 / 24)),
    ("rk4 real (fun t y -> t) 1.0 (0.0, 0.0)", (1.0, 0.5)),          # exact on polynomials of degree <= 4
    ("odeSolve (euler real (fun t y -> 2.0) 1.0) 3 (0.0, 1.0)", [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]),
    ("last (odeSolve (rk4 (pairOf real real) (fun t (x, v) -> (v, -x)) (pi / 50.0)) 100 (0.0, (1.0, 0.0)))",
     (2 * math.pi, (1.0, 0.0)), 1e-6),   # one period of the harmonic oscillator: global error O(h^4)
]



@pytest.mark.parametrize("row", VALUES, ids=[v[0][:60] for v in VALUES])
def test_value(row):
    """A row is (expression, expected) or (expression, expected, tolerance) (relative and absolute)."""
    source, expected, tol = row if len(row) == 3 else (*row, 1e-12)
    assert close(run(f"def main = {source}"), expected, rel=tol, abs_=tol)


def test_every_prelude_definition_has_a_value_test():
    from test_arrays_prelude import ARRAY_VALUES  # the array definitions' values: tests/test_arrays_prelude.py
    words = set()
    for source in [v[0] for v in VALUES] + [g[0] for g in GRADIENTS] + [v[0] for v in ARRAY_VALUES]:
        words.update(re.findall(r"[A-Za-z_][\w']*", source))
    assert [n for n in PRELUDE_NAMES if n not in words] == []


def test_normals_are_standard_normal():
    mean, sd = run("def main = let (xs, _) = normals 4000 (rngSeed 1) in (mean xs, stddev xs)")
    assert abs(mean) < 0.05 and abs(sd - 1.0) < 0.05


def test_sort_is_a_sorted_permutation():
    xs = run("def main = fst (uniforms 200 (rngSeed 2))")
    assert close(run("def main = sort (fst (uniforms 200 (rngSeed 2)))"), sorted(xs))


# ---- 3. gradients through the prelude ------------------------------------------

GRADIENTS = [
    ("fun xs -> logsumexp xs", "[1.0, 2.0, 0.5]"),
    ("fun xs -> crossEntropy xs [0.2, 0.3, 0.5]", "[1.0, 2.0, 0.5]"),
    ("fun xs -> variance xs + norm xs", "[1.0, 2.0, 0.5]"),
    ("fun xs -> dot (softmax xs) [1.0, 2.0, 3.0]", "[1.0, 2.0, 0.5]"),
    ("fun (z, w) -> binaryCrossEntropy z 0.25 + binaryCrossEntropy w 0.75", "(0.0, 2.0)"),
    ("fun xs -> head (logSoftmax xs) + get (softmax xs) 1", "[300.0, 301.0, 299.5]"),
    ("fun xs -> head (sort xs) + 2.0 * last (sortBy (fun a b -> a <= b) xs)", "[3.0, 1.0, 2.0]"),
    ("fun m -> sum (solve m [1.0, 2.0])", "[[2.0, 1.0], [1.0, 3.0]]"),
    ("fun m -> sum (map sum (matmul m (transpose m)))", "[[2.0, 1.0], [1.0, 3.0]]"),
    ("fun net -> binaryCrossEntropy (head (mlp tanh net [0.3, -0.7])) 1.0", NET),
    ("fun (a, b) -> snd (snd (last (odeSolve (rk4 (pairOf real real) (fun t (x, y) -> (a * x - x * y, x * y - b * y)) 0.1) 20 (0.0, (1.0, 1.0)))))",
     "(1.5, 3.0)"),
]


# Not backprop-naive on the ODE row: without linear factoring the cost is exponential in
# the sharing, and every RK4 stage uses the previous ones twice.
EXPONENTIAL_UNDER_NAIVE = {GRADIENTS[-1][0]}


@pytest.mark.parametrize("mode", ["backprop", "backprop-naive", "forward", "tape"])
@pytest.mark.parametrize("fn,point", GRADIENTS, ids=[g[0][:50] for g in GRADIENTS])
def test_gradient_agrees_with_finite_differences(fn, point, mode):
    if mode == "backprop-naive" and fn in EXPONENTIAL_UNDER_NAIVE:
        pytest.skip("exponential without linear factoring")
    exact = run(f"def main = grad ({fn}) {point}", mode=mode)
    numeric = run(f"def main = grad ({fn}) {point}", mode="numeric")
    assert close(exact, numeric, rel=1e-5, abs_=1e-7)
