"""Reading and writing the images PIP scans: 8-bit RGB files ↔ float tensors in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shared.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def load_image(path: str | Path, size: int | None = None, resize: bool = False) -> torch.Tensor:
    """One image as (3, H, W) in [0, 1]; a wrong size is an error unless ``resize`` (bicubic, like the paper)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with Image.open(path) as handle:
            handle.load()
            image = handle.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({err.__class__.__name__}: {err}); "
                        f"pass PNG/JPEG files") from err
    if size is not None and image.size != (size, size):
        if not resize:
            raise DataError(f"{path}: image is {image.size[0]}x{image.size[1]} but the detector's model takes "
                            f"{size}x{size}; pass --resize to resize it (bicubic)")
        image = image.resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write (3, H, W) in [0, 1] as an 8-bit PNG (this is the quantisation features are computed after)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    Image.fromarray(array).save(path)
    return path


def list_images(folder: str | Path) -> list[Path]:
    """Image files in ``folder`` (sorted); a missing or empty folder is a :class:`DataError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files
