"""``paperkits safety clickbait train|eval|predict``: fit the debiased detector on a corpus, evaluate it, score posts.

A saved model is one pickle holding the fitted :class:`PostFeaturizer` and classifier (``ClickbaitPipeline``),
written atomically; its training config is saved beside it as YAML.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path

import click

from shared.cli import config_option, out_option, seed_option
from shared.errors import ConfigError, DataError


@dataclasses.dataclass
class TrainConfig:
    """Training settings (``--config``/``--set``); model hyper-parameters go to the estimator unchanged."""

    model: str = "debiased"  # debiased | logreg | erm | groupdro | irm | vrex
    text_model: str = "minilm"  # minilm | lexical | path to a sentence-transformers folder
    tfidf_max_features: int = 5000  # headline TF-IDF n-gram group beside the embeddings (0 = none)
    use_images: bool = True
    on_missing_image: str = "zeros"
    environment_field: str = ""  # "group" -> use the loader's group metadata as given environments
    max_epochs: int = 30
    selection: str = "fixed"  # fixed | training_domain | leave_one_environment_out (training.SELECTION_RULES)
    n_environments: int = 4
    environment_strategy: str = "auto"  # auto: the data's environments when environment_field is set, else kmeans
    lambda_inv: float = 1.0
    lambda_noise: float = 0.1
    lambda_orth: float = 0.1
    lambda_env: float = 0.1
    beta_kl: float = 1e-3


@dataclasses.dataclass
class ClickbaitPipeline:
    """A fitted featurizer + classifier; :meth:`predict_proba` takes :class:`Posts`."""

    featurizer: object
    classifier: object
    config: dict

    def predict_proba(self, posts):
        """Bait probability per post, (n,)."""
        return self.classifier.predict_proba(self.featurizer.transform(posts))[:, 1]


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def save_pipeline(pipeline: ClickbaitPipeline, path: Path) -> Path:
    """Pickle atomically (temp file + os.replace), so a crash never corrupts an existing model file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(pipeline, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_pipeline(path: Path) -> ClickbaitPipeline:
    """Load a model written by ``train``; a clear DataError when the file is missing or not a model."""
    if not Path(path).is_file():
        raise DataError(f"model file {path} does not exist; train one with `paperkits safety clickbait train`")
    try:
        with open(path, "rb") as handle:
            obj = pickle.load(handle)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
        raise DataError(f"{path} is not a clickbait model file ({err})") from err
    if not isinstance(obj, ClickbaitPipeline):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a clickbait model")
    return obj


def build_pipeline(cfg: TrainConfig, seed: int):
    """Unfitted featurizer and classifier from a config."""
    from safety_kit.clickbait.baselines import make_baseline
    from safety_kit.clickbait.featurize import PostFeaturizer
    from safety_kit.clickbait.model import DebiasedClickbaitClassifier

    featurizer = PostFeaturizer(text_model=cfg.text_model, tfidf_max_features=cfg.tfidf_max_features,
                                image="stats" if cfg.use_images else None, on_missing_image=cfg.on_missing_image)
    if cfg.model == "debiased":
        model = DebiasedClickbaitClassifier(
            max_epochs=cfg.max_epochs, selection=cfg.selection, n_environments=cfg.n_environments,
            environment_strategy=cfg.environment_strategy, lambda_inv=cfg.lambda_inv, lambda_noise=cfg.lambda_noise,
            lambda_orth=cfg.lambda_orth, lambda_env=cfg.lambda_env, beta_kl=cfg.beta_kl, random_state=seed)
    elif cfg.model == "logreg":
        model = make_baseline("logreg", random_state=seed)
    else:
        model = make_baseline(cfg.model, max_epochs=cfg.max_epochs, selection=cfg.selection,
                              n_environments=cfg.n_environments, random_state=seed)
    return featurizer, model


def evaluate(pipeline: ClickbaitPipeline, posts) -> dict[str, float]:
    """Accuracy, bait-class precision/recall/F1, macro-F1, AUC (and MSE to truthMean when the corpus has it)."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y = posts.require_labels()
    score = pipeline.predict_proba(posts)
    pred = (score > 0.5).astype(int)
    out = {"n": int(len(y)), "accuracy": float(accuracy_score(y, pred)),
           "precision": float(precision_score(y, pred, zero_division=0)),
           "recall": float(recall_score(y, pred, zero_division=0)), "f1": float(f1_score(y, pred, zero_division=0)),
           "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0))}
    if len(np.unique(y)) == 2:
        out["auc"] = float(roc_auc_score(y, score))
    if posts.truth_mean is not None:
        out["mse_truth_mean"] = float(np.mean((score - posts.truth_mean) ** 2))
    return out


@click.group(name="clickbait")
def group() -> None:
    """Debiased multimodal clickbait detection (reconstruction of arXiv 2410.07673)."""


@group.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model-out", type=click.Path(path_type=Path), default=None,
              help="Where to write the model pickle (default: <out>/clickbait_model.pkl).")
@config_option()
@seed_option()
@out_option("runs/clickbait")
def train(data: Path, model_out: Path | None, config_path: Path | None, overrides: tuple[str, ...], seed: int,
          out: Path) -> None:
    """Fit a detector on DATA (Webis-17 folder, Chakraborty folder, or CSV/JSONL with text,label[,image,description])."""
    from safety_kit.clickbait.data import load_posts
    from shared.config import load_config, save_config
    from shared.seeding import seed_everything

    cfg = load_config(TrainConfig, config_path, overrides)
    if cfg.model not in ("debiased", "logreg", "erm", "groupdro", "irm", "vrex"):
        raise ConfigError(f"model must be debiased|logreg|erm|groupdro|irm|vrex, got {cfg.model!r}")
    seed_everything(seed)
    _threads()
    posts = load_posts(data)
    y = posts.require_labels()
    featurizer, model = build_pipeline(cfg, seed)
    if not cfg.use_images:
        posts.images = None
    X = featurizer.fit_transform(posts)
    if hasattr(model, "feature_groups"):
        model.set_params(feature_groups=featurizer.group_slices())
    env = None
    if cfg.environment_field:
        if cfg.environment_field != "group" or posts.groups is None:
            raise ConfigError("environment_field must be 'group' and the data must carry group metadata")
        env = posts.groups
    start = time.perf_counter()
    if env is not None and cfg.model != "logreg":
        model.fit(X, y, environments=env)
    else:
        model.fit(X, y)
    pipeline = ClickbaitPipeline(featurizer, model, dataclasses.asdict(cfg))
    path = save_pipeline(pipeline, model_out or out / "clickbait_model.pkl")
    save_config(cfg, path.with_suffix(".yaml"))
    click.echo(f"trained {cfg.model} on {len(posts)} posts in {time.perf_counter() - start:.1f}s -> {path}")


@group.command("eval")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True, help="Model pickle from train.")
@click.option("--json-out", type=click.Path(path_type=Path), default=None, help="Also write the metrics as JSON.")
def eval_command(data: Path, model_path: Path, json_out: Path | None) -> None:
    """Evaluate a saved model on labelled DATA; prints accuracy, precision, recall, F1, macro-F1, AUC."""
    from safety_kit.clickbait.data import load_posts
    from shared.results import atomic_write_text

    _threads()
    pipeline = load_pipeline(model_path)
    metrics = evaluate(pipeline, load_posts(data))
    text = json.dumps(metrics, indent=2)
    click.echo(text)
    if json_out is not None:
        atomic_write_text(json_out, text + "\n")


@group.command("predict")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True, help="Model pickle from train.")
@click.option("--output", type=click.Path(path_type=Path), required=True, help="Scores file (.csv or .jsonl).")
@click.option("--on-error", type=click.Choice(["skip", "raise"]), default="skip", show_default=True,
              help="Rows with no text / unreadable image: skip them with a warning, or stop with an error.")
@click.option("--threshold", type=float, default=0.5, show_default=True, help="Score above which a post is bait.")
def predict(data: Path, model_path: Path, output: Path, on_error: str, threshold: float) -> None:
    """Score every post of DATA (CSV/JSONL with a text column; labels optional); writes id, score, is_clickbait."""
    from safety_kit.clickbait.data import load_posts
    from shared.results import atomic_write_text

    _threads()
    pipeline = load_pipeline(model_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        posts = load_posts(data, require_labels=False, on_error=on_error)
        featurizer = pipeline.featurizer
        if on_error == "raise" and getattr(featurizer, "image_", None) is not None:
            featurizer.image_.set_params(on_missing="raise")
        elif getattr(featurizer, "image_", None) is not None:
            featurizer.image_.set_params(on_missing="zeros")
        start = time.perf_counter()
        scores = pipeline.predict_proba(posts)
        elapsed = time.perf_counter() - start
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    records = [{"id": i, "score": round(float(s), 6), "is_clickbait": int(s > threshold)}
               for i, s in zip(posts.ids, scores)]
    if output.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in records)
    elif output.suffix.lower() == ".csv":
        text = "id,score,is_clickbait\n" + "".join(f"{r['id']},{r['score']},{r['is_clickbait']}\n" for r in records)
    else:
        raise ConfigError(f"--output must end in .csv or .jsonl, got {output.name}")
    atomic_write_text(output, text)
    click.echo(f"scored {len(records)} posts ({len(records) / max(elapsed, 1e-9):.0f} posts/s) -> {output}")
