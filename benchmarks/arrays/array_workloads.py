"""The vectorised workloads (A1-A3): inputs, the one program every AD tool runs, and the numpy floor.

Each workload is written once, as a function of a namespace `M` of array operations (numpy, HIPS
autograd's numpy, jax.numpy or torch; `Ops` below), so that every tool differentiates the same program.
The *numpy floor* is that program evaluated by numpy with a hand-written reverse pass: the least time a
value and gradient can take with numpy kernels, and the reference every tool is checked against.

A case is the workload's inputs at one size: `consts` (data and structural constants, never
differentiated) and `diff` (the list of float64 arrays differentiated, in a fixed order). Every tool
starts from these numpy arrays and returns `value` (a float) or `(value, [gradient arrays, in diff's
order])` as numpy float64: converting in and out is part of the time, for every tool.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
DL_DIR = HERE / "workloads"
sys.path.insert(0, str(HERE))


@dataclass
class Case:
    consts: dict[str, Any]
    diff: list[np.ndarray]
    label: str = ""          # size in words for the tables ("n = 1,000", "d=10 K=25 n=1000")


@dataclass
class Workload:
    key: str                              # "A1"
    title: str
    dl_file: str                          # benchmarks/arrays/workloads/<file>
    sizes: tuple                          # full run
    quick_sizes: tuple                    # --quick
    make: Callable[[Any], Case]           # size -> case (deterministic)
    program: Callable[..., Any]           # program(M, consts, *diff) -> scalar, over the namespace M
    floor_primal: Callable[[Case], float]
    floor_vg: Callable[[Case], tuple]
    dl_args: Callable[[Case], tuple]      # the arguments of the .dl file's `primal` / `vg`
    dl_grad: Callable[[Any], list]        # the .dl file's gradient -> [arrays in diff's order]
    scalar_python: Callable[[Case], dict] | None = None   # {"primal": fn, "vg": fn} over Python lists
    notes: list[str] = field(default_factory=list)
    reps_factor: int = 1                  # more samples than the run's default (µs-scale cells are noisiest)


# ---- the array operations the programs use, per library ---------------------------------------------

class Ops:
    """numpy (and HIPS autograd's numpy, which mirrors it)."""

    def __init__(self, np_mod, logsumexp=None):
        self.np = np_mod
        self.sin, self.cos, self.exp, self.log, self.tanh = np_mod.sin, np_mod.cos, np_mod.exp, np_mod.log, np_mod.tanh
        self.matmul = np_mod.matmul
        self._lse = logsumexp

    def sum(self, a, axis=None):
        return self.np.sum(a, axis=axis)

    def lse(self, a, axis):
        if self._lse is not None:
            return self._lse(a, axis=axis)
        m = np.max(a, axis=axis, keepdims=True)
        return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))

    def reshape(self, a, shape):
        return self.np.reshape(a, shape)

    def concat(self, arrays, axis):
        return self.np.concatenate(arrays, axis=axis)

    def swap(self, a):
        """Swap the last two axes (a batch of matrices transposed)."""
        return self.np.swapaxes(a, -1, -2)

    def zeros(self, shape):
        return np.zeros(shape)

    def index(self, idx):
        """An integer index array in this library's form (prepared once, outside the timed calls)."""
        return np.asarray(idx, dtype=np.int64)


class TorchOps(Ops):
    def __init__(self, torch):
        self.t = torch
        self.sin, self.cos, self.exp, self.log, self.tanh = torch.sin, torch.cos, torch.exp, torch.log, torch.tanh
        self.matmul = torch.matmul

    def sum(self, a, axis=None):
        return self.t.sum(a) if axis is None else self.t.sum(a, dim=axis)

    def lse(self, a, axis):
        return self.t.logsumexp(a, dim=axis)

    def reshape(self, a, shape):
        return self.t.reshape(a, shape)

    def concat(self, arrays, axis):
        return self.t.cat(arrays, dim=axis)

    def swap(self, a):
        return self.t.transpose(a, -1, -2)

    def zeros(self, shape):
        return self.t.zeros(shape, dtype=self.t.float64)

    def index(self, idx):
        return self.t.as_tensor(np.asarray(idx, dtype=np.int64))


