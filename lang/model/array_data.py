"""Data in: a numeric CSV or a .npy file as an Array (docs/reference.md §5, Arrays: data).

    loadCsv "data/points.csv"      rows of numbers separated by commas: a 2-d array (rows, columns)
    loadNpy "data/digits.npy"      numpy's .npy format, any shape, converted to float64

A relative path is relative to the directory of the file in which the string
is written (a path typed at the REPL or given to `dl run`: the current
directory). Every problem is a runtime error a user can act on: a missing
file names the path looked for; a bad number or a row of the wrong length is
reported at its line and column *in the CSV file*, with that line and a caret
under the field, as any diagnostic is.

CSV: no header; a line whose first non-blank character is `#` is a comment;
blank lines are skipped; spaces around a field are allowed; numbers are
Python/C floats (`1`, `-2.5`, `1e-3`, `nan`, `inf`).
"""
from __future__ import annotations

import os

import numpy as np

from .errors import DlRuntimeError
from .spans import Source, Span


def resolve(path: str) -> str:
    """The file a path names: relative to the directory of the file where it was written (a Text value,
    lang/model/values.py), or to the current directory."""
    origin = getattr(path, "origin", "") or os.getcwd()
    return os.path.normpath(os.path.join(origin, str(path)))


def _read(path: str, what: str, binary: bool = False):
    full = resolve(path)
    try:
        with open(full, "rb" if binary else "r", **({} if binary else {"encoding": "utf-8"})) as f:
            return full, f.read()
    except FileNotFoundError:
        raise DlRuntimeError(f"`{what}`: no such file {str(path)!r} (looked for {full})") from None
    except IsADirectoryError:
        raise DlRuntimeError(f"`{what}`: {str(path)!r} is a directory, not a file ({full})") from None
    except UnicodeDecodeError:
        raise DlRuntimeError(f"`{what}`: {str(path)!r} is not a text file ({full})") from None
    except OSError as e:
        raise DlRuntimeError(f"`{what}`: cannot read {str(path)!r}: {e.strerror} ({full})") from None


def loadCsv(path: str) -> np.ndarray:
    """A CSV file of numbers as a 2-d array; a bad field is an error at its line and column."""
    full, text = _read(path, "loadCsv")
    source = Source(str(path) if os.path.isabs(str(path)) else _shown(full), text)
    rows: list[list[float]] = []
    width = None
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields, col = [], 1
        for raw in line.rstrip("\r").split(","):
            lead = len(raw) - len(raw.lstrip())
            field = raw.strip()
            try:
                fields.append(float(field))
            except ValueError:
                at = Span(source, number, col + lead, number, col + lead + max(1, len(field)))
                shown = f"`{field}`" if field else "an empty field"
                raise DlRuntimeError(f"`loadCsv`: {shown} is not a number", at) from None
            col += len(raw) + 1
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            at = Span(source, number, 1, number, len(line.rstrip("\r")) + 1)
            raise DlRuntimeError(f"`loadCsv`: a row of {len(fields)} number{'s' if len(fields) != 1 else ''} "
                                 f"where the first row has {width}", at)
        rows.append(fields)
    if not rows:
        return np.zeros((0, 0))
    return np.array(rows, dtype=np.float64)


def loadNpy(path: str) -> np.ndarray:
    """A .npy file as a float64 array (numeric data only: no pickled objects)."""
    full, data = _read(path, "loadNpy", binary=True)
    import io
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DlRuntimeError(f"`loadNpy`: {str(path)!r} is not a .npy file of numbers ({full}: {e})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
        raise DlRuntimeError(f"`loadNpy`: {str(path)!r} does not hold numbers (dtype {getattr(a, 'dtype', '?')})")
    return a.astype(np.float64)


def _shown(full: str) -> str:
    """A path as diagnostics show it: relative to the current directory when that is shorter."""
    try:
        rel = os.path.relpath(full)
    except ValueError:
        return full
    return rel if len(rel) < len(full) else full
