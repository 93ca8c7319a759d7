"""The survey's ordering claims and the hook control, scored on small payloads with known outcomes."""


import pytest

from recsys_kit.negsampling.claims import CLAIMS, NATIVE_UNIFORM, evaluate
from shared.claims import check

SEEDS = (2020, 2021, 2022)
JITTER = (0.002, -0.001, 0.0)


def _rows(model, sampler, level, best_epoch=4, setting="all_positive"):
    return [{"setting": setting, "model": model, "sampler": sampler, "seed": seed, "test_ndcg@20": level + j,
             "best_epoch": best_epoch} for seed, j in zip(SEEDS, JITTER)]


def _payload(levels, lightgcn=None, epochs=10, uniform_best=6, profile="full", jitter_native=False):
    rows = []
    for sampler, level in levels.items():
        rows += _rows("BPR", sampler, level, best_epoch=uniform_best if sampler == "uniform" else 4)
    for sampler, level in (lightgcn or {}).items():
        rows += _rows("LightGCN", sampler, level)
    if jitter_native:  # RecBole's uniform: the same level, a different seed-to-seed wiggle
        for row, wiggle in zip([r for r in rows if r["sampler"] == NATIVE_UNIFORM], (-0.003, 0.004, -0.001)):
            row["test_ndcg@20"] += wiggle
    return {"rows": rows, "profile": profile, "config": {"epochs": epochs}, "extra": {}}


def _by_id(claims):
    return {c["id"]: c for c in claims}


def test_clear_wins_and_losses_get_their_verdicts():
    levels = {"uniform": 0.30, NATIVE_UNIFORM: 0.30, "popularity": 0.25, "dns": 0.33, "dns_mn": 0.34,
              "dens": 0.33, "ahns": 0.27, "srns": 0.32}
    claims, controls = evaluate(_payload(levels, lightgcn={"uniform": 0.31, "dns": 0.33, "mixgcf": 0.34},
                                         jitter_native=True))
    check(claims, controls)
    got = _by_id(claims)
    assert [c["id"] for c in claims] == [spec[0] for spec in CLAIMS]
    for claim_id in ("ns-bpr-dns", "ns-bpr-dns-mn", "ns-bpr-dens", "ns-bpr-srns", "ns-lightgcn-dns",
                     "ns-lightgcn-mixgcf"):
        assert got[claim_id]["verdict"] == "reproduced", claim_id
    assert got["ns-bpr-popularity"]["verdict"] == "reproduced"  # lower than uniform is the paper's direction
    assert got["ns-bpr-popularity"]["higher_is_better"] is False
    assert got["ns-bpr-ahns"]["verdict"] == "not_reproduced" and "untuned" in got["ns-bpr-ahns"]["why"]
    assert got["ns-bpr-dns"]["n_seeds"] == 3 and got["ns-bpr-dns"]["diff"] == pytest.approx(0.03)
    (hook,) = controls
    assert hook["id"] == "ns-hook-bpr" and hook["kind"] == "negative" and hook["passed"] is True


def test_popularity_above_uniform_is_not_reproduced():
    claims, _ = evaluate(_payload({"uniform": 0.30, "popularity": 0.34}))
    assert _by_id(claims)["ns-bpr-popularity"]["verdict"] == "not_reproduced"


def test_arms_a_profile_did_not_run_are_untestable():
    claims, controls = evaluate(_payload({"uniform": 0.30, "dns": 0.33}, profile="default"))
    check(claims, controls)
    got = _by_id(claims)
    assert got["ns-bpr-dns"]["verdict"] == "reproduced"
    for claim_id in ("ns-bpr-srns", "ns-lightgcn-dns", "ns-lightgcn-mixgcf", "ns-bpr-popularity"):
        assert got[claim_id]["verdict"] == "untestable" and "'default' profile" in got[claim_id]["why"]
    assert controls == []  # no RecBole-uniform arm: no hook control


def test_one_seed_gives_direction_only():
    payload = _payload({"uniform": 0.30, "dns": 0.33})
    payload["rows"] = [r for r in payload["rows"] if r["seed"] == 2020]
    assert _by_id(evaluate(payload)[0])["ns-bpr-dns"]["verdict"] == "direction_only"


def test_a_baseline_stopped_by_the_epoch_cap_is_flagged():
    capped = _by_id(evaluate(_payload({"uniform": 0.30, "dns": 0.33}, uniform_best=10))[0])["ns-bpr-dns"]
    free = _by_id(evaluate(_payload({"uniform": 0.30, "dns": 0.33}, uniform_best=6))[0])["ns-bpr-dns"]
    assert "10-epoch cap in every seed" in capped["why"] and "cap" not in free["why"]


def test_the_hook_control_fails_when_our_uniform_differs_from_recbole():
    payload = _payload({"uniform": 0.30, NATIVE_UNIFORM: 0.27})
    (hook,) = evaluate(payload)[1]
    assert hook["passed"] is False and hook["diff"] == pytest.approx(0.03)


def test_native_uniform_name_matches_the_experiment():
    from recsys_kit.negsampling.experiment import NATIVE_UNIFORM as EXPERIMENT_NAME

    assert NATIVE_UNIFORM == EXPERIMENT_NAME


def test_the_benchmark_scores_with_this_module():
    from recsys_kit.negsampling.bench import BENCHMARK

    assert BENCHMARK.score is evaluate