class JaxOps(Ops):
    def __init__(self, jnp, logsumexp):
        super().__init__(jnp, logsumexp)

    def zeros(self, shape):
        return self.np.zeros(shape)

    def index(self, idx):
        return self.np.asarray(np.asarray(idx, dtype=np.int64))


# ---- A1: f(x) = sum_i sin(x_i) x_i -------------------------------------------------------------------

def a1_make(n):
    return Case({}, [(np.arange(n, dtype=np.float64) + 0.5) / n], f"n = {n:,}")


def a1_program(M, consts, x):
    return M.sum(M.sin(x) * x)


def a1_floor_primal(case):
    (x,) = case.diff
    return float(np.dot(np.sin(x), x))


def a1_floor_vg(case):
    (x,) = case.diff
    s = np.sin(x)
    g = np.cos(x)
    g *= x
    g += s
    return float(np.dot(s, x)), [g]


def a1_python(case):
    """A plain Python loop over a list, with the hand-written derivative cos(x) x + sin(x): dl's scalar
    path, the other side of the small-array crossover. Takes and gives Python lists (its own form)."""
    xs = case.diff[0].tolist()
    sin, cos = math.sin, math.cos

    def primal():
        acc = 0.0
        for x in xs:
            acc += sin(x) * x
        return acc

    def vg():
        acc = 0.0
        g = []
        append = g.append
        for x in xs:
            s = sin(x)
            acc += s * x
            append(cos(x) * x + s)
        return acc, [g]
    return {"primal": primal, "vg": vg}


# ---- A2: MLP loss, softmax cross-entropy, one batch -----------------------------------------------------

def glorot(rng, m, n):
    lim = math.sqrt(6.0 / (m + n))
    return rng.uniform(-lim, lim, (m, n))


def a2_make(spec):
    """spec: ("digits", batch) — the first `batch` rows of the digits training split, 64-256-256-10;
    ("random", batch, n_in) — seeded N(0, 1) inputs and uniform labels, n_in-256-256-10."""
    sizes_hidden = (256, 256)
    rng = np.random.default_rng(1)
    if spec[0] == "digits":
        from digits import load, one_hot
        xtr, ytr, _, _ = load()
        batch = spec[1]
        x, t = xtr[:batch], one_hot(ytr[:batch])
        label = f"digits, batch {batch}, 64-256-256-10"
    else:
        batch, n_in = spec[1], spec[2]
        x = rng.standard_normal((batch, n_in))
        t = np.eye(10)[rng.integers(0, 10, batch)]
        label = f"random, batch {batch}, {n_in}-256-256-10"
    sizes = (x.shape[1],) + sizes_hidden + (10,)
    diff = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        diff += [glorot(rng, m, n), rng.uniform(-0.1, 0.1, n)]
    return Case({"x": np.ascontiguousarray(x), "t": t}, diff, label)


def a2_program(M, consts, *params):
    """Mean softmax cross-entropy of a tanh MLP: params W1, b1, W2, b2, ..., x @ W + b per layer."""
    x, t = consts["x"], consts["t"]
    h = x
    for i in range(0, len(params) - 2, 2):
        h = M.tanh(M.matmul(h, params[i]) + params[i + 1])
    z = M.matmul(h, params[-2]) + params[-1]
    batch = t.shape[0]
    lse = M.reshape(M.lse(z, 1), (batch, 1))
    return -M.sum(t * (z - lse)) / batch


def _a2_forward(case):
    x, t = case.consts["x"], case.consts["t"]
    p = case.diff
    hs = [x]
    h = x
    for i in range(0, len(p) - 2, 2):
        h = np.tanh(h @ p[i] + p[i + 1])
        hs.append(h)
    z = h @ p[-2] + p[-1]
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    lse = m + np.log(s)
    batch = t.shape[0]
    return hs, z, lse, e / s, -float(np.sum(t * (z - lse))) / batch


