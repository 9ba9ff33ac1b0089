"""The REPL core (lang/repl/core.py): `execute` on transcripts, one table per concern.

A transcript reads as a session at the prompt: `dl> ` starts an input,
`..> ` continues it, and the lines up to the next prompt are exactly what
the input prints.
"""
from __future__ import annotations

import _thread
import re
import threading

import pytest

from lang.modes.table import MODES, compared, get
from lang.tools.compare import disagrees
from lang.tools.repl import commands, completion
from lang.tools.repl import session as S
from lang.tools.repl.core import Output, execute, needs_more, new_state


def transcript(text: str) -> list[tuple[str, str]]:
    """(input, expected output) pairs of a transcript."""
    pairs: list[list] = []
    for line in text.strip("\n").split("\n"):
        if line.startswith("dl> "):
            pairs.append([line[4:], []])
        elif line.startswith("..> "):
            pairs[-1][0] += "\n" + line[4:]
        else:
            pairs[-1][1].append(line)
    return [(inp, "\n".join(out)) for inp, out in pairs]


_SUGGESTIONS = re.compile(r"; did you mean [^?]*\?")


def check(text: str, state=None):
    """Run a transcript from a fresh session (or `state`); every output must match exactly, except
    that a name error's suggestions are not compared unless the transcript shows them (they depend on
    the prelude's names)."""
    state = state or new_state()
    for inp, expected in transcript(text):
        state, out = execute(state, inp)
        actual = out.text if "did you mean" in expected else _SUGGESTIONS.sub("", out.text)
        assert actual == expected, f"input: {inp!r}"
    return state


def run(state, *inputs):
    """Run inputs; the last output."""
    out = None
    for inp in inputs:
        state, out = execute(state, inp)
    return state, out


# ---- the session of the issue (README "The REPL") ----------------------------------------

README_SESSION = """
dl> def f x = x * sin x
f : Float 'a => 'a -> 'a
dl> grad f 1.0
1.3817732906760363 : Real
dl> :transform f
-- ←D(f@Real) in backprop mode
-- source type: Real -> Real
-- target type: Real * ¬Real -> Real * ¬Real
fun x ->
  let (x1, x1') = x in
  let (x2, x2') = let (x, x') = x in (sin x, fun a -o x' (cos x * a)) in
  (x1 * x2, fun a -o x1' (x2 * a) + x2' (x1 * a))
dl> :gradcheck f 1.0
-- value_and_grad f 1.0, in every mode (errors relative to backprop)
  mode            value               gradient            rel. error
  backprop        0.8414709848078965  1.3817732906760363  reference
  backprop-naive  0.8414709848078965  1.3817732906760363  0
  forward         0.8414709848078965  1.3817732906760363  0
  tape            0.8414709848078965  1.3817732906760363  0
  symbolic        0.8414709848078965  1.3817732906760363  0
  shift-reset     0.8414709848078965  1.3817732906760363  0
  numeric         0.8414709848078965  1.3817732906660274  7.2e-12
  delta           0.8414709848078965  1.3817732906760363  0
  delta-noshare   0.8414709848078965  1.3817732906760363  0
  chad            0.8414709848078965  1.3817732906760363  0
  chad-efficient  0.8414709848078965  1.3817732906760363  0
  ps              0.8414709848078965  1.3817732906760363  0
  dualrev-staged  0.8414709848078965  1.3817732906760363  0
  dualrev-cayley  0.8414709848078965  1.3817732906760363  0
  dualrev-ids     0.8414709848078965  1.3817732906760363  0
  dualrev-defun   0.8414709848078965  1.3817732906760363  0
  dualrev         0.8414709848078965  1.3817732906760363  0
  lut             0.8414709848078965  1.3817732906760363  0
  lut-recompute   0.8414709848078965  1.3817732906760363  0
all 19 modes agree (tolerance 1e-09; numeric 1e-05)
dl> :type grad f
grad f : Real -> Real
"""


