"""``ProbeAttentionFeatures``: images → PIP probe-attention features, as a scikit-learn transformer.

Wraps any :class:`safety_kit.pip.adapters.ProbeAttentionExtractor` (tiny VLM or Hugging Face BLIP-2 /
InstructBLIP / LLaVA adapter). ``transform(images)`` returns ``(N, n_probes · L · H · V)``: each probe's
``[L, H, V]`` attention flattened (brief §2.2: no scaling, no log) and the probes side by side, the layout
:class:`safety_kit.pip.detector.PIPDetector` expects. Images are quantised to 8 bits first (``quantize=True``)
so features match what a saved PNG would give.

Not run through ``check_estimator``: its input is an image batch ``(N, 3, H, W)`` and it needs a model, so
sklearn's tabular checks do not apply; it is stateless (``fit`` only records the feature layout), clones and
pickles (a torch model pickles with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class ProbeAttentionFeatures(TransformerMixin, BaseEstimator):
    """Flattened probe-question attention to the visual tokens, one block per probe."""

    def __init__(self, extractor: Any = None, probes: Sequence[str] = ("is there a purple star ?",),
                 quantize: bool = True):
        self.extractor = extractor
        self.probes = probes
        self.quantize = quantize

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: features depend only on the frozen model
        tags.input_tags.three_d_array = True
        return tags

    def fit(self, X: Any, y: Any = None) -> ProbeAttentionFeatures:
        """Record the feature layout (``feature_shape_``: [L, H, V] per probe); nothing is learned."""
        self.feature_shape_ = self._extract(X[:1])[0].shape[1:]
        return self

    def _extract(self, X: Any) -> list[np.ndarray]:
        from safety_kit.pip.adapters import as_image_batch
        from safety_kit.pip.attacks import quantize_8bit
        from shared.errors import ConfigError

        if self.extractor is None:
            raise ConfigError("ProbeAttentionFeatures needs an extractor (e.g. TinyVLMAdapter or HFBlip2Adapter)")
        if isinstance(self.probes, str) or not len(self.probes):
            raise ConfigError(f"probes must be a non-empty list of questions, got {self.probes!r}")
        images = as_image_batch(X)
        if self.quantize:
            images = quantize_8bit(images)
        return [self.extractor.extract(images, probe) for probe in self.probes]

    def transform(self, X: Any) -> np.ndarray:
        """Features ``(N, n_probes · L · H · V)`` of images ``(N, 3, H, W)`` in [0, 1]."""
        blocks = self._extract(X)
        return np.concatenate([b.reshape(len(b), -1) for b in blocks], axis=1)

    def transform_per_probe(self, X: Any) -> np.ndarray:
        """Features ``(N, n_probes, L, H, V)`` (for plots and per-layer analysis)."""
        return np.stack(self._extract(X), axis=1)
