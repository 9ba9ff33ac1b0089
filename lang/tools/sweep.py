"""Sweep specifications: `n=10,100,1000` or `n=1..10`, as `dl compare --sweep`, `dl transform --sweep` and
the REPL's `:sweep` write them (no heavy imports: the CLI reads it while parsing its arguments)."""
from __future__ import annotations


def parse_sweep(text: str) -> list[int]:
    """`n=10,100,1000` (also `n=1..10`) into [10, 100, 1000]; ValueError, in words, for anything else."""
    name, eq, values = text.partition("=")
    if name.strip() != "n" or not eq or not values.strip():
        raise ValueError(f"expected n=10,100,1000 or n=1..10, not {text!r}")
    out = []
    for part in values.split(","):
        lo, dots, hi = part.strip().partition("..")
        bounds = [lo, hi] if dots else [lo]
        if not all(b.strip().lstrip("-").isdigit() for b in bounds):
            raise ValueError(f"{part.strip()!r} in {text!r} is not an integer or a range a..b of integers")
        if dots:
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(lo))
    if not out:
        raise ValueError(f"the range in {text!r} is empty")
    return out
