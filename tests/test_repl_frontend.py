"""The REPL's front ends: the prompt_toolkit session (driven through a pipe), piped input,
the highlighter and the history file."""
from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from lang.tools.repl.core import new_state
from lang.tools.repl.frontend import history_path, interact, make_session, piped
from lang.tools.repl.lexer import DlLexer, highlight
from lang.tools.repl.tokens import tokenize


def drive(keys: str, history=None, state=None) -> tuple[int, list]:
    """Type `keys` into the real prompt_toolkit session; the outputs it printed."""
    outputs = []
    with create_pipe_input() as inp:
        inp.send_text(keys)
        code = interact(state or new_state(), input=inp, output=DummyOutput(),
                        history=history if history is not None else InMemoryHistory(), write=outputs.append)
    return code, [(o.text, o.error) for o in outputs[1:]]  # [0] is the banner


def test_the_prompt_session_evaluates_what_is_typed():
    code, outputs = drive("def f x = x * sin x\rgrad f 1.0\r:type grad f\r\x04")
    assert code == 0
    assert outputs == [("f : Float 'a => 'a -> 'a", False), ("1.3817732906760363 : Real", False),
                       ("grad f : Real -> Real", False)]


def test_enter_continues_an_incomplete_input():
    code, outputs = drive("def g x =\rx + 1.0\r(g 1.0,\r g 2.0)\rlet y = 1 in\ry *\r2\r\x04")
    assert outputs == [("g : Float 'a => 'a -> 'a", False), ("(2.0, 3.0) : Real * Real", False),
                       ("2.0 : Real", False)]


def test_indentation_typed_or_pasted_on_a_continuation_line_is_not_doubled():
    """Enter indents the line it opens; a blank typed first replaces that indentation (keys sent through a
    pipe arrive as a paste without bracketed paste does: each newline an Enter)."""
    history = InMemoryHistory()
    code, outputs = drive("def g x =\r    x + 1.0\r\rdef h x =\rx * 2.0\r\r(1.0,\r 2.0)\r\x04", history=history)
    assert [o for o in outputs if o[0]] == [("g : Float 'a => 'a -> 'a", False), ("h : Float 'a => 'a -> 'a", False),
                                           ("(1.0, 2.0) : Real * Real", False)]
    assert list(history.get_strings()) == ["def g x =\n    x + 1.0", "def h x =\n  x * 2.0", "(1.0,\n 2.0)"]


def test_an_empty_line_ends_an_incomplete_input():
    code, outputs = drive("(1 +\r\r3.0\r\x04")
    assert outputs[0][1] is True and "syntax error" in outputs[0][0]
    assert outputs[1] == ("3.0 : Real", False)


def test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_leaves():
    code, outputs = drive("1 + 99\x03" "2.0\r" "\x04" "5.0\r")
    assert code == 0
    assert outputs == [("2.0 : Real", False)]  # `1 + 99` was dropped, nothing after Ctrl-D ran


def test_errors_do_not_end_the_session_and_quit_does():
    code, outputs = drive("1 + true\r:q\r2.0\r")
    assert outputs[0][1] is True and outputs[0][0].startswith("<repl:1>:1:5: type error")
    assert len(outputs) == 2 and outputs[1] == ("", False)


def test_history_is_written_to_the_history_file(tmp_path):
    path = tmp_path / "history"
    drive("def h x = x\r:t h\r\x04", history=FileHistory(str(path)))
    text = path.read_text()
    assert "+def h x = x" in text and "+:t h" in text
    drive("\x04", history=FileHistory(str(path)))  # a second session reads it without trouble
    assert list(FileHistory(str(path)).load_history_strings())[:2] == [":t h", "def h x = x"]


