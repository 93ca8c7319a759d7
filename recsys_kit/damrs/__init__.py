"""DA-MRS (KDD 2024): denoising and aligning multi-modal content and user feedback, on RecBole backbones."""

from recsys_kit.damrs.model import DAMRS, DAMRS_DEFAULTS

__all__ = ["DAMRS", "DAMRS_DEFAULTS"]
