"""The planted controls' design preconditions, on the benchmark's exact generator settings (controls.py).

Checked without training DA-MRS: the content evidence lets the injected pairs be found well above the 0.8 bar,
and the backbone (LightGCN, the benchmark's control training settings) is measurably below the Bayes ranker. The
first design (affinity 0.8, 40% wrong feature rows, 20% injected noise at both densities) fails both.
"""

import pandas as pd
import pytest

from recsys_kit.damrs import controls
from recsys_kit.damrs.controls import DENSITIES, DESIGN, check_design, control_dataset, run_control_arm
from recsys_kit.damrs.data import read_split
from shared.errors import ConfigError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("controls")


def test_content_evidence_finds_the_injected_pairs_well_above_the_bar(root):
    ceilings = check_design(root / "data", list(DENSITIES), [0])
    for density in DENSITIES:
        c = ceilings[f"{density}-s0"]
        assert c["content_auc"] >= DESIGN["content_auc_min"], (density, c)
        assert c["oracle_auc"] >= DESIGN["content_auc_min"], (density, c)  # affinity allows it at all


def test_the_first_design_is_refused_before_training(root, monkeypatch):
    monkeypatch.setitem(controls.CONTROL_DATA, "affinity", 0.8)
    monkeypatch.setitem(controls.CONTROL_DATA, "wrong_edge_share", 0.4)
    with pytest.raises(ConfigError, match="content features alone"):
        check_design(root / "old", ["sparse"], [0])


def test_negative_and_selfloop_controls_share_the_positive_interactions(root):
    def train(control):
        frame = read_split(control_dataset(root / "data", control, "sparse", 0))
        return set(map(tuple, frame.loc[frame["split"] == "train", ["user_id", "item_id"]].to_numpy()))

    positive, selfloop, negative = train("positive"), train("selfloop"), train("negative")
    assert positive == selfloop  # same interactions and injected pairs, only the features differ
    injected = pd.read_csv(control_dataset(root / "data", "positive", "sparse", 0) / "injected.tsv", sep="\t",
                           dtype=str)
    assert negative == positive - set(zip(injected["user_id"], injected["item_id"]))  # clean interactions
    assert control_dataset(root / "data", "positive", "sparse", 0).name.startswith("positive-sparse-s0-")


@pytest.mark.parametrize("density", [
    "sparse",
    "dense",  # ~20 s under load: 60 training interactions per user (200% injected)
])
def test_backbone_is_measurably_below_the_bayes_ranker(root, density):
    row = run_control_arm(root / "data", "positive", density, "LightGCN", 0, 300, root / "runs")
    gap = row["ceiling_oracle_recall@20"] - row["test_recall@20"]
    assert row["epochs_run"] < 300  # early-stopped, not capped: the gap is not undertraining
    assert gap >= DESIGN["headroom_min"], (density, row["ceiling_oracle_recall@20"], row["test_recall@20"])


def test_control_text_names_the_generator_settings_of_its_rows():
    from recsys_kit.damrs.claims import evaluate

    rows = []
    for seed in (0, 1, 2):
        common = {"density": "dense", "train_per_user": 20, "seed": seed, "affinity": 0.95,
                  "wrong_edge_share": 0.2}
        rows += [{**common, "control": "positive", "add_ratio": 2.0, "method": m, "test_recall@20": v + seed / 100,
                  **({"w_pos_auc": 0.9} if m == "DA-MRS" else {})}
                 for m, v in (("LightGCN", 0.6), ("raw-graph", 0.62), ("DA-MRS", 0.65))]
        rows += [{**common, "control": "negative", "add_ratio": 0.0, "method": m, "test_recall@20": 0.6}
                 for m in ("LightGCN", "DA-MRS")]
    _claims, found = evaluate({"rows": rows, "profile": "default", "config": {}})
    setting = {c["id"]: c["setting"] for c in found}
    assert "20% of each modality's items" in setting["damrs-planted-positive-dense"]
    assert "200% random interactions injected" in setting["damrs-planted-positive-dense"]  # not the negative's 0%
    assert "affinity 0.95" in setting["damrs-planted-negative-dense"]
