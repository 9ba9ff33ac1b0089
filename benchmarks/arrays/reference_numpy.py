"""Reference trainers on the digits split, numpy only, with hand-written gradients: the independent
oracles for dl's array examples.

    python benchmarks/arrays/reference_numpy.py            # softmax regression, MLP 64-64-10, MLP 64-256-256-10
    python benchmarks/arrays/reference_numpy.py --check    # also a finite-difference check of every gradient

Data: examples/data/digits.csv (benchmarks/arrays/digits.py: rows 0..1499 train, 1500..1796 test,
pixels / 16). Models: softmax regression (64 -> 10) and tanh MLPs, mean softmax cross-entropy with a
small L2 penalty on the weights (not the biases), trained by Adam (beta1 0.9, beta2 0.999, eps 1e-8)
on seeded mini-batches. Everything is float64 and deterministic for a given seed (one thread).
Each line printed: model, parameters, epochs, final training loss, train and held-out accuracy, time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import load, one_hot  # noqa: E402


# ---- the model: a list of (W, b) layers, tanh between them, softmax cross-entropy at the end ------

def init(sizes, rng):
    """Glorot-uniform weights, zero biases."""
    params = []
    for m, n in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6.0 / (m + n))
        params.append((rng.uniform(-lim, lim, (m, n)), np.zeros(n)))
    return params


def logits(params, x):
    h = x
    for w, b in params[:-1]:
        h = np.tanh(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def loss_and_grad(params, x, t, l2):
    """Mean cross-entropy + l2/2 * sum of squared weights, and its gradient (hand-written reverse pass).

    t is one-hot (n, k). Returns (loss, [(dW, db), ...])."""
    hs = [x]
    h = x
    for w, b in params[:-1]:
        h = np.tanh(h @ w + b)
        hs.append(h)
    w, b = params[-1]
    z = h @ w + b
    ls = log_softmax(z)
    n = x.shape[0]
    loss = -(t * ls).sum() / n + 0.5 * l2 * sum((w * w).sum() for w, _ in params)
    dz = (np.exp(ls) - t) / n                 # d loss / d logits
    grads = []
    for i in range(len(params) - 1, -1, -1):
        w, b = params[i]
        hin = hs[i]
        grads.append((hin.T @ dz + l2 * w, dz.sum(axis=0)))
        if i > 0:
            dz = (dz @ w.T) * (1.0 - hin * hin)   # through tanh: hin = tanh(pre-activation)
    grads.reverse()
    return loss, grads


def accuracy(params, x, y):
    return float((logits(params, x).argmax(axis=1) == y).mean())


def adam(params, x, t, *, epochs, batch, lr, l2, rng):
    flat = [p for layer in params for p in layer]
    m = [np.zeros_like(p) for p in flat]
    v = [np.zeros_like(p) for p in flat]
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0
    n = x.shape[0]
    loss = float("nan")
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            loss, grads = loss_and_grad(params, x[idx], t[idx], l2)
            step += 1
            gflat = [g for layer in grads for g in layer]
            for p, g, mi, vi in zip(flat, gflat, m, v):
                mi *= b1
                mi += (1 - b1) * g
                vi *= b2
                vi += (1 - b2) * g * g
                mhat = mi / (1 - b1 ** step)
                vhat = vi / (1 - b2 ** step)
                p -= lr * mhat / (np.sqrt(vhat) + eps)    # in place: params' arrays are updated
    return loss_and_grad(params, x, t, l2)[0]


# ---- finite-difference check of the hand-written gradient -------------------------------------------

def check_gradient(sizes, rng, l2=1e-3, n=20, coords=30):
    xtr, ytr, _, _ = load()
    x, t = xtr[:n], one_hot(ytr[:n])
    params = init(sizes, rng)
    # random biases too, so that their gradient is exercised away from zero
    params = [(w, rng.uniform(-0.1, 0.1, b.shape)) for w, b in params]
    _, grads = loss_and_grad(params, x, t, l2)
    worst = 0.0
    for li, ((w, b), (gw, gb)) in enumerate(zip(params, grads)):
        for arr, g in ((w, gw), (b, gb)):
            for _ in range(coords):
                i = tuple(rng.integers(0, s) for s in arr.shape)
                old = arr[i]
                h = 1e-5
                arr[i] = old + h
                up = loss_and_grad(params, x, t, l2)[0]
                arr[i] = old - h
                down = loss_and_grad(params, x, t, l2)[0]
                arr[i] = old
                fd = (up - down) / (2 * h)
                # central differences, h = 1e-5: truncation ~1e-10, round-off ~1e-11 absolute; components
                # below 1e-3 are compared absolutely
                worst = max(worst, abs(fd - g[i]) / max(1e-3, abs(fd), abs(g[i])))
    return worst


MODELS = {
    # name: (sizes, epochs, batch, lr, l2)
    "softmax regression 64-10": ((64, 10), 60, 32, 0.01, 1e-4),
    "MLP 64-64-10 tanh": ((64, 64, 10), 40, 32, 1e-3, 1e-4),
    "MLP 64-256-256-10 tanh": ((64, 256, 256, 10), 20, 32, 1e-3, 1e-4),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="finite-difference check of the gradients first")
    ap.add_argument("--seed", type=int, default=0)
    opts = ap.parse_args()
    xtr, ytr, xte, yte = load()
    ttr = one_hot(ytr)
    print(f"digits: train {xtr.shape[0]}, test {xte.shape[0]} (examples/data/digits.csv), seed {opts.seed}, "
          f"numpy {np.__version__}")
    if opts.check:
        for name, (sizes, *_rest) in MODELS.items():
            err = check_gradient(sizes, np.random.default_rng(opts.seed))
            print(f"  gradient check {name}: max error vs central differences (relative, absolute below 1e-3) {err:.1e}")
            assert err < 1e-6, err
    ok = True
    for name, (sizes, epochs, batch, lr, l2) in MODELS.items():
        rng = np.random.default_rng(opts.seed)
        params = init(sizes, rng)
        nparams = sum(w.size + b.size for w, b in params)
        t0 = time.perf_counter()
        loss = adam(params, xtr, ttr, epochs=epochs, batch=batch, lr=lr, l2=l2, rng=rng)
        dt = time.perf_counter() - t0
        tr, te = accuracy(params, xtr, ytr), accuracy(params, xte, yte)
        ok &= te >= 0.95
        print(f"  {name}: {nparams} params, Adam lr {lr:g}, batch {batch}, {epochs} epochs, L2 {l2:g}: "
              f"train loss {loss:.4f}, train acc {tr:.4f}, test acc {te:.4f} "
              f"({round(te * xte.shape[0])}/{xte.shape[0]}), {dt:.2f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
