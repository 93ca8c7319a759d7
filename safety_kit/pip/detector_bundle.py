"""A trained PIP detector on disk: the SVM head plus what is needed to rebuild its feature extractor.

``detector.pkl`` holds the fitted :class:`PIPDetector`, the probes and the backend; the tiny VLM's weights sit
beside it (``tiny_vlm.pt``) and Hugging Face models are referenced by their local checkpoint directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from safety_kit.pip import scenes as sc
from safety_kit.pip.adapters import HFBlip2Adapter, HFInstructBlipAdapter, HFLlavaAdapter, TinyVLMAdapter
from safety_kit.pip.attacks import quantize_8bit
from safety_kit.pip.detector import PIPDetector, detection_metrics
from safety_kit.pip.experiment import TaskSet, attack_set, greedy_answers, make_task_set
from safety_kit.pip.images import list_images, load_image, save_png
from safety_kit.pip.probe_features import ProbeAttentionFeatures
from safety_kit.pip.tiny_vlm import TinyVLMConfig, load_tiny_vlm, pretrained_tiny_vlm, save_tiny_vlm
from shared.errors import ConfigError, DataError
from shared.results import atomic_write_text

FORMAT_VERSION = 1
HF_ADAPTERS = {"blip2": HFBlip2Adapter, "instructblip": HFInstructBlipAdapter, "llava": HFLlavaAdapter}


# the paper's probe questions for real VLMs (brief §2.2); index 0 is its default
HF_DEFAULT_PROBES = ("Is there a clock?", "Is this in the United States?", "Is this photo an action shot?")


@dataclasses.dataclass
class PIPTrainConfig:
    """Everything `paperkits safety pip train` uses (saved as config.yaml beside the detector)."""

    backend: str = "tiny"  # tiny | blip2 | instructblip | llava
    checkpoint: str = ""  # local HF checkpoint directory (HF backends)
    images: str = ""  # folder of clean images (HF backends)
    task_question: str = "what is in the image?"  # the question the attacker targets (HF backends)
    probes: list[str] = dataclasses.field(default_factory=list)  # empty: the backend's default probe
    alarm_k: int = 1
    C: float = 10.0
    kernel: str = "linear"
    standardize: bool = True  # False = official raw features (under-fits a small model, brief §8.4)
    step: int = 1  # 1: first answer token's attention (official); 0: last prompt token
    token_pool: int = 1  # average-pool visual tokens (LLaVA: 2 → 576 to 144)
    # HF backends: pixel normalisation; empty = the checkpoint's image processor (SigLIP: 0.5), else CLIP's
    image_mean: list[float] = dataclasses.field(default_factory=list)
    image_std: list[float] = dataclasses.field(default_factory=list)
    n_train: int = 400  # clean training images (tiny backend; HF: 80% of the folder)
    n_test: int = 200
    eps: float = 8.0  # PGD ε in 1/255 units (brief §3)
    alpha: float = 2.0  # PGD step in 1/255 units
    steps: int = 20
    init: str = "uniform"  # or "official_plus_alpha" (the official constant start)
    attack_loss: str = "sequence"  # CE of the whole clean answer (official `llm`) | "first_token"
    loss_alignment: str = "next_token"  # or "hf431" (the official off-by-one scoring of decoder-only LLMs)
    seed: int = 0
    vlm: TinyVLMConfig = dataclasses.field(default_factory=TinyVLMConfig)

    def __post_init__(self) -> None:
        if self.backend not in ("tiny", *HF_ADAPTERS):
            raise ValueError(f"backend must be 'tiny' or one of {sorted(HF_ADAPTERS)}, got {self.backend!r}")
        if not self.probes:  # the tiny VLM's scenes never contain a purple star; real VLMs get the paper's probe
            self.probes = list(sc.DEFAULT_PROBES[:1] if self.backend == "tiny" else HF_DEFAULT_PROBES[:1])
        if self.attack_loss not in ("sequence", "first_token"):
            raise ValueError(f"attack_loss must be 'sequence' or 'first_token', got {self.attack_loss!r}")
        if self.loss_alignment not in ("next_token", "hf431"):
            raise ValueError(f"loss_alignment must be 'next_token' or 'hf431', got {self.loss_alignment!r}")
        if not 1 <= self.alarm_k <= len(self.probes):
            raise ValueError(f"alarm_k must be between 1 and the number of probes ({len(self.probes)})")


@dataclasses.dataclass
class DetectorBundle:
    """A fitted detector plus the recipe of its feature extractor."""

    detector: PIPDetector
    probes: list[str]
    backend: str = "tiny"
    checkpoint: str = ""
    step: int = 1
    token_pool: int = 1
    image_size: int = 32
    vlm_file: str = "tiny_vlm.pt"
    normalisation: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # HF: image_mean/image_std set
    root: Path | None = None  # folder of detector.pkl (set on load)
    _extractor: Any = dataclasses.field(default=None, repr=False)

    def extractor(self):
        """The probe-attention extractor (loaded once)."""
        if self._extractor is None:
            if self.backend == "tiny":
                model, _ = load_tiny_vlm((self.root or Path(".")) / self.vlm_file)
                self._extractor = TinyVLMAdapter(model, step=self.step)
            else:
                self._extractor = HF_ADAPTERS[self.backend].from_pretrained(
                    self.checkpoint, step=self.step, token_pool=self.token_pool, **self.normalisation)
        return self._extractor

    def features(self, images: torch.Tensor) -> np.ndarray:
        """Detector input for images (N, 3, S, S) in [0, 1] (quantised to 8 bits first)."""
        return ProbeAttentionFeatures(self.extractor(), self.probes).transform(images)

    def score(self, images: torch.Tensor) -> np.ndarray:
        """Detector scores (N,); > 0 means adversarial."""
        return self.detector.decision_function(self.features(images))

    def scan(self, paths: Sequence[str | Path], resize: bool = False,
             threshold: float = 0.0) -> Iterator[dict[str, Any]]:
        """One result per file: verdict (adversarial/clean/error), score; a bad file does not stop the scan."""
        for path in paths:
            try:
                image = load_image(path, self.image_size, resize=resize)
                score = float(self.score(image[None])[0])
            except DataError as err:
                yield {"path": str(path), "verdict": "error", "error": str(err)}
                continue
            yield {"path": str(path), "verdict": "adversarial" if score > threshold else "clean", "score": score}

    def save(self, path: str | Path) -> Path:
        """Pickle the detector and its recipe atomically."""
        path = Path(path)
        payload = {"format": FORMAT_VERSION, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                                 if f.name not in ("root", "_extractor")}}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(payload, handle)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> DetectorBundle:
        """Load a detector written by :meth:`save`; a missing or foreign file is a :class:`DataError`."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"detector file {path} does not exist; train one with `paperkits safety pip train`")
        try:
            with path.open("rb") as handle:
                payload = pickle.load(handle)
        except Exception as err:
            raise DataError(f"{path} is not a PIP detector file ({err})") from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise DataError(f"{path} is not a PIP detector file (format {FORMAT_VERSION}); retrain it")
        payload.pop("format")
        return cls(**payload, root=path.parent)


