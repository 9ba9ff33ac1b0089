"""Convert scikit-learn's copy of the UCI 8x8 digits into examples/data/digits.csv and digits.npy.

    python examples/data/convert_digits.py PATH

PATH is a scikit-learn wheel (the file is read from inside it, nothing is installed) or the extracted
`sklearn/datasets/data/digits.csv.gz`. Run once; the outputs are committed and this script only
documents (and can repeat) how they were made. Needs numpy only.

Output rows are the input's rows in the input's order: 64 integer pixel counts (0..16, row-major 8x8
image), then the digit label (0..9); no header. digits.npy holds the same table as a uint8 array of
shape (1797, 65). The script checks the shape, the value ranges and the class counts, and prints the
SHA-256 of the outputs. It also writes the fixed train/test split as two index files,
digits_train.txt (1,500 row indices) and digits_test.txt (297), from numpy's
`default_rng(0).permutation(1797)` (first 1,500 train), each sorted, one 0-based row index a line.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MEMBER = "sklearn/datasets/data/digits.csv.gz"
SPLIT_SEED = 0
N_TRAIN = 1500


def read_source(path: Path) -> bytes:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            return gzip.decompress(z.read(MEMBER))
    return gzip.decompress(path.read_bytes())


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    raw = read_source(Path(sys.argv[1]))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",")
    assert table.shape == (1797, 65), table.shape
    assert np.array_equal(table, np.round(table)), "non-integer entries"
    x, y = table[:, :64], table[:, 64]
    assert x.min() == 0 and x.max() == 16, (x.min(), x.max())
    assert set(np.unique(y)) == set(range(10))
    t = table.astype(np.uint8)
    csv = "".join(",".join(str(v) for v in row) + "\n" for row in t.tolist())
    (HERE / "digits.csv").write_text(csv)
    np.save(HERE / "digits.npy", t)
    # the fixed split: a seeded permutation, its first 1,500 rows train and the other 297 test, each
    # written sorted, one row index (0-based) a line, so that no one needs numpy's generator to rebuild it
    perm = np.random.default_rng(SPLIT_SEED).permutation(t.shape[0])
    train, test = np.sort(perm[:N_TRAIN]), np.sort(perm[N_TRAIN:])
    (HERE / "digits_train.txt").write_text("".join(f"{i}\n" for i in train.tolist()))
    (HERE / "digits_test.txt").write_text("".join(f"{i}\n" for i in test.tolist()))
    for name in ("digits.csv", "digits.npy", "digits_train.txt", "digits_test.txt"):
        print(f"{hashlib.sha256((HERE / name).read_bytes()).hexdigest()}  examples/data/{name}")
    print("class counts:", np.bincount(t[:, 64]).tolist())
    print("train class counts:", np.bincount(t[train, 64], minlength=10).tolist())
    print("test class counts:", np.bincount(t[test, 64], minlength=10).tolist())


if __name__ == "__main__":
    main()
