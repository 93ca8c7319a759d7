"""Build DA-MRS dataset folders for ml-100k: the clean split, and seeded noisy copies with their records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit.damrs.data import (
    chronological_split,
    ml100k_interactions,
    read_manifest,
    read_split,
    write_manifest,
    write_split,
)
from recsys_kit.damrs.noise import add_interactions, delete_interactions, replace_modality_rows
from recsys_kit.data.ml100k_features import MODALITIES, build_ml100k_features
from shared.errors import ConfigError
from shared.results import atomic_write_text

INJECTED_FILE = "injected.tsv"


def prepare_ml100k_clean(root: str | Path, name: str = "ml100k-clean", modalities=MODALITIES) -> Path:
    """Chronological 80/10/10 split of the shipped ml-100k plus the cached text/genre/KG features."""
    folder = Path(root) / name
    if (folder / f"{name}.test.inter").is_file() and (folder / "modalities.json").is_file():
        return folder
    frame = chronological_split(ml100k_interactions())
    write_split(frame, root, name)
    paths = build_ml100k_features(modalities=modalities)
    write_manifest(folder, [{"name": m, "file": str(paths[m]), "tokens": str(paths["tokens"])} for m in modalities])
    return folder


def noisy_copy(clean: str | Path, scenario: str, seed: int, root: str | Path | None = None) -> Path:
    """A noisy copy of a dataset folder: ``add<r>``, ``delete<r>`` or ``replace<r>`` (r in percent).

    Feedback noise writes the injected/deleted pairs to ``injected.tsv``; content noise writes new feature
    files (every modality independently) and ``replaced_<modality>.tsv`` (row, source row).
    """
    clean = Path(clean)
    kind = scenario.rstrip("0123456789")
    try:
        ratio = int(scenario[len(kind):]) / 100.0
    except ValueError as err:
        raise ConfigError(f"noise scenario must look like add20, delete20 or replace20, got {scenario!r}") from err
    name = f"{clean.name}-{scenario}-s{seed}"
    root = Path(root) if root is not None else clean.parent
    folder = root / name
    if (folder / "modalities.json").is_file():
        return folder
    frame = read_split(clean)
    manifest = read_manifest(clean)
    if kind in ("add", "delete"):
        noise = (add_interactions if kind == "add" else delete_interactions)(frame, ratio, seed)
        write_split(noise.frame, root, name)
        atomic_write_text(folder / INJECTED_FILE, noise.injected.to_csv(sep="\t", index=False))
    elif kind == "replace":
        write_split(frame, root, name)
        for offset, entry in enumerate(manifest):
            features = np.load(entry["file"])
            noise = replace_modality_rows(features, ratio, seed * 1000 + offset)
            target = folder / f"{entry['name']}.npy"
            np.save(target, noise.features)
            record = pd.DataFrame({"row": noise.replaced_rows, "source_row": noise.source_rows})
            atomic_write_text(folder / f"replaced_{entry['name']}.tsv", record.to_csv(sep="\t", index=False))
            entry["file"] = str(target)
    else:
        raise ConfigError(f"unknown noise kind {kind!r}; use add, delete or replace")
    write_manifest(folder, manifest)
    return folder


def read_injected(folder: str | Path) -> pd.DataFrame:
    """The injected (user_id, item_id) pairs of a feedback-noise folder (tokens as strings)."""
    return pd.read_csv(Path(folder) / INJECTED_FILE, sep="\t", dtype=str)
