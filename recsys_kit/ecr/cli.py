"""`paperkits recsys ecr …`: simulate, annotate, train-rec, train-gen, chat."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import click
import scipy.sparse as sp

from shared.cli import KitGroup, config_option, out_option, seed_option
from shared.errors import ConfigError
from shared.results import atomic_write_text


@click.group(name="ecr", cls=KitGroup)
def group() -> None:
    """ECR (RecSys 2024): empathetic conversational recommendation on ReDial-format data."""


@group.command("simulate")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--n-dialogues", type=int, default=600, show_default=True)
@seed_option()
def simulate(output: Path, n_dialogues: int, seed: int) -> None:
    """Write simulated ReDial JSONL over ml-100k (+ OUTPUT.latent.json with the true emotions)."""
    from recsys_kit.data.redial import write_redial
    from recsys_kit.ecr.simulator import simulate_ml100k

    world, _ = simulate_ml100k(n_dialogues, seed)
    write_redial(world.dialogues, output)
    latent = {f"{c}/{m}": labels for (c, m), labels in world.latent_emotions.items()}
    atomic_write_text(output.with_suffix(".latent.json"), json.dumps(latent))
    click.echo(f"wrote {len(world.dialogues)} conversations to {output}")


@group.command("annotate")
@click.argument("input_path", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["teacher", "student", "llm"]), default="student", show_default=True,
              help="teacher: lexicon rules; student: rules label a subset, focal-loss classifier labels all; "
                   "llm: an OpenAI-compatible LLM labels the subset instead of the rules.")
@click.option("--featurizer", type=click.Choice(["tfidf", "minilm"]), default="tfidf", show_default=True)
@click.option("--n-labelled", type=int, default=5082, show_default=True)
@click.option("--llm-url", default=None, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
@click.option("--llm-model", default=None, help="Model name for --method llm.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the API key.")
@seed_option()
def annotate(input_path: Path, output: Path, method: str, featurizer: str, n_labelled: int, llm_url: str | None,
             llm_model: str | None, api_key_env: str, seed: int) -> None:
    """Label every seeker turn of a ReDial JSONL with ECR's nine emotions and write ECR-format JSONL."""
    from recsys_kit.data.redial import load_redial, write_redial
    from recsys_kit.ecr.emotion.annotate import annotate_corpus

    dialogues = load_redial(input_path)
    labeller = None
    if method == "llm":
        if not llm_url or not llm_model:
            raise ConfigError("--method llm needs --llm-url and --llm-model")
        from recsys_kit.ecr.emotion.llm import LLMEmotionAnnotator, OpenAIChat

        annotator = LLMEmotionAnnotator(OpenAIChat(llm_url, llm_model, os.environ.get(api_key_env)))
        labeller = annotator.annotate
    report, _ = annotate_corpus({"train": dialogues}, method="teacher" if method == "teacher" else "student",
                                featurizer=featurizer, labeller=labeller, n_labelled=n_labelled, seed=seed)
    write_redial(dialogues, output)
    click.echo(json.dumps({k: v for k, v in report.__dict__.items()}, indent=1))


def _load_data(data: str, n_dialogues: int, redial_dir: Path | None, seed: int, setting: str = "standard",
               files: dict | None = None):
    from recsys_kit.ecr.pipeline import redial_data, simulated_data
    from recsys_kit.ecr.simulator import NEGATIVE_CONTROL, POSITIVE_CONTROL

    if data == "simulated":
        knobs = {"standard": {}, "positive-control": POSITIVE_CONTROL, "negative-control": NEGATIVE_CONTROL}[setting]
        return simulated_data(n_dialogues, seed=seed, **knobs)
    return redial_data(redial_dir, seed=seed, **(files or {}))


@group.command("train-rec")
@click.option("--data", type=click.Choice(["simulated", "redial"]), default="simulated", show_default=True,
              help="simulated: the ml-100k simulator; redial: ReDial JSONL + UniCRS KG in --redial-dir "
                   "(default $PAPERKITS_DATA/redial).")
@click.option("--redial-dir", type=click.Path(path_type=Path), default=None)
@click.option("--n-dialogues", type=int, default=600, show_default=True)
@click.option("--arm", type=click.Choice(["UniCRS", "ECR[L]", "ECR[LS]", "ECR[LG]", "ECR"]), default="ECR",
              show_default=True, help="UniCRS = emotion pieces off (the baseline).")
@click.option("--featurizer", type=click.Choice(["tfidf", "minilm"]), default="tfidf", show_default=True)
@click.option("--train-file", "train_files", multiple=True,
              help="ReDial JSONL training file(s), relative to --redial-dir or absolute (default: valid_data.jsonl, "
                   "train_subset_data.jsonl, train_data.jsonl, whichever exist). Repeatable.")
@click.option("--valid-file", "valid_files", multiple=True,
              help="Your own validation file(s); default: --valid-fraction of the training conversations.")