def a2_floor_primal(case):
    return _a2_forward(case)[-1]


def a2_floor_vg(case):
    hs, z, lse, sm, loss = _a2_forward(case)
    t = case.consts["t"]
    p = case.diff
    batch = t.shape[0]
    dz = (sm - t) / batch
    grads = [None] * len(p)
    for li in range(len(p) // 2 - 1, -1, -1):
        w = p[2 * li]
        hin = hs[li]
        grads[2 * li] = hin.T @ dz
        grads[2 * li + 1] = dz.sum(axis=0)
        if li > 0:
            dz = (dz @ w.T) * (1.0 - hin * hin)
    return loss, grads


# ---- A3: ADBench's GMM objective ------------------------------------------------------------------------

def gmm_qidx(d):
    """Gather indices building each Q_k (d x d, row-major) from [0, exp(icf[:d]), icf[d:]]: position (i, i)
    takes q_i, a strictly lower position (j, i), j > i, takes the next entry of icf[d:] in column-major
    order (ADBench's constructL), everything else the leading 0."""
    idx = np.zeros((d, d), dtype=np.int64)
    for i in range(d):
        idx[i, i] = 1 + i
    p = 0
    for i in range(d):
        for j in range(i + 1, d):
            idx[j, i] = 1 + d + p
            p += 1
    return idx.reshape(-1)


def gmm_lower_positions(d):
    rows, cols = [], []
    for i in range(d):
        for j in range(i + 1, d):
            rows.append(j)
            cols.append(i)
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)


def log_gamma_distrib(a, p):
    return 0.25 * p * (p - 1) * math.log(math.pi) + sum(math.lgamma(a + 0.5 * (1 - j)) for j in range(1, p + 1))


def gmm_constant(n, d, k, gamma, m):
    """The parameter-free terms of ADBench's objective: -n d/2 log 2 pi and the Wishart normaliser."""
    nn = d + m + 1
    c = nn * d * (math.log(gamma) - 0.5 * math.log(2.0)) - log_gamma_distrib(0.5 * nn, d)
    return -n * d * 0.5 * math.log(2 * math.pi) - k * c


