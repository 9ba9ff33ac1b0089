"""The benchmark suite's report (benchmarks/run.py), on recorded and made-up results: what the goals are
said to measure, and which disagreements with the reference are expected, and why. (Running the suite
takes minutes; `benchmarks/run.py --quick` is its smoke run.)"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import run as bench  # noqa: E402
from workloads import BY_KEY  # noqa: E402


def test_every_goal_is_in_an_area_that_says_what_it_measures():
    data = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    sizes = {k: v for k, v in data["meta"]["sizes"].items()}
    goals = bench.compute_goals(data["cells"], sizes, data["startup"])
    assert goals and {g["area"] for g in goals} == set(bench.GOAL_AREAS)
    assert all("issue" not in g for g in goals)
    assert all(len(what.split()) >= 6 for what in bench.GOAL_AREAS.values())


def entry(tool: str, error: float):
    return SimpleNamespace(tool=tool, kind="vg", error=error)


def test_finite_differences_on_the_chaotic_map_are_expected_to_disagree():
    found = bench.disagreements(BY_KEY["W2"], 100, [entry("dl", 0.0), entry("fd", 1.0), entry("python", None)])
    assert found == [{"tool": "fd", "kind": "vg", "error": 1.0, "expected": BY_KEY["W2"].fd_fails_from[1]}]
    assert "chaotic" in found[0]["expected"]
    assert bench.disagreements(BY_KEY["W2"], 10, [entry("fd", 1.0)])[0]["expected"] is None  # not at n = 10
    assert bench.disagreements(BY_KEY["W4"], 1000, [entry("fd", 1.0)])[0]["expected"] is None
    assert bench.disagreements(BY_KEY["W2"], 100, [entry("dl", 1e-3)])[0]["expected"] is None


def test_the_summary_explains_goals_and_disagreements():
    chaos = BY_KEY["W2"].fd_fails_from[1]
    data = {
        "meta": {"quick": True, "sizes": {"W2": [10, 100]}, "wall_s": 12.0, "tools": ["python", "dl", "fd"],
                 "missing": ["torch: not installed"]},
        "goals": [{"area": "start-up", "goal": "`dl run` start-up <= 0.25 s", "measured": "0.2 s", "met": True},
                  {"area": "gradient cost", "goal": "W2: v+g / primal <= 5", "measured": "18", "met": False}],
        "cells": [{"workload": "W2", "n": 100, "disagreements": [
            {"tool": "fd", "kind": "vg", "error": 1.0, "expected": chaos},
            {"tool": "dl", "kind": "vg", "error": 0.5, "expected": None}]}],
    }
    text = bench.summary(data, Path("RESULTS-quick.md"), Path("results-quick.json"))
    assert f"  gradient cost: {bench.GOAL_AREAS['gradient cost']}\n    [MISSED] W2: v+g / primal <= 5: 18" in text
    assert f"  start-up: {bench.GOAL_AREAS['start-up']}\n    [met]" in text
    assert "1 unexpected disagreement(s), 1 expected" in text
    assert "  DISAGREES: W2 n=100 dl:vg error 5.0e-01" in text
    assert f"  expected: W2 n=100: finite differences miss the gradient (error up to 1.0e+00): {chaos}" in text
    assert "not measured: torch: not installed" in text and "issue" not in text


def test_the_dl_worker_computes_a_workload():
    """What benchmarks/worker.py runs for dl: W1 = ln x1 + x1 x2 - sin x2 at (2, 5), against its derivatives
    written by hand, (1/x1 + x2, x1 - cos x2)."""
    import math

    import peers
    w = BY_KEY["W1"]
    impls = peers.DL().prepare(w, 1, w.inputs(1))
    value, grad = impls["vg"].fn()
    assert math.isclose(value, math.log(2.0) + 10.0 - math.sin(5.0), rel_tol=1e-12)
    assert math.isclose(grad[0], 0.5 + 5.0, rel_tol=1e-12)
    assert math.isclose(grad[1], 2.0 - math.cos(5.0), rel_tol=1e-12)
    assert peers.DL().count_prims(w, w.inputs(1))["primal"]["prims"] > 0
