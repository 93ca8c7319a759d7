"""Every committed results file is valid schema 2 and its verdicts are what today's claims code computes.

``read_results`` re-derives each verdict from its stored numbers (shared.claims.check); scoring the stored rows
again with the benchmark's registered ``score`` must give the same claims and controls — when a claims module
changes, ``make rescore`` (or a rerun) updates the committed files, and this test says which one is out of date.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.benchmarks import discover
from shared.results import read_results

RESULTS = Path(__file__).resolve().parents[1] / "results"
FILES = sorted(p for p in RESULTS.glob("**/*.json") if ".work" not in p.parts)


def test_there_are_committed_results():
    assert FILES, "no committed results under results/"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(RESULTS)) for p in FILES])
def test_committed_verdicts_follow_from_their_rows(path):
    data = read_results(path)
    spec = discover().get(data["benchmark"])
    assert spec is not None and spec.score is not None, f"{data['benchmark']} has no registered claims scorer"
    claims, controls = spec.score(data)
    fresh = [(c["id"], c["verdict"]) for c in claims]
    stored = [(c["id"], c["verdict"]) for c in data["claims"]]
    assert fresh == stored, f"{path.relative_to(RESULTS)} is out of date with its claims code: run make rescore"
    assert [(c["id"], c["passed"]) for c in controls] == [(c["id"], c["passed"]) for c in data["controls"]]