@click.option("--test-file", "test_files", multiple=True, help="Test file(s) (default test_data.jsonl).")
@click.option("--valid-fraction", type=float, default=0.1, show_default=True)
@click.option("--movie-map", type=click.Path(path_type=Path), default=None,
              help="ReDial movie id -> DBpedia URI JSON (default <redial-dir>/kgsf_id2entity.json).")
@click.option("--setting", type=click.Choice(["standard", "positive-control", "negative-control"]),
              default="standard", show_default=True,
              help="Simulator setting: positive-control = emotion words are the only like/dislike channel (parallel "
                   "wording, emotion words masked from the text view); negative-control = emotions independent of "
                   "preference.")
@click.option("--permute-emotions", is_flag=True, help="Control: shuffle the emotion labels across seeker turns.")
@click.option("--reannotate", is_flag=True, help="Re-label every seeker turn even where the data carry emotions.")
@click.option("--mask-emotions/--no-mask-emotions", default=None,
              help="Remove emotion words from the recommender's text view (default: on for the control settings).")
@config_option()
@seed_option()
@out_option("runs/ecr-rec")
def train_rec(data: str, redial_dir: Path | None, n_dialogues: int, arm: str, featurizer: str,
              train_files: tuple[str, ...], valid_files: tuple[str, ...], test_files: tuple[str, ...],
              valid_fraction: float, movie_map: Path | None, setting: str, permute_emotions: bool, reannotate: bool,
              mask_emotions: bool | None, config_path: Path | None, overrides: tuple[str, ...], seed: int,
              out: Path) -> None:
    """Train the emotion-aware recommender (or the baseline) and report test metrics."""
    from recsys_kit.ecr.pipeline import arm_config, default_train_config, prepare
    from recsys_kit.ecr.rec.train import RecTrainConfig, fit_recommender
    from shared.config import load_config

    if setting != "standard" and data != "simulated":
        raise ConfigError("--setting applies to --data simulated only")
    config = load_config(RecTrainConfig, config_path, overrides,
                         base=arm_config(arm, default_train_config(seed=seed, text_features=featurizer)))
    files = {"train_files": list(train_files) or None, "valid_files": list(valid_files) or None,
             "test_files": list(test_files) or None, "valid_fraction": valid_fraction, "movie_map": movie_map}
    crs = _load_data(data, n_dialogues, redial_dir, seed, setting, files)
    mask = setting != "standard" if mask_emotions is None else mask_emotions
    prepared = prepare(crs, featurizer=featurizer, seed=seed, permute=permute_emotions, reannotate=reannotate,
                       mask_emotions=mask)
    trained = fit_recommender(crs.kg, prepared.samples["train"], prepared.samples["valid"], config,
                              prepared.cooccurrence, pretrain=prepared.pretrain, out=out)
    metrics, _ = trained.evaluate(prepared.samples["test"])
    sp.save_npz(out / "cooccurrence.npz", prepared.cooccurrence)
    source = {"data": data, "n_dialogues": n_dialogues, "seed": seed, "setting": setting,
              "permute_emotions": permute_emotions, "redial_dir": str(redial_dir) if redial_dir else None,
              "movie_map": str(movie_map) if movie_map else None}
    atomic_write_text(out / "data.json", json.dumps(source))
    atomic_write_text(out / "metrics.json", json.dumps({"test": metrics, "history": trained.history}, indent=1))
    click.echo(" ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


@group.command("train-gen")
@click.option("--reviews", default="simulated", show_default=True,
              help="'simulated' (templated reviews over ml-100k) or an ECR-processed IMDb review JSON file.")
@click.option("--base-model", type=click.Path(path_type=Path), default=None,
              help="A local HF causal-LM folder (default: a tiny random-init GPT-2 with a word-level tokenizer "
                   "trained on the reviews).")
@click.option("--lora/--full", default=False, show_default=True, help="LoRA adapters via peft, or full fine-tuning.")
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option("--prompt-loss/--no-prompt-loss", default=False, show_default=True,
              help="Put the LM loss on the prompt too (the official code does; a tiny from-scratch LM then echoes "
                   "the prompt's field names).")
@click.option("--n-items", type=int, default=200, show_default=True, help="Items with simulated reviews.")
@seed_option()
@out_option("runs/ecr-gen")
def train_gen(reviews: str, base_model: Path | None, lora: bool, epochs: int, lr: float, prompt_loss: bool,
              n_items: int, seed: int, out: Path) -> None:
    """Fine-tune the emotion-aligned generator on reviews with the four-part prompt."""
    from recsys_kit.ecr.gen.generator import (
        GeneratorConfig,
        corpus_tokenizer,
        save_generator,
        tiny_causal_lm,
        train_generator,
        with_lora,
    )
    from recsys_kit.ecr.gen.prompt import (
        load_imdb_reviews,
        movie_review_entities,
        simulate_reviews,
        training_example,
    )
    from recsys_kit.ecr.kg import load_ml100k_kg

    if reviews == "simulated":
        kg = load_ml100k_kg()
        records = simulate_reviews(kg, kg.item_ids[:n_items].tolist(), seed=seed)
    else:
        records = load_imdb_reviews(reviews)
    if base_model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base_model)
        model = AutoModelForCausalLM.from_pretrained(base_model)
    else:
        names = list(load_ml100k_kg().entity_names.values()) if reviews == "simulated" else []
        tokenizer = corpus_tokenizer([r.content for r in records] + [" ".join(r.entities) for r in records] + names
                                     + ["Movie Name: Related Entities: Related Knowledge from KG: First Sentence: "
                                        "None 's Have you seen How about"])
        model = tiny_causal_lm(tokenizer, n_embd=64, seed=seed)
    config = GeneratorConfig(lr=lr, epochs=epochs, lora=lora, loss_on_prompt=prompt_loss, seed=seed)
    if lora:
        model = with_lora(model, config)
    rng = random.Random(seed)
    sep = f" {tokenizer.eos_token} "
    losses = train_generator(model, tokenizer, [training_example(r, rng, sep) for r in records], config)
    save_generator(model, tokenizer, out)
    entities = movie_review_entities(records)
    atomic_write_text(out / "review_entities.json", json.dumps(entities))
    click.echo(f"trained on {len(records)} reviews; loss per epoch {[round(x, 3) for x in losses]}; saved to {out}")


