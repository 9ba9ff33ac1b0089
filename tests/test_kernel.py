"""The Jupyter kernel, through Jupyter's own protocol (lang/tools/kernel/; docs/reference.md §11).

The kernelspec is installed by `dl kernel install --prefix` into a temporary
directory that JUPYTER_PATH points at, and the kernel is started by
jupyter_client as a notebook server would. `jupyter_kernel_test` checks
every reply and output against the message specification (v5); the tests
after it check what a dl user sees: definitions that persist across cells,
errors with their diagnostic and caret, the rich displays.

Needs the [jupyter] extra (CI installs it, .ci/run); without it the module is skipped.
"""
from __future__ import annotations

import json
import time
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT

jkt = pytest.importorskip("jupyter_kernel_test")
pytest.importorskip("ipykernel")

PREFIX = tempfile.mkdtemp(prefix="dl-kernelspec-")


def setup_module(module) -> None:
    """Install the kernelspec with the command a user types, where only these tests look."""
    done = subprocess.run([sys.executable, "-m", "lang", "kernel", "install", "--prefix", PREFIX], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "installed the dl kernelspec in" in done.stdout
    os.environ["JUPYTER_PATH"] = os.path.join(PREFIX, "share", "jupyter")


def teardown_module(module) -> None:
    os.environ.pop("JUPYTER_PATH", None)
    shutil.rmtree(PREFIX, ignore_errors=True)


def test_kernelspec_runs_this_python() -> None:
    spec = json.load(open(os.path.join(PREFIX, "share", "jupyter", "kernels", "dl", "kernel.json")))
    assert spec["argv"][:3] == [sys.executable, "-m", "lang.tools.kernel"]
    assert spec["language"] == "dl" and "{connection_file}" in spec["argv"]


class TestProtocol(jkt.KernelTests):
    """The message-spec checks of jupyter_kernel_test, with dl samples."""

    kernel_name = "dl"
    language_name = "dl"
    file_extension = ".dl"
    code_execute_result = [{"code": "1.0 + 2.0", "result": "3.0 : Real"},
                           {"code": "def sq x = x * x\nsq 3", "result": "9.0 : Real"},
                           {"code": "grad (fun x -> x * x * x) 2.0", "result": "12.0 : Real"}]
    code_display_data = [{"code": ":compare grad (fun x -> x * sin x) 1.0", "mime": "text/html"},
                         {"code": ":step grad (fun x -> x * x) 3.0", "mime": "text/html"},
                         {"code": ":transform (fun x -> x * x)", "mime": "text/html"}]
    code_generate_error = "1 + true"
    completion_samples = [{"text": "value_and_g", "matches": {"value_and_grad", "value_and_grad_aux"}},
                          {"text": ":grad", "matches": {":gradcheck"}}]
    complete_code_samples = ["1 + 2", "def f x = x * x", ":{\ndef a = 1\n:}", ":step grad sin 1.0"]
    incomplete_code_samples = ["def f x =", "(1.0 +", ":{\ndef a = 1", "let y = 1 in"]
    code_inspect_sample = "sigmoid"


class TestSession(jkt.KernelTests):
    """What a dl user sees in a notebook."""

    kernel_name = "dl"
    language_name = "dl"

    def outputs(self, code: str) -> tuple[dict, list[dict]]:
        """Run a cell: its reply, and its output messages (each checked against the spec)."""
        self.flush_channels()
        return self.execute_helper(code)

    def stdout(self, msgs: list[dict]) -> str:
        return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")

    def test_definitions_persist_across_cells(self) -> None:
        reply, msgs = self.outputs("def f x = x * sin x")
        assert reply["content"]["status"] == "ok"
        assert self.stdout(msgs) == "f : Float 'a => 'a -> 'a\n"
        reply, msgs = self.outputs("grad f 1.0")
        [result] = [m for m in msgs if m["msg_type"] == "execute_result"]
        value = float(result["content"]["data"]["text/plain"].split(" : ")[0])
        assert value == pytest.approx(0.8414709848078965 + 0.5403023058681398, rel=1e-15)  # sin 1 + cos 1
        _, msgs = self.outputs("it * 2.0")  # `it` carries over too
        [result] = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert float(result["content"]["data"]["text/plain"].split(" : ")[0]) == pytest.approx(2 * value)

    def test_a_cell_of_several_inputs(self) -> None:
        reply, msgs = self.outputs("def a = 2.0\n:type a\ndef g y =\n  y * a\ng 4.0")
        assert reply["content"]["status"] == "ok"
        assert self.stdout(msgs) == "a : Float 'a => 'a\na : Float 'a => 'a\ng : Float 'a => 'a -> 'a\n"
        [result] = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert result["content"]["data"]["text/plain"] == "8.0 : Real"

    def test_error_is_the_diagnostic_with_its_caret_and_stops_the_cell(self) -> None:
        reply, msgs = self.outputs("def ok = 1.0\n1.0 + true\ndef never = 2.0")
        assert reply["content"]["status"] == "error"
        [err] = [m for m in msgs if m["msg_type"] == "error"]
        content = err["content"]
        assert content["ename"] == "type error"
        lines = [line.replace("\x1b[31m", "").replace("\x1b[0m", "") for line in content["traceback"]]
        assert lines[0].startswith("<repl:")
        assert lines[1] == "    1.0 + true"
        assert lines[2].index("^") == 4 + lines[1].strip().index("true")  # the caret under `true`
        assert self.stdout(msgs) == "ok : Float 'a => 'a\n"
        _, msgs = self.outputs(":type never")  # the input after the error did not run
        assert [m["msg_type"] for m in msgs] == ["error"]

    def test_unknown_command_is_an_error_not_a_traceback(self) -> None:
        reply, msgs = self.outputs(":frobnicate")
        assert reply["content"]["status"] == "error"
        assert "unknown command :frobnicate" in reply["content"]["evalue"]

    def test_graph_is_svg_or_dot_with_a_note(self) -> None:
        reply, msgs = self.outputs("def sq2 x = let y = x * x in y * y\n:graph grad sq2 1.5")
        assert reply["content"]["status"] == "ok"
        [shown] = [m for m in msgs if m["msg_type"] == "display_data"]
        data = shown["content"]["data"]
        if shutil.which("dot"):
            assert data["image/svg+xml"].lstrip().startswith("<?xml") and "<svg" in data["image/svg+xml"]
        else:
            assert "not installed" in data["text/plain"] and "digraph dl" in data["text/plain"]

    def test_step_widget_has_both_columns(self) -> None:
        _, msgs = self.outputs(":step grad (fun x -> let y = x * x in y * y) 1.5")
        [shown] = [m for m in msgs if m["msg_type"] == "display_data"]
        page = shown["content"]["data"]["text/html"]
        assert "backprop: each body runs once" in page and "backprop-naive: each call runs at once" in page
        # y = x * x, then y * y: factoring runs y' then x'... as 2 bodies and a sink row; naive calls the
        # backpropagator of y once, of x*x twice, the sink 4 times (7 calls) and adds a sink row
        assert page.count('data-step="') == (2 + 1) + (1 + 2 + 4 + 1)

    def test_quit_keeps_the_session(self) -> None:
        self.outputs("def kept = 7")
        _, msgs = self.outputs(":quit")
        assert "does nothing in a notebook" in self.stdout(msgs)
        _, msgs = self.outputs("kept")
        [result] = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert result["content"]["data"]["text/plain"] == "7.0 : Real"

    def test_inspect_is_type_of_the_name_under_the_cursor(self) -> None:
        self.outputs("def my_square x = x * x")
        code = "grad my_square 2.0"
        msg_id = self.kc.inspect(code, cursor_pos=code.index("square"))
        reply = self.get_non_kernel_info_reply(timeout=20)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["data"]["text/plain"] == "my_square : Num 'a => 'a -> 'a"

    def test_completion_of_a_session_name_on_a_later_line(self) -> None:
        self.outputs("def my_long_name = 1.0")
        code = "def a = 1.0\ngrad (fun x -> x * my_lo"
        self.kc.complete(code, len(code))
        reply = self.get_non_kernel_info_reply(timeout=20)
        assert reply["content"]["matches"] == ["my_long_name"]
        assert reply["content"]["cursor_start"] == len(code) - len("my_lo")

    def test_interrupt_stops_the_evaluation_and_the_session_goes_on(self) -> None:
        """Jupyter's interrupt is Ctrl-C: naive repeated squaring at n = 40 (2^41 calls) is stopped."""
        self.flush_channels()
        self.outputs("def sqs n x = if n == 0 then x else sqs (n - 1) (x * x)\n:mode backprop-naive")
        msg_id = self.kc.execute("grad (sqs 40) 1.0")
        time.sleep(2.0)
        self.km.interrupt_kernel()
        reply = self.kc.get_shell_msg(timeout=60)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error" and reply["content"]["evalue"] == "interrupted"
        reply, msgs = self.outputs(":mode backprop\ngrad (sqs 40) 1.0")
        [result] = [m for m in msgs if m["msg_type"] == "execute_result"]
        assert result["content"]["data"]["text/plain"] == f"{2.0 ** 40} : Real"
