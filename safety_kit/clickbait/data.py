"""Clickbait corpora as :class:`Posts`: Webis-Clickbait-17, one-headline-per-line files, generic CSV/JSONL.

Rows with no usable text follow one policy everywhere (``on_error``): ``"raise"`` names the file and row,
``"skip"`` drops them with one warning that counts them.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import ConfigError, DataError

CHAKRABORTY_DIR = "clickbait"
CHAKRABORTY_FILES = ("clickbait_data.gz", "non_clickbait_data.gz")
_POSITIVE = {"1", "1.0", "true", "yes", "clickbait", "bait"}
_NEGATIVE = {"0", "0.0", "false", "no", "no-clickbait", "non-clickbait", "not-clickbait", "notclickbait", "news"}


@dataclasses.dataclass
class Posts:
    """Aligned per-post fields. ``labels`` are 1 = clickbait; ``groups`` is optional metadata (publisher, month,
    source file) usable as given environments; ``images`` are paths, (H, W, 3) arrays or ``None``."""

    texts: list[str]
    descriptions: list[str] | None = None
    images: list[Any] | None = None
    labels: np.ndarray | None = None
    truth_mean: np.ndarray | None = None
    groups: list[str] | None = None
    ids: list[str] | None = None

    def __post_init__(self):
        n = len(self.texts)
        if n == 0:
            raise DataError("no posts: the corpus is empty")
        for name in ("descriptions", "images", "labels", "truth_mean", "groups", "ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise DataError(f"field '{name}' has {len(value)} entries but there are {n} texts")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.ids is None:
            self.ids = [str(i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int] | np.ndarray) -> Posts:
        """The posts at ``index`` (a new object; arrays are copied)."""
        index = np.asarray(index, dtype=np.int64)
        pick = (lambda seq: None if seq is None else [seq[i] for i in index])  # noqa: E731
        return Posts(texts=pick(self.texts), descriptions=pick(self.descriptions), images=pick(self.images),
                     labels=None if self.labels is None else self.labels[index],
                     truth_mean=None if self.truth_mean is None else np.asarray(self.truth_mean)[index],
                     groups=pick(self.groups), ids=pick(self.ids))

    def require_labels(self) -> np.ndarray:
        """The labels, or a DataError saying the corpus is unlabelled."""
        if self.labels is None:
            raise DataError("these posts have no labels; training and evaluation need a 'label' field")
        return self.labels


def parse_label(value: Any, where: str) -> int:
    """0/1, booleans, ``clickbait``/``no-clickbait``, or a truthMean in [0, 1] (≥ 0.5 = bait)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and 0 <= value <= 1:
        return int(value >= 0.5)
    text = str(value).strip().lower()
    if text in _POSITIVE:
        return 1
    if text in _NEGATIVE:
        return 0
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if 0 <= number <= 1:
        return int(number >= 0.5)
    raise DataError(f"{where}: cannot read label {value!r}; use 0/1, true/false or clickbait/no-clickbait")


def _drop_bad_rows(rows: list[dict], source: str, on_error: str) -> list[dict]:
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    good = []
    for i, row in enumerate(rows):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            if on_error == "raise":
                raise DataError(f"{source}: row {i} has no text; fix it or pass on_error='skip' to drop such rows")
            continue
        good.append(row)
    if len(good) < len(rows):
        warnings.warn(f"{source}: skipped {len(rows) - len(good)} of {len(rows)} rows without text", stacklevel=3)
    if not good:
        raise DataError(f"{source}: no row with text")
    return good


