import numpy as np
import pytest
import scipy.sparse as sp

from recsys_kit.recbole_compat import recbole_config, recbole_dataset_dir, symmetric_norm_adj
from shared.errors import DataError


def test_norm_adj_matches_dense_formula():
    rng = np.random.default_rng(0)
    dense = (rng.random((5, 7)) < 0.4).astype(np.float32)
    rows, cols = np.nonzero(dense)
    # a duplicated interaction must still count once, as in RecBole's dict-based build
    inter = sp.coo_matrix((np.ones(len(rows) + 1), (np.r_[rows, rows[0]], np.r_[cols, cols[0]])), shape=(5, 7))
    norm, _ = symmetric_norm_adj(inter, 5, 7)
    full = np.zeros((12, 12), dtype=np.float32)
    full[:5, 5:] = dense
    full[5:, :5] = dense.T
    d = full.sum(1) + 1e-7
    expected = np.diag(d**-0.5) @ full @ np.diag(d**-0.5)
    np.testing.assert_allclose(norm.toarray(), expected, rtol=1e-5, atol=1e-6)


def test_lightgcn_trains_and_reloads_on_shipped_ml100k(tmp_path):
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    config = recbole_config("LightGCN", config_dict={
        "epochs": 1, "train_batch_size": 4096, "eval_batch_size": 4096, "checkpoint_dir": str(tmp_path),
        "embedding_size": 16, "n_layers": 1, "topk": [10], "metrics": ["Recall", "NDCG"], "valid_metric": "NDCG@10",
    })
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    from recbole.model.general_recommender import LightGCN

    model = LightGCN(config, train.dataset)
    trainer = Trainer(config, model)
    trainer.fit(train, valid, saved=True, show_progress=False)
    result = trainer.evaluate(test, load_best_model=True)  # reloads RecBole's own checkpoint
    assert 0.0 <= result["ndcg@10"] <= 1.0


def test_missing_dataset_is_data_error(tmp_path):
    with pytest.raises(DataError, match="no RecBole atomic file"):
        recbole_config("BPR", dataset="nothing", data_path=tmp_path)
    assert (recbole_dataset_dir() / "ml-100k.kg").is_file()


def test_presplit_dataset_needs_each_part(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.train.inter").write_text("user_id:token\titem_id:token\n1\t1\n")
    with pytest.raises(DataError, match=r"toy\.valid\.inter"):
        recbole_config("BPR", dataset="toy", data_path=tmp_path,
                       config_dict={"benchmark_filename": ["train", "valid", "test"]})


def test_config_ignores_our_command_line(monkeypatch, caplog):
    """RecBole parses sys.argv as overrides: our CLI's flags must neither leak in nor print its warning."""
    import logging
    import sys

    from recsys_kit.recbole_compat import recbole_config

    monkeypatch.setattr(sys, "argv", ["paperkits", "bench", "damrs", "--profile", "default", "--epochs=999"])
    with caplog.at_level(logging.WARNING):
        config = recbole_config("BPR")
    assert config["epochs"] != 999
    assert "will not be used in RecBole" not in caplog.text
    assert sys.argv[-1] == "--epochs=999"  # restored


def test_importing_a_plugin_patches_recbole_idempotently():
    """Each plug-in module patches RecBole on import (a user's own Config/Trainer then work); twice is harmless."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import importlib, sys
        module = importlib.import_module(sys.argv[1])
        from recbole.model.general_recommender import LightGCN
        from recbole.trainer import trainer
        from recsys_kit import recbole_compat
        assert LightGCN.get_norm_adj_mat is recbole_compat._get_norm_adj_mat
        patched = trainer.torch
        assert patched.load.keywords == {"weights_only": False}
        recbole_compat.patch_graph_models()
        assert trainer.torch is patched and LightGCN.get_norm_adj_mat is recbole_compat._get_norm_adj_mat
        import torch
        assert torch.load is not patched.load  # scoped: user code keeps torch's safe default
        print("ok")
    """)
    for plugin in ("recsys_kit.negsampling.hook", "recsys_kit.damrs"):
        proc = subprocess.run([sys.executable, "-c", code, plugin], capture_output=True, text=True, timeout=120)
        assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
