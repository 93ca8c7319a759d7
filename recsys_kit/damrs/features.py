"""Multi-modal item features: one ``.npy`` per modality (row = item), validated and mapped to RecBole ids."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.errors import DataError


@dataclasses.dataclass
class Modality:
    """One content modality: a name, an (n_rows, d) float array and the item token of each row."""

    name: str
    features: np.ndarray
    tokens: list[str]


def read_tokens(path: str | Path) -> list[str]:
    """Item tokens, one per line, in feature-row order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"item-token file {path} does not exist; it must list one item token per feature row")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load_modality(path: str | Path, tokens: Sequence[str] | str | Path | None = None,
                  name: str | None = None) -> Modality:
    """Load and validate a modality ``.npy``; ``tokens`` (list or file) names each row's item.

    Without ``tokens`` row ``r`` is item token ``str(r)`` (the MMRec convention: row = itemID).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"modality feature file {path} does not exist")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise DataError(f"{path} is not a plain numeric .npy array ({err})") from err
    if isinstance(tokens, (str, Path)):
        tokens = read_tokens(tokens)
    tokens = [str(t) for t in tokens] if tokens is not None else [str(r) for r in range(len(array))]
    return validate_modality(Modality(name or path.stem, array, tokens), source=str(path))


def validate_modality(modality: Modality, source: str = "") -> Modality:
    """Check shape, finiteness and variance; raise :class:`DataError` naming the fix."""
    where = f"modality {modality.name!r}" + (f" ({source})" if source else "")
    array = np.asarray(modality.features)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{where}: expected a 2-D (items × dims) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{where}: features must be numeric, got dtype {array.dtype}")
    if len(modality.tokens) != array.shape[0]:
        raise DataError(f"{where}: {array.shape[0]} feature rows but {len(modality.tokens)} item tokens; "
                        "the token list must name exactly one item per row")
    if len(set(modality.tokens)) != len(modality.tokens):
        raise DataError(f"{where}: duplicate item tokens in the token list")
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])[:5].tolist()
        raise DataError(f"{where}: {int(bad.sum())} NaN/inf values (first rows {rows}); impute them "
                        "(e.g. with the mean row, MMRec's convention for missing content) before training")
    if float(array.std(axis=0).max()) == 0.0:
        raise DataError(f"{where}: zero variance — every item has the same feature vector, so it carries no "
                        "content and every similarity is equal; drop this modality or fix its extraction")
    modality.features = array.astype(np.float32, copy=False)
    return modality


def align_to_catalogue(modality: Modality, item_tokens: Sequence[str], strict_rows: bool = False) -> np.ndarray:
    """Rows of ``modality`` in RecBole's internal order; ``item_tokens[0]`` is ``[PAD]`` and gets zeros.

    Every catalogue item needs a row (else :class:`DataError`). ``strict_rows`` additionally demands that the
    file has exactly one row per catalogue item (used when rows are implicit item ids, MMRec style).
    """
    catalogue = list(item_tokens)[1:]
    if strict_rows and modality.features.shape[0] != len(catalogue):
        raise DataError(f"modality {modality.name!r}: {modality.features.shape[0]} feature rows but the "
                        f"catalogue has {len(catalogue)} items; row r must be the feature of item r "
                        "(or pass an item-token file that names each row)")
    row_of = {token: row for row, token in enumerate(modality.tokens)}
    missing = [t for t in catalogue if t not in row_of]
    if missing:
        raise DataError(f"modality {modality.name!r}: no feature row for {len(missing)} catalogue item(s) "
                        f"(e.g. {missing[:5]}); the feature file does not match the interaction data")
    out = np.zeros((len(catalogue) + 1, modality.features.shape[1]), dtype=np.float32)
    out[1:] = modality.features[[row_of[t] for t in catalogue]]
    return out