def test_history_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("DL_HISTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert history_path() == str(tmp_path / "dl" / "history")
    monkeypatch.setenv("DL_HISTORY", str(tmp_path / "h"))
    assert history_path() == str(tmp_path / "h")
    monkeypatch.delenv("DL_HISTORY")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == str(tmp_path / ".local" / "state" / "dl" / "history")


def test_the_session_completer():
    state = new_state()
    with create_pipe_input() as inp:
        session = make_session(lambda: state, input=inp, output=DummyOutput(), history=InMemoryHistory())
        found = [c.text for c in session.completer.get_completions(Document("value_and_g"), CompleteEvent())]
        assert found == ["value_and_grad", "value_and_grad_aux"]
        completions = list(session.completer.get_completions(Document(":tra"), CompleteEvent()))
        assert [(c.text, c.start_position) for c in completions] == [(":transform", -4)]
        assert isinstance(session.lexer, DlLexer)


# ---- piped input -----------------------------------------------------------------------


def test_piped_input_prints_results_plainly_and_errors_to_stderr():
    lines = ["def f x =\n", "  x * 2.0\n", "f 4.0\n", "\n", "f true\n", ":{\n", "def a = 1.0\n", "def b = a\n",
             ":}\n", "b\n"]
    out, err = io.StringIO(), io.StringIO()
    code = piped(new_state(), lines, out, err)
    assert out.getvalue() == "f : Float 'a => 'a -> 'a\n8.0 : Real\na : Float 'a => 'a\nb : Float 'a => 'a\n1.0 : Real\n"
    assert err.getvalue().startswith("<repl:3>:1:3: type error")
    assert code == 1


def test_piped_input_stops_at_quit_and_succeeds_without_errors():
    out, err = io.StringIO(), io.StringIO()
    code = piped(new_state(), ["1 + 1\n", ":quit\n", "2 + 2\n"], out, err)
    assert (out.getvalue(), err.getvalue(), code) == ("2.0 : Real\n", "", 0)


def test_piped_input_runs_an_unfinished_last_input():
    """Input that ends while a bracket is open is not dropped silently: it runs, and fails."""
    out, err = io.StringIO(), io.StringIO()
    code = piped(new_state(), ["(1.0,\n", " 2.0"], out, err)
    assert (out.getvalue(), code) == ("", 1)
    assert err.getvalue().startswith("<repl:1>:2:4: syntax error: unexpected end of input")


# ---- highlighting --------------------------------------------------------------------------


def styles(text: str) -> list[tuple[str, str]]:
    return [(style, piece) for line in highlight(text) for style, piece in line if style]


def test_highlighting_uses_the_grammar_tokens():
    assert styles(":type map (fun x -> x * 2.5) [1]") == [
        ("class:command", ":type"), ("class:builtin", "map"), ("class:bracket", "("), ("class:keyword", "fun"),
        ("class:name", "x"), ("class:operator", "->"), ("class:name", "x"), ("class:operator", "*"),
        ("class:number", "2.5"), ("class:bracket", ")"), ("class:bracket", "["), ("class:number", "1"),
        ("class:bracket", "]")]
    assert styles("def f (x : Real) : 'a = true -- note") == [
        ("class:keyword", "def"), ("class:name", "f"), ("class:bracket", "("), ("class:name", "x"),
        ("class:operator", ":"), ("class:type", "Real"), ("class:bracket", ")"), ("class:operator", ":"),
        ("class:tvar", "'a"), ("class:operator", "="), ("class:literal", "true"), ("class:comment", "-- note")]
    assert styles("x $ {- open") == [("class:name", "x"), ("class:error", "$"), ("class:comment", "{- open")]


def test_highlighting_splits_multi_line_input():
    lines = highlight(":{\ndef a = {- one\ntwo -} 1\n:}")
    assert lines[0] == [("class:command", ":{")]
    assert ("class:comment", "{- one") in lines[1]
    assert lines[2][0] == ("class:comment", "two -}")
    assert lines[3] == [("class:command", ":}")]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abx fun let in -> =()[]{-}\"':;#\n0123.e+*¬~\\|&<>@,$\t")), max_size=60))
def test_highlighting_never_fails_and_keeps_every_character(text):
    lines = highlight(text)
    assert "\n".join("".join(piece for _, piece in line) for line in lines) == text
    assert "".join(t.text for t in tokenize(text)) == text
    get_line = DlLexer().lex_document(Document(text))
    assert "".join(piece for _, piece in get_line(0)) == text.split("\n")[0]
