"""Copying claims (1-4) and the synthetic positive control, scored from synthetic payloads with known outcomes."""

import math

import pytest

from llm_dynamics_kit.copying.claims import evaluate
from shared.claims import check

NAN = math.nan


def row(dataset, arm, seed, batch, steps=6000, token_step=NAN, copy_step=NAN, loss_step=2000.0, acc=0.01,
        layer_rho=NAN):
    """One stored result row (the keys the claims read); ``"nan"`` strings mimic the results JSON."""
    def stored(x):
        return "nan" if isinstance(x, float) and math.isnan(x) else x

    return {"dataset": dataset, "arm": arm, "seed": seed, "batch_size": batch, "steps": steps,
            "tokens_seen": steps * batch * 128, "token_step": stored(token_step),
            "token_tokens": stored(token_step * batch * 128), "copy_step": stored(copy_step),
            "copy_tokens": stored(copy_step * batch * 128), "loss_step": loss_step,
            "ratio": stored(copy_step / loss_step), "abruptness": 0.5 if math.isfinite(copy_step) else "nan",
            "max_copy_acc": 0.2 if math.isfinite(copy_step) else 0.0, "max_copy_token_acc": acc,
            "layer_rho": stored(layer_rho), "max_induction": 0.5 if math.isfinite(layer_rho) else 0.01}


def payload(rows) -> dict:
    return {"rows": rows, "profile": "full", "config": {"n_layers": 2, "d_model": 64, "seq_len": 128}}


def scored(rows):
    claims, controls = evaluate(payload(rows))
    check(claims, controls)
    return {c["id"]: c for c in claims}, {c["id"]: c for c in controls}


def test_natural_text_without_copying_is_untestable_and_names_the_paper_scale():
    claims, controls = scored([row("stdlib", "vanilla", s, 4, steps=1500) for s in (0, 1)])
    assert set(claims) == {"copying-1-delayed-stdlib", "copying-3-shallow-stdlib"}  # no batch / regulariser arms
    assert all(c["verdict"] == "untestable" for c in claims.values())
    assert "162M" in claims["copying-1-delayed-stdlib"]["why"] and "40B" in claims["copying-1-delayed-stdlib"]["why"]
    assert controls == {}  # the positive control lives on the synthetic condition


def test_grokking_like_copying_in_steps_reproduces_claims_1_to_4():
    rows = []
    for seed, jitter in zip((0, 1, 2), (0, 250, -250)):
        for arm, batch in (("vanilla", 4), ("batch_2B", 8), ("batch_4B", 16)):
            # onset at the same step for every batch (steps, not tokens), 3x after the loss saturated
            rows.append(row("synthetic", arm, seed, batch, token_step=4000.0 + jitter, copy_step=4500.0 + jitter,
                            loss_step=1500.0, acc=0.3, layer_rho=1.0))
        rows.append(row("synthetic", "weight_decay", seed, 4, token_step=3500.0, copy_step=4000.0, loss_step=1500.0,
                        acc=0.5 + jitter / 1e4))
        rows.append(row("synthetic", "attn_dropout", seed, 4, token_step=3500.0, copy_step=4000.0, loss_step=1500.0,
                        acc=0.45 + jitter / 1e4))
    claims, controls = scored(rows)
    assert {i: c["verdict"] for i, c in claims.items()} == {
        "copying-1-delayed-synthetic": "reproduced", "copying-2-steps-synthetic": "reproduced",
        "copying-3-shallow-synthetic": "reproduced", "copying-4-attn_dropout-synthetic": "reproduced",
        "copying-4-weight_decay-synthetic": "reproduced"}
    assert "exact-match" in claims["copying-1-delayed-synthetic"]["metric"]  # every seed has an exact-match onset
    assert controls["copying-pos-synthetic"]["passed"] is True


def test_claim_1_on_the_first_arm_that_copied_and_loss_led_copying_is_not_reproduced():
    rows = [row("synthetic", "vanilla", s, 4) for s in (0, 1)]
    rows += [row("synthetic", "batch_4B", s, 16, token_step=4375.0, loss_step=5000.0, acc=0.13) for s in (0, 1)]
    claim = scored(rows)[0]["copying-1-delayed-synthetic"]
    assert claim["verdict"] == "not_reproduced" and "batch_4B" in claim["metric"] and "per-token" in claim["metric"]


def _batch_rows(vanilla_steps: int, vanilla_onset: float, seeds=(0, 1)):
    onset = [row("synthetic", "batch_4B", s, 16, token_step=4375.0, acc=0.13) for s in seeds]
    return onset + [row("synthetic", "vanilla", s, 4, steps=vanilla_steps, token_step=vanilla_onset,
                        acc=0.13 if math.isfinite(vanilla_onset) else 0.01) for s in seeds]


def test_claim_2_fails_when_a_smaller_batch_trains_past_the_onset_without_copying():
    claim = scored(_batch_rows(6000, NAN))[0]["copying-2-steps-synthetic"]
    assert claim["verdict"] == "not_reproduced" and claim["ours"] == pytest.approx(6000 / 4375)
    assert "tracks tokens" in claim["why"]


def test_claim_2_is_untestable_when_the_arm_without_onset_stopped_too_early():
    claim = scored(_batch_rows(5000, NAN))[0]["copying-2-steps-synthetic"]  # 5000 < 1.3 × 4375
    assert claim["verdict"] == "untestable" and "did not train" in claim["why"]


def test_claim_2_onsets_within_tolerance_point_the_papers_way():
    assert scored(_batch_rows(6000, 4500.0))[0]["copying-2-steps-synthetic"]["verdict"] == "direction_only"  # 2 seeds
    assert scored(_batch_rows(6000, 4500.0, seeds=(0, 1, 2)))[0]["copying-2-steps-synthetic"]["verdict"] == "reproduced"


def test_regulariser_that_lowers_accuracy_is_not_reproduced():
    rows = [row("synthetic", "batch_4B", s, 16, token_step=4375.0, acc=0.134) for s in (0, 1, 2)]
    rows += [row("synthetic", "attn_dropout", s, 16, token_step=5250.0, acc=0.10 + s / 1e3) for s in (0, 1, 2)]
    claim = scored(rows)[0]["copying-4-attn_dropout-synthetic"]
    assert claim["verdict"] == "not_reproduced" and claim["baseline_label"] == "batch_4B"


def test_positive_control_fails_when_nothing_copies_on_the_synthetic_stream():
    claims, controls = scored([row("synthetic", "vanilla", s, 4, steps=2500) for s in (0, 1)])
    assert controls["copying-pos-synthetic"]["passed"] is False
    assert claims["copying-1-delayed-synthetic"]["verdict"] == "untestable"