def test_readme_session():
    state = check(README_SESSION)
    state, out = execute(state, ":compare grad f 1.0")
    assert not out.error
    lines = out.text.split("\n")
    assert lines[0].startswith("-- grad f 1.0 in every mode")
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert list(rows) == [m.name for m in compared()]  # the intermediate dualrev stages only when named
    assert all(r[1] == "ok" for r in rows.values())
    assert rows["backprop"][2] == "0" and rows["forward"][2] == "0"
    assert rows["numeric"][2] == "7.2e-12"


# ---- declarations ----------------------------------------------------------------------


def test_declarations_extend_the_session():
    check("""
dl> def sq x = x * x
sq : Num 'a => 'a -> 'a
dl> sq 3
9.0 : Real
dl> sq (3 : Int)
9 : Int
dl> def twice f x = f (f x)
twice : ('a -> 'a) -> 'a -> 'a
dl> twice sq 3.0
81.0 : Real
dl> let y = 5
y : Num 'a => 'a
dl> let rec fact n = if n == 0 then 1 else n * fact (n - 1)
fact : (Eq 'a, Num 'a) => 'a -> 'a
dl> fact 10
3628800.0 : Real
dl> let z = 2 in z + y
7.0 : Real
""")


def test_redefinition_keeps_old_definitions_meaning():
    """GHCi semantics: a new `a` does not change the `f` defined with the old one."""
    check("""
dl> def a = 1.0
a : Float 'a => 'a
dl> def f x = x + a
f : Float 'a => 'a -> 'a
dl> def a = 100.0
a : Float 'a => 'a
dl> f 1.0
2.0 : Real
dl> a
100.0 : Real
dl> def sum xs = 42.0
sum : Float 'b => 'a -> 'b
dl> sum [1.0]
42.0 : Real
dl> mean [1.0, 3.0]
2.0 : Real
""")


def test_block_of_mutually_recursive_definitions():
    check("""
dl> :{
..> def ev n = if n == 0 then true else od (n - 1)
..> def od n = if n == 0 then false else ev (n - 1)
..> :}
ev : (Eq 'a, Num 'a) => 'a -> Bool
od : (Eq 'a, Num 'a) => 'a -> Bool
dl> (ev 10, od 7)
(true, true) : Bool * Bool
dl> def f x =
..>   let y = x * 2.0 in
..>   y + 1.0
f : Float 'a => 'a -> 'a
dl> f 1.0
3.0 : Real
""")


def test_import_at_the_prompt(tmp_path, monkeypatch):
    (tmp_path / "lib.dl").write_text("def triple x = 3.0 * x\n")
    monkeypatch.chdir(tmp_path)
    check("""
dl> import "lib.dl"
imported lib.dl: triple
dl> triple 2.0
6.0 : Real
""")


# ---- errors: diagnostics point into what was typed, and the state is intact ---------------

ERRORS = [
    # (input, the diagnostic)
    ("1 + true", "<repl:1>:1:5: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)\n"
                 "    1 + true\n        ^^^^"),
    ("fooo 1.0", "<repl:1>:1:1: name error: unbound name `fooo`; did you mean `floor`?\n    fooo 1.0\n    ^^^^"),
    ("(1, ", "<repl:1>:1:3: syntax error: unexpected end of input: expected an expression after ','\n"
             "    (1, \n      ^"),
    ("head []", "<repl:1>:1:1: runtime error: head of an empty list\n    head []\n    ^^^^^^^"),
    (":type 1 + true", "<repl:1>:1:11: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)\n"
                       "    :type 1 + true\n              ^^^^"),
    (":core nopqz", "<repl:1>:1:7: name error: unbound name `nopqz`\n    :core nopqz\n          ^^^^^"),
    ("def g x =\n  let y = x * 2.0 in\n  y + true",
     "<repl:1>:3:7: type error: `true` has type Bool, but the second argument of `+` must be a real number "
     "(Real or Array)\n"
     "      y + true\n          ^^^^"),
    ("let z = 1 + true", "<repl:1>:1:13: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)\n"
                         "    let z = 1 + true\n                ^^^^"),
    ("{- never closed", "<repl:1>:1:1: syntax error: unterminated block comment: `{-` is never closed by `-}`\n"
                        "    {- never closed\n    ^^"),
    ("1 + true;;", "<repl:1>:1:5: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)\n"
                   "    1 + true;;\n        ^^^^"),
    (":{\ndef p = 1.0\ndef p = 2.0\n:}", "<repl:1>:3:5: name error: `p` is defined twice in this file (first on line 2)\n"
                                        "    def p = 2.0\n        ^"),
    (":frobnicate", "unknown command :frobnicate (:help lists the commands)"),
    (":type", "usage: :type EXPR   -- the type of an expression"),
    (":mode bogus", "no mode 'bogus': the modes are " + ", ".join(MODES)),  # every row of the mode table
    (":mode b", "'b' could be backprop or backprop-naive"),
    (":load no/such/file.dl", "no such file: no/such/file.dl"),
    (":gradcheck f", "usage: :gradcheck F X   -- F's gradient at X in every mode, with relative errors  "
                     "(e.g. :gradcheck f 1.0, :gradcheck (fun (x, y) -> x * y) (2.0, 3.0))"),
]