def _rows_to_posts(rows: list[dict], *, with_labels: bool, source: str) -> Posts:
    labels = None
    if with_labels:
        labels = np.array([parse_label(r["label"], f"{source} row {i}") for i, r in enumerate(rows)])
    has = (lambda key: any(r.get(key) not in (None, "") for r in rows))  # noqa: E731
    return Posts(
        texts=[r["text"].strip() for r in rows],
        descriptions=[str(r.get("description") or "") for r in rows] if has("description") else None,
        images=[r.get("image") or None for r in rows] if has("image") else None,
        labels=labels,
        truth_mean=np.array([float(r["truth_mean"]) for r in rows]) if all("truth_mean" in r for r in rows) else None,
        groups=[str(r.get("group", "")) for r in rows] if has("group") else None,
        ids=[str(r.get("id", i)) for i, r in enumerate(rows)],
    )


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def load_headline_lines(path: str | Path, label: int | None = None) -> list[str]:
    """Headlines of a one-per-line text file (``.gz`` allowed); blank lines are separators."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"headline file {path} does not exist")
    with _open_text(path) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    if not lines:
        raise DataError(f"headline file {path} holds no headline")
    return lines


def load_headline_corpus(bait: str | Path, non_bait: str | Path) -> Posts:
    """A labelled corpus from one bait file and one non-bait file (one headline per line)."""
    pos, neg = load_headline_lines(bait), load_headline_lines(non_bait)
    # no groups: the source file equals the label here, so it must never serve as an environment
    return Posts(texts=pos + neg, labels=np.array([1] * len(pos) + [0] * len(neg)))


def load_chakraborty(root: str | Path | None = None) -> Posts:
    """Chakraborty et al. (ASONAM 2016) headlines: 15,999 bait + 16,001 non-bait (``$PAPERKITS_DATA/clickbait``)."""
    from shared.paths import require_data

    folder = Path(root) if root is not None else require_data(CHAKRABORTY_DIR)
    return load_headline_corpus(folder / CHAKRABORTY_FILES[0], folder / CHAKRABORTY_FILES[1])


def _read_records(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        records = []
        with path.open(encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path} line {i + 1} is not valid JSON ({err.msg})") from err
                if not isinstance(record, dict):
                    raise DataError(f"{path} line {i + 1} must be a JSON object")
                records.append(record)
        return records
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    raise DataError(f"{path}: unsupported file type '{path.suffix}'; use .csv, .tsv or .jsonl")


def load_table(path: str | Path, *, text: str = "text", label: str | None = "label", image: str | None = "image",
               description: str | None = "description", group: str | None = None, id_field: str | None = "id",
               image_root: str | Path | None = None, on_error: str = "raise", require_labels: bool = True) -> Posts:
    """Posts from a CSV/TSV/JSONL table with a text column and optional label/image/description/group columns.

    Relative image paths are resolved against ``image_root`` (default: the table's folder). ``require_labels``
    False reads unlabelled rows (for prediction).
    """
    path = Path(path)
    records = _read_records(path)
    if not records:
        raise DataError(f"{path} holds no rows")
    if text not in records[0]:
        raise DataError(f"{path}: no '{text}' column (found {sorted(records[0])}); name the text column with text=")
    with_labels = label is not None and label in records[0]
    if require_labels and not with_labels:
        raise DataError(f"{path}: no '{label}' column (found {sorted(records[0])}); name it with label=")
    root = Path(image_root) if image_root is not None else path.parent
    rows = []
    for i, rec in enumerate(records):
        img = rec.get(image) if image else None
        if isinstance(img, str) and img.strip() and not Path(img).is_absolute():
            img = str(root / img)
        row = {"text": rec.get(text), "description": rec.get(description) if description else None,
               "image": img or None, "id": rec.get(id_field, i) if id_field else i,
               "group": rec.get(group) if group else None}
        if with_labels:
            if rec.get(label) in (None, ""):
                if on_error == "raise":
                    raise DataError(f"{path}: row {i} has no label; fix it or pass on_error='skip'")
                continue
            row["label"] = rec[label]
        rows.append(row)
    return _rows_to_posts(_drop_bad_rows(rows, str(path), on_error), with_labels=with_labels, source=str(path))


def _first(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value if v)
    return str(value or "")


def load_webis17(folder: str | Path, *, instances: str = "instances.jsonl", truth: str | None = "truth.jsonl",
                 on_error: str = "raise") -> Posts:
    """Webis-Clickbait-17 (``instances.jsonl`` + ``truth.jsonl`` + ``media/``): text = postText, description =
    targetDescription (or targetTitle), image = first postMedia file, labels from truthClass, truth_mean kept,
    groups = posting month (``YYYY-MM`` from postTimestamp; a natural environment for strategy 'given')."""
    folder = Path(folder)
    inst_path = folder / instances
    records = _read_records(inst_path)
    labels: dict[str, dict] = {}
    if truth is not None and (folder / truth).is_file():
        labels = {str(r.get("id")): r for r in _read_records(folder / truth)}
    elif truth is not None:
        raise DataError(f"{folder / truth} does not exist; pass truth=None to load unlabelled Webis posts")
    rows = []
    for i, rec in enumerate(records):
        if "id" not in rec or "postText" not in rec:
            raise DataError(f"{inst_path} row {i} lacks 'id'/'postText'; is this a Webis-Clickbait-17 instances file?")
        media = rec.get("postMedia") or []
        stamp = str(rec.get("postTimestamp", ""))
        month = stamp[-4:] + "-" + stamp[4:7] if len(stamp) >= 10 else ""
        row = {"id": str(rec["id"]), "text": _first(rec.get("postText")),
               "description": _first(rec.get("targetDescription")) or _first(rec.get("targetTitle")),
               "image": str(folder / media[0]) if media else None, "group": month}
        if labels:
            t = labels.get(row["id"])
            if t is None:
                if on_error == "raise":
                    raise DataError(f"post {row['id']} has no entry in {truth}; pass on_error='skip' to drop it")
                continue
            row["label"] = t.get("truthClass", t.get("truthMean"))
            if "truthMean" in t:
                row["truth_mean"] = float(t["truthMean"])
        rows.append(row)
    return _rows_to_posts(_drop_bad_rows(rows, str(inst_path), on_error), with_labels=bool(labels),
                          source=str(inst_path))


def load_posts(path: str | Path, *, require_labels: bool = True, on_error: str = "raise", **columns: Any) -> Posts:
    """Any supported source: a Webis-17 folder, a folder with the two Chakraborty files, or a CSV/JSONL table."""
    path = Path(path)
    if path.is_dir():
        if (path / "instances.jsonl").is_file():
            return load_webis17(path, truth="truth.jsonl" if require_labels or (path / "truth.jsonl").is_file()
                                else None, on_error=on_error)
        if all((path / name).is_file() for name in CHAKRABORTY_FILES):
            return load_chakraborty(path)
        raise DataError(f"{path} is a folder but holds neither Webis-17 'instances.jsonl' nor the Chakraborty "
                        f"files {CHAKRABORTY_FILES}")
    return load_table(path, require_labels=require_labels, on_error=on_error, **columns)
