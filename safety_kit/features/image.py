"""Image features as a scikit-learn transformer: pluggable encoder, offline colour/texture statistics default.

The paper encodes thumbnails with a Swin Transformer plus face/object cues (brief §2.1 [rev]); no pretrained
vision weights are available offline, so the default is a 30-d colour/texture/layout statistic (brief §3:
"offline: colour-texture stats") that still sees palette, saturation, text bars and skin-coloured blobs. Any
callable ``encoder(list_of_HxWx3_uint8_arrays) -> (n, d) array`` (e.g. a Swin/CLIP wrapper) can replace it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from shared.errors import ConfigError, DataError

STAT_NAMES = (
    "r_mean", "g_mean", "b_mean", "r_std", "g_std", "b_std", "sat_mean", "sat_std", "val_mean", "val_std",
    "colourfulness", "grad_mean", "grad_std", "edge_density", "horizontal_edge_ratio",
    *(f"hue_{i}" for i in range(8)), *(f"bright_{i}" for i in range(4)), "grey_entropy", "skin_ratio",
)


def load_image(item, size: int) -> np.ndarray:
    """A path or an (H, W, 3)/(H, W) array -> (size, size, 3) uint8; raises DataError when unreadable."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise DataError(f"image file {path} does not exist")
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((size, size))
                return np.asarray(img, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"image file {path} is not a readable image ({err})") from err
    arr = np.asarray(item)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(f"image array must be (H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.shape[:2] != (size, size):
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr[..., :3]).resize((size, size)), dtype=np.uint8)
    return arr[..., :3]


def colour_texture_stats(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the 29 :data:`STAT_NAMES` statistics (float64)."""
    x = img.astype(np.float64) / 255.0  # (H, W, 3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = x.max(axis=2), x.min(axis=2)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-8), 0.0)
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    grey = x.mean(axis=2)
    gy, gx = np.gradient(grey)
    mag = np.hypot(gx, gy)
    edge_density = float((mag > 0.1).mean())
    horizontal = float((np.abs(gy).sum() + 1e-8) / (np.abs(gx).sum() + np.abs(gy).sum() + 2e-8))
    # hue in [0, 1): saturation-weighted 8-bin histogram, so grey pixels do not vote for a colour
    delta = np.maximum(mx - mn, 1e-8)
    hue = np.where(mx == r, ((g - b) / delta) % 6, np.where(mx == g, (b - r) / delta + 2, (r - g) / delta + 4)) / 6.0
    hue_hist = np.bincount(np.minimum((hue * 8).astype(int), 7).ravel(), weights=sat.ravel(), minlength=8)
    hue_hist = hue_hist / max(sat.sum(), 1e-8)
    bright_hist = np.bincount(np.minimum((grey * 4).astype(int), 3).ravel(), minlength=4) / grey.size
    counts = np.bincount(np.minimum((grey * 16).astype(int), 15).ravel(), minlength=16) / grey.size
    entropy = float(-(counts[counts > 0] * np.log2(counts[counts > 0])).sum() / 4.0)
    skin = float(((r > 0.37) & (g > 0.16) & (b > 0.08) & (r > g) & (r > b) & (r - np.minimum(g, b) > 0.06)).mean())
    return np.array([
        r.mean(), g.mean(), b.mean(), r.std(), g.std(), b.std(), sat.mean(), sat.std(), mx.mean(), mx.std(),
        colourfulness, mag.mean(), mag.std(), edge_density, horizontal, *hue_hist, *bright_hist, entropy, skin,
    ])


class ImageFeatures(TransformerMixin, BaseEstimator):
    """Per-post image features from paths or arrays, plus an ``image_present`` column.

    ``encoder``: ``"stats"`` (offline default) or a callable on a list of (size, size, 3) uint8 arrays.
    ``on_missing``: ``"raise"`` (a missing/unreadable image is a DataError naming the row), ``"zeros"`` (warn once,
    zero features and ``image_present = 0``) or ``"zeros-silent"`` (for corpora without images).
    """

    def __init__(self, encoder: str | Callable = "stats", size: int = 32, on_missing: str = "zeros"):
        self.encoder = encoder
        self.size = size
        self.on_missing = on_missing

    def fit(self, X, y=None):
        """Check the settings and find the encoder's width from the first readable image."""
        if self.on_missing not in ("raise", "zeros", "zeros-silent"):
            raise ConfigError(f"on_missing must be 'raise', 'zeros' or 'zeros-silent', got {self.on_missing!r}")
        if self.encoder != "stats" and not callable(self.encoder):
            raise ConfigError("encoder must be 'stats' or a callable(list of images) -> (n, d) array")
        self.n_features_out_ = (len(STAT_NAMES) if self.encoder == "stats" else self._encoder_dim(X)) + 1
        return self

    def _encoder_dim(self, X) -> int:
        for item in X:
            if item is not None:
                return int(np.asarray(self.encoder([load_image(item, self.size)])).shape[1])
        raise DataError("cannot size a custom image encoder: no image in the fitting data")

    def _encode(self, images: list[np.ndarray]) -> np.ndarray:
        if self.encoder == "stats":
            return np.stack([colour_texture_stats(img) for img in images])
        return np.asarray(self.encoder(images), dtype=np.float64)

    def transform(self, X) -> np.ndarray:
        """(n,) paths/arrays/None -> (n, d + 1) float32, last column = image present."""
        if not hasattr(self, "n_features_out_"):
            self.fit(X)
        items = list(X)
        if not items:
            raise DataError("no images to featurise")
        out = np.zeros((len(items), self.n_features_out_), dtype=np.float64)
        loaded, rows, missing = [], [], []
        for i, item in enumerate(items):
            try:
                if item is None or (isinstance(item, str) and not item.strip()):
                    raise DataError("no image given")
                loaded.append(load_image(item, self.size))
                rows.append(i)
            except DataError as err:
                if self.on_missing == "raise":
                    raise DataError(f"row {i}: {err}; pass on_missing='zeros' to featurise it as image-less") from err
                missing.append(i)
        if missing and self.on_missing == "zeros":
            warnings.warn(f"{len(missing)} of {len(items)} rows have no readable image (first: row {missing[0]}); "
                          "their image features are zero and image_present=0", stacklevel=2)
        for start in range(0, len(loaded), 512):
            block = self._encode(loaded[start:start + 512])
            out[rows[start:start + 512], :-1] = block
        out[rows, -1] = 1.0
        return out.astype(np.float32)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Statistic names (or ``img_i``) plus ``image_present``."""
        names = list(STAT_NAMES) if self.encoder == "stats" else [f"img_{i}" for i in range(self.n_features_out_ - 1)]
        return np.array([*names, "image_present"], dtype=object)