@group.command("chat")
@click.option("--rec", "rec_dir", type=click.Path(path_type=Path), default=Path("runs/ecr-rec"), show_default=True)
@click.option("--gen", "gen_dir", type=click.Path(path_type=Path), default=None, help="A train-gen folder (optional).")
@click.option("--llm-url", default=None, help="OpenAI-compatible base URL: the LLM writes the responses instead.")
@click.option("--llm-model", default=None, help="Model name for --llm-url.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="Env var holding the API key.")
@click.option("--cassette", type=click.Path(path_type=Path), default=None,
              help="Record/replay file for the LLM's replies (with --cassette-mode replay no endpoint is needed).")
@click.option("--cassette-mode", type=click.Choice(["auto", "record", "replay"]), default="auto", show_default=True)
@seed_option()
def chat(rec_dir: Path, gen_dir: Path | None, llm_url: str | None, llm_model: str | None, api_key_env: str,
         cassette: Path | None, cassette_mode: str, seed: int) -> None:
    """Talk to the trained recommender (+ generator) in the terminal; 'quit' or EOF ends the session."""
    from recsys_kit.ecr.chat import ChatSession
    from recsys_kit.ecr.kg import load_ml100k_kg, load_unicrs_kg
    from recsys_kit.ecr.rec.train import load_recommender
    from shared.errors import DataError
    from shared.paths import require_data

    if not (rec_dir / "data.json").is_file():
        raise DataError(f"{rec_dir} is not a train-rec folder (data.json missing); run 'paperkits recsys ecr train-rec'")
    source = json.loads((rec_dir / "data.json").read_text())
    kg = load_ml100k_kg() if source["data"] == "simulated" else load_unicrs_kg(
        source["redial_dir"] or require_data("redial"), source.get("movie_map"))
    recommender = load_recommender(rec_dir, kg, sp.load_npz(rec_dir / "cooccurrence.npz").tocsr())
    generator = tokenizer = None
    entities = {}
    if gen_dir is not None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gen_dir)
        generator = AutoModelForCausalLM.from_pretrained(gen_dir)
        if (gen_dir / "review_entities.json").is_file():
            entities = json.loads((gen_dir / "review_entities.json").read_text())
    llm = None
    if llm_url or cassette:
        from recsys_kit.ecr.emotion.llm import OpenAIChat
        from recsys_kit.ecr.gen.llm import Cassette

        if llm_url and not llm_model:
            raise ConfigError("--llm-url needs --llm-model")
        llm = OpenAIChat(llm_url, llm_model, os.environ.get(api_key_env)) if llm_url else None
        if cassette:
            llm = Cassette(cassette, llm, mode=cassette_mode if llm_url else "replay")
    session = ChatSession(recommender, kg, generator, tokenizer, entities, seed=seed, llm=llm)
    click.echo("ECR chat — tell me what you like ('quit' to stop).")
    while True:
        try:
            text = click.prompt("User", prompt_suffix=": ")
        except (EOFError, click.Abort):
            break
        if text.strip().lower() in {"quit", "exit", "bye"}:
            break
        click.echo(f"System: {session.respond(text)}")
        emotion = ", ".join(f"{label} {p:.2f}" for label, p in session.last_emotion.items()) or "none"
        click.echo(f"  [emotion read: {emotion}; top movies: {'; '.join(session.last_recommendations)}]")


