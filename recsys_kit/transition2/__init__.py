"""Transition² (arXiv 2408.08209): cross-domain sequential recommendation over mixed positive/negative feedback.

- :mod:`.data`: build a cross-domain mixed-feedback dataset from any RecBole atomic dataset; ``T2Dataset``.
- :mod:`.model`: ``Transition2``, a RecBole ``SequentialRecommender`` with every ablation switch (brief §3.7).
- :mod:`.evaluate`: per-domain full and sampled ranking metrics, paired significance over users.
- :mod:`.train`: prepare, train with early stopping and resumable checkpoints, evaluate.
- :mod:`.bench`: the ``recsys.transition2`` benchmark; :mod:`.cli`: ``paperkits recsys transition2``.
"""
