"""DA-MRS's gain and robustness claims and the w⁺ control, scored on small payloads with known outcomes."""


import pytest

from recsys_kit.damrs.claims import GAINS, ROBUSTNESS, evaluate
from shared.claims import check

SEEDS = (0, 1, 2)
JITTER = (0.002, -0.001, 0.0)


def _rows(dataset, method, recall, ndcg=None, best_epoch=2, **extra):
    return [{"dataset": dataset, "method": method, "seed": s, "test_recall@20": recall + j,
             "test_ndcg@20": (ndcg if ndcg is not None else recall * 0.8) + j, "best_epoch": best_epoch, **extra}
            for s, j in zip(SEEDS, JITTER)]


def _payload(table, profile="default", epochs=4):
    rows = []
    for (dataset, method), recall in table.items():
        rows += _rows(dataset, method, recall)
    return {"rows": rows, "profile": profile, "config": {"epochs": epochs}, "extra": {}}


def _by_id(claims):
    return {c["id"]: c for c in claims}


def test_clear_gains_and_a_real_noise_hit_are_reproduced():
    table = {("clean", "LightGCN"): 0.14, ("clean", "DA-MRS+LightGCN"): 0.16,
             ("add20", "LightGCN"): 0.10, ("add20", "DA-MRS+LightGCN"): 0.15}
    claims, controls = evaluate(_payload(table))
    check(claims, controls)
    got = _by_id(claims)
    assert [c["id"] for c in claims] == [s[0] for s in GAINS] + [s[0] for s in ROBUSTNESS]
    for claim_id in ("damrs-lightgcn-clean-r20", "damrs-lightgcn-clean-n20", "damrs-lightgcn-add20-r20",
                     "damrs-lightgcn-add20-n20", "damrs-robust-add20"):
        assert got[claim_id]["verdict"] == "reproduced", claim_id
    assert got["damrs-robust-add20"]["higher_is_better"] is False  # a smaller drop is the paper's direction
    assert got["damrs-mf-clean-r20"]["verdict"] == "untestable" and "'default' profile" in got["damrs-mf-clean-r20"]["why"]
    assert got["damrs-robust-replace20"]["verdict"] == "untestable"
    assert controls == []  # no injected-pair scores in these rows


def test_a_clear_loss_is_not_reproduced():
    table = {("clean", "LightGCN"): 0.16, ("clean", "DA-MRS+LightGCN"): 0.13}
    got = _by_id(evaluate(_payload(table))[0])
    assert got["damrs-lightgcn-clean-r20"]["verdict"] == "not_reproduced"
    assert "dense" in got["damrs-lightgcn-clean-r20"]["why"]


def test_robustness_is_untestable_when_the_noise_does_not_hurt_the_backbone():
    table = {("clean", "LightGCN"): 0.14, ("clean", "DA-MRS+LightGCN"): 0.14,
             ("add20", "LightGCN"): 0.14, ("add20", "DA-MRS+LightGCN"): 0.15}
    payload = _payload(table)
    for row, wiggle in zip([r for r in payload["rows"] if r["dataset"] == "add20" and r["method"] == "LightGCN"],
                           (0.004, -0.003, 0.001)):
        row["test_recall@20"] += wiggle  # the backbone's drop is seed noise around 0
    claim = _by_id(evaluate(payload)[0])["damrs-robust-add20"]
    check([claim], [])
    assert claim["verdict"] == "untestable" and "precondition" in claim["why"]


def test_a_larger_drop_with_damrs_is_not_reproduced():
    table = {("clean", "LightGCN"): 0.14, ("clean", "DA-MRS+LightGCN"): 0.16,
             ("add20", "LightGCN"): 0.12, ("add20", "DA-MRS+LightGCN"): 0.10}
    assert _by_id(evaluate(_payload(table))[0])["damrs-robust-add20"]["verdict"] == "not_reproduced"


def test_a_capped_backbone_is_flagged():
    table = {("clean", "LightGCN"): 0.14, ("clean", "DA-MRS+LightGCN"): 0.16}
    payload = _payload(table)
    for row in payload["rows"]:
        row["best_epoch"] = 4 if row["method"] == "LightGCN" else 2
    claim = _by_id(evaluate(payload)[0])["damrs-lightgcn-clean-r20"]
    assert "4-epoch cap in every seed" in claim["why"]


def _with_weights(auc):
    payload = _payload({("add20", "LightGCN"): 0.13, ("add20", "DA-MRS+LightGCN"): 0.14})
    for row, a in zip([r for r in payload["rows"] if r["method"] == "DA-MRS+LightGCN"], auc):
        row.update(w_pos_auc=a, w_pos_injected=0.62, w_pos_genuine=0.75, score_auc=0.9)
    return payload


def test_the_weight_control_passes_above_chance_and_fails_at_chance():
    claims, controls = evaluate(_with_weights((0.83, 0.84, 0.82)))
    check(claims, controls)
    (good,) = controls
    assert good["id"] == "damrs-wpos-add20" and good["kind"] == "positive" and good["passed"] is True
    (chance,) = evaluate(_with_weights((0.52, 0.47, 0.50)))[1]
    assert chance["passed"] is False


@pytest.mark.parametrize("missing", ["add20", "clean"])
def test_missing_datasets_are_untestable(missing):
    table = {("clean", "LightGCN"): 0.14, ("clean", "DA-MRS+LightGCN"): 0.16,
             ("add20", "LightGCN"): 0.10, ("add20", "DA-MRS+LightGCN"): 0.15}
    payload = _payload({k: v for k, v in table.items() if k[0] != missing})
    claims, controls = evaluate(payload)
    check(claims, controls)
    assert _by_id(claims)["damrs-robust-add20"]["verdict"] == "untestable"


def test_the_benchmark_scores_with_this_module():
    from recsys_kit.damrs.bench import BENCHMARK

    assert BENCHMARK.score is evaluate
