"""PIP (arXiv 2409.05076): detect adversarial images for VLMs from the attention of an irrelevant probe question.

Public API::

    from safety_kit.pip import PIPDetector, TinyVLMAdapter, HFInstructBlipAdapter, PGDAttack
    from safety_kit.pip.probe_features import ProbeAttentionFeatures

Modules: ``detector`` (the SVM head), ``adapters`` (feature extractors for the tiny VLM and Hugging Face
BLIP-2 / InstructBLIP / LLaVA), ``attacks`` (PGD-L∞, CW-L2, vision-feature, noise control, 8-bit quantisation),
``tiny_vlm`` + ``scenes`` (the embedded model and data), ``experiment`` (building attacked sets),
``detector_bundle`` (saved detectors, ``train``/``scan``), ``bench`` (benchmark ``safety.pip``), ``cli``.
"""

from safety_kit.pip.adapters import (
    HFBlip2Adapter,
    HFInstructBlipAdapter,
    HFLlavaAdapter,
    ProbeAttentionExtractor,
    TinyVLMAdapter,
)
from safety_kit.pip.attacks import CWL2Attack, PGDAttack, quantize_8bit, random_sign_noise
from safety_kit.pip.detector import PIPDetector, detection_metrics

__all__ = ["PIPDetector", "detection_metrics", "ProbeAttentionExtractor", "TinyVLMAdapter", "HFBlip2Adapter",
           "HFInstructBlipAdapter", "HFLlavaAdapter", "PGDAttack", "CWL2Attack", "quantize_8bit",
           "random_sign_noise"]
