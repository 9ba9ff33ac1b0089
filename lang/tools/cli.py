"""The `dl` command: run, check, transform, compare, modes, graph, step, kernel, test, repl (docs/reference.md, The
command line).

Exit codes: 0 success; 1 an error in the user's program (a diagnostic on
stderr); 2 a usage error (unknown flag, missing file); 70 an internal error
(a bug in dl: the message says how to see the traceback); 130 interrupted.
`--debug` shows Python tracebacks.

Each command imports the stages it needs when it runs, so that `dl --help`
and a command that fails on its arguments stay quick.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import math
import os
import sys

from ..front.files import unreadable
from ..model.errors import DlError, DlRuntimeError, render
from ..modes.table import DEFAULT, MODES, compared, describe, get
from .sweep import parse_sweep

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130
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


def default_max_memory() -> int:
    """`--max-memory` when none is given: three quarters of the machine's memory (the rest is the machine's)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4
    except (ValueError, OSError):
        return 8 * 10**9


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


def _size(n: int) -> str:
    """Bytes in words: 1.5 GB, 800 MB."""
    return f"{n / 1e9:.3g} GB" if n >= 1e9 else f"{n / 1e6:.3g} MB"


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
    run.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                     help="stop with a runtime error when dl's resident memory grows past SIZE (2G, 500M; "
                     "default: three quarters of this machine's memory)")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _check_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument("file")
    check.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                     help="stop with a runtime error when dl's resident memory grows past SIZE (2G, 500M; "
                     "default: three quarters of this machine's memory)")
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
    tr.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                     help="stop with a runtime error when dl's resident memory grows past SIZE (2G, 500M; "
                     "default: three quarters of this machine's memory)")
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
    cmp_.add_argument("--max-memory", type=_memory, default=None, metavar="SIZE",
                     help="stop with a runtime error when dl's resident memory grows past SIZE (2G, 500M; "
                     "default: three quarters of this machine's memory)")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _parser(argv)
    try:
        args = parser.parse_args(_options_first(argv))
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else EXIT_USAGE
    command = args.command or "repl"
    if command == "repl" and not hasattr(args, "mode"):
        args.mode, args.file = DEFAULT.name, None
    why = getattr(args, "file", None) and unreadable(args.file)  # a FIFO, a device, a loop, ... (lang/front/files.py)
    if why:
        print(f"dl: {why}: {args.file}", file=sys.stderr)
        return EXIT_USAGE
    sys.set_int_max_str_digits(0)
    if command == "run" and args.budget is not None and sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__:
        return _supervised_run(args)
    return _dispatch(command, args)


