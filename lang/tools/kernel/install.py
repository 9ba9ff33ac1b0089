"""`dl kernel install`: the kernelspec that lets Jupyter start the dl kernel (needs the [jupyter] extra).

The kernelspec runs `python -m lang.tools.kernel -f {connection_file}` with
the Python dl is installed in. Where it goes is Jupyter's choice of data
directory: `--user` (~/.local/share/jupyter), `--sys-prefix` (the virtual
environment's share/jupyter: the default inside one), `--prefix DIR`
(DIR/share/jupyter: what the tests use), else the system's.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

NAME = "dl"


class MissingExtra(Exception):
    """The [jupyter] extra is not installed: the message says how to get it."""


def kernelspec() -> dict:
    """The kernel.json of the dl kernel."""
    return {"argv": [sys.executable, "-m", "lang.tools.kernel", "-f", "{connection_file}"],
            "display_name": "dl", "language": "dl", "interrupt_mode": "signal",
            "metadata": {"debugger": False}}


def install(user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> str:
    """Install the kernelspec; returns the directory it was written to."""
    try:
        import ipykernel  # noqa: F401  -- the [jupyter] extra: only `dl kernel install` needs it
        from jupyter_client.kernelspec import KernelSpecManager  # the [jupyter] extra
    except ImportError as e:
        raise MissingExtra(f"the Jupyter kernel needs the [jupyter] extra ({e.name} is missing): "
                           "pip install 'dl-lang[jupyter]'") from None
    if sys_prefix:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "kernel.json"), "w", encoding="utf-8") as f:
            json.dump(kernelspec(), f, indent=2)
        return KernelSpecManager().install_kernel_spec(d, NAME, user=user and prefix is None, prefix=prefix)


def in_virtual_environment() -> bool:
    """Whether this Python is a virtual environment's (then --sys-prefix is the natural default)."""
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix)
