"""Reading a program's file: a regular file of bounded size, or a reason why not (docs/reference.md, Limits).

A path given to dl (on the command line, in an `import`, to the REPL's `:load`) may name anything:
a FIFO (open() would block until a writer comes), /dev/zero (read() would fill memory), /dev/null
(an empty module, silently), a symbolic link loop, a directory, or a file of gigabytes. The file is
opened without blocking and checked on its descriptor (no race between a check and the open), and
read only if it is a regular file no bigger than MAX_SOURCE_BYTES.

    read_source("/dev/zero")  ->  Unreadable("it is a character device, not a regular file")
"""
from __future__ import annotations

import errno
import os
import stat

MAX_SOURCE_BYTES = 10_000_000  # 10 MB: ~300,000 lines of generated definitions (a 10^4-line program is ~300 KB)


class Unreadable(Exception):
    """A path that is not a readable program file; the message says what it is instead."""


def _kind(mode: int) -> str | None:
    """What a file that is not a regular file is, in words (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a regular file"
    if stat.S_ISCHR(mode):
        return "a character device, not a regular file"
    if stat.S_ISBLK(mode):
        return "a block device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    return "not a regular file"


def _reason(e: OSError) -> str:
    """An OSError in words a user can act on."""
    match e.errno:
        case errno.ENOENT:
            return "no such file"
        case errno.ELOOP:
            return "a loop of symbolic links"
        case errno.EISDIR:
            return "a directory, not a file"
        case errno.EACCES | errno.EPERM:
            return "permission denied"
    return e.strerror or str(e)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 10**6 else f"{n} bytes"


def read_source(path: str) -> bytes:
    """The bytes of the program file `path`, or Unreadable saying what `path` is instead."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise Unreadable(_reason(e)) from None
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind is not None:
            raise Unreadable(kind)
        if info.st_size > MAX_SOURCE_BYTES:
            raise Unreadable(f"it is {_size(info.st_size)}; a source file may be at most {_size(MAX_SOURCE_BYTES)}")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):  # (a file that grows while it is read is cut at the limit)
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_SOURCE_BYTES:
                raise Unreadable(f"it grew past {_size(MAX_SOURCE_BYTES)} while it was read; a source file may be "
                                 f"at most {_size(MAX_SOURCE_BYTES)}")
        return b"".join(chunks)
    except OSError as e:
        raise Unreadable(_reason(e)) from None
    finally:
        os.close(fd)


def unreadable(path: str) -> str | None:
    """Why `path` cannot be run as a program (None: it can be read), without reading it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        return _reason(e)
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    kind = _kind(info.st_mode)
    if kind is None and info.st_size > MAX_SOURCE_BYTES:
        return f"it is {_size(info.st_size)}; a source file may be at most {_size(MAX_SOURCE_BYTES)}"
    return kind