def _dispatch(command: str, args) -> int:
    """Run a command; its errors become diagnostics and exit codes."""
    try:
        return COMMANDS[command](args)
    except DlError as e:
        print(render(e), file=sys.stderr)
        if args.debug:
            import traceback  # only for --debug (start-up)
            traceback.print_exc()
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 — a bug in dl, reported as such
        if args.debug:
            import traceback  # only for --debug (start-up)
            traceback.print_exc()
        print(f"dl: internal error: {type(e).__name__}: {e} (this is a bug in dl; --debug shows the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _supervised_run(args) -> int:
    """`dl run --budget` in a child process that is killed if it outlives the budget (lang/back/deep.py,
    `supervised`): the budget then holds even in one long C call (a multiplication of huge Ints, the
    printing of one), which nothing inside the process can interrupt. (Not when a caller in this process
    redirected the output: the child's would be lost; run_deep's own budget serves there.)"""
    from ..back.deep import supervised  # each command imports its stages when it runs (start-up)
    from . import pipeline, report  # noqa: F401 — before the fork: the budget is the evaluation's, not start-up's
    code = supervised(args.budget)
    if code is None:  # the child: do the work and leave, never returning into the caller
        code = EXIT_INTERNAL
        try:
            code = _dispatch("run", args)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    if code == supervised.KILLED:
        print(render(DlRuntimeError(f"evaluation stopped after {args.budget:g} seconds (--budget)")), file=sys.stderr)
        return EXIT_ERROR
    return code if code >= 0 else 128 - code  # (killed by a signal: the shell's convention)


def _deep(args, work, budget: float | None = None):
    """Run `work` on the big-stack worker (lang/back/deep.py) under the time budget and the memory
    budget; a budget reached, memory exhausted or Python's stack exhausted become runtime errors."""
    from ..back.deep import MemoryBudget, Timeout, run_deep  # each command imports its stages when it runs
    limit = getattr(args, "max_memory", None) or default_max_memory()
    try:
        return run_deep(work, budget=budget, max_memory=limit)
    except Timeout:
        raise DlRuntimeError(f"evaluation stopped after {budget:g} seconds (--budget)") from None
    except MemoryBudget:
        raise DlRuntimeError(f"out of memory: dl's memory grew past {_size(limit)} (--max-memory)") from None
    except MemoryError:
        raise DlRuntimeError("out of memory") from None
    except RecursionError:
        raise DlRuntimeError("stack overflow: the program recursed too deeply") from None


@contextlib.contextmanager
def _uncollected():
    """Python's cyclic collector off. Start-up allocates some 10^5 objects that live as long as the process
    (modules, the prelude), and the front end, the transforms and the printer build trees that live until
    the command ends, with no cycles among them: a collection finds nothing and walks everything alive
    (~35% of `dl check`'s time on a 10^4-level program; issue 19 item 9). Their garbage goes by reference
    counting; an evaluation turns the collector back on (`_run`)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield collecting
    finally:
        if collecting:
            gc.enable()


def _run(args) -> int:
    # the collector waits until the program runs
    with _uncollected() as collecting:
        return _run_collected_later(args, collecting)


def _run_collected_later(args, collecting: bool) -> int:
    import time
    from ..model.values import show_value  # each command imports its stages when it runs (start-up)
    from .pipeline import load, run_main

    elapsed = []

    def work():
        program = load(args.file)
        if collecting:
            gc.enable()
        start = time.perf_counter()
        try:
            value, machine = run_main(program, args.args, get(args.mode), counting=args.cost,
                                      check_transforms=args.debug, progress=_Passes(),
                                      preaccumulate=args.preaccumulate)
        finally:
            elapsed.append(time.perf_counter() - start)
        return show_value(value), machine  # (printing a huge value is work too: under the budget)

    text, machine = _deep(args, work, budget=args.budget)
    print(text)
    if args.cost:
        from .report import format_counters  # json and the measuring tools only for --cost (start-up)
        print(format_counters(machine.counters.as_dict(), args.mode), file=sys.stderr)
    if args.time:
        print(f"time {elapsed[0]:.2f} s (evaluating main, compiling included)", file=sys.stderr)
    return EXIT_OK


def _check(args) -> int:
    from ..model.types import show_scheme  # each command imports its stages when it runs (start-up)
    from .pipeline import load

    def work():
        program = load(args.file)
        return "\n".join(f"{d.name} : {show_scheme(d.scheme)}" for d in program.module.defs)

    with _uncollected():
        text = _deep(args, work)
    if text:
        print(text)
    return EXIT_OK


def _transform(args) -> int:
    from .pipeline import load  # each command imports its stages when it runs (start-up)
    from .workbench import definition_text
    mode = get(args.mode)
    if args.sweep and mode.shows != "unrolled":
        print("dl: transform: --sweep is for --mode symbolic (the expression sizes of main n)", file=sys.stderr)
        return EXIT_USAGE
    # the collector stays on where the program is evaluated: a mode that unrolls or linearises it at a point
    evaluates = mode.shows in ("unrolled", "linearized") or args.args or args.sweep
    with contextlib.nullcontext() if evaluates else _uncollected():
        text = _deep(args, lambda: definition_text(load(args.file), args.name, mode, args.simplify, args.ascii,
                                                   list(args.args or []), args.sweep))
    print(text)
    return EXIT_OK


class _Progress:
    """A one-line progress bar on stderr, redrawn in place with `\\r`: only at a terminal (in a log file
    or a pipe the carriage returns would pile up as noise)."""

    def __init__(self, stream=None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.shown = False

    def __call__(self, what: str, done: int, total: int) -> None:
        if not self.stream.isatty():
            return
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what:<28}"
        self.stream.write(line)
        self.stream.flush()
        self.shown = True
        if done >= total:
            self.stream.write("\n")


class _Passes:
    """Machine.progress for `dl run`: a derivative that makes many passes of the function (forward and
    numeric modes, one per input real) is announced on stderr before it starts, with its number of
    passes, and shown as a progress bar at a terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.bar = _Progress(self.stream)

    def __call__(self, mode: str, done: int, total: int, per: int) -> None:
        if done == 0:
            each = "one per input real" if per == 1 else f"{per} for each of its {total // per:,} input reals"
            print(f"dl: {mode} mode: this derivative makes {total:,} passes of the function, {each} (backprop makes "
                  "one)", file=self.stream, flush=True)
        self.bar("passes", done, total)


def _compare(args) -> int:
    # on the worker too (each mode's evaluation runs on a worker of its own, under --budget)
    return _deep(args, lambda: _compare_work(args))


def _compare_work(args) -> int:
    from .compare import compare  # each command imports its stages when it runs (start-up)
    from .pipeline import find_def, load, main_arity, main_call
    from .report import format_csv, format_json, format_table, plot
    program = load(args.file)
    sizes = args.sweep or [None]
    modes = [get(m) for m in args.modes] if args.modes else compared()

    def make_call(n):
        return main_call(program, [] if n is None else [str(n)])

    # report argument errors before measuring anything
    if args.sweep is None and main_arity(program):
        raise DlRuntimeError("main takes an argument: give its values with --sweep n=10,100,1000",
                             find_def(program, "main").name_span)
    make_call(sizes[0])
    progress = None if args.format == "json" else _Progress()
    report = compare(program.world, make_call, sizes, modes, args.budget, progress, memory=args.memory,
                     preaccumulate=args.preaccumulate)
    text = {"table": format_table, "csv": format_csv, "json": format_json}[args.format](report)
    print(text)
    if args.plot:  # matplotlib's presence was checked with the arguments (_plot_path)
        written = plot(report, args.plot) is not None
        print(f"dl: plot written to {args.plot}" if written else "dl: --plot: matplotlib failed to load; no plot "
              "written", file=sys.stderr)
    return EXIT_OK


def _modes_command(args) -> int:
    print(describe())
    return EXIT_OK


def _watched_main(args):
    """`main` applied to the command line's arguments, typed, and how to name it."""
    from .pipeline import load, main_call  # each command imports its stages when it runs (start-up)
    program = load(args.file)
    return program, main_call(program, list(args.args)), " ".join(["main", *args.args])


def _graph(args) -> int:
    from ..back.deep import Timeout, run_deep  # each command imports its stages when it runs (start-up)
    from .graph import NoCall, NoGraphviz, TooLarge, graph, svg

    def work():
        program, call, what = _watched_main(args)
        return graph(program.world, call, what, which=args.call, max_nodes=args.max_nodes, budget=args.budget)
    try:
        drawing = run_deep(work)
    except (TooLarge, NoCall) as e:
        print(f"dl: graph: {e}", file=sys.stderr)
        return EXIT_ERROR
    except Timeout:
        raise DlRuntimeError(f"main did not finish within {args.budget:g} seconds (--budget)") from None
    if args.out is None:
        print(drawing.dot, end="")
        return EXIT_OK
    if args.out.lower().endswith(".dot"):
        _write(args.out, drawing.dot)
        return EXIT_OK
    try:
        _write(args.out, svg(drawing.dot))
    except NoGraphviz as e:
        dot_path = args.out[:-4] + ".dot"
        _write(dot_path, drawing.dot)
        print(f"dl: graph: {e}; the DOT text is in {dot_path}", file=sys.stderr)
        return EXIT_ERROR
    print(f"dl: graph written to {args.out}", file=sys.stderr)
    return EXIT_OK


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _step(args) -> int:
    from ..back.deep import Timeout, run_deep  # each command imports its stages when it runs (start-up)
    from .stepper import show_transcript, step

    def work():
        program, call, what = _watched_main(args)
        return step(program.world, call, what, budget=args.budget)
    try:
        print(show_transcript(run_deep(work)))
    except Timeout:
        raise DlRuntimeError(f"main did not finish within {args.budget:g} seconds (--budget)") from None
    return EXIT_OK


def _kernel(args) -> int:
    from .kernel.install import MissingExtra, in_virtual_environment, install  # only for `dl kernel` (start-up)
    if args.kernel_command != "install":
        print("usage: dl kernel install [--user | --sys-prefix | --prefix DIR]", file=sys.stderr)
        return EXIT_USAGE
    sys_prefix = args.sys_prefix or (not args.user and args.prefix is None and in_virtual_environment())
    try:
        where = install(user=args.user, sys_prefix=sys_prefix, prefix=args.prefix)
    except MissingExtra as e:
        print(f"dl: kernel: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"dl: kernel: cannot install the kernelspec: {e.strerror}: {e.filename} (try --user)", file=sys.stderr)
        return EXIT_ERROR
    print(f"installed the dl kernelspec in {where}")
    return EXIT_OK


def _test(args) -> int:
    from . import golden  # each command imports its stages when it runs (start-up)
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"dl: test: no such file or directory: {missing[0]}", file=sys.stderr)
        return EXIT_USAGE
    passed = failed = 0
    for path in golden.golden_files(args.paths):
        try:
            results = golden.check(path)
        except golden.HeaderError as e:
            print(f"FAIL {path}: {e}")
            failed += 1
            continue
        bad = [r for r in results if not r.passed]
        if not bad:
            passed += 1
            if args.verbose:
                print(f"ok   {path}")
            continue
        failed += 1
        for r in bad:
            print(f"FAIL {path} [{r.mode}]: {r.why}, got {r.got}")
        if args.promote:
            outputs = {r.got for r in results}
            if len(outputs) == 1:
                golden.promote(path, results[0])
                print(f"     promoted: {path} now expects {results[0].got}")
            else:
                print(f"     not promoted: the modes print different things ({', '.join(sorted(outputs))})")
    print(f"{passed} passed, {failed} failed")
    return EXIT_OK if failed == 0 else EXIT_ERROR


def _repl(args) -> int:
    from .repl.frontend import run_repl  # prompt_toolkit only for the REPL (start-up)
    return run_repl(args.file, mode=get(args.mode), debug=args.debug)


COMMANDS = {"run": _run, "check": _check, "transform": _transform, "compare": _compare, "modes": _modes_command,
            "graph": _graph, "step": _step, "kernel": _kernel, "test": _test, "repl": _repl}


if __name__ == "__main__":
    sys.exit(main())
