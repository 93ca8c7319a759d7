"""Corpora, the byte-level BPE tokenizer and memory-mapped token arrays.

A corpus is a list of :class:`Document` split *by document* into train and validation, deterministically:

- ``"stdlib"`` (default, embedded): the ``.py`` sources of the running Python's standard library plus the
  ``pydoc_data`` help topics — text that ships with every Python install (PSF licence). A document goes to
  validation when a hash of its name falls in the validation fraction, so the split does not depend on
  which other files exist. ``max_bytes`` keeps a deterministic hash-ordered subset.
- ``"pysrc"``: every ``.py`` file of the running environment, the standard library plus site-packages (~345 MB
  in the project's venv: torch, transformers, numpy, ...; each package under its own licence, read locally and
  never redistributed), sorted by name and split by file like ``stdlib``; ``max_bytes`` as above,
  ``tokenizer_bytes`` caps the text the BPE is trained on. The fingerprint (a content hash) is in ``meta``.
- ``"shakespeare"``: the 42 modern-spelling works under ``$PAPERKITS_DATA/text/shakespeare_works``
  (``*_gut.txt``; the First-Folio ``*_gut_f.txt`` copies of the same plays are excluded to avoid leakage),
  split by work with a fixed validation list.
- anything else: paths (comma-separated) to text files, folders (read recursively) or JSONL files (one
  object per line with a text field).

The tokenizer is a byte-level BPE trained with HF ``tokenizers`` on the train split and cached by a
fingerprint of the corpus and vocabulary size; token ids are written once to ``.bin`` files and read back
with ``numpy.memmap`` so a large corpus never lives in RAM as Python objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.errors import DataError
from shared.paths import cache_dir, require_data

EOS_TOKEN = "<|endoftext|>"
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".py", ".text")
SHAKESPEARE_DIR = "text/shakespeare_works"
# fixed validation works (4 of 42, a tragedy, a comedy, a history and the sonnets)
SHAKESPEARE_VALID = ("hamlet_gut.txt", "twelfth_night_gut.txt", "richard_ii_gut.txt", "sonnets_gut.txt")


@dataclass
class Document:
    """One unit of the train/valid split (a file, a JSONL record, a play)."""

    name: str
    text: str


@dataclass
class Corpus:
    """Documents split by document into train and valid."""

    name: str
    train: list[Document]
    valid: list[Document]

    def fingerprint(self) -> str:
        """A hash of names and contents; keys the tokenizer and token caches."""
        digest = hashlib.sha256(self.name.encode())
        for split, docs in (("train", self.train), ("valid", self.valid)):
            for doc in docs:
                digest.update(f"{split}\0{doc.name}\0".encode())
                digest.update(hashlib.sha256(doc.text.encode()).digest())
        return digest.hexdigest()[:16]


@dataclass
class DataConfig:
    """Which corpus to use and how to tokenize it."""

    corpus: str = "stdlib"  # "stdlib" | "shakespeare" | comma-separated files/folders/JSONL
    vocab_size: int = 2048
    valid_fraction: float = 0.05  # stdlib / user files: share of documents held out (by name hash)
    max_bytes: int | None = 3_000_000  # cap on corpus size (a deterministic subset); None = everything
    text_key: str = "text"  # JSONL field holding the text
    # train the BPE on a deterministic subset (hash order) of at most this many bytes of the train split (None:
    # all of it); the large "pysrc" corpus uses 20 MB, since BPE training time grows with the text
    tokenizer_bytes: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.vocab_size < 257 + 1:
            raise ValueError(f"vocab_size must exceed the 256 byte symbols + 1 special token, got {self.vocab_size}")


def _hash_unit(name: str) -> float:
    """A stable number in [0, 1) from a name (the split does not depend on Python's hash seed)."""
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 2**32


def split_by_name(docs: Sequence[Document], valid_fraction: float, name: str) -> Corpus:
    """Deterministic by-document split; guarantees at least one document on each side."""
    if not docs:
        raise DataError(f"corpus {name!r} has no documents with text")
    if len(docs) < 2:
        raise DataError(f"corpus {name!r} has a single document; a by-document train/valid split needs at "
                        "least two (add files, or split your text into several files / JSONL records)")
    ranked = sorted(docs, key=lambda d: _hash_unit(d.name))
    valid = [d for d in ranked if _hash_unit(d.name) < valid_fraction] or ranked[:1]
    valid_names = {d.name for d in valid}
    train = [d for d in docs if d.name not in valid_names]
    if not train:
        train, valid = valid[1:], valid[:1]
    return Corpus(name, train=sorted(train, key=lambda d: d.name), valid=sorted(valid, key=lambda d: d.name))


def _cap(docs: list[Document], max_bytes: int | None) -> list[Document]:
    """A deterministic subset (hash order) of at most ``max_bytes`` of text."""
    if max_bytes is None:
        return docs
    kept, total = [], 0
    for doc in sorted(docs, key=lambda d: hashlib.md5(("cap" + d.name).encode()).hexdigest()):
        size = len(doc.text.encode())
        if total + size > max_bytes and kept:
            continue
        kept.append(doc)
        total += size
    return kept


def stdlib_documents() -> list[Document]:
    """The standard library's ``.py`` files (no site-packages) and the ``pydoc_data`` topics."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "__pycache__", "dist-packages"))
        for file in sorted(files):
            if file.endswith(".py"):
                path = Path(folder) / file
                text = path.read_text(encoding="utf-8", errors="replace")
                if text.strip():
                    docs.append(Document(str(path.relative_to(root)), text))
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        topics = {}
    docs += [Document(f"pydoc_data/{key}", value) for key, value in sorted(topics.items()) if value.strip()]
    return docs


def python_source_documents(roots: Sequence[str | Path] | None = None) -> list[Document]:
    """Every ``.py`` file of the running environment: the standard library and each site-packages folder
    (the venv's: torch, transformers, numpy, ...), sorted by name; a file reachable twice is read once.

    Names are ``<root label>/<relative path>`` (``stdlib/…``, ``site-packages/…``) so the by-name train/valid
    split is the same on every machine with the same installed packages.
    """
    if roots is None:
        paths = sysconfig.get_paths()
        roots = [paths["stdlib"], *dict.fromkeys([paths["purelib"], paths["platlib"]])]
    docs, seen = [], set()
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        label = "stdlib" if root == Path(sysconfig.get_paths()["stdlib"]) else root.name
        # the standard library's own site-packages is the base interpreter's, not this environment's
        skip = {"__pycache__"} | ({"site-packages", "dist-packages"} if label == "stdlib" else set())
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for file in sorted(files):
                path = Path(folder) / file
                if not file.endswith(".py") or path.resolve() in seen:
                    continue
                seen.add(path.resolve())
                text = path.read_text(encoding="utf-8", errors="replace")
                if text.strip():
                    docs.append(Document(f"{label}/{path.relative_to(root)}", text))
    if not docs:
        raise DataError(f"no .py files under {[str(r) for r in roots]}")
    return sorted(docs, key=lambda d: d.name)


def python_source_corpus(valid_fraction: float = 0.05, max_bytes: int | None = None) -> Corpus:
    """The ``pysrc`` corpus: the environment's Python sources (stdlib + site-packages), split by file."""
    return split_by_name(_cap(python_source_documents(), max_bytes), valid_fraction, "pysrc")


def stdlib_corpus(valid_fraction: float = 0.05, max_bytes: int | None = 3_000_000) -> Corpus:
    """The embedded default corpus (Python standard library + pydoc topics), split by file."""
    return split_by_name(_cap(stdlib_documents(), max_bytes), valid_fraction, "stdlib")


def shakespeare_corpus(valid: Sequence[str] = SHAKESPEARE_VALID) -> Corpus:
    """The 42 Shakespeare works under ``$PAPERKITS_DATA``, split by work (``valid`` held out)."""
    folder = require_data(SHAKESPEARE_DIR)
    files = sorted(p for p in folder.glob("*_gut.txt"))  # *_gut_f.txt (First Folio) do not match
    if not files:
        raise DataError(f"no *_gut.txt files in {folder}; expected the 42 Shakespeare works")
    docs = [Document(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in files]
    held = set(valid)
    missing = held - {d.name for d in docs}
    if missing:
        raise DataError(f"validation works {sorted(missing)} are not in {folder}")
    return Corpus("shakespeare", train=[d for d in docs if d.name not in held], valid=[d for d in docs if d.name in held])


def _read_jsonl(path: Path, text_key: str) -> list[Document]:
    docs = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number} is not valid JSON ({err.msg}); every line must be one object") from err
            if not isinstance(record, dict) or not isinstance(record.get(text_key), str):
                raise DataError(f"{path}:{number} has no string field {text_key!r}; set data.text_key to the "
                                "field that holds the text")
            if record[text_key].strip():
                docs.append(Document(f"{path.name}:{number}", record[text_key]))
    return docs


def file_documents(paths: Iterable[str | Path], text_key: str = "text") -> list[Document]:
    """Documents from text files, folders (recursive, text-like suffixes) and ``.jsonl`` files."""
    docs: list[Document] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataError(f"corpus path {path} does not exist; pass existing files, folders or JSONL files")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES + (".jsonl",))
            if not files:
                raise DataError(f"folder {path} holds no text files ({', '.join(TEXT_SUFFIXES)}, .jsonl)")
        else:
            files = [path]
        for file in files:
            if file.suffix == ".jsonl":
                docs += _read_jsonl(file, text_key)
            else:
                text = file.read_text(encoding="utf-8", errors="replace")
                if text.strip():
                    docs.append(Document(str(file), text))
    return docs



def benchmark_corpora(vocab_size: int, max_bytes: int | None, stdlib_arms: Sequence[str],
                      shakespeare_arms: Sequence[str] = (), corpus: str = "stdlib",
                      tokenizer_bytes: int | None = None) -> dict[str, tuple[DataConfig, list[str]]]:
    """The corpora a benchmark trains on: the embedded natural corpus always (``corpus``: ``stdlib``, or the
    environment's Python sources ``pysrc``; the ``stdlib_arms`` run on it), Shakespeare when ``$PAPERKITS_DATA``
    has it and the profile names arms for it. Maps dataset name -> (config, arms)."""
    from shared.paths import has_data

    if corpus not in ("stdlib", "pysrc"):
        raise DataError(f"benchmark corpus must be 'stdlib' or 'pysrc', got {corpus!r}")
    corpora = {corpus: (DataConfig(corpus=corpus, vocab_size=vocab_size, max_bytes=max_bytes,
                                   tokenizer_bytes=tokenizer_bytes), list(stdlib_arms))}
    if shakespeare_arms and has_data(SHAKESPEARE_DIR):
        corpora["shakespeare"] = (DataConfig(corpus="shakespeare", vocab_size=vocab_size), list(shakespeare_arms))
    return corpora

def load_corpus(config: DataConfig) -> Corpus:
    """The corpus named by ``config.corpus`` (see the module docstring)."""
    if config.corpus == "stdlib":
        return stdlib_corpus(config.valid_fraction, config.max_bytes)
    if config.corpus == "shakespeare":
        return shakespeare_corpus()
    if config.corpus == "pysrc":
        return python_source_corpus(config.valid_fraction, config.max_bytes)
    paths = [p.strip() for p in config.corpus.split(",") if p.strip()]
    docs = _cap(file_documents(paths, config.text_key), config.max_bytes)
    if not docs:
        raise DataError(f"corpus {config.corpus!r} contains no text (all files/records are empty)")
    return split_by_name(docs, config.valid_fraction, "files")


# ------------------------------------------------------------------------------------------- tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Train a byte-level BPE (GPT-2 style pre-tokenizer, lossless round trip) with one EOS special token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS_TOKEN], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def cached_tokenizer(corpus: Corpus, vocab_size: int, cache: Path | None = None, train_bytes: int | None = None):
    """The tokenizer for ``corpus`` (trained on its train split once, then loaded from the cache); with
    ``train_bytes``, trained on a deterministic subset of at most that many bytes of the train split."""
    from tokenizers import Tokenizer

    folder = cache or cache_dir("llm", "tokenizers")
    subset = "" if train_bytes is None else f"-t{train_bytes}"
    path = Path(folder) / f"{corpus.name}-{corpus.fingerprint()}-v{vocab_size}{subset}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    docs = corpus.train if train_bytes is None else _cap(corpus.train, train_bytes)
    tokenizer = train_tokenizer((d.text for d in docs), vocab_size)
    tmp = path.with_suffix(".tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)
    return tokenizer


# ----------------------------------------------------------------------------------------- token arrays


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when ids fit, else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def write_tokens(tokenizer, docs: Sequence[Document], path: Path, batch: int = 256) -> np.memmap:
    """Encode documents (EOS after each) into a flat ``.bin`` file, streamed; returns a read-only memmap."""
    eos = tokenizer.token_to_id(EOS_TOKEN)
    dtype = token_dtype(tokenizer.get_vocab_size())
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        for start in range(0, len(docs), batch):
            for enc in tokenizer.encode_batch([d.text for d in docs[start:start + batch]]):
                np.asarray(enc.ids + [eos], dtype=dtype).tofile(handle)
    os.replace(tmp, path)
    return open_tokens(path, dtype)


def open_tokens(path: str | Path, dtype: np.dtype) -> np.memmap:
    """A read-only memmap over a token file."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"token file {path} is empty")
    return np.memmap(path, dtype=dtype, mode="r")


@dataclass
class PreparedData:
    """A tokenized corpus: the tokenizer, train/valid token memmaps and provenance."""

    tokenizer: object
    train: np.ndarray
    valid: np.ndarray
    corpus_name: str
    fingerprint: str
    meta: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()


def prepare_data(config: DataConfig, corpus: Corpus | None = None, cache: Path | None = None) -> PreparedData:
    """Load the corpus, train/load the tokenizer, and tokenize both splits into cached memmaps."""
    corpus = corpus or load_corpus(config)
    if not corpus.train or not corpus.valid:
        raise DataError(f"corpus {corpus.name!r} needs documents in both train and valid splits")
    tokenizer = cached_tokenizer(corpus, config.vocab_size, cache, config.tokenizer_bytes)
    folder = Path(cache or cache_dir("llm", "tokens"))
    subset = "" if config.tokenizer_bytes is None else f"-t{config.tokenizer_bytes}"
    key = f"{corpus.name}-{corpus.fingerprint()}-v{config.vocab_size}{subset}"
    dtype = token_dtype(tokenizer.get_vocab_size())
    arrays = {}
    for split, docs in (("train", corpus.train), ("valid", corpus.valid)):
        path = folder / f"{key}.{split}.bin"
        arrays[split] = open_tokens(path, dtype) if path.is_file() else write_tokens(tokenizer, docs, path)
    meta = {"corpus": corpus.name, "fingerprint": corpus.fingerprint(), "vocab_size": tokenizer.get_vocab_size(),
            "train_documents": len(corpus.train), "valid_documents": len(corpus.valid),
            "train_tokens": int(arrays["train"].shape[0]), "valid_tokens": int(arrays["valid"].shape[0]),
            "train_chars": sum(len(d.text) for d in corpus.train), "tokenizer_bytes": config.tokenizer_bytes}
    return PreparedData(tokenizer, arrays["train"], arrays["valid"], corpus.name, corpus.fingerprint(), meta)


# --------------------------------------------------------------------------------------------- batches


def check_context(tokens: np.ndarray, seq_len: int, split: str) -> None:
    """A clear error when a split is too short for one (seq_len + 1)-token window."""
    if len(tokens) <= seq_len + 1:
        raise DataError(f"the {split} split has {len(tokens)} tokens, fewer than seq_len + 1 = {seq_len + 1}; "
                        "use a shorter context (train.seq_len) or a larger corpus")


def random_batch(tokens: np.ndarray, seq_len: int, batch_size: int, seed: int, step: int,
                 micro: int = 0, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The (inputs, targets) windows of one optimisation step: a pure function of (seed, step, micro, rank).

    Because a batch depends only on its step number, resuming at step s reproduces the exact data order
    without storing a data-loader position.
    """
    rng = np.random.default_rng([seed, step, micro, rank])
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
    window = np.stack([np.asarray(tokens[s:s + seq_len + 1], dtype=np.int64) for s in starts])  # (B, T+1)
    return np.ascontiguousarray(window[:, :-1]), np.ascontiguousarray(window[:, 1:])


def eval_batches(tokens: np.ndarray, seq_len: int, batch_size: int,
                 max_batches: int | None = None) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Consecutive non-overlapping windows from the start of ``tokens`` (a fixed validation set)."""
    n_windows = (len(tokens) - 1) // seq_len
    if max_batches is not None:
        n_windows = min(n_windows, max_batches * batch_size)
    for start in range(0, n_windows, batch_size):
        idx = range(start, min(start + batch_size, n_windows))
        window = np.stack([np.asarray(tokens[i * seq_len:i * seq_len + seq_len + 1], dtype=np.int64) for i in idx])
        yield window[:, :-1], window[:, 1:]


# ------------------------------------------------------------------------------------------ batch sources


def _as_batch(item, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) int64 arrays from one batch: a (B, T+1) array/tensor, an (x, y) pair or an HF-style dict
    with ``input_ids`` (B, T+1) (and optional ``labels`` aligned with it: the targets are ``labels[:, 1:]``)."""
    def array(value) -> np.ndarray:
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        return np.asarray(value)

    if isinstance(item, dict):
        if "input_ids" not in item:
            raise DataError(f"{where}: a dict batch needs an 'input_ids' entry, got keys {sorted(item)}")
        ids = array(item["input_ids"])
        labels = array(item["labels"]) if item.get("labels") is not None else ids
        if ids.ndim != 2 or labels.shape != ids.shape or ids.shape[1] < 2:
            raise DataError(f"{where}: input_ids/labels must both be (batch, T+1) with T >= 1, got "
                            f"{ids.shape} and {labels.shape}")
        x, y = ids[:, :-1], labels[:, 1:]
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        x, y = array(item[0]), array(item[1])
        if x.ndim != 2 or x.shape != y.shape:
            raise DataError(f"{where}: an (inputs, targets) batch needs two equal (batch, T) arrays, got "
                            f"{x.shape} and {y.shape}")
    else:
        window = array(item)
        if window.ndim != 2 or window.shape[1] < 2:
            raise DataError(f"{where}: a batch must be a (batch, T+1) token array, an (inputs, targets) pair or a "
                            f"dict with input_ids; got an array of shape {window.shape}")
        x, y = window[:, :-1], window[:, 1:]
    if not (np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)):
        raise DataError(f"{where}: token batches must hold integer ids, got {x.dtype} / {y.dtype}")
    return np.ascontiguousarray(x, dtype=np.int64), np.ascontiguousarray(y, dtype=np.int64)


class BatchSource:
    """What the trainer draws its batches from: ``source(step, micro, rank) -> (inputs, targets)``.

    Built by :func:`batch_source` from a flat token stream (random windows, the default), a map-style dataset of
    token sequences (``len`` + indexing, e.g. a ``torch.utils.data.Dataset``: each item one (T+1,) sequence or
    an (x, y) pair; batches sampled by a pure function of the step, so resuming is exact) or any iterable of
    whole batches (a generator, an ``IterableDataset``, a ``DataLoader``: consumed in order; a resumed run
    skips the batches already used, which is exact when the iterable restarts identically).
    """

    def __init__(self, fn, kind: str):
        self.fn, self.kind = fn, kind

    def __call__(self, step: int, micro: int = 0, rank: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return self.fn(step, micro, rank)


def batch_source(source, seq_len: int, batch_size: int, seed: int = 0, grad_accum: int = 1) -> BatchSource:
    """Normalise a token stream, a dataset of sequences or an iterable of batches (see :class:`BatchSource`)."""
    if isinstance(source, BatchSource):
        return source
    if isinstance(source, (str, bytes)):
        raise DataError("the training data must be token ids (an array, a dataset or an iterable of batches), not text; "
                        "tokenize it first (llm_dynamics_kit.data.prepare_data)")
    if isinstance(source, np.ndarray) or (hasattr(source, "detach") and getattr(source, "ndim", 0) == 1):
        tokens = source.detach().cpu().numpy() if hasattr(source, "detach") else source
        if tokens.ndim != 1:
            raise DataError(f"a token stream must be 1-D, got shape {tokens.shape}; pass 2-D token batches as an "
                            "iterable of (batch, T+1) arrays")
        check_context(tokens, seq_len, "train")
        return BatchSource(lambda step, micro, rank: random_batch(tokens, seq_len, batch_size, seed, step, micro, rank),
                           "stream")
    try:
        from torch.utils.data import IterableDataset
    except ImportError:  # pragma: no cover - torch is a dependency of the kit
        IterableDataset = ()  # type: ignore[assignment]
    mapped = hasattr(source, "__len__") and hasattr(source, "__getitem__") and not isinstance(source, IterableDataset)
    if mapped:
        n = len(source)
        if n < 1:
            raise DataError("the training dataset is empty")

        def sample(step: int, micro: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
            rng = np.random.default_rng([seed, step, micro, rank])
            items = [source[int(i)] for i in rng.integers(0, n, size=batch_size)]
            if isinstance(items[0], (tuple, list)) and len(items[0]) == 2:
                return _as_batch(([np.asarray(a) for a, _ in items], [np.asarray(b) for _, b in items]),
                                 "training dataset")
            try:
                stacked = np.stack([i.detach().cpu().numpy() if hasattr(i, "detach") else np.asarray(i) for i in items])
            except ValueError as err:
                raise DataError(f"training dataset items differ in length ({err}); every item must be one (T+1,) "
                                "token sequence of the same length (pad or bucket them)") from err
            if stacked.ndim != 2:
                raise DataError(f"each training dataset item must be one (T+1,) token sequence, got items of shape "
                                f"{stacked.shape[1:]}; pass whole batches as an iterable instead")
            return _as_batch(stacked, "training dataset")

        return BatchSource(sample, "dataset")
    if not hasattr(source, "__iter__"):
        raise DataError(f"cannot train on a {type(source).__name__}: pass a 1-D token array, a dataset of token "
                        "sequences or an iterable of (batch, T+1) token batches")
    state = {"iterator": iter(source), "used": 0}

    def draw(step: int, micro: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
        wanted = step * grad_accum + micro  # index of the batch this (step, micro) consumes
        if wanted < state["used"]:
            raise DataError(f"training batch {wanted} was already consumed from the iterable; an iterable batch "
                            "source can only move forward")
        while True:  # skip batches a resumed run already trained on, then take batch ``wanted``
            try:
                item = next(state["iterator"])
            except StopIteration:
                raise DataError(f"the training batch iterable ran out after {state['used']} batches; give an endless "
                                "iterable (e.g. itertools.cycle) or fewer train.steps") from None
            state["used"] += 1
            if state["used"] > wanted:
                return _as_batch(item, f"training batch {wanted}")

    return BatchSource(draw, "iterable")
