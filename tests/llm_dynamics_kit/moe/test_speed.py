"""The MoE-layer speed benchmark runs every path at a tiny budget (no timing is asserted)."""

from llm_dynamics_kit.moe.speed import SHAPES, TINY, build_pair, layer_speed


def test_layer_speed_reports_each_shape_with_both_dispatches_and_its_target():
    rows = layer_speed(TINY, repeats=1, threads=1)
    assert [(r["name"], r["dispatch"]) for r in rows] == [(s.name, d) for s in TINY for d in ("auto", "loop")]
    auto = {r["name"]: r for r in rows if r["dispatch"] == "auto"}
    assert auto["tiny-homog"]["path"] == "grouped" and auto["tiny-infer-b1"]["path"] == "loop"
    assert all(r["cost_ratio"] > 0 and r["target_met"] is None for r in rows)  # tiny shapes carry no target
    assert auto["tiny-homog"]["dense_hidden"] == 2 * 2 * 32  # top-2 of experts 2·d wide


def test_the_issue_shapes_carry_their_targets_and_equal_activated_width():
    targets = {s.name: s.target for s in SHAPES}
    assert targets["homog-d512-E8-4k"] == 1.2 and targets["hetero-d512-E8-4k"] == 1.5
    assert targets["homog-d64-E8-1k"] is None and targets["infer-b1-d512-E8"] is None
    moe, dense, width = build_pair(TINY[1])  # Top-P: the dense width is the measured activated width
    assert abs(dense.hidden - width) <= 4 and moe.sizes != sorted(set(moe.sizes))[:1] * 8
