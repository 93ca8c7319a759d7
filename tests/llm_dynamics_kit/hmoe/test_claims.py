"""HMoE claims scored from synthetic result payloads with known outcomes."""



from llm_dynamics_kit.hmoe.claims import evaluate
from shared.claims import check

NOISE = (0.0, 0.01, -0.01)  # per-seed jitter: three seeds with a small spread


def payload(sign: int = 1, arms=None, seeds=(0, 1, 2), dataset="stdlib") -> dict:
    """Rows whose every claim points the paper's way (``sign=1``) or the other way (``sign=-1``), clearly."""
    values = {  # arm -> metric -> value for sign=+1
        "moe_topk_lb": {"val_loss_matched_flops": 5.40, "val_loss": 5.40, "activated_params": 214_336.0,
                        "activated_ffn_hidden": 128.0, "experts_per_token": 2.0, "rarity_slope": 0.0},
        "hmoe_topk_none": {"val_loss_matched_flops": 5.45, "val_loss": 5.40, "size_activation_rho": 0.6,
                           "activated_ffn_hidden": 140.0, "experts_per_token": 2.0, "rarity_slope": 0.1},
        "hmoe_topk_pp": {"val_loss_matched_flops": 5.30, "val_loss": 5.30, "size_activation_rho": -0.7,
                         "activated_ffn_hidden": 112.0, "experts_per_token": 2.0, "rarity_slope": 2.0},
        "hmoe_topp_pp_ent": {"val_loss_matched_flops": 5.35, "activated_params": 180_000.0, "experts_per_token": 1.1,
                             "experts_per_token_rebound": 0.05},
        "hmoe_topp_pp": {"val_loss_matched_flops": 5.35, "activated_params": 190_000.0, "experts_per_token": 1.6,
                         "experts_per_token_rebound": 0.6},
    }
    if sign < 0:  # mirror every comparison around its baseline
        values["hmoe_topk_none"]["size_activation_rho"] = -0.6
        values["hmoe_topk_pp"].update(size_activation_rho=0.7, rarity_slope=-2.0, val_loss_matched_flops=5.55)
        values["hmoe_topp_pp_ent"].update(activated_params=240_000.0, experts_per_token_rebound=0.9)
    rows = []
    for arm in arms or values:
        for seed in seeds:
            rows.append({"dataset": dataset, "arm": arm, "seed": seed, "train_flops": 5.6e10,
                         **{k: v + NOISE[seed % 3] * (abs(v) if k == "activated_params" else 1)
                            for k, v in values[arm].items()}})
    return {"rows": rows, "profile": "default", "config": {"total_hidden": 512, "steps": 60,
                                                           "model": {"d_model": 64, "n_layers": 2, "vocab_size": 1024}},
            "extra": {}}


def verdicts(data: dict) -> dict[str, str]:
    claims, controls = evaluate(data)
    check(claims, controls)
    assert controls == []
    return {c["id"]: c["verdict"] for c in claims}


def test_clear_wins_reproduce_every_claim():
    assert verdicts(payload(+1)) == {
        "hmoe-matthew-stdlib": "reproduced", "hmoe-rebalance-stdlib": "reproduced", "hmoe-pp-loss-stdlib": "reproduced",
        "hmoe-flops-stdlib": "reproduced", "hmoe-topp-params-stdlib": "reproduced",
        "hmoe-topp-entropy-stdlib": "reproduced", "hmoe-rarity-stdlib": "reproduced"}


def test_clear_losses_are_not_reproduced():
    assert set(verdicts(payload(-1)).values()) == {"not_reproduced"}


def test_two_seeds_give_direction_only_and_missing_arms_drop_their_claims():
    got = verdicts(payload(+1, arms=["moe_topk_lb", "hmoe_topk_pp"], seeds=(0, 1), dataset="shakespeare"))
    assert got == {"hmoe-rebalance-shakespeare": "direction_only", "hmoe-flops-shakespeare": "direction_only",
                   "hmoe-rarity-shakespeare": "direction_only"}


def test_topp_params_compares_with_homogeneous_topp_when_it_ran():
    data = payload(+1)
    data["rows"] += [{**r, "arm": "moe_topp_lb_ent", "activated_params": 170_000.0} for r in data["rows"]
                     if r["arm"] == "moe_topk_lb"]
    claim = next(c for c in evaluate(data)[0] if c["id"] == "hmoe-topp-params-stdlib")
    assert claim["baseline_label"] == "MoE Top-P + LB + entropy" and claim["verdict"] == "not_reproduced"


def test_non_finite_values_are_skipped():
    data = payload(+1, arms=["moe_topk_lb", "hmoe_topk_pp"])
    data["rows"][0]["val_loss_matched_flops"] = "nan"  # as stored in results JSON
    claim = next(c for c in evaluate(data)[0] if c["id"] == "hmoe-flops-stdlib")
    assert claim["n_seeds"] == 2


def test_moe_layer_speed_claims_take_the_worst_targeted_shape_against_its_target():
    def row(name, strategy, ratio, target, dispatch="auto"):
        return {"name": name, "strategy": strategy, "dispatch": dispatch, "cost_ratio": ratio, "target": target,
                "threads": 2, "repeats": 5}

    data = payload(+1)
    data["extra"] = {"throughput": {"moe_layer": [
        row("homog-a", "homogeneous", 1.1, 1.2), row("homog-b", "homogeneous", 1.15, 1.2),
        row("homog-a", "homogeneous", 2.0, 1.2, dispatch="loop"),  # the old path is reported, not scored
        row("small", "homogeneous", 3.0, None), row("hetero", "arithmetic", 1.7, 1.5)]}}
    claims, controls = evaluate(data)
    check(claims, controls)
    speed = {c["id"]: c for c in claims if c["id"].startswith("hmoe-speed")}
    assert speed["hmoe-speed-homogeneous"]["ours"] == 1.15 and speed["hmoe-speed-homogeneous"]["baseline"] == 1.2
    assert speed["hmoe-speed-homogeneous"]["verdict"] == "direction_only"  # one measurement: no interval
    assert speed["hmoe-speed-heterogeneous"]["verdict"] == "not_reproduced"