def _hf_task_sets(config: PIPTrainConfig, adapter) -> tuple[TaskSet, TaskSet]:
    files = list_images(config.images)
    if len(files) < 4:
        raise DataError(f"{config.images} holds {len(files)} images; PIP needs at least 4 (ideally hundreds)")
    images = quantize_8bit(torch.stack([load_image(f, adapter.image_size, resize=True) for f in files]))
    order = np.random.default_rng(config.seed).permutation(len(images))
    cut = max(2, int(0.8 * len(images)))
    sets = []
    for idx in (order[:cut], order[cut:]):
        questions = [config.task_question] * len(idx)
        answers = greedy_answers(adapter, images[idx], questions)
        sets.append(TaskSet(images[idx], questions, answers, np.full(len(idx), -1)))
    return sets[0], sets[1]


def train_detector(config: PIPTrainConfig, out: str | Path) -> tuple[DetectorBundle, dict[str, Any]]:
    """Build clean/PGD training data, fit the detector, and evaluate it on held-out images."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    normalisation: dict[str, list[float]] = {}
    if config.backend == "tiny":
        model, info = pretrained_tiny_vlm(config.vlm)
        save_tiny_vlm(model, info, out / "tiny_vlm.pt")
        adapter = TinyVLMAdapter(model, step=config.step)
        train = make_task_set(model, config.n_train, seed=10_000 + 2 * config.seed)
        test = make_task_set(model, config.n_test, seed=10_001 + 2 * config.seed)
        image_size = model.config.image_size
    else:
        if not config.checkpoint or not config.images:
            raise ConfigError(f"backend {config.backend!r} needs --checkpoint DIR (a local HF checkpoint) and "
                              f"--images FOLDER (clean training images)")
        normalisation = {k: list(v) for k, v in (("image_mean", config.image_mean), ("image_std", config.image_std))
                         if v}
        adapter = HF_ADAPTERS[config.backend].from_pretrained(config.checkpoint, step=config.step,
                                                              token_pool=config.token_pool, **normalisation)
        train, test = _hf_task_sets(config, adapter)
        image_size, info = adapter.image_size, {}
    attack = dict(eps=config.eps / 255, alpha=config.alpha / 255, steps=config.steps, init=config.init,
                  loss=config.attack_loss, alignment=config.loss_alignment)
    train_adv, train_success = attack_set(adapter, train, "pgd", seed=config.seed, desc="PGD train", **attack)
    test_adv, test_success = attack_set(adapter, test, "pgd", seed=config.seed + 1, desc="PGD test", **attack)
    features = ProbeAttentionFeatures(adapter, config.probes)
    X = np.concatenate([features.transform(train.images), features.transform(train_adv)])
    y = np.r_[np.zeros(len(train.images)), np.ones(len(train_adv))]
    detector = PIPDetector(n_probes=len(config.probes), alarm_k=config.alarm_k, C=config.C, kernel=config.kernel,
                           standardize=config.standardize).fit(X, y)
    clean_scores = detector.decision_function(features.transform(test.images))
    adv_scores = detector.decision_function(features.transform(test_adv))
    metrics = detection_metrics(np.r_[np.zeros(len(clean_scores)), np.ones(len(adv_scores))],
                                np.r_[clean_scores, adv_scores])
    metrics.update(train_attack_success=float(train_success.mean()), test_attack_success=float(test_success.mean()),
                   n_train=int(len(y)), n_test=int(len(clean_scores) + len(adv_scores)), vlm=info)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    for i in range(min(4, len(test.images))):  # sample files to try `scan` on
        save_png(test.images[i], out / "examples" / f"clean_{i}.png")
        save_png(test_adv[i], out / "examples" / f"adversarial_{i}.png")
    bundle = DetectorBundle(detector, list(config.probes), config.backend, config.checkpoint, config.step,
                            config.token_pool, image_size, normalisation=normalisation)
    bundle.root, bundle._extractor = out, adapter
    return bundle, metrics
