"""Shared small fixtures for the ECR tests (a tiny simulated world, built once per session)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # the test machine is a loaded 2-core box; one thread is fastest there


@pytest.fixture(scope="session")
def ml100k_kg():
    from recsys_kit.ecr.kg import load_ml100k_kg

    return load_ml100k_kg()


@pytest.fixture(scope="session")
def tiny_prepared():
    from recsys_kit.ecr.pipeline import prepare, simulated_data

    data = simulated_data(60, seed=0)
    return prepare(data, featurizer="tfidf", n_labelled=200, seed=0)
