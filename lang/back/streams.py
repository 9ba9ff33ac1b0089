"""Floats for a [Real] input: a transformed function's body that takes the input's floats, not its dual pairs.

A scalar entry (lang/back/entries.py) differentiating a function of a [Real] injects the input as the list
of dual pairs `[(x_0, 0), (x_1, 1), ..., (x_(n-1), n-1)]` (each real with its sink's identity) and hands it to
←D(f). Where ←D(f)'s body uses its parameter only as the list a fold runs over, taking each element apart
as a pair (W4: `fun xs -> fold (fun acc x -> let (x, x') = acc ... let (x, x') = x ...) init xs`), that list
need not be built: the loop can run over the floats and number them,

    for v6, v7 in a0:                         for v7, v6 in enumerate(a0):      (a0: the floats x themselves)

which binds the same element and the same identity at every step: the same code runs on the same values,
in the same order. A fold's step that grows a chain (lang/back/chains.py) from such an element, with its
sink as the only other parent (`(acc', 1.0, x', w)`: W4's sum), then appends the weight alone: the
parents of a chain's steps are consecutive sinks (a chain grows only at the step right after the one that
grew it last, within one run of the loop), so the first one and the count say them all (`consecutive`).

`raw_list_body(compiler, code)` compiles the body of a one-parameter transformed function once more so,
with the parameter marked `raw` on the writer (`Gen.raw`): the fold's loop (`_fold_loop`,
lang/back/compiler.py) is the only place that may read it, and any other read of it (`length xs`, another
function given xs, a closure capturing it, a self call, a fold that does not take its elements apart)
marks the body unusable, as does a parameter no fold runs over. The result is kept on the code
(`code.info`); None where the rule does not hold, and the entry injects the pairs as before. Nothing else
calls it: the general path (`ADKernel.vjp`), the counting machine, `--no-preaccumulate`, backprop-naive,
`dl watch` and the order-free pass run the body made from the same term for the pairs, unchanged.
"""
from __future__ import annotations

from typing import Callable

from ..model.values import Code
from .compiler import Gen, lambda_chain

RAW_KEY = "raw_list"  # code.info's key for the body (or None; absent: not compiled yet), read by the entries too


def raw_list_body(compiler, code: Code) -> Callable | None:
    """The body of `code` (one parameter, a [Real * ¬Real] of ←D) taking the floats of a [Real] whose element
    k is the dual pair (x_k, k), called as `body(captured, xs)`; None where its parameter is read other than
    by a fold's loop over it (see the module's docstring). Compiled on first call, kept on the code."""
    found = code.info.get(RAW_KEY, False)
    if found is False:
        found = code.info[RAW_KEY] = _compile(compiler, code)
    return found


def _compile(compiler, code: Code) -> Callable | None:
    """The body of `code` compiled with its parameter raw, or None."""
    gen = _written(compiler, code, None)
    if gen is None:
        return None
    body = gen.build(code.name)
    code.info["raw_list_python"] = gen.source  # (for reading, and for tests)
    return body


def raw_list_lines(compiler, code: Code, result: str) -> Gen | None:
    """The same body written as statements that store its value in the local `result`, for a function that
    writes them inside its own (a site's fused entry, lang/back/entries.py): the writer, whose `lines`,
    `prologue` (locals to compute first: the tape), `consts`, `params` (the floats' one) and `c` (the captured
    values) that function provides; None where `raw_list_body` is None."""
    if code.info.get(RAW_KEY) is None:
        return None
    return _written(compiler, code, result)


def _written(compiler, code: Code, result: str | None) -> Gen | None:
    """The writer of the body of `code` with its parameter raw (returning its value, or storing it in
    `result`), or None."""
    if code.arity != 1 or code.lam is None or code.body is None or compiler.counting:
        return None
    params, body = lambda_chain(code.lam)
    if len(params) != 1:
        return None
    gen = compiler.generator(params, None)  # (no self_ref: a self call is an ordinary call of the pairs' body)
    if not hasattr(gen, "raw"):
        return None
    gen.raw = gen.params[0]
    if result is None:
        gen.tail(body, 0)
    else:
        gen.assign(body, result, 0)
    # the captured values in the order the closure holds them (a body that reads them in another order: none)
    if gen.raw_reads != 0 or gen.raw_folds == 0 or tuple(gen.free) != code.free:
        return None
    if result is not None and (gen.loops or gen.stop):  # (statements inside another function: no loop of its own)
        return None
    return gen


__all__ = ["raw_list_body", "raw_list_lines", "RAW_KEY"]
