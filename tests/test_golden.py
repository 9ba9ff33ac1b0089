"""`dl test` and golden test files (issue 18): .dl files with their expected output in `-- expect:` headers.

The project's own golden files are in tests/golden/; each runs here in every mode its header names.
"""
import glob
import os

import pytest

from conftest import ROOT, dl
from lang.tools import golden

GOLDEN = sorted(glob.glob(str(ROOT / "tests" / "golden" / "*.dl")))


@pytest.mark.parametrize("path", GOLDEN, ids=[os.path.basename(p) for p in GOLDEN])
def test_golden_file(path):
    results = golden.check(path)
    assert results and all(r.passed for r in results), [(r.mode, r.why, r.got) for r in results if not r.passed]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_summary_line_and_exit_codes(tmp_path):
    write(tmp_path, "a.dl", "-- expect: 3.0\ndef main = 1.0 + 2.0\n")
    write(tmp_path, "b.dl", "-- expect: 4.0\ndef main = 1.0 + 2.0\n")
    out = dl("test", str(tmp_path))
    assert out.returncode == 1
    lines = out.stdout.strip().split("\n")
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0].startswith("FAIL ") and "b.dl [backprop]: expected 4.0, got 3.0" in lines[0]
    os.remove(tmp_path / "b.dl")
    out = dl("test", str(tmp_path))
    assert (out.returncode, out.stdout) == (0, "1 passed, 0 failed\n")
    assert dl("test", str(tmp_path / "missing.dl")).returncode == 2


def test_promote_writes_what_the_file_printed(tmp_path):
    fresh = write(tmp_path, "fresh.dl", "-- a comment first\ndef main = grad sin 0.0\n")
    stale = write(tmp_path, "stale.dl", "-- mode: forward\n-- expect: 2.0\ndef main = derivative (fun x -> x * x) 3.0\n")
    broken = write(tmp_path, "broken.dl", "-- expect: 1.0\ndef main = 1.0 + true\n")
    out = dl("test", "--promote", str(tmp_path))
    assert out.returncode == 1 and out.stdout.strip().endswith("0 passed, 3 failed")
    assert open(fresh).read() == "-- expect: 1.0\n-- a comment first\ndef main = grad sin 0.0\n"
    assert open(stale).read() == "-- mode: forward\n-- expect: 6.0\ndef main = derivative (fun x -> x * x) 3.0\n"
    assert open(broken).read().startswith("-- expect-error: type 2:")
    assert dl("test", str(tmp_path)).stdout == "3 passed, 0 failed\n"


def test_header_directives(tmp_path):
    """args, modes (every listed mode must pass), tol, and an error's kind without a position."""
    write(tmp_path, "args.dl", "-- args: 3 2.5\n-- expect: 7.5\ndef main n x = float n * x\n")
    write(tmp_path, "modes.dl", "-- modes: all\n-- tol: 1e-6\n-- expect: 0.5403023058681398\n"
                                "def main = grad sin 1.0\n")
    write(tmp_path, "kind.dl", "-- expect-error: runtime\ndef main = head []\n")
    out = dl("test", "-v", str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip().endswith("3 passed, 0 failed"), out.stdout
    tight = write(tmp_path, "tight.dl", "-- expect: 0.5403023\ndef main = grad sin 1.0\n")  # 1.1e-8 off
    out = dl("test", tight)
    assert out.returncode == 1 and "[backprop]" in out.stdout   # beyond the default relative tolerance 1e-9
    write(tmp_path, "tight.dl", "-- tol: 1e-7\n" + open(tight).read())
    assert dl("test", tight).returncode == 0
    write(tmp_path, "unknown.dl", "-- mode: nosuch\n-- expect: 1.0\ndef main = 1.0\n")
    out = dl("test", str(tmp_path / "unknown.dl"))
    assert out.returncode == 1 and "unknown mode 'nosuch'" in out.stdout


@pytest.mark.parametrize("expected,got,same", [
    ("(1.0, [2, 3])", "(1.0000000001, [2, 3])", True),
    ("(1.0, [2, 3])", "(1.0, [2, 4])", False),
    ("nan", "nan", True), ("inf", "-inf", False), ("[1.0]", "(1.0)", False),
    ("[]", "[]", True), ("()", "()", True), ("true", "false", False), ("<fun>", "<fun>", True),
    ("1", "1.0", False),  # an Int is not a Real
])
def test_values_compare_as_values(expected, got, same):
    assert golden.values_match(expected, got, 1e-9) is same
