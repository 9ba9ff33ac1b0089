"""Run-time values and the calling convention shared by every compiled program.

Values are plain Python data:

    Real -> float      Int -> int      Bool -> bool      Unit -> ()
    tuples -> tuple    lists -> list (never mutated once built)
    Array -> numpy.ndarray of float64 (never mutated once built; lang/model/arrays.py)
    String -> Text, a str that remembers the directory of the file it was written in (a data path)
    functions -> Fun

A `Fun` is a flat closure: the compiled body of a lambda of `arity`
parameters (a Python function, lang/evaluator.py) and the values of its free
variables (`captured`, a tuple). Calling it is `fn.body(fn.captured, a1, ..., aN)`.
Partial applications are `Fun`s too (of a `partial_code`), so call sites only
ever compare `fn.arity` with their number of arguments.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any, Callable

from .nodes import field, node


@node(eq=False, slots=False, frozen=False)  # a mutable dataclass, made quickly (start-up)
class Code:
    """A compiled lambda: what every closure made from it shares."""

    arity: int
    body: Callable[..., Any] | None = None  # body(captured, *args); filled in after compiling (recursion)
    free: tuple = ()           # the (name, inst) keys of its captured variables, in order
    lam: Any = None            # the core Lam it was compiled from (None: built into the runtime)
    name: str = "<fun>"
    mode: Any = None           # the language it was compiled for ("primal", "backprop", ...)
    info: dict = field(default_factory=dict)  # per-transform caches (the transformed Code, ...)


class Fun:
    """A function value (a flat closure)."""

    __slots__ = ("arity", "body", "captured", "code")

    def __init__(self, code: Code, captured: tuple):
        self.code = code
        self.arity = code.arity
        self.body = code.body
        self.captured = captured

    def __repr__(self) -> str:
        return f"<fun {self.code.name}/{self.arity}>"


def call1(fn: Fun, a: Any) -> Any:
    """Apply a function value to one argument."""
    if fn.arity == 1:
        return fn.body(fn.captured, a)
    return apply(fn, (a,))


def call2(fn: Fun, a: Any, b: Any) -> Any:
    """Apply a function value to two arguments."""
    if fn.arity == 2:
        return fn.body(fn.captured, a, b)
    return apply(fn, (a, b))


def apply(fn: Fun, args: tuple) -> Any:
    """Apply a function value to any number of arguments: exact, partial or over-application."""
    while True:
        n = fn.arity
        if len(args) == n:
            return fn.body(fn.captured, *args)
        if len(args) < n:
            return Fun(partial_code(len(args), n - len(args)), (fn, args))
        result = fn.body(fn.captured, *args[:n])
        fn, args = result, args[n:]


def partial_code(given: int, remaining: int) -> Code:
    """The code of a partial application `f a1 .. a_given` awaiting `remaining` more arguments.

    Its captured value is (f, (a1, ..)); the body completes the call directly when
    f takes exactly given + remaining arguments (the usual case). The transforms
    map a partial application to itself, with f and its arguments lifted."""
    key = (given, remaining)
    code = _PARTIALS.get(key)
    if code is None:
        new = ", ".join(f"a{i}" for i in range(remaining))
        old = "".join(f"g[{i}], " for i in range(given))
        src = (f"def body(c, {new}):\n"
               f"    fn, g = c\n"
               f"    if fn.arity == {given + remaining}:\n"
               f"        return fn.body(fn.captured, {old}{new})\n"
               f"    return apply(fn, g + ({new},))\n")
        namespace = {"apply": apply}
        exec(src, namespace)
        code = _PARTIALS[key] = Code(remaining, namespace["body"], name="<partial>", mode="partial")
    return code


_PARTIALS: dict[tuple[int, int], Code] = {}  # shared, immutable once made: one per shape


def native(arity: int, fn: Callable, name: str) -> Fun:
    """A function value implemented in Python (the pullback `vjp` returns, ...)."""
    def body(captured: tuple, *args: Any) -> Any:
        return fn(*args)
    return Fun(Code(arity, body, name=name, mode="native"), ())


class Text(str):
    """A String value: a string literal's text, and the directory of the file it is written in (a
    relative data path is relative to it; lang/model/array_data.py)."""

    origin: str = ""

    def __new__(cls, text: str, origin: str = "") -> "Text":
        out = super().__new__(cls, text)
        out.origin = origin
        return out


class _Punct(str):
    """Punctuation that show_value writes between the parts of a value."""


def show_value(v: Any) -> str:
    """A value as the language would write it (docs/reference.md §11–12): 3.0, 7, true, (), (1.0, 2.5), [1.0], <fun>,
    array([1.0, 2.0])."""
    out: list[str] = []
    stack: list = [v]
    while stack:  # iterative: values can be deeply nested lists
        v = stack.pop()
        if type(v) is _Punct:
            out.append(v)
        elif isinstance(v, str):
            out.append('"' + v + '"')
        elif v is True or v is False:
            out.append("true" if v else "false")
        elif type(v) is float:
            out.append(repr(v))
        elif type(v) is int:
            out.append(str(v))
        elif type(v) is tuple:
            if not v:
                out.append("()")
                continue
            stack.append(_Punct(")"))
            for k in range(len(v) - 1, -1, -1):
                stack.append(v[k])
                if k:
                    stack.append(_Punct(", "))
            out.append("(")
        elif type(v) is list:
            stack.append(_Punct("]"))
            for k in range(len(v) - 1, -1, -1):
                stack.append(v[k])
                if k:
                    stack.append(_Punct(", "))
            out.append("[")
        elif isinstance(v, Fun):
            out.append("<fun>")
        elif type(v).__name__ == "ndarray":
            from .arrays import show_array  # numpy: only a program with arrays has one to print
            out.append(show_array(v))
        else:
            out.append(repr(v))
    return "".join(out)