def a3_make(spec):
    d, k, n = spec
    rng = np.random.default_rng(2)
    alphas = rng.standard_normal(k)
    means = rng.uniform(0.0, 1.0, (k, d))
    icf = rng.standard_normal((k, d + d * (d - 1) // 2))
    x = rng.standard_normal((n, d))
    gamma, m = 1.0, 0
    consts = {"x": x, "qidx": gmm_qidx(d), "c0": gmm_constant(n, d, k, gamma, m), "gamma": gamma, "m": float(m)}
    return Case(consts, [alphas, means, icf], f"d={d} K={k} n={n:,}")


def a3_program(M, consts, alphas, means, icf):
    x, qidx, c0, gamma, wm = consts["x"], consts["qidx"], consts["c0"], consts["gamma"], consts["m"]
    k, d = means.shape
    n = x.shape[0]
    logq = icf[:, :d]
    l = icf[:, d:]
    q = M.exp(logq)
    sumq = M.sum(logq, 1)
    qs = M.reshape(M.concat([M.zeros((k, 1)), q, l], 1)[:, qidx], (k, d, d))     # Q_k = diag(q_k) + L_k
    c = M.reshape(x, (1, n, d)) - M.reshape(means, (k, 1, d))                     # (K, n, d)
    y = M.matmul(c, M.swap(qs))                                                   # y_kn = Q_k (x_n - mu_k)
    z = M.reshape(alphas + sumq, (k, 1)) - 0.5 * M.sum(y * y, 2)                  # (K, n)
    slse = M.sum(M.lse(z, 0))
    prior = M.sum(0.5 * gamma * gamma * (M.sum(q * q, 1) + M.sum(l * l, 1)) - wm * sumq)
    return c0 + slse - n * M.lse(alphas, 0) + prior


def _a3_forward(case):
    x, c0, gamma, wm = case.consts["x"], case.consts["c0"], case.consts["gamma"], case.consts["m"]
    alphas, means, icf = case.diff
    k, d = means.shape
    n = x.shape[0]
    logq = icf[:, :d]
    l = icf[:, d:]
    q = np.exp(logq)
    sumq = logq.sum(axis=1)
    qs = np.zeros((k, d, d))
    di = np.arange(d)
    qs[:, di, di] = q
    rows, cols = gmm_lower_positions(d)
    qs[:, rows, cols] = l
    c = x[None, :, :] - means[:, None, :]
    y = c @ qs.transpose(0, 2, 1)
    z = (alphas + sumq)[:, None] - 0.5 * np.einsum("knd,knd->kn", y, y)
    zm = z.max(axis=0)
    ez = np.exp(z - zm)
    se = ez.sum(axis=0)
    am = alphas.max()
    ea = np.exp(alphas - am)
    sa = ea.sum()
    lse_a = am + math.log(sa)
    value = (c0 + float(np.sum(zm + np.log(se))) - n * lse_a
             + float(np.sum(0.5 * gamma * gamma * ((q * q).sum(axis=1) + (l * l).sum(axis=1)) - wm * sumq)))
    return value, (n, d, k, q, l, qs, c, y, ez / se, ea / sa, rows, cols, gamma, wm)


def a3_floor_primal(case):
    return _a3_forward(case)[0]


def a3_floor_vg(case):
    """Hand-written reverse pass. r = softmax over k of z (the responsibilities); the cotangent of y is
    G = -r y; dQ_k = sum_n G_kn c_kn^T; dmu_k = -Q_k^T sum_n G_kn."""
    value, (n, d, k, q, l, qs, c, y, r, sa, rows, cols, gamma, wm) = _a3_forward(case)
    rk = r.sum(axis=1)                               # (K,)
    dalphas = rk - n * sa
    g = y * (-r)[:, :, None]                         # (K, n, d)
    dq_mat = g.transpose(0, 2, 1) @ c                # (K, d, d)
    dmeans = -np.einsum("kd,kde->ke", g.sum(axis=1), qs)
    dicf = np.empty((k, d + d * (d - 1) // 2))
    di = np.arange(d)
    # d/d logq: through q = exp(logq) (the diagonal of Q and the prior's q^2), and through sumq (z and prior)
    dicf[:, :d] = (dq_mat[:, di, di] + gamma * gamma * q) * q + rk[:, None] - wm
    dicf[:, d:] = dq_mat[:, rows, cols] + gamma * gamma * l
    return value, [dalphas, dmeans, dicf]


# ---- the table ------------------------------------------------------------------------------------------

def _ident_grad(g):
    return [np.asarray(a, dtype=np.float64) for a in (g if isinstance(g, (list, tuple)) else [g])]


def _a2_dl_args(case):
    p = case.diff
    return case.consts["x"], case.consts["t"], [(p[i], p[i + 1]) for i in range(0, len(p), 2)]


def _a2_dl_grad(g):
    return [np.asarray(a, dtype=np.float64) for layer in g for a in layer]


def _a3_dl_args(case):
    k = case.consts
    return k["x"], k["qidx"].tolist(), k["c0"], k["gamma"], k["m"], tuple(case.diff)


CROSSOVER_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)

WORKLOADS: list[Workload] = [
    Workload("A1", "sum_i sin(x_i) x_i", "a1_sum_sin.dl", (1_000, 10_000, 100_000, 1_000_000),
             (1_000, 100_000), a1_make, a1_program, a1_floor_primal, a1_floor_vg,
             lambda c: (c.diff[0],), _ident_grad, a1_python,
             notes=["x_i = (i + 0.5) / n (as W4 of the scalar suite); gradient cos(x_i) x_i + sin(x_i)."]),
    Workload("A1s", "sum_i sin(x_i) x_i, small n (crossover)", "a1_sum_sin.dl", CROSSOVER_SIZES,
             (1, 8, 64), a1_make, a1_program, a1_floor_primal, a1_floor_vg,
             lambda c: (c.diff[0],), _ident_grad, a1_python,
             notes=["The same program as A1 at n = 1..256: where numpy's per-call overhead meets a plain "
                    "Python loop's per-element cost. Three times the run's samples per callable: its "
                    "callables take microseconds, where other jobs' noise weighs most."],
             reps_factor=3),
    Workload("A2", "MLP loss gradient, tanh, softmax cross-entropy", "a2_mlp.dl",
             (("digits", 256), ("random", 256, 784)), (("digits", 256),),
             a2_make, a2_program, a2_floor_primal, a2_floor_vg, _a2_dl_args, _a2_dl_grad,
             notes=["Digits: the first 256 rows of the training split (examples/data, pixels / 16), one-hot "
                    "labels; random: N(0, 1) inputs of width 784 (MNIST's), uniform labels, seed 1. Weights "
                    "Glorot-uniform, biases U(-0.1, 0.1), seed 1. Gradient w.r.t. all weights and biases "
                    "(digits: 85,002 parameters; 784-wide: 269,322)."]),
    Workload("A3", "GMM log-likelihood (ADBench objective)", "a3_gmm.dl",
             ((2, 5, 1000), (10, 25, 1000), (64, 10, 1000)), ((10, 25, 1000),),
             a3_make, a3_program, a3_floor_primal, a3_floor_vg, _a3_dl_args, _ident_grad,
             notes=["ADBench's GMM objective (gmm_objective with log_wishart_prior; wishart gamma = 1, m = 0): "
                    "sum_n logsumexp_k(alpha_k + sum(log q_k) - |Q_k (x_n - mu_k)|^2 / 2) - n logsumexp(alpha) "
                    "+ prior + constant, Q_k = diag(exp(icf_k[:d])) + the strictly lower triangle filled "
                    "column-major from icf_k[d:]. Gradient w.r.t. alphas (K), means (K x d), icf (K x d(d+1)/2). "
                    "Sizes d, K as ADBench's gmm_d2_K5, gmm_d10_K25, gmm_d64_K10 at n = 1,000 points. Inputs "
                    "seeded (2): alpha ~ N(0, 1), mu ~ U(0, 1), icf ~ N(0, 1), x ~ N(0, 1).",
                    "The parameter-free terms (-n d/2 log 2 pi and the Wishart normaliser with lgamma) are "
                    "computed once in Python and given to every tool as the constant c0; Q_k is built by one "
                    "gather from [0, q_k, l_k] with a fixed index list (what every AD tool differentiates), "
                    "the numpy floor writes Q by index assignment."]),
]

BY_KEY = {w.key: w for w in WORKLOADS}


def size_label(w: Workload, size) -> str:
    if w.key.startswith("A1"):
        return f"{size:,}"
    if w.key == "A2":
        return f"digits 64-256-256-10, batch {size[1]}" if size[0] == "digits" else f"random {size[2]}-256-256-10, batch {size[1]}"
    return "d={} K={} n={:,}".format(*size)


# ---- checking ---------------------------------------------------------------------------------------------

def rel_error(got, ref) -> float:
    """Max over components of |got - ref| / max(|ref|, 1e-6 max |ref|), per array (as the scalar suite's
    rel_error: components far below the array's scale are compared against 1e-6 of that scale)."""
    got = np.asarray(got, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if got.shape != ref.shape:
        return math.inf
    if not (np.all(np.isfinite(got)) and np.all(np.isfinite(ref))):
        return 0.0 if np.array_equal(np.isfinite(got), np.isfinite(ref)) else math.inf
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    denom = np.maximum(np.abs(ref), 1e-6 * scale)
    diff = np.abs(got - ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diff == 0, 0.0, diff / np.where(denom > 0, denom, 1.0))
    return float(r.max()) if r.size else 0.0
