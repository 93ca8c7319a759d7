"""SSD (arXiv 2410.03440, ICML 2024): switchable sparse–dense pre-training, MoEfication, sparse inference.

Importing this package registers the ``"moefied"`` FFN kind with :mod:`llm_dynamics_kit.model`.
"""

from llm_dynamics_kit.ssd.clustering import (
    Clustering,
    adjusted_rand_index,
    balanced_kmeans,
    matched_agreement,
    partition_similarity,
    random_partition,
    recluster,
)
from llm_dynamics_kit.ssd.controller import SSDConfig, SSDController
from llm_dynamics_kit.ssd.moefied import (
    MoEficationError,
    MoEfiedFFN,
    as_moefied,
    check_moefiable,
    densify,
    fit_routers,
    moefy,
    set_mode,
)
from llm_dynamics_kit.ssd.monitor import ActivationMonitor, activation_stats, plot_monitor, routing_recall
from llm_dynamics_kit.ssd.sparse_infer import choose_path, sparse_ffn

__all__ = [
    "ActivationMonitor", "Clustering", "MoEficationError", "MoEfiedFFN", "SSDConfig", "SSDController",
    "activation_stats", "adjusted_rand_index", "as_moefied", "balanced_kmeans", "check_moefiable", "choose_path",
    "densify", "fit_routers", "matched_agreement", "moefy", "partition_similarity", "plot_monitor", "random_partition",
    "recluster", "routing_recall", "set_mode", "sparse_ffn",
]
