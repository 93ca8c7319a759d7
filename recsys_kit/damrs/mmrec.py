"""Convert the MMRec data layout (used by DA-MRS, FREEDOM, BM3, …) to RecBole atomic benchmark files.

MMRec: ``<src>/<name>.inter`` — TSV with userID, itemID, rating, timestamp, x_label (0 train, 1 valid,
2 test; ids 0-based) — plus ``image_feat.npy`` / ``text_feat.npy`` (row = itemID). Output: a DA-MRS dataset
folder ``<out_root>/<name>/`` with ``<name>.{train,valid,test}.inter`` (and the union ``<name>.inter``),
the feature files, an ``item_tokens.txt`` naming each feature row, and ``modalities.json``.
As MMRec does at load time, valid/test interactions of users or items absent from training are dropped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit.damrs.data import write_manifest, write_split
from shared.errors import DataError
from shared.results import atomic_write_text

MMREC_COLUMNS = ("userID", "itemID", "x_label")
LABELS = {0: "train", 1: "valid", 2: "test"}


def read_mmrec_inter(path: str | Path) -> pd.DataFrame:
    """An MMRec ``.inter`` file, checked for the columns and labels the layout requires."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MMRec interaction file {path} does not exist")
    frame = pd.read_csv(path, sep="\t")
    missing = [c for c in MMREC_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks MMRec column(s) {missing} (header is {list(frame.columns)}); expected "
                        "tab-separated userID, itemID, rating, timestamp, x_label")
    if frame.empty:
        raise DataError(f"{path} holds no interactions")
    bad = sorted(set(frame["x_label"].unique()) - set(LABELS))
    if bad:
        raise DataError(f"{path}: x_label must be 0 (train), 1 (valid) or 2 (test); found {bad}")
    return frame


def convert_mmrec(src: str | Path, name: str, out_root: str | Path, feature_files: dict[str, str] | None = None,
                  drop_cold: bool = True) -> Path:
    """Convert ``<src>/<name>.inter`` + feature ``.npy`` files; returns the new dataset folder.

    ``feature_files`` maps modality name → file name inside ``src`` (default: every ``*_feat.npy`` there,
    ``image_feat.npy`` → ``image``).
    """
    src = Path(src)
    frame = read_mmrec_inter(src / f"{name}.inter")
    n_items = int(frame["itemID"].max()) + 1
    if feature_files is None:
        feature_files = {p.name[: -len("_feat.npy")]: p.name for p in sorted(src.glob("*_feat.npy"))}
    if not feature_files:
        raise DataError(f"no modality features in {src}: expected image_feat.npy / text_feat.npy (row = itemID)")
    converted = pd.DataFrame({
        "user_id": frame["userID"].astype(int).astype(str),
        "item_id": frame["itemID"].astype(int).astype(str),
        "rating": frame["rating"].astype(float) if "rating" in frame else 1.0,
        "timestamp": frame["timestamp"].astype(float) if "timestamp" in frame else 0.0,
        "split": frame["x_label"].map(LABELS),
    })
    if drop_cold:
        train = converted[converted["split"] == "train"]
        warm = converted["user_id"].isin(set(train["user_id"]))  # MMRec drops unseen users, keeps cold items
        converted = converted[(converted["split"] == "train") | warm]
    folder = write_split(converted.reset_index(drop=True), out_root, name)
    manifest = []
    row_counts = set()
    for modality, file in feature_files.items():
        source = src / file
        if not source.is_file():
            raise DataError(f"feature file {source} does not exist")
        rows = np.load(source, mmap_mode="r").shape[0]
        if rows < n_items:
            raise DataError(f"{source} has {rows} rows but the interactions use itemIDs up to {n_items - 1}; "
                            "MMRec features need one row per itemID")
        target = folder / f"{modality}.npy"
        tmp = folder / f".{modality}.{os.getpid()}.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        manifest.append({"name": modality, "file": target.name, "tokens": "item_tokens.txt"})
        row_counts.add(rows)
    if len(row_counts) != 1:
        raise DataError(f"the feature files of {src} have different row counts {sorted(row_counts)}; "
                        "every modality needs one row per itemID")
    atomic_write_text(folder / "item_tokens.txt", "\n".join(str(r) for r in range(row_counts.pop())) + "\n")
    write_manifest(folder, manifest)
    return folder
