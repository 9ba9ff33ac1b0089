"""Names in scope during a walk over terms: bind a name, walk under it, put back what it shadowed.

Inference (local types), specialisation (local instances) and the compiler (Python names of
variables) all walk terms with nested binders; they share this one helper.

    scope = Scope()
    old = scope.bind("x", t)    # x is t below this binder
    ...
    scope.restore("x", old)     # x is what it was (or unbound) again
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: typing is not imported at start-up)
    from typing import Any

_MISSING = object()


class Scope(dict):
    """A dict of bindings with shadowing undone in order."""

    def bind(self, key: Any, value: Any) -> Any:
        """Bind `key` to `value`; returns what it shadowed, for `restore`."""
        old = self.get(key, _MISSING)
        self[key] = value
        return old

    def restore(self, key: Any, old: Any) -> None:
        """Undo a `bind` (`old` is what it returned)."""
        if old is _MISSING:
            self.pop(key, None)
        else:
            self[key] = old


MISSING = _MISSING  # what `bind` returns for a name that was not bound
