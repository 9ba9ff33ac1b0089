"""Where the grammar, the prelude and the cache live, installed or in a checkout.

Paths are strings (os.path): pathlib would bring urllib.parse and ipaddress into every run (start-up)."""
from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the `lang` package


def _data_dir(name: str) -> str:
    """`name` inside the installed package (wheel), else beside it (source checkout)."""
    inside = os.path.join(_PACKAGE, name)
    return inside if os.path.isdir(inside) else os.path.join(os.path.dirname(_PACKAGE), name)


def grammar_path() -> str:
    return os.path.join(_data_dir("grammar"), "dl.lark")


def stdlib_dir() -> str:
    return _data_dir("stdlib")


def prelude_path() -> str:
    return os.path.join(stdlib_dir(), "prelude.dl")


def sha256(data: bytes = b"") -> Any:
    """A SHA-256 hash object: CPython's own implementation when it has one (hashlib would load OpenSSL, a
    noticeable part of start-up, to hash a few files), else hashlib's."""
    try:
        from _sha256 import sha256 as builtin
    except ImportError:
        from hashlib import sha256 as builtin
    return builtin(data)


def cache_dir() -> str | None:
    """A writable per-user cache directory, or None when there is none."""
    base = os.environ.get("DL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dl"
    )
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        return None
    return base if os.access(base, os.W_OK) else None
