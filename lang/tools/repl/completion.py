"""Tab completion, without a terminal: the command word, a command's argument (a path after
:load, a mode after :mode, ...), or a name in scope. The front end wraps `complete` in a
prompt_toolkit Completer.
"""
from __future__ import annotations

import os
import re

from ...front.parser import keywords
from ...modes.table import MODES
from . import session as S
from .commands import COMMANDS, find
from .session import State


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_']*$")


def complete(state: State, text: str) -> tuple[int, list[str]]:
    """Completions for the text before the cursor: (where the completed word starts, candidates)."""
    m = re.match(r"(\s*):(\S*)$", text)
    if m:  # the command word
        return m.end(1), [f":{x.name}" for x in COMMANDS if x.name.startswith(m.group(2))]
    m = re.match(r"\s*:(\S+)\s+", text)
    if m:
        cmd = find(m.group(1))
        kind = cmd.complete if cmd else None
        rest = text[m.end():]
        if kind == "path":
            return m.end(), complete_path(rest)
        if kind != "expr":
            choices = {"mode": MODES, "browse": ("prelude", "builtins", "all"),
                       "command": tuple(x.name for x in COMMANDS)}.get(kind, ())
            return m.end(), [x for x in choices if x.startswith(rest)] if " " not in rest else []
    elif text.lstrip().startswith(":"):
        return len(text), []
    word = _WORD.search(text)
    if not word:
        return len(text), []
    names = sorted(set(S.names_in_scope(state)) | keywords())
    return word.start(), [n for n in names if n.startswith(word.group())]


def complete_path(fragment: str) -> list[str]:
    """Directories and .dl files that complete a path as typed (`~` and a leading quote kept)."""
    quote = '"' if fragment.startswith('"') else ""
    typed = fragment[len(quote):]
    head, base = os.path.split(typed)
    directory = os.path.expanduser(head) if head else "."
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.startswith(base) or (entry.startswith(".") and not base.startswith(".")):
            continue
        full = os.path.join(directory, entry)
        if os.path.isdir(full):
            out.append(quote + os.path.join(head, entry) + "/")
        elif entry.endswith(".dl"):
            out.append(quote + os.path.join(head, entry))
    return out
