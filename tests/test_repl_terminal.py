"""The installed `dl repl`: at a pseudo-terminal (typed input, Ctrl-C, Ctrl-D), and with piped input.

Every wait has a deadline, and the child is killed at the end whatever happened, so a broken
REPL fails these tests instead of hanging them.
"""
from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MODES

DL = Path(sys.executable).parent / "dl"
pytestmark = pytest.mark.skipif(not DL.exists(), reason="the dl command is not installed in this environment")

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class Terminal:
    """`dl repl` running in a pseudo-terminal."""

    def __init__(self, args: list[str], home: Path, cwd: Path | None = None):
        env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / "state"), TERM="xterm",
                   PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120", LINES="40", DL_CACHE_DIR=str(home / "cache"))
        env.pop("DL_HISTORY", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            if cwd:
                os.chdir(cwd)
            os.execve(str(DL), [str(DL), *args], env)
        self.seen = b""
        self.mark = 0  # in the plain text: where the next expected output is looked for

    def expect(self, pattern: bytes, timeout: float = 30) -> None:
        """Wait until the plain text (escape codes removed) shows `pattern` after the last thing expected."""
        deadline = time.monotonic() + timeout
        while pattern not in ANSI.sub(b"", self.seen)[self.mark:]:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"timed out waiting for {pattern!r}; the terminal shows:\n"
                                     f"{ANSI.sub(b'', self.seen)[-1500:].decode(errors='replace')}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"dl exited while waiting for {pattern!r}")
            self.seen += chunk
        plain = ANSI.sub(b"", self.seen)
        self.mark = plain.index(pattern, self.mark) + len(pattern)

    def prompt(self) -> None:
        """Wait for the next prompt (typing ahead of it would race the terminal's line discipline)."""
        self.expect(b"dl>")

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:  # drain, so the child never blocks writing
                if select.select([self.fd], [], [], 0.05)[0]:
                    self.seen += os.read(self.fd, 65536)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        raise AssertionError("dl did not exit")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


@pytest.fixture
def terminal(tmp_path):
    opened = []

    def start(*args: str, cwd: Path | None = None) -> Terminal:
        t = Terminal(list(args), tmp_path, cwd)
        opened.append(t)
        return t
    yield start
    for t in opened:
        t.close()


def test_typed_input_at_a_terminal(terminal, tmp_path):
    t = terminal("repl")
    t.prompt()
    t.type(b"def f x = x * sin x\r")
    t.expect(b"f : Float 'a => 'a -> 'a")
    t.prompt()
    t.type(b"grad f 1.0\r")
    t.expect(b"1.3817732906760363 : Real")
    t.prompt()
    t.type(b"(f 1.0,\r")                               # continued on a second line, indented by the REPL
    t.expect(b"..>")
    t.type(b"f 2.0,\r")
    t.expect(b"..>")
    t.type(b" f 0.0)\r")                               # a blank typed first replaces the REPL's indentation
    t.expect(b"(0.8414709848078965, 1.8185948536513634, 0.0) : Real * Real * Real")
    t.prompt()
    t.type(b":t value_and_g\t")                         # Tab completes a name
    t.expect(b"value_and_grad")
    t.type(b" f\r")
    t.expect(b"value_and_grad f : Real -> Real * Real")
    t.prompt()
    t.type(b"\x04")                                     # Ctrl-D leaves
    assert t.wait() == 0
    history = (tmp_path / "state" / "dl" / "history").read_text()
    assert "+def f x = x * sin x" in history and "+(f 1.0,\n+  f 2.0,\n+ f 0.0)" in history


def test_ctrl_c_interrupts_an_evaluation_and_the_session_goes_on(terminal):
    t = terminal("repl")
    t.prompt()
    t.type(b"def k = 21.0\r")
    t.expect(b"k : Float 'a => 'a")
    t.prompt()
    t.type(b"let rec loop n = loop (n + 1) in loop 0\r")
    time.sleep(1.0)
    t.type(b"\x03")
    t.expect(b"interrupted")
    t.prompt()
    t.type(b"k * 2.0\r")
    t.expect(b"42.0 : Real")
    t.prompt()
    t.type(b":quit\r")
    assert t.wait() == 0


def test_repl_file_loads_the_file_first(terminal, tmp_path):
    (tmp_path / "prog.dl").write_text("def sq x = x * x\ndef main = sq 3.0\n")
    t = terminal("repl", "prog.dl", cwd=tmp_path)
    t.expect(b"loaded prog.dl: sq, main")
    t.prompt()
    t.type(b"main + 1.0\r")
    t.expect(b"10.0 : Real")
    t.prompt()
    t.type(b"\x04")
    assert t.wait() == 0


def _dl(*args: str, input: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / "state"))
    return subprocess.run([str(DL), *args], input=input, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_piped_input_has_no_prompts_or_escape_codes(tmp_path):
    script = "def f x = x * sin x\ngrad f 1.0\n:type grad f\nf true\n"
    for args in (["repl"], []):  # plain `dl` is the REPL too
        r = _dl(*args, input=script, cwd=tmp_path, home=tmp_path)
        assert r.stdout == "f : Float 'a => 'a -> 'a\n1.3817732906760363 : Real\ngrad f : Real -> Real\n"
        assert r.stderr.startswith("<repl:4>:1:3: type error")
        assert "\x1b" not in r.stdout + r.stderr and "dl>" not in r.stdout
        assert r.returncode == 1


def test_piped_repl_with_a_file_and_a_mode(tmp_path):
    (tmp_path / "prog.dl").write_text("def f (x, y) = x * y\n")
    r = _dl("repl", "prog.dl", "--mode", "forward", input=":mode\ngrad f (2.0, 3.0)\n", cwd=tmp_path,
            home=tmp_path)
    assert r.stdout.splitlines() == ["loaded prog.dl: f", f"mode: forward   (modes: {', '.join(MODES)})",
                                     "(3.0, 2.0) : Real * Real"]
    assert r.returncode == 0
