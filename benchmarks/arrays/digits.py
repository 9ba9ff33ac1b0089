"""The 8x8 digits shipped in examples/data (see examples/data/README.md): loading and the fixed split.

The split is fixed by two index files, examples/data/digits_train.txt (1,500 row indices) and
digits_test.txt (297), one 0-based row index a line, sorted: a seeded shuffle (numpy's
default_rng(0).permutation(1797), first 1,500 train), written once by examples/data/convert_digits.py.
Features are scaled to [0, 1] by dividing the 0..16 pixel counts by 16.

(The file's own order is not shuffled: its last 297 rows are harder than the rest — a split of the
first 1,500 rows against the last 297 gives the reference trainers about 0.91 held-out accuracy, the
shuffled split about 0.98 — so the split is the shuffled one.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"


def indices(part: str) -> np.ndarray:
    """The row indices of "train" or "test"."""
    return np.loadtxt(DATA / f"digits_{part}.txt", dtype=np.int64, ndmin=1)


def load_table() -> np.ndarray:
    """The (1797, 65) table as float64: 64 pixel counts 0..16, then the label."""
    npy = DATA / "digits.npy"
    if npy.exists():
        return np.load(npy).astype(np.float64)
    return np.loadtxt(DATA / "digits.csv", delimiter=",")


def load(scale: bool = True):
    """(x_train, y_train, x_test, y_test): x float64 (n, 64), in [0, 1] if scale; y int64 labels."""
    t = load_table()
    x, y = t[:, :64], t[:, 64].astype(np.int64)
    if scale:
        x = x / 16.0
    tr, te = indices("train"), indices("test")
    return x[tr], y[tr], x[te], y[te]


def one_hot(y: np.ndarray, k: int = 10) -> np.ndarray:
    out = np.zeros((y.shape[0], k))
    out[np.arange(y.shape[0]), y] = 1.0
    return out
