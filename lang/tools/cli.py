"""The `dl` command: run, check, transform, compare, modes, repl (docs/reference.md, The command line).

Exit codes: 0 success; 1 an error in the user's program (a diagnostic on
stderr); 2 a usage error (unknown flag, missing file); 70 an internal error
(a bug in dl: the message says how to see the traceback); 130 interrupted.
`--debug` shows Python tracebacks.

Each command imports the stages it needs when it runs, so that `dl --help`
and a command that fails on its arguments stay quick.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback

from ..model.errors import DlError, DlRuntimeError, render
from ..modes.table import DEFAULT, MODES, describe, get

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130


def parse_sweep(text: str) -> list[int]:
    """`n=10,100,1000` (also `n=1..10`) into [10, 100, 1000]; ValueError, in words, for anything else."""
    name, eq, values = text.partition("=")
    if name.strip() != "n" or not eq or not values.strip():
        raise ValueError(f"expected n=10,100,1000 or n=1..10, not {text!r}")
    out = []
    for part in values.split(","):
        lo, dots, hi = part.strip().partition("..")
        bounds = [lo, hi] if dots else [lo]
        if not all(b.strip().lstrip("-").isdigit() for b in bounds):
            raise ValueError(f"{part.strip()!r} in {text!r} is not an integer or a range a..b of integers")
        if dots:
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(lo))
    if not out:
        raise ValueError(f"the range in {text!r} is empty")
    return out


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


def _plot_path(text: str) -> str:
    directory = os.path.dirname(os.path.abspath(text))
    if not text.lower().endswith((".png", ".pdf", ".svg")):
        raise argparse.ArgumentTypeError(f"{text!r}: the plot is written as .png (or .pdf, .svg)")
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"{text!r}: no such directory {directory!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dl", description="dl: a differentiable functional language "
                                "(reverse mode by the backpropagation transform of Brunel, Mazza and Pagani).",
                                epilog="Documentation: docs/reference.md (the language, the commands, the REPL), "
                                "docs/transforms.md (the modes), docs/tutorial.md.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks and re-check transformed terms")
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser("run", help="evaluate main and print its value")
    run.add_argument("file")
    run.add_argument("args", nargs="*", default=[], help="arguments for main, as literals: 3, 2.5, (1.0, 2.0), [1, 2]")
    run.add_argument("--mode", choices=MODES, default=DEFAULT.name,
                     help="how derivatives are computed (dl modes lists them)")
    run.add_argument("--cost", action="store_true", help="print the cost counters to stderr")
    run.add_argument("--time", action="store_true",
                     help="print the wall time of the evaluation of main (compiling included) to stderr")
    run.add_argument("--budget", type=_seconds, default=None, metavar="SECONDS",
                     help="stop the evaluation with a runtime error after this many seconds")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    check = sub.add_parser("check", help="parse and type-check a file; print the type of every definition")
    check.add_argument("file")
    check.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    tr = sub.add_parser("transform", help="print the transformed term of a definition and its type")
    tr.add_argument("file")
    tr.add_argument("--def", dest="name", default="main", help="the definition to transform (default: main)")
    tr.add_argument("--mode", choices=MODES, default=DEFAULT.name)
    tr.add_argument("args", nargs="*", help="symbolic mode: arguments for main, as for dl run")
    tr.add_argument("--sweep", type=_sweep, default=None, help="symbolic mode: n=1..10 prints the expression sizes of main n")
    tr.add_argument("--simplify", action="store_true", help="apply meaning-preserving algebraic clean-ups")
    tr.add_argument("--ascii", action="store_true", help="write ¬T as ~T")
    tr.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    cmp_ = sub.add_parser("compare", help="compare the modes on cost and accuracy (docs/transforms.md)")
    cmp_.add_argument("file")
    cmp_.add_argument("--sweep", type=_sweep, default=None, help="n=10,100,1000: run `main n` for each n")
    cmp_.add_argument("--modes", type=_modes, default=None, help="comma-separated modes (default: all)")
    cmp_.add_argument("--format", choices=("table", "csv", "json"), default="table")
    cmp_.add_argument("--plot", type=_plot_path, default=None, help="write a log-log plot to this PNG (needs matplotlib)")
    cmp_.add_argument("--budget", type=_seconds, default=20.0, help="seconds per mode and size before `timeout`")
    cmp_.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    modes = sub.add_parser("modes", help="list the modes: how each computes derivatives, and its source")
    modes.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    repl = sub.add_parser("repl", help="interactive session")
    repl.add_argument("file", nargs="?")
    repl.add_argument("--mode", choices=MODES, default=DEFAULT.name)
    repl.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def _options_first(argv: list[str]) -> list[str]:
    """For `dl run` and `dl transform`, let flags come anywhere: options first, then `--`, then the file
    and main's arguments (which may look like flags: `-2.5`)."""
    if not argv or argv[0] not in ("run", "transform"):
        return argv
    options, positional = [], []
    rest = iter(argv[1:])
    for a in rest:
        if a == "--":
            positional.extend(rest)
        elif a.startswith("--"):
            options.append(a)
            if a in ("--mode", "--budget", "--def", "--sweep"):
                value = next(rest, None)
                if value is not None:
                    options.append(value)
        elif a in ("-h",):
            options.append(a)
        else:
            positional.append(a)
    return [argv[0], *options, *(["--", *positional] if positional else [])]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser()
    try:
        args = parser.parse_args(_options_first(argv))
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else EXIT_USAGE
    command = args.command or "repl"
    if command == "repl" and not hasattr(args, "mode"):
        args.mode, args.file = DEFAULT.name, None
    if getattr(args, "file", None) and not os.path.isfile(args.file):
        what = "a directory, not a file" if os.path.isdir(args.file) else "no such file"
        print(f"dl: {what}: {args.file}", file=sys.stderr)
        return EXIT_USAGE
    sys.set_int_max_str_digits(0)
    try:
        return COMMANDS[command](args)
    except DlError as e:
        print(render(e), file=sys.stderr)
        if args.debug:
            traceback.print_exc()
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 — a bug in dl, reported as such
        if args.debug:
            traceback.print_exc()
        print(f"dl: internal error: {type(e).__name__}: {e} (this is a bug in dl; --debug shows the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _run(args) -> int:
    from ..back.deep import Timeout, run_deep  # each command imports its stages when it runs (start-up)
    from ..model.values import show_value
    from .pipeline import load, run_main
    from .report import format_counters

    elapsed = []

    def work():
        program = load(args.file)
        start = time.perf_counter()
        try:
            return run_main(program, args.args, get(args.mode), counting=args.cost, check_transforms=args.debug)
        except RecursionError:
            raise DlRuntimeError("stack overflow: the program recursed too deeply") from None
        except MemoryError:
            raise DlRuntimeError("out of memory") from None
        finally:
            elapsed.append(time.perf_counter() - start)

    try:
        value, machine = run_deep(work, budget=args.budget)
    except Timeout:
        raise DlRuntimeError(f"evaluation stopped after {args.budget:g} seconds (--budget)") from None
    print(show_value(value))
    if args.cost:
        print(format_counters(machine.counters.as_dict(), args.mode), file=sys.stderr)
    if args.time:
        print(f"time {elapsed[0]:.2f} s (evaluating main, compiling included)", file=sys.stderr)
    return EXIT_OK


def _check(args) -> int:
    from ..back.deep import run_deep  # each command imports its stages when it runs (start-up)
    from ..model.types import show_scheme
    from .pipeline import load

    program = run_deep(lambda: load(args.file))
    for d in program.module.defs:
        print(f"{d.name} : {show_scheme(d.scheme)}")
    return EXIT_OK


def _transform(args) -> int:
    from ..back.deep import run_deep  # each command imports its stages when it runs (start-up)
    from .pipeline import load
    from .workbench import definition_text
    mode = get(args.mode)
    if args.sweep and mode.shows != "unrolled":
        print("dl: transform: --sweep is for --mode symbolic (the expression sizes of main n)", file=sys.stderr)
        return EXIT_USAGE
    print(run_deep(lambda: definition_text(load(args.file), args.name, mode, args.simplify, args.ascii,
                                           list(args.args or []), args.sweep)))
    return EXIT_OK


class _Progress:
    """A one-line progress bar on stderr (only when it is a terminal or the run is long)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if not sys.stderr.isatty() and time.monotonic() - self.start < 2:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what:<28}"
        sys.stderr.write(line)
        sys.stderr.flush()
        self.shown = True
        if done >= total:
            sys.stderr.write("\n")


def _compare(args) -> int:
    from ..model.types import TFun, prune  # each command imports its stages when it runs (start-up)
    from .compare import compare
    from .pipeline import find_def, load, main_call
    from .report import format_csv, format_json, format_table, plot
    program = load(args.file)
    sizes = args.sweep or [None]
    modes = [get(m) for m in (args.modes or MODES)]

    def make_call(n):
        return main_call(program, [] if n is None else [str(n)])

    # report argument errors before measuring anything
    if isinstance(prune(make_call(sizes[0]).ty), TFun):
        raise DlRuntimeError("main takes an argument: give its values with --sweep n=10,100,1000",
                             find_def(program, "main").name_span)
    progress = None if args.format == "json" else _Progress()
    report = compare(program.world, make_call, sizes, modes, args.budget, progress)
    text = {"table": format_table, "csv": format_csv, "json": format_json}[args.format](report)
    print(text)
    if args.plot:
        if plot(report, args.plot) is None:
            print("dl: --plot needs matplotlib (pip install 'dl-lang[plot]'); no plot written", file=sys.stderr)
        else:
            print(f"dl: plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK


def _modes_command(args) -> int:
    print(describe())
    return EXIT_OK


def _repl(args) -> int:
    from .repl.frontend import run_repl  # prompt_toolkit only for the REPL (start-up)
    return run_repl(args.file, mode=get(args.mode), debug=args.debug)


COMMANDS = {"run": _run, "check": _check, "transform": _transform, "compare": _compare, "modes": _modes_command,
            "repl": _repl}


if __name__ == "__main__":
    sys.exit(main())
