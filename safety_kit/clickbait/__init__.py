"""Debiased multimodal clickbait detection — a reconstruction of Yu et al., arXiv 2410.07673.

The paper's equations are not public; :mod:`safety_kit.clickbait.model` implements the disentangling network
of brief §2.3 (invariant / scenario-causal / noise factors) with every reconstructed choice as a parameter.
Import from the submodules: ``model`` (DebiasedClickbaitClassifier), ``baselines``, ``environments``,
``data`` (loaders), ``featurize`` (PostFeaturizer), ``synthetic``, ``bench``.
"""
