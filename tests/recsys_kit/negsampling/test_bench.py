import json

import pytest

from recsys_kit.negsampling.bench import BENCHMARK, PROFILES, add_relative_cost, arms, summarise


def _row(sampler, seed, ndcg, cpu):
    return {"setting": "all_positive", "model": "BPR", "sampler": sampler, "seed": seed, "test_ndcg@20": ndcg,
            "train_cpu_s_per_epoch": cpu}


def test_summary_reports_the_ordering_and_costs_without_verdicts():
    rows = [_row("uniform", s, 0.30, 1.0) for s in (0, 1, 2)]
    rows += [_row("dns", 0, 0.32, 2.0), _row("dns", 1, 0.33, 2.0), _row("dns", 2, 0.31, 2.0)]
    rows += [_row("popularity", s, 0.25, 1.1) for s in (0, 1, 2)]
    rows += [_row("dns_mn", 0, 0.35, 2.0), _row("dns_mn", 1, 0.29, 2.0), _row("dns_mn", 2, 0.30, 2.0)]
    add_relative_cost(rows)
    assert rows[3]["cpu_time_vs_uniform"] == pytest.approx(2.0)
    text, extra = summarise(rows)
    assert extra["ordering"]["all_positive/BPR"] == ["dns", "dns_mn", "uniform", "popularity"]
    assert "best mean test NDCG@20 dns 0.3200 vs uniform 0.3000 (2.0x uniform's CPU time/epoch)" in text
    assert "beats uniform" not in text and "Literature" not in text  # verdicts live in claims.py now


def test_profiles_cover_the_families_and_predefined_only_with_known_negatives():
    from recsys_kit.negsampling import SAMPLERS

    full = PROFILES["full"]
    families = {SAMPLERS[s].family for s in full.samplers if s in SAMPLERS}
    assert families == {"static", "dynamic", "adversarial", "reweighting", "knowledge"}
    triples = arms(full)
    assert ("low_ratings_negative", "BPR", "predefined") in triples
    assert ("all_positive", "BPR", "predefined") not in triples
    assert set(full.models) == {"BPR", "LightGCN"}
    assert BENCHMARK.default_seeds("default") == [2020, 2021, 2022]


@pytest.mark.slow
def test_quick_profile_writes_valid_results(tmp_path, monkeypatch):
    from shared.benchmarks import run_benchmark
    from shared.results import read_results

    monkeypatch.chdir(tmp_path)
    path = run_benchmark(BENCHMARK, profile="quick", out=tmp_path / "results")
    data = read_results(path)
    assert data["headline_metric"] == "test_ndcg@20" and data["group_by"] == ["setting", "model", "sampler"]
    samplers = {a["sampler"] for a in data["aggregate"]}
    assert {"uniform", "dns", "recbole_uniform"} <= samplers
    for arm in data["aggregate"]:
        assert 0 < arm["metrics"]["test_ndcg@20"]["mean"] < 1
    assert json.loads(path.read_text())["summary"]
    assert {"ns-bpr-dns", "ns-bpr-popularity"} <= {c["id"] for c in data["claims"]}
    for fig in data["figures"]:
        assert (path.parent / fig["path"]).is_file()


def test_summary_states_speed_targets():
    rows = []
    for seed in (0, 1, 2):
        rows += [_row("uniform", seed, 0.30, 1.0), _row("recbole_uniform", seed, 0.30, 1.25),
                 _row("popularity", seed, 0.25, 1.0), _row("dns", seed, 0.33, 2.0), _row("irgan", seed, 0.29, 5.0)]
        rows += [dict(_row("uniform", seed, 0.35, 4.0), model="LightGCN"), dict(_row("dns", seed, 0.36, 12.0), model="LightGCN")]
    add_relative_cost(rows)
    text, _ = summarise(rows)
    assert "measured ordering: dns > uniform > recbole_uniform > irgan > popularity." in text
    assert "DNS(M=16) costs 3.00x uniform's CPU time per epoch on LightGCN (target <= 2.5x: missed)" in text
    assert "Our uniform sampler costs 0.80x RecBole's built-in uniform sampler per epoch on BPR" in text


def test_full_profile_keeps_the_required_arms():
    full = PROFILES["full"]
    triples = set(arms(full))
    assert {("all_positive", "LightGCN", s) for s in ("uniform", "dns", "mixgcf")} <= triples
    assert {("all_positive", "BPR", s) for s in ("recbole_uniform", "uniform", "irgan", "kgpolicy")} <= triples
    assert len(BENCHMARK.default_seeds("full")) >= 3


def test_full_profile_runs_lightgcn_with_every_sampler_and_the_controls():
    from recsys_kit.negsampling import sampler_names

    full = PROFILES["full"]
    triples = set(arms(full))
    applicable = set(sampler_names()) - {"predefined"}  # predefined only where known negatives exist
    assert {("all_positive", "LightGCN", s) for s in applicable | {"recbole_uniform"}} <= triples
    assert "mcns" in full.samplers and "kgpolicy" in full.samplers
    for profile in ("default", "full"):
        assert {"uniform", "dns"} <= set(PROFILES[profile].controls["samplers"])


def test_control_rows_are_kept_out_of_the_ordering_claims():
    from recsys_kit.negsampling.claims import evaluate

    rows = []
    for seed in (0, 1, 2):
        rows += [_row("uniform", seed, 0.30, 1.0), _row("dns", seed, 0.31 + 0.01 * seed, 2.0)]
        rows += [dict(_row("uniform", seed, 0.20, 1.0), setting="control-planted"),
                 dict(_row("dns", seed, 0.25 + 0.005 * seed, 2.0), setting="control-planted"),
                 dict(_row("uniform", seed, 0.20, 1.0), setting="control-null"),
                 dict(_row("dns", seed, 0.20 + 0.01 * (seed - 1), 2.0), setting="control-null")]
    claims, controls = evaluate({"rows": rows, "profile": "default", "config": {"epochs": 10}})
    by_id = {c["id"]: c for c in controls}
    assert by_id["ns-planted-positive-dns"]["passed"] and by_id["ns-planted-negative-dns"]["passed"]
    dns = next(c for c in claims if c["id"] == "ns-bpr-dns")
    assert abs(dns["ours"] - 0.32) < 1e-9  # the ml-100k rows only
