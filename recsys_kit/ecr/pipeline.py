"""End-to-end data preparation shared by the CLI, the benchmark and the notebook.

``simulated_data`` (embedded default: the ml-100k simulator) or ``redial_data`` (the real ReDial files under
``$PAPERKITS_DATA/redial``) -> entity linking -> emotion annotation -> recommendation samples + the global
co-occurrence matrix. ``ARMS`` names the paper's Table-3 variants built from the same parts.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import scipy.sparse as sp

from recsys_kit.data.redial import Dialogue, EntityLinker, load_redial
from recsys_kit.ecr.emotion.annotate import AnnotationReport, annotate_corpus, permute_emotions
from recsys_kit.ecr.kg import KnowledgeGraph, load_ml100k_kg, load_unicrs_kg
from recsys_kit.ecr.rec.cooccur import cooccurrence_matrix
from recsys_kit.ecr.rec.model import RecModelConfig
from recsys_kit.ecr.rec.samples import (
    RecSample,
    build_pretrain_samples,
    build_rec_samples,
    conversation_entity_lists,
    require_samples,
)
from recsys_kit.ecr.rec.train import RecTrainConfig
from recsys_kit.ecr.simulator import ReDialSimulator, SimulatorConfig, load_ml100k_ratings
from shared.errors import ConfigError, DataError
from shared.paths import require_data

# arm -> (local emotion fusion, global co-occurrence tokens, loss weighting)   (paper Table 3)
ARMS: dict[str, tuple[bool, bool, str]] = {
    "UniCRS": (False, False, "none"),
    "ECR[L]": (True, False, "none"),
    "ECR[LS]": (True, False, "feedback"),
    "ECR[LG]": (True, True, "none"),
    "ECR": (True, True, "feedback"),
}


def arm_config(arm: str, base: RecTrainConfig) -> RecTrainConfig:
    """``base`` with the emotion pieces of ``arm`` switched on or off."""
    if arm not in ARMS:
        raise ConfigError(f"unknown arm {arm!r}; choose from {list(ARMS)}")
    emotion, global_tokens, weighting = ARMS[arm]
    model = dataclasses.replace(base.model, use_emotion=emotion, use_global=global_tokens)
    return dataclasses.replace(base, model=model, loss_weighting=weighting)


@dataclasses.dataclass
class CRSData:
    """Dialogue splits over one knowledge graph (``latent`` = the simulator's true emotions, if any)."""

    name: str
    kg: KnowledgeGraph
    splits: dict[str, list[Dialogue]]
    latent: dict | None = None


def _split(dialogues: list[Dialogue], fractions: tuple[float, float], seed: int) -> tuple[list, list, list]:
    order = list(range(len(dialogues)))
    random.Random(seed).shuffle(order)
    n_valid, n_test = int(fractions[0] * len(order)), int(fractions[1] * len(order))
    pick = [dialogues[i] for i in order]
    return pick[n_valid + n_test:], pick[:n_valid], pick[n_valid: n_valid + n_test]


def link_all(kg: KnowledgeGraph, splits: Mapping[str, list[Dialogue]]) -> None:
    """Entity-link every message: movies by id, other named non-item entities by gazetteer."""
    items = set(kg.item_ids.tolist())
    linker = EntityLinker(kg.movie_to_entity, {e: n for e, n in kg.entity_names.items() if e not in items})
    for dialogues in splits.values():
        linker.link(dialogues)


def simulated_data(n_dialogues: int = 600, seed: int = 0, kg_min_degree: int = 3,
                   fractions: tuple[float, float] = (0.1, 0.1), **knobs) -> CRSData:
    """The embedded default: a simulated ReDial world over RecBole's ml-100k (80/10/10 split by default).

    ``kg_min_degree`` prunes the Freebase part of the KG (a large value keeps movies, genres and decades only:
    the simulator uses nothing else, and the RGCN gets ~4x cheaper — the suite's small controls).
    ``fractions`` = (validation, test) shares of the dialogues: the benchmark's controls use a large test share,
    because the AUC rests on the few disliked test suggestions and evaluating is cheap while training is not."""
    if len(fractions) != 2 or not all(0 < f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ConfigError(f"fractions must be (validation, test) shares in (0, 1) summing below 1, got {fractions}")
    kg = load_ml100k_kg(min_degree=kg_min_degree)
    world = ReDialSimulator(kg, load_ml100k_ratings(), SimulatorConfig(n_dialogues=n_dialogues, **knobs)).generate(seed)
    train, valid, test = _split(world.dialogues, tuple(fractions), seed)
    splits = {"train": train, "valid": valid, "test": test}
    link_all(kg, splits)
    return CRSData("simulated-ml100k", kg, splits, world.latent_emotions)


DEFAULT_TRAIN_FILES = ("valid_data.jsonl", "train_subset_data.jsonl", "train_data.jsonl")


def _resolve(root: Path, names: Sequence[str | Path], what: str, optional: bool) -> list[Path]:
    paths = [Path(n) if Path(n).is_absolute() else root / n for n in names]
    found = [p for p in paths if p.is_file()]
    if not optional and len(found) < len(paths):
        missing = [str(p) for p in paths if not p.is_file()]
        raise DataError(f"ReDial {what} file(s) {missing} do not exist")
    if not found:
        raise DataError(f"no ReDial {what} file found among {[str(p) for p in paths]}")
    return found


def redial_data(root: str | Path | None = None, max_train: int | None = None, max_test: int | None = None,
                seed: int = 0, on_error: str = "raise", *, train_files: Sequence[str | Path] | None = None,
                valid_files: Sequence[str | Path] | None = None, test_files: Sequence[str | Path] | None = None,
                valid_fraction: float = 0.1, movie_map: str | Path | None = None,
                kg_dir: str | Path | None = None) -> CRSData:
    """The real ReDial subset: train = KGSF valid (901) + a 500-conversation train subset, ``valid_fraction``
    held out for validation; test = the official test split (1,342); the UniCRS DBpedia KG; movies linked through
    KGSF's map.

    File names are relative to ``root`` (or absolute): ``train_files`` (default: whichever of
    :data:`DEFAULT_TRAIN_FILES` exist), ``test_files`` (default ``test_data.jsonl``), ``valid_files`` (a user's own
    validation split; then nothing is held out of train), ``movie_map`` (default ``kgsf_id2entity.json``),
    ``kg_dir`` (default ``root``). Emotion labels stored in the files are kept by :func:`prepare` unless it is
    asked to re-annotate.
    """
    root = Path(root) if root else require_data("redial")
    if not 0 < valid_fraction < 1 and valid_files is None:
        raise ConfigError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    kg = load_unicrs_kg(Path(kg_dir) if kg_dir else root, movie_map)  # fails early without the movie map
    train = []
    for path in _resolve(root, train_files or DEFAULT_TRAIN_FILES, "training", optional=train_files is None):
        train += load_redial(path, on_error=on_error)
    test = []
    for path in _resolve(root, test_files or ["test_data.jsonl"], "test", optional=False):
        test += load_redial(path, on_error=on_error)
    random.Random(seed).shuffle(train)
    if max_train:
        train = train[:max_train]
    if max_test:
        test = test[:max_test]
    if valid_files is not None:
        valid = [d for path in _resolve(root, valid_files, "validation", optional=False)
                 for d in load_redial(path, on_error=on_error)]
    else:
        n_valid = max(1, int(round(valid_fraction * len(train))))
        train, valid = train[n_valid:], train[:n_valid]
    splits = {"train": train, "valid": valid, "test": test}
    link_all(kg, splits)
    return CRSData("redial", kg, splits)


@dataclasses.dataclass
class Prepared:
    """Everything the recommender trains on."""

    data: CRSData
    annotation: AnnotationReport
    samples: dict[str, list[RecSample]]
    pretrain: list[RecSample]
    cooccurrence: sp.csr_matrix


def prepare(data: CRSData, *, annotation: str = "student", featurizer: str = "tfidf", beta: float = 0.1,
            n_f: int = 3, max_entities: int = 32, n_labelled: int = 5082, permute: bool = False,
            seed: int = 0, reannotate: bool = False, mask_emotions: bool = False) -> Prepared:
    """Annotate emotions (in place), optionally permute them (control), build samples and co-occurrence.

    Emotion labels already stored on the dialogues (a user's, or ``annotate --method llm`` output) are kept;
    only turns without one are annotated, unless ``reannotate=True`` re-labels everything. ``mask_emotions``
    removes the emotion cue words from the recommender's text view (the controls; the annotator reads them).
    """
    report, _ = annotate_corpus(data.splits, method=annotation, featurizer=featurizer, n_labelled=n_labelled,
                                seed=seed, latent=data.latent, keep_given=not reannotate)
    if permute:
        for i, dialogues in enumerate(data.splits.values()):
            permute_emotions(dialogues, seed + i)
    items = set(data.kg.item_ids.tolist())
    samples = {name: build_rec_samples(d, data.kg.movie_to_entity, items, beta=beta, n_f=n_f,
                                       max_entities=max_entities, mask_emotions=mask_emotions)
               for name, d in data.splits.items()}
    require_samples(samples["train"], "training")
    pretrain = build_pretrain_samples(data.splits["train"], beta=beta, n_f=n_f, max_entities=max_entities,
                                      mask_emotions=mask_emotions)
    cooccurrence = cooccurrence_matrix(conversation_entity_lists(data.splits["train"], beta, n_f), data.kg.n_entities)
    return Prepared(data, report, samples, pretrain, cooccurrence)


def default_train_config(**overrides) -> RecTrainConfig:
    """CPU-sized training defaults (see :class:`RecTrainConfig`)."""
    return dataclasses.replace(RecTrainConfig(model=RecModelConfig()), **overrides)
