"""Golden test files: `dl test FILE...` (docs/reference.md, `dl test`).

A golden file is a dl program whose expected result is written in its
leading comment lines (the Dex and Futhark convention):

    -- expect: (5.5, 1.7163378145367738)     the value `dl run` prints (reals within a relative tolerance)
    -- expect-error: type 3:15               the diagnostic's kind and position (the position may be left out)
    -- args: 10 2.5                          main's arguments, as `dl run FILE ARG...` takes them
    -- modes: backprop forward tape          run in each of these modes (`all`: every mode); default backprop
    -- tol: 1e-6                             relative tolerance (default 1e-9)
    -- timeout: 20                           seconds per mode (default 30)

`check(path)` runs one file and says, per mode, whether the result is the
expected one; `promote(path, result)` writes what it got into the header
instead (`dl test --promote`), so that a new file, or one whose expected
output changed on purpose, needs no editing by hand. Nothing here prints:
the CLI formats the results.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from ..model.errors import DlError
from ..modes.table import MODES

DIRECTIVE = re.compile(r"^--\s*(expect-error|expect|args|modes|mode|tol|timeout)\s*:\s*(.*?)\s*$")
DEFAULT_TOL = 1e-9
DEFAULT_TIMEOUT = 30.0


@dataclass
class Header:
    """What a golden file's leading comments ask for."""

    expect: str | None = None          # the printed value
    expect_error: str | None = None    # "KIND" or "KIND LINE:COL"
    args: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=lambda: ["backprop"])
    tol: float = DEFAULT_TOL
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class Result:
    """One file in one mode: what it printed (a value or `KIND LINE:COL` for a diagnostic), and the verdict."""

    mode: str
    got: str
    is_error: bool
    passed: bool
    why: str = ""  # for a failure: what was expected


class HeaderError(ValueError):
    """A header line that cannot be read (an unknown mode, a tolerance that is not a number)."""


def read_header(text: str) -> Header:
    """The directives of the leading comment lines (blank lines and other comments among them are skipped)."""
    h = Header()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        m = DIRECTIVE.match(stripped)
        if not m:
            continue
        key, value = m.groups()
        if key == "expect":
            h.expect = value
        elif key == "expect-error":
            h.expect_error = value
        elif key == "args":
            h.args = value.split()
        elif key in ("modes", "mode"):
            names = [n for n in re.split(r"[,\s]+", value) if n]
            h.modes = list(MODES) if names == ["all"] else names
            unknown = [n for n in h.modes if n not in MODES]
            if unknown:
                raise HeaderError(f"unknown mode {unknown[0]!r} in `-- {key}:` (modes: {', '.join(MODES)})")
        else:
            try:
                number = float(value)
            except ValueError:
                raise HeaderError(f"`-- {key}:` needs a number, not {value!r}") from None
            setattr(h, key, number)
    return h


def check(path: str) -> list[Result]:
    """Run the golden file at `path` in each mode its header names; one Result per mode."""
    with open(path, encoding="utf-8") as f:
        header = read_header(f.read())
    return [_check_mode(path, header, mode) for mode in header.modes]


def _check_mode(path: str, header: Header, mode: str) -> Result:
    got, is_error = run_file(path, header.args, mode, header.timeout)
    if header.expect is None and header.expect_error is None:
        return Result(mode, got, is_error, False, "no `-- expect:` or `-- expect-error:` header (dl test --promote "
                                                  "writes one)")
    if header.expect_error is not None:
        if not is_error:
            return Result(mode, got, is_error, False, f"expected an error: {header.expect_error}")
        want = header.expect_error.split()
        return Result(mode, got, is_error, got.split()[:len(want)] == want, f"expected the error {header.expect_error}")
    if is_error:
        return Result(mode, got, is_error, False, f"expected {header.expect}")
    try:
        same = values_match(header.expect, got, header.tol)
    except ValueError as e:
        return Result(mode, got, is_error, False, f"cannot read `-- expect: {header.expect}`: {e}")
    return Result(mode, got, is_error, same, f"expected {header.expect}")


def run_file(path: str, args: list[str], mode: str, timeout: float) -> tuple[str, bool]:
    """What `dl run PATH ARGS --mode MODE` gives: the printed value, or the diagnostic as `KIND LINE:COL`."""
    from ..back.deep import Timeout, run_deep  # the stages, imported when a test runs (start-up)
    from ..model.errors import DlRuntimeError
    from ..model.values import show_value
    from ..modes.table import get
    from .pipeline import load, run_main

    def work():
        try:
            return run_main(load(path), args, get(mode))[0]
        except RecursionError:
            raise DlRuntimeError("stack overflow: the program recursed too deeply") from None

    try:
        value = run_deep(work, budget=timeout)
    except Timeout:
        return f"timeout after {timeout:g} s", True
    except DlError as e:
        span = e.span
        return (f"{e.kind} {span.line}:{span.col}" if span.source is not None else e.kind), True
    return show_value(value), False


# ---- comparing printed values -------------------------------------------------------------

_TOKEN = re.compile(r"\s*(<fun>|-?inf|nan|true|false|-?\d+\.?\d*(?:[eE][+-]?\d+)?|[()\[\],])")


def parse_value(text: str):
    """A printed dl value as nested Python data: floats (a literal with `.`, an exponent, inf or nan), ints,
    bools, tuples, lists, "<fun>"."""
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"unexpected {text[pos:pos + 10]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    value, end = _parse(tokens, 0)
    if end != len(tokens):
        raise ValueError("text after the value")
    return value


def _parse(tokens: list[str], i: int):
    if i >= len(tokens):
        raise ValueError("the value ends too soon")
    tok = tokens[i]
    if tok in ("(", "["):
        close = ")" if tok == "(" else "]"
        items, i = [], i + 1
        while tokens[i:i + 1] != [close]:
            item, i = _parse(tokens, i)
            items.append(item)
            if tokens[i:i + 1] == [","]:
                i += 1
            elif tokens[i:i + 1] != [close]:
                raise ValueError(f"expected `,` or `{close}`")
        i += 1
        if tok == "[":
            return items, i
        return (() if not items else items[0] if len(items) == 1 else tuple(items)), i
    if tok in (")", "]", ","):
        raise ValueError(f"unexpected `{tok}`")
    if tok in ("true", "false"):
        return tok == "true", i + 1
    if tok == "<fun>":
        return tok, i + 1
    if re.fullmatch(r"-?\d+", tok):
        return int(tok), i + 1
    return float(tok), i + 1


def values_match(expected: str, got: str, tol: float) -> bool:
    """Whether two printed values are the same, reals within the relative tolerance (nan matches nan)."""
    return _match(parse_value(expected), parse_value(got), tol)


def _match(a, b, tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300) or a == b
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_match(x, y, tol) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# ---- promoting what a file printed to its expected output ----------------------------------

def promote(path: str, result: Result) -> None:
    """Write `result` into the file's header as its expectation: the `-- expect:`/`-- expect-error:` line
    replaced, or one added at the top."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    new = f"-- expect-error: {result.got}" if result.is_error else f"-- expect: {result.got}"
    for k, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            lines.insert(0, new)  # the header ended without an expectation
            break
        m = DIRECTIVE.match(stripped)
        if m and m.group(1) in ("expect", "expect-error"):
            lines[k] = new
            break
    else:
        lines.insert(0, new)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def golden_files(paths: list[str]) -> list[str]:
    """The .dl files named, and those under the directories named (sorted, recursively)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".dl"))
        else:
            out.append(p)
    return out
