"""safety_kit.pip.probe_features.ProbeAttentionFeatures: layout, quantisation, Pipeline with PIPDetector."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from safety_kit.pip import scenes as sc
from safety_kit.pip.attacks import quantize_8bit
from safety_kit.pip.detector import PIPDetector
from safety_kit.pip.probe_features import ProbeAttentionFeatures
from shared.errors import ConfigError, DataError


def test_layout_is_probe_blocks_side_by_side(adapter, task_set):
    probes = list(sc.DEFAULT_PROBES)
    features = ProbeAttentionFeatures(adapter, probes).fit(task_set.images)
    c = adapter.model.config
    assert features.feature_shape_ == (c.text_layers, c.text_heads, c.num_query_tokens)
    X = features.transform(task_set.images)
    d = c.text_layers * c.text_heads * c.num_query_tokens
    assert X.shape == (len(task_set.images), 3 * d)
    for j, probe in enumerate(probes):
        expected = adapter.extract(quantize_8bit(task_set.images), probe).reshape(len(X), -1)
        np.testing.assert_allclose(X[:, j * d:(j + 1) * d], expected, rtol=1e-6)
    per_probe = features.transform_per_probe(task_set.images)
    np.testing.assert_allclose(per_probe.reshape(len(X), -1), X)
    assert (X.reshape(len(X), 3, c.text_layers, c.text_heads, -1).sum(-1) <= 1 + 1e-6).all()


def test_quantisation_makes_sub_level_perturbations_invisible(adapter, task_set):
    x = quantize_8bit(task_set.images[:4])
    tiny = (x + 0.3 / 255).clamp(0, 1)  # less than half an 8-bit level: rounds back to x
    features = ProbeAttentionFeatures(adapter, [sc.DEFAULT_PROBES[0]])
    np.testing.assert_array_equal(features.transform(tiny), features.transform(x))
    raw = ProbeAttentionFeatures(adapter, [sc.DEFAULT_PROBES[0]], quantize=False)
    assert not np.array_equal(raw.transform(tiny), raw.transform(x))


def test_pipeline_with_detector_clone_and_pickle(adapter, task_set):
    from safety_kit.pip.experiment import attack_set

    adv, _ = attack_set(adapter, task_set, "pgd", eps=16 / 255)
    images = torch.cat([task_set.images, adv])
    y = np.r_[np.zeros(len(adv)), np.ones(len(adv))]
    pipe = make_pipeline(ProbeAttentionFeatures(adapter, list(sc.DEFAULT_PROBES)),
                         PIPDetector(n_probes=3, alarm_k=2, standardize=True)).fit(images, y)
    assert pipe.score(images, y) > 0.7  # training fit on ε=16 attacks
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(restored.decision_function(images), pipe.decision_function(images), rtol=1e-5)
    assert clone(pipe).get_params()["pipdetector__alarm_k"] == 2


def test_errors_name_the_problem(adapter):
    with pytest.raises(ConfigError, match="extractor"):
        ProbeAttentionFeatures().transform(torch.rand(1, 3, 32, 32))
    with pytest.raises(ConfigError, match="probes"):
        ProbeAttentionFeatures(adapter, "is there a purple star ?").transform(torch.rand(1, 3, 32, 32))
    with pytest.raises(DataError, match="shape"):
        ProbeAttentionFeatures(adapter).transform(torch.rand(2, 32, 32))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        ProbeAttentionFeatures(adapter).transform(torch.rand(1, 3, 32, 32) * 255)