@pytest.mark.parametrize("text,diagnostic", ERRORS)
def test_errors_print_a_diagnostic_and_keep_the_state(text, diagnostic):
    state = new_state()
    state, out = execute(state, text)
    assert out.error
    assert out.text == diagnostic


def test_a_failed_definition_leaves_no_name_and_it_unchanged():
    state = check("""
dl> def f x = x + 1.0
f : Float 'a => 'a -> 'a
dl> 41.0
41.0 : Real
""")
    before = (dict(state.names), state.log)
    state, out = execute(state, "def f x = x + true")
    assert out.error
    state, out = execute(state, "def g x = undefined_thing x")
    assert out.error
    state, out = execute(state, "head []")
    assert out.error
    assert (dict(state.names), state.log) == before
    check("""
dl> f it
42.0 : Real
dl> g
<repl:7>:1:1: name error: unbound name `g`
    g
    ^
""", state)


def test_internal_errors_are_reported_and_the_session_goes_on(monkeypatch):
    state = new_state()

    def broken(*args, **kwargs):
        raise ValueError("boom")
    monkeypatch.setattr(S, "run", broken)
    state, out = execute(state, "1 + 2")
    assert out.error
    assert out.text.startswith("internal error: ValueError: boom (this is a bug in dl; dl repl --debug shows")
    _, out = execute(new_state(debug=True), "1 + 2")
    assert out.text.startswith("internal error: ValueError: boom (this is a bug in dl)\nTraceback")
    monkeypatch.undo()
    state, out = execute(state, "1 + 2")
    assert out.text == "3.0 : Real"


def test_stack_overflow_is_an_error_not_a_crash(monkeypatch):
    import lang.back.deep
    monkeypatch.setattr(lang.back.deep, "RECURSION_LIMIT", 20_000)  # overflow quickly
    state, out = run(new_state(), "def down n = if n == 0 then 0 else 1 + down (n - 1)", "down 1000000")
    assert out.error
    assert "stack overflow" in out.text
    state, out = execute(state, "down 10")
    assert out.text == "10.0 : Real"


# ---- Ctrl-C: KeyboardInterrupt in the calling thread stops the evaluation -------------------


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_interrupting_an_evaluation_returns_to_the_prompt_with_the_state_intact():
    state = check("""
dl> def f x = x * 2.0
f : Float 'a => 'a -> 'a
dl> 5.0
5.0 : Real
""")
    names, log = dict(state.names), state.log
    _interrupt_after(0.5)
    state, out = execute(state, "let rec loop n = loop (n + 1) in loop 0")
    assert (out.text, out.error) == ("interrupted", True)
    assert (dict(state.names), state.log) == (names, log)
    check("""
dl> f it
10.0 : Real
""", state)


