"""The command line's arguments: the parser of every subcommand, their checks, and `--` handling (the
`dl` command: lang/tools/cli.py; docs/reference.md, The command line).

A module of its own so that argparse is imported only when a command line needs it: the common
`dl run FILE ARG...` is read without it (cli.quick_run, start-up).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os

from ..modes.table import DEFAULT, MODES
from .sweep import parse_sweep

COMPARE_BUDGET = 20.0  # `dl compare --budget`: seconds one evaluation of main may take per mode and size


def _sweep(text: str) -> list[int]:
    try:
        return parse_sweep(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _modes(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",")]
    for m in names:
        if m not in MODES:
            raise argparse.ArgumentTypeError(f"unknown mode {m!r} (modes: {', '.join(MODES)})")
    return names


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value




_UNITS = {"": 10**6, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}


def _memory(text: str) -> int:
    """`2G`, `1.5GB`, `500M`, `500` (MB) into bytes."""
    number = text.strip().rstrip("bBkKmMgG")
    unit = text.strip()[len(number):].lower()
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if unit not in _UNITS or not value > 0:
        raise argparse.ArgumentTypeError(f"expected an amount of memory such as 2G, 1.5GB or 500M, not {text!r}")
    return int(value * _UNITS[unit])




def _plot_path(text: str) -> str:
    """A path the plot can be written to, checked with matplotlib's presence before any measuring."""
    directory = os.path.dirname(os.path.abspath(text))
    if not text.lower().endswith((".png", ".pdf", ".svg")):
        raise argparse.ArgumentTypeError(f"{text!r}: the plot is written as .png (or .pdf, .svg)")
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"{text!r}: no such directory {directory!r}")
    if importlib.util.find_spec("matplotlib") is None:  # checked before any measuring; report.py draws
        raise argparse.ArgumentTypeError("needs matplotlib, which is not installed "
                                         "(pip install 'dl-lang[plot]')")
    return text


def _graph_path(text: str) -> str:
    if not text.lower().endswith((".svg", ".dot")):
        raise argparse.ArgumentTypeError(f"{text!r}: the graph is written as .svg or .dot")
    directory = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"{text!r}: no such directory {directory!r}")
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return int(text)


def _max_memory_option(p: argparse.ArgumentParser) -> None:
    """`--max-memory SIZE`, the same for every command that evaluates."""
    p.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                   help="stop with a runtime error when dl's resident memory grows past SIZE (2G, 500M; "
                   "default: three quarters of this machine's memory, or of what is available when dl starts, if less)")


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given `argv`, only the subcommands named in it get their arguments (the
    others are listed, with their help, but empty): building all of them cost a run as much as the rest of
    its argument handling (start-up); a subcommand's parser, its usage and its errors are the same either way."""
    p = argparse.ArgumentParser(prog="dl", description="dl: a differentiable functional language "
                                "(reverse mode by the backpropagation transform of Brunel, Mazza and Pagani).",
                                epilog="Documentation: docs/reference.md (the language, the commands, the REPL), "
                                "docs/transforms.md (the modes), docs/tutorial.md.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks and re-check transformed terms")
    sub = p.add_subparsers(dest="command")
    for name, (help_text, arguments) in COMMAND_ARGUMENTS.items():
        parser = sub.add_parser(name, help=help_text)
        if argv is None or name in argv:
            arguments(parser)
    return p


