"""The `dl` command: run, check, transform, compare, modes, graph, step, kernel, test, repl (docs/reference.md, The
command line).

Exit codes: 0 success; 1 an error in the user's program (a diagnostic on
stderr); 2 a usage error (unknown flag, missing file); 70 an internal error
(a bug in dl: the message says how to see the traceback); 74 the output could not be written (a full device:
`dl: cannot write the output: ...`); 130 interrupted.
`--debug` shows Python tracebacks.

Each command imports the stages it needs when it runs, so that `dl --help`
and a command that fails on its arguments stay quick.
"""
from __future__ import annotations

import gc
import os
import sys
from types import SimpleNamespace

from ..front.files import unreadable
from ..model.errors import DlError, DlRuntimeError, render
from ..modes.table import DEFAULT, compared, describe, get
from ..transforms.lets import uncollected  # the collector paused for a whole command

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_OUTPUT, EXIT_INTERRUPTED = 0, 1, 2, 70, 74, 130


def default_max_memory(meminfo: str = "/proc/meminfo") -> int:
    """`--max-memory` when none is given: three quarters of the machine's memory (the rest is the machine's), and
    no more than what dl holds now and three quarters of the memory still available to it (Linux's MemAvailable)
    — on a machine that other programs share, the kernel would otherwise kill dl, without a word, before it
    reached three quarters of the whole."""
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 3 // 4
    except (ValueError, OSError):
        limit = 8 * 10**9
    available = _available(meminfo)
    if available is not None:
        from ..back.deep import resident_bytes  # (imported by the command that evaluates, as `_deep` does)
        limit = min(limit, resident_bytes() + available * 3 // 4)
    return limit


def _available(meminfo: str) -> int | None:
    """MemAvailable of /proc/meminfo in bytes; None where it cannot be read (not Linux, an old kernel)."""
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    value, unit = line.split()[1:3]
                    return int(value) * 1024 if unit == "kB" else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return None


def _size(n: int) -> str:
    """Bytes in words: 1.5 GB, 800 MB."""
    return f"{n / 1e9:.3g} GB" if n >= 1e9 else f"{n / 1e6:.3g} MB"


def quick_run(argv: list[str]) -> SimpleNamespace | None:
    """`dl run FILE ARG...` with no option and nothing that starts with `-`: the namespace the parser gives
    (tests/test_startup.py holds them equal), without importing argparse and building the parser, a tenth
    of such a run (start-up). None for any other command line."""
    if len(argv) < 2 or argv[0] != "run" or any(a.startswith("-") for a in argv[1:]):
        return None
    return SimpleNamespace(debug=False, command="run", file=argv[1], args=list(argv[2:]), mode=DEFAULT.name,
                           cost=False, preaccumulate=True, time=False, budget=None, max_memory=None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = quick_run(argv)
    if args is None:
        from .arguments import parse  # argparse only for a command line quick_run does not read (start-up)
        try:
            args = parse(argv)
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
    except OSError as e:
        code = output_failed(e)
        return _internal(e, args) if code is None else code
    except Exception as e:  # noqa: BLE001 — a bug in dl, reported as such
        return _internal(e, args)


def output_failed(e: OSError) -> int | None:
    """EXIT_OUTPUT, said on stderr, where `e` is what writing to a full or failing device raises (`dl run f.dl >
    /dev/full`: not a bug in dl); else None. Standard output's descriptor is then pointed at /dev/null, so that what
    it still holds is let go and no later flush, the interpreter's at exit or bin/dl's included, fails again."""
    from errno import EDQUOT, EFBIG, EIO, ENOSPC  # (an error's path only)
    if e.errno not in (ENOSPC, EDQUOT, EIO, EFBIG):
        return None
    print(f"dl: cannot write the output: {e.strerror}", file=sys.stderr)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
        sys.stdout.flush()
    except (OSError, ValueError):  # (no descriptor: a caller's stream)
        pass
    return EXIT_OUTPUT


def _internal(e: Exception, args) -> int:
    """A bug in dl, reported as such."""
    if args.debug:
        import traceback  # only for --debug (start-up)
        traceback.print_exception(e)
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


def _run(args) -> int:
    # the collector waits until the program runs. Start-up allocates some 10^5 objects that live as long as the
    # process (modules, the prelude), and the front end, the transforms and the printer build trees that live
    # until the command ends, with no cycles among them: a collection finds nothing and walks everything alive
    # (~35% of `dl check`'s time on a 10^4-level program; issue 19 item 9); an evaluation turns it back on
    with uncollected() as collecting:
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

    with uncollected():
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
    with uncollected(pause=not evaluates):
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