def test_an_interrupted_definition_leaves_no_half_defined_name(monkeypatch):
    """Interrupted after the world took the module, before the name table changed: nothing visible."""
    state = new_state()
    real_add = S.World.add
    entered = threading.Event()

    def slow_add(world, module):
        real_add(world, module)
        entered.set()
        while True:
            pass
    monkeypatch.setattr(S.World, "add", slow_add)
    threading.Thread(target=lambda: (entered.wait(120), _thread.interrupt_main()), daemon=True).start()
    state, out = execute(state, "def half x = x / 2.0")
    monkeypatch.undo()
    assert (out.text, out.error) == ("interrupted", True)
    assert "half" not in state.names
    state, out = execute(state, "half 1.0")
    assert out.error and "unbound name `half`" in out.text


# ---- `it` ----------------------------------------------------------------------------------


def test_it_is_the_last_value():
    check("""
dl> it
<repl:1>:1:1: name error: unbound name `it`
    it
    ^^
dl> 2.0 * 3.0
6.0 : Real
dl> it + 1.0
7.0 : Real
dl> (it, [it])
(7.0, [7.0]) : Real * [Real]
dl> fst it
7.0 : Real
dl> 1 + true
<repl:6>:1:5: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)
    1 + true
        ^^^^
dl> it
7.0 : Real
dl> def g x = x * it
g : Real -> Real
dl> grad (fun x -> x * it) 2.0
7.0 : Real
dl> fun x -> x
<fun> : 'a -> 'a
dl> (it 1.5, it true)
(1.5, true) : Real * Bool
dl> []
[] : ['a]
dl> 1.0 :: it
[1.0] : [Real]
""")


def test_it_is_not_evaluated_again():
    """Using `it` reads the value; the expression that made it is not run again (not even in
    another mode, for data, which `it` holds as a literal)."""
    state, out = run(new_state(), ":cost fold (fun a x -> a + x) 0.0 (map float (range 1000))")
    assert out.text.split("\n")[0] == "499500.0 : Real"
    state, out = execute(state, ":cost it + 1.0")
    counts = dict(re.findall(r"  (\w[\w ()]*?)\s{2,}(\d+)", out.text))
    assert counts["primitive applications"] == "1"
    state, _ = execute(state, ":mode forward")
    state, out = execute(state, ":cost derivative (fun x -> x * it) 1.0")
    assert out.text.split("\n")[0] == "499501.0 : Real"
    counts = dict(re.findall(r"  (\w[\w ()]*?)\s{2,}(\d+)", out.text))
    assert int(counts["primitive applications"]) < 10


def test_function_valued_it_survives_a_mode_change():
    check("""
dl> let k = 3.0
k : Float 'a => 'a
dl> fun x -> x * x * k
<fun> : Real -> Real
dl> :mode forward
mode: forward
dl> grad it 2.0
12.0 : Real
""")
    state, out = run(new_state(), ":cost fun x -> x * x")  # computed on another machine than the session's
    assert out.text.split("\n")[0] == "<fun> : Real -> Real"
    state, out = run(state, "(grad it 3.0, it 2.0)")
    assert out.text == "(6.0, 4.0) : Real * Real"


# ---- commands ------------------------------------------------------------------------------


def test_help_lists_every_command():
    state, out = execute(new_state(), ":help")
    for cmd in commands.COMMANDS:
        assert re.search(rf"^  :{cmd.name}\b.*{re.escape(cmd.help)}$", out.text, re.M), cmd.name
    _, out = execute(new_state(), ":help gradcheck")
    assert out.text == ":gradcheck F X   -- F's gradient at X in every mode, with relative errors"


@pytest.mark.parametrize("typed,command", [
    (":t", "type"), (":ty", "type"), (":tr", "transform"), (":ti", "time"), (":l", "load"), (":r", "reload"),
    (":b", "browse"), (":q", "quit"), (":?", "help"), (":h", "help"), (":cor", "core"), (":cos", "cost"),
    (":com", "compare"), (":grad", "gradcheck"), (":gra", None), (":g", None), (":m", "mode"),
    (":gradcheck", "gradcheck"), (":grap", "graph"),
])
def test_commands_abbreviate_like_ghci(typed, command):
    found = commands.find(typed[1:])
    assert (found.name if found else None) == command  # None: ambiguous (:g is :gradcheck or :graph)


