"""Data in (docs/reference.md §5, Arrays: data): CSV and .npy files as Arrays, paths, `dl run` arguments,
and errors that name the file, the line and the column — never a traceback."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT, diagnostic, dl, run

DIGITS = ROOT / "examples" / "data"


def test_the_digits_csv_and_npy_load_as_numpy_reads_them(tmp_path):
    program = tmp_path / "load.dl"
    program.write_text(f'def main = (loadCsv "{DIGITS / "digits.csv"}", loadNpy "{DIGITS / "digits.npy"}")\n')
    csv, npy = run(program.read_text())
    want = np.loadtxt(DIGITS / "digits.csv", delimiter=",")
    assert csv.dtype == np.float64 and csv.shape == (1797, 65) and np.array_equal(csv, want)
    assert npy.dtype == np.float64 and np.array_equal(npy, np.load(DIGITS / "digits.npy").astype(float))


def test_a_relative_path_is_relative_to_the_file_it_is_written_in(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "m.csv").write_text("# two rows\n1, 2.5\n\n-3,4e-1\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "io.dl").write_text('def m = loadCsv "../data/m.csv"\n')
    (tmp_path / "prog.dl").write_text('import "lib/io.dl"\ndef main = (m, loadCsv "data/m.csv")\n')
    r = dl("run", str(tmp_path / "prog.dl"))  # run from the repository's root, not tmp_path
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(array([[1.0, 2.5], [-3.0, 0.4]]), array([[1.0, 2.5], [-3.0, 0.4]]))"


def test_dl_run_takes_an_array_argument_as_a_file_or_a_list_literal(tmp_path):
    np.save(tmp_path / "v.npy", np.array([[1, 2], [3, 4]], dtype=np.int32))
    (tmp_path / "w.csv").write_text("0.5,0.25\n")
    prog = tmp_path / "sum.dl"
    prog.write_text("def main (a : Array) (b : Array) (c : Array) = (asum a, amatmul b (atranspose c))\n")
    r = dl("run", str(prog), str(tmp_path / "v.npy"), str(tmp_path / "w.csv"), "[[2.0, 4.0]]")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(10.0, array([[2.0]]))"


def _error(tmp_path, csv_text: str, name: str = "bad.csv"):
    (tmp_path / name).write_text(csv_text)
    prog = tmp_path / "p.dl"
    prog.write_text(f'def main = asum (loadCsv "{name}")\n')
    r = dl("run", str(prog))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    return diagnostic(r.stderr)


def test_a_bad_number_is_reported_at_its_line_and_column_in_the_csv(tmp_path):
    d = _error(tmp_path, "1,2,3\n4, 5x ,6\n")
    assert d["file"].endswith("bad.csv") and (d["line"], d["col"]) == (2, 4)
    assert d["message"] == "`loadCsv`: `5x` is not a number"
    assert d["source"] == "    4, 5x ,6" and d["caret"] == "       ^^"


def test_an_empty_field_is_reported_too(tmp_path):
    d = _error(tmp_path, "1,,3\n")
    assert (d["line"], d["col"]) == (1, 3) and d["message"] == "`loadCsv`: an empty field is not a number"


def test_a_ragged_row_is_reported_at_its_line(tmp_path):
    d = _error(tmp_path, "1,2,3\n# comment\n4,5\n")
    assert (d["line"], d["col"]) == (3, 1)
    assert d["message"] == "`loadCsv`: a row of 2 numbers where the first row has 3"


def test_a_missing_file_names_the_path_looked_for(tmp_path):
    prog = tmp_path / "p.dl"
    prog.write_text('def main = loadNpy "nowhere.npy"\n')
    r = dl("run", str(prog))
    d = diagnostic(r.stderr)
    assert (d["line"], d["col"], d["kind"]) == (1, 12, "runtime")
    assert d["message"] == f"`loadNpy`: no such file 'nowhere.npy' (looked for {tmp_path / 'nowhere.npy'})"


def test_a_file_that_is_not_npy_is_an_error(tmp_path):
    (tmp_path / "x.npy").write_text("not numpy")
    prog = tmp_path / "p.dl"
    prog.write_text('def main = loadNpy "x.npy"\n')
    r = dl("run", str(prog))
    d = diagnostic(r.stderr)
    assert d["message"].startswith("`loadNpy`: 'x.npy' is not a .npy file of numbers")


def test_a_string_is_a_value_of_type_string_and_prints_quoted():
    from lang.model.values import show_value
    assert show_value(run('def main = ("a.csv", true)\n')) == '("a.csv", true)'


def test_strings_are_not_differentiable_data():
    from lang.model.errors import DlError
    with pytest.raises(DlError) as info:
        run('def main = grad (fun s -> 1.0) "x"\n')
    assert info.value.kind == "type"