def _run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("file")
    run.add_argument("args", nargs="*", default=[], help="arguments for main, as literals: 3, 2.5, (1.0, 2.0), [1, 2]")
    run.add_argument("--mode", choices=MODES, default=DEFAULT.name,
                     help="how derivatives are computed (dl modes lists them)")
    run.add_argument("--cost", action="store_true", help="print the cost counters to stderr")
    run.add_argument("--no-preaccumulate", dest="preaccumulate", action="store_false",
                     help="backprop: run ←D's term as the transform writes it, not preaccumulated")
    run.add_argument("--time", action="store_true",
                     help="print the wall time of the evaluation of main (compiling included) to stderr")
    run.add_argument("--budget", type=_seconds, default=None, metavar="SECONDS",
                     help="stop the evaluation with a runtime error after this many seconds")
    _max_memory_option(run)
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _check_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument("file")
    _max_memory_option(check)
    check.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _transform_arguments(tr: argparse.ArgumentParser) -> None:
    tr.add_argument("file")
    tr.add_argument("--def", dest="name", default="main", help="the definition to transform (default: main)")
    tr.add_argument("--mode", choices=MODES, default=DEFAULT.name)
    tr.add_argument("args", nargs="*", help="symbolic and lut modes: arguments for main, as for dl run (lut: or "
                    "the point at which --def NAME is linearized)")
    tr.add_argument("--sweep", type=_sweep, default=None, help="symbolic mode: n=1..10 prints the expression sizes of main n")
    tr.add_argument("--simplify", action="store_true", help="apply meaning-preserving algebraic clean-ups")
    tr.add_argument("--ascii", action="store_true", help="write ¬T as ~T")
    _max_memory_option(tr)
    tr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _compare_arguments(cmp_: argparse.ArgumentParser) -> None:
    cmp_.add_argument("file")
    cmp_.add_argument("--sweep", type=_sweep, default=None, help="n=10,100,1000: run `main n` for each n")
    cmp_.add_argument("--modes", type=_modes, default=None,
                      help="comma-separated modes (default: all but the intermediate dualrev stages)")
    cmp_.add_argument("--format", choices=("table", "csv", "json"), default="table")
    cmp_.add_argument("--plot", type=_plot_path, default=None, help="write a log-log plot to this PNG (needs matplotlib)")
    cmp_.add_argument("--budget", type=_seconds, default=COMPARE_BUDGET, metavar="SECONDS",
                      help="seconds one evaluation of main may take in a mode, per size, before it is shown as "
                      "`timeout` (default: %(default)g)")
    _max_memory_option(cmp_)
    cmp_.add_argument("--no-preaccumulate", dest="preaccumulate", action="store_false",
                      help="backprop: measure ←D's term as the transform writes it, not preaccumulated")
    cmp_.add_argument("--memory", action="store_true",
                      help="also measure peak memory with tracemalloc, in one more run per mode and size "
                      "(10 to 60 times slower than the timed run)")
    cmp_.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _modes_arguments(modes: argparse.ArgumentParser) -> None:
    modes.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _graph_arguments(gr: argparse.ArgumentParser) -> None:
    gr.add_argument("file")
    gr.add_argument("args", nargs="*", default=[], help="arguments for main, as for dl run")
    gr.add_argument("-o", "--out", type=_graph_path, default=None, metavar="FILE",
                    help="write FILE.svg (needs Graphviz's dot) or FILE.dot; default: DOT on stdout")
    gr.add_argument("--call", type=_positive, default=1, metavar="K", help="draw main's K-th derivative call (default 1)")
    gr.add_argument("--max-nodes", type=_positive, default=150, metavar="N", help="refuse graphs of more than N nodes")
    gr.add_argument("--budget", type=_seconds, default=60.0, metavar="SECONDS", help="stop main after this long")
    gr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _step_arguments(st: argparse.ArgumentParser) -> None:
    st.add_argument("file")
    st.add_argument("args", nargs="*", default=[], help="arguments for main, as for dl run")
    st.add_argument("--budget", type=_seconds, default=60.0, metavar="SECONDS", help="stop a mode after this long")
    st.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _kernel_arguments(kern: argparse.ArgumentParser) -> None:
    ksub = kern.add_subparsers(dest="kernel_command")
    kinst = ksub.add_parser("install", help="install the kernelspec, so that Jupyter offers a dl kernel")
    where = kinst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true",
                       help="in this Python's prefix (the default inside a virtual environment)")
    where.add_argument("--prefix", default=None, metavar="DIR", help="under DIR/share/jupyter")
    kern.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _test_arguments(gt: argparse.ArgumentParser) -> None:
    gt.add_argument("paths", nargs="+", metavar="PATH", help="files, or directories searched for .dl files")
    gt.add_argument("--promote", action="store_true", help="write what each failing file printed into its header")
    gt.add_argument("-v", "--verbose", action="store_true", help="list the files that pass too")
    gt.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _repl_arguments(repl: argparse.ArgumentParser) -> None:
    repl.add_argument("file", nargs="?")
    repl.add_argument("--mode", choices=MODES, default=DEFAULT.name)
    repl.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


COMMAND_ARGUMENTS = {  # name: (its help in `dl --help`, what adds its arguments)
    "run": ("evaluate main and print its value", _run_arguments),
    "check": ("parse and type-check a file; print the type of every definition", _check_arguments),
    "transform": ("print the transformed term of a definition and its type", _transform_arguments),
    "compare": ("compare the modes on cost and accuracy (docs/transforms.md)", _compare_arguments),
    "modes": ("list the modes: how each computes derivatives, and its source", _modes_arguments),
    "graph": ("draw main's derivative call: its computation graph and its backpropagators "
              "(DOT, or SVG with Graphviz)", _graph_arguments),
    "step": ("main's first backward pass step by step, backprop and backprop-naive side by side", _step_arguments),
    "kernel": ("the Jupyter kernel (needs the [jupyter] extra)", _kernel_arguments),
    "test": ("run golden test files: .dl files with `-- expect:` headers; exit 1 if any fails", _test_arguments),
    "repl": ("interactive session", _repl_arguments),
}


def _options_first(argv: list[str]) -> list[str]:
    """For `dl run` and `dl transform`, let flags come anywhere: options first, then `--`, then the file
    and main's arguments (which may look like flags: `-2.5`)."""
    if not argv or argv[0] not in ("run", "transform", "graph", "step"):
        return argv
    options, positional = [], []
    rest = iter(argv[1:])
    for a in rest:
        if a == "--":
            positional.extend(rest)
        elif a.startswith("--") or a == "-o":
            options.append(a)
            if a in ("--mode", "--budget", "--def", "--sweep", "--max-memory", "-o", "--out", "--call", "--max-nodes"):
                value = next(rest, None)
                if value is not None:
                    options.append(value)
        elif a in ("-h",):
            options.append(a)
        else:
            positional.append(a)
    return [argv[0], *options, *(["--", *positional] if positional else [])]


def parse(argv: list[str]):
    """The command line's namespace (argparse prints usage or help and exits as it does: SystemExit)."""
    return _parser(argv).parse_args(_options_first(argv))