@pytest.mark.parametrize("typed", [":c", ":co", ":c 1.0", ":co sin 1.0"])
def test_an_ambiguous_command_asks_which(typed):
    """GHCi's documented one-letter spellings win (`:t` is :type); any other prefix of several commands is
    refused with the choices, never run as the first of them."""
    state, out = execute(new_state(), typed)
    word = typed.split()[0]
    assert out == Output(f"ambiguous command {word}, could be :core, :cost, :compare", error=True)
    assert commands.find(word[1:]) is None
    _, out = execute(new_state(), ":help c")
    assert out.text == "ambiguous command :c, could be :core, :cost, :compare"


def test_quit():
    state, out = execute(new_state(), ":quit")
    assert state.quit and out.text == ""
    state, out = execute(new_state(), "#quit")
    assert state.quit


def test_type_is_generalised_while_evaluation_defaults():
    check("""
dl> :type 1 + 2
1 + 2 : Num 'a => 'a
dl> 1 + 2
3.0 : Real
dl> :type fst
fst : 'a * 'b -> 'a
dl> :type (+)
(+) : Num 'a => 'a -> 'a -> 'a
dl> :type grad
grad : Diff 'a => ('a -> Real) -> 'a -> 'a
dl> :t map
..>   (fun x -> x * 2.0)
map (fun x -> x * 2.0) : Float 'a => ['a] -> ['a]
""")


def test_load_reload_and_browse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.dl").write_text("def helper x = x + 1.0\ndef sq x = x * x\n")
    state = check("""
dl> :load a.dl
loaded a.dl: helper, sq
dl> def g x = helper x * 2.0
g : Float 'a => 'a -> 'a
dl> g 1.0
4.0 : Real
dl> :browse
-- a.dl
helper : Float 'a => 'a -> 'a
sq : Num 'a => 'a -> 'a
-- at the prompt
g : Float 'a => 'a -> 'a
it : Real
""")
    (tmp_path / "a.dl").write_text("def helper x = x + 10.0\n")
    state = check("""
dl> :reload
reloaded the prelude, a.dl
dl> g 1.0
22.0 : Real
dl> it
22.0 : Real
""", state)
    (tmp_path / "a.dl").write_text("def helper x = x + true\n")
    state = check("""
dl> :r
a.dl:1:20: type error: `true` has type Bool, but the second argument of `+` must be a number (Int, Real or Array)
    def helper x = x + true
                       ^^^^
dl> g 1.0
22.0 : Real
""", state)
    (tmp_path / "a.dl").write_text("def other = 1.0\n")
    state = check("""
dl> :reload
reloaded the prelude, a.dl
note: `g` (from <repl:2>) is left out: name error: unbound name `helper`
dl> g
<repl:11>:1:1: name error: unbound name `g`
    g
    ^
""", state)
    (tmp_path / "a.dl").write_text("def helper x = x - 1.0\n")
    check("""
dl> :reload
reloaded the prelude, a.dl
dl> g 1.0
0.0 : Real
""", state)


def test_a_file_that_fails_to_load_is_retried_by_reload(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.dl").write_text("def main = 1 +\n")
    state = check("""
dl> :load b.dl
b.dl:1:14: syntax error: unexpected end of input: expected an expression after '+'
    def main = 1 +
                 ^
(fix it and :reload)
dl> main
<repl:2>:1:1: name error: unbound name `main`
    main
    ^^^^
""")
    (tmp_path / "b.dl").write_text("def main = 1 + 2\n")
    check("""
dl> :reload
reloaded the prelude, b.dl
dl> main
3.0 : Real
""", state)


def test_browse_prelude_and_builtins():
    state = new_state()
    _, out = execute(state, ":browse")
    assert out.text.startswith("no definitions yet")
    _, out = execute(state, ":browse prelude")
    lines = out.text.split("\n")
    assert lines[0] == "-- the prelude"
    assert "sum : Num 'a => ['a] -> 'a" in lines or any(line.startswith("sum : ") for line in lines)
    _, out = execute(state, ":browse builtins")
    assert "grad : Diff 'a => ('a -> Real) -> 'a -> 'a" in out.text.split("\n")
    assert "map : ('a -> 'b) -> ['a] -> ['b]" in out.text.split("\n")


def test_core():
    check("""
dl> def f x = x * sin x
f : Float 'a => 'a -> 'a
dl> :core f
def f = fun x -> x * sin x
dl> :core (+)
fun x1 x2 -> x1 + x2
dl> :core fun (x, y) -> x && y
fun p1 -> let (x, y) = p1 in if x then y else false
dl> :core 2.0 |> f
f 2.0
""")


def test_transform_in_each_mode():
    state = check("""
dl> def sq x = x * x
sq : Num 'a => 'a -> 'a
dl> :transform sq
-- ←D(sq@Real) in backprop mode
-- source type: Real -> Real
-- target type: Real * ¬Real -> Real * ¬Real
fun x -> let (x, x') = x in (x * x, fun a -o x' (x * a) + x' (x * a))
dl> :transform grad sq 3.0
-- the function differentiated by `grad sq 3.0`: sq
-- ←D(sq@Real) in backprop mode
-- source type: Real -> Real
-- target type: Real * ¬Real -> Real * ¬Real
fun x -> let (x, x') = x in (x * x, fun a -o x' (x * a) + x' (x * a))
dl> :transform 1.0 + 2.0
-- ←D(1.0 + 2.0) in backprop mode
-- source type: Real
-- target type: Real * ¬Real
(1.0 + 2.0, fun a -o 0)
dl> :mode forward
mode: forward
dl> :transform fun x -> x * x
-- →D(fun x -> x * x) in forward mode
-- source type: Real -> Real
-- target type: Real * Real -> Real * Real
fun x -> let (x, x_dot) = x in (x * x, x * x_dot + x * x_dot)
dl> :mode tape
mode: tape
dl> :transform sq
-- the tape mode has no transformed term: it runs the untransformed program
-- (operator overloading: reals carry nodes of a dynamic tape, swept backwards (PyTorch, micrograd))
-- sq@Real : Real -> Real
fun x -> x * x
dl> :mode symbolic
mode: symbolic
dl> :transform grad sq 3.0
-- derivative call 1: inputs x1
-- expression (tree size 3):
   x1 * x1
-- derivatives (tree size 3):
   d/dx1 = x1 + x1
""")
    state, out = execute(state, ":transform sq")
    assert out.text.startswith("-- symbolic mode unrolls a program at a point")


def test_transform_shows_the_instance_main_uses_or_the_one_asked_for():
    check("""
dl> def sq x = x * x
sq : Num 'a => 'a -> 'a
dl> def main = sq (3 : Int)
main : Int
dl> :transform sq
-- sq@Int: the instance main uses
-- ←D(sq@Int) in backprop mode
-- source type: Int -> Int
-- target type: Int -> Int
fun x -> x * x
dl> :transform sq@Real
-- ←D(sq@Real) in backprop mode
-- source type: Real -> Real
-- target type: Real * ¬Real -> Real * ¬Real
fun x -> let (x, x') = x in (x * x, fun a -o x' (x * a) + x' (x * a))
dl> :transform grad sq 3.0
-- the function differentiated by `grad sq 3.0`: sq
-- ←D(sq@Real) in backprop mode
-- source type: Real -> Real
-- target type: Real * ¬Real -> Real * ¬Real
fun x -> let (x, x') = x in (x * x, fun a -o x' (x * a) + x' (x * a))
dl> :transform sq@Bool
<repl:6>:1:15: type error: `Bool` is not in class Num, as that type variable of `sq : Num 'a => 'a -> 'a` must be
    :transform sq@Bool
                  ^^^^
""")


def test_mode_selects_how_grad_runs():
    state = check(f"""
dl> :mode
mode: backprop   (modes: {', '.join(MODES)})
dl> :mode num
mode: numeric
dl> grad sin 1.0
0.5403023058652364 : Real
dl> :mode backprop
mode: backprop
dl> grad sin 1.0
0.5403023058681398 : Real
""")
    assert state.mode.name == "backprop"


def test_cost_prints_the_value_and_the_counters():
    """The counters are those `dl run --cost` reports for the same computation as `main`."""
    from conftest import run_with_machine
    from lang.tools.report import format_counters
    state, out = run(new_state(), "def f x = x * sin x", ":cost grad f 1.0")
    _, machine = run_with_machine("def f x = x * sin x\ndef main = grad f 1.0", counting=True)
    value, counters = out.text.split("\n", 1)
    assert value == "1.3817732906760363 : Real"
    assert counters == format_counters(machine.counters.as_dict(), "backprop")
    assert counters.split("\n")[0] == "cost (backprop mode)"
    # one: sin's backpropagator is inlined into the product's (docs/transforms.md, Preaccumulation)
    assert re.search(r"^  backpropagators created +1$", counters, re.M)
    state, out = execute(state, "it")
    assert out.text == "1.3817732906760363 : Real"


def test_time_reports_a_median_of_several_quick_runs():
    state, out = run(new_state(), ":time sum (map float (range 100))")
    value, timing = out.text.split("\n")
    assert value == "4950.0 : Real"
    m = re.fullmatch(r"-- [\d.]+ (s|ms|µs) \(median of (\d+) runs, min [\d.]+ (s|ms|µs); first run [\d.]+ (s|ms|µs), "
                     r"compiling [\d.]+ (s|ms|µs)\)", timing)
    assert m and int(m.group(2)) >= 3, timing


def test_gradcheck_flags_a_disagreement():
    """relu at its kink: the rule says 0, central differences say 0.5."""
    state, out = run(new_state(), ":gradcheck relu 0.0")
    assert out.text == """-- value_and_grad relu 0.0, in every mode (errors relative to backprop)
  mode            value  gradient  rel. error
  backprop        0.0    0.0       reference
  backprop-naive  0.0    0.0       0
  forward         0.0    0.0       0
  tape            0.0    0.0       0
  symbolic        0.0    0.0       0
  shift-reset     0.0    0.0       0
  numeric         0.0    0.5       1.0e+00     <-- disagrees (tolerance 1e-05)
  delta           0.0    0.0       0
  delta-noshare   0.0    0.0       0
  chad            0.0    0.0       0
  chad-efficient  0.0    0.0       0
  ps              0.0    0.0       0
  dualrev-staged  0.0    0.0       0
  dualrev-cayley  0.0    0.0       0
  dualrev-ids     0.0    0.0       0
  dualrev-defun   0.0    0.0       0
  dualrev         0.0    0.0       0
  lut             0.0    0.0       0
  lut-recompute   0.0    0.0       0
DISAGREEMENT: numeric differs from backprop"""


def test_gradcheck_of_a_function_of_a_tuple_and_of_a_failing_function():
    state, out = run(new_state(), ":gradcheck (fun (x, y) -> x * y + sin y) (2.0, 3.0)")
    lines = out.text.split("\n")
    assert lines[2].split() == ["backprop", "6.141120008059867", "(3.0,", "1.0100075033995546)", "reference"]
    assert lines[-1] == f"all {len(MODES)} modes agree (tolerance 1e-09; numeric 1e-05)"
    state, out = execute(state, ":gradcheck (fun x -> head [] + x) 1.0")
    lines = out.text.split("\n")
    assert lines[2] == "  backprop        error"
    assert lines[2 + len(MODES)] == "  backprop: error: head of an empty list"  # after a row per mode
    assert lines[-1] == "every exact mode failed: no reference to compare with"
    state, out = execute(state, ":gradcheck (fun x -> derivative sin x) 1.0")  # tape, symbolic, shift-reset and ps do not nest
    lines = out.text.split("\n")
    assert lines[0].endswith("(errors relative to backprop)")
    assert lines[2].split() == ["backprop", "0.5403023058681398", "-0.8414709848078965", "reference"]
    assert lines[5].split() == ["tape", "error"] and lines[6].split() == ["symbolic", "error"]
    refusing = [m for m in MODES if not get(m).nests]  # tape, symbolic, and every other mode that does not nest
    assert lines[-1] == f"the modes that ran agree; {len(refusing)} did not finish"
    state, out = execute(state, ":gradcheck map sin [1.0]")
    assert out.error and "type error" in out.text


def test_gradcheck_tolerates_finite_difference_noise_near_zero():
    """A zero component: numeric gives ~1e-11, relative error 1, but against the gradient's scale it agrees."""
    assert not disagrees((1.0, (2.0, 0.0)), (1.0, (2.0, 1e-11)), 1e-5)
    assert disagrees((1.0, (2.0, 0.0)), (1.0, (2.0, 1e-3)), 1e-5)
    assert disagrees((1.0, [1.0]), (1.0, [1.0, 2.0]), 1e-5)
    assert disagrees((1.0, 2.0), (1.0, float("inf")), 1e-5) and not disagrees(float("inf"), float("inf"), 1e-9)


# ---- continuation: when does an input go on to the next line? -------------------------------

CONTINUES = [
    ("def f x =", True),
    ("fun x ->", True),
    ("let y = 2 in", True),
    ("if c then", True),
    ("if c then 1 else", True),
    ("1 +", True),
    ("xs |>", True),
    ("a &&", True),
    ("x ::", True),
    ("f (1,", True),
    ("[1, 2", True),
    ("g (h (x)", True),
    ("{- a comment", True),
    ("x {- nested {- -} still", True),
    ("def f x = x + 1", False),
    ("min x", False),            # ends in `in` only as a word's end
    ("within", False),
    ("f (1, 2)", False),
    ("x -- a comment ending in +", False),
    ("x {- closed -}", False),
    ("f )", False),
    ("", False),
    ("def f x =\n  x +\n", False),     # a blank line ends the input
    ("f (\n   ", False),
    (":type 1 +", True),
    (":t fun x ->", True),
    (":load dir/", False),           # a path, not an expression
    (":reload", False),
    (":mode", False),
    (":c 1 +", False),               # ambiguous: refused at once, not continued
    (":{", True),
    (":{\ndef a = 1", True),
    (":{\ndef a = 1\n", True),       # blank lines are fine inside a block
    (":{\ndef a = 1\n:}", False),
    ("x = \"unterminated", False),
]


@pytest.mark.parametrize("text,more", CONTINUES)
def test_needs_more(text, more):
    assert needs_more(text) is more


# ---- completion ---------------------------------------------------------------------------


def test_completion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mlp.dl").write_text("")
    (tmp_path / "model.dl").write_text("")
    (tmp_path / "notes.txt").write_text("")
    state, _ = execute(new_state(), "def my_loss x = x * x")
    table = [
        (":", 0, [":" + c.name for c in commands.COMMANDS]),
        (":t", 0, [":type", ":transform", ":time"]),
        ("  :gr", 2, [":gradcheck", ":graph"]),
        (":load mo", 6, ["model.dl", "models/"]),
        (":l models/", 3, ["models/mlp.dl"]),
        (':load "mo', 6, ['"model.dl', '"models/']),
        (":load n", 6, []),                     # only .dl files and directories
        (":mode ba", 6, ["backprop", "backprop-naive"]),
        (":browse p", 8, ["prelude"]),
        (":help gr", 6, ["gradcheck", "graph"]),
        (":type my_", 6, ["my_loss"]),
        ("grad my_", 5, ["my_loss"]),
        ("value_and_g", 0, ["value_and_grad", "value_and_grad_aux"]),
        ("1 + ", 4, []),
        (":reload x", 8, []),
        ("th", 0, ["then"]),
    ]
    for text, start, expected in table:
        assert completion.complete(state, text) == (start, expected), text
