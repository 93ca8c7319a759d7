import random

import pytest
import torch

from recsys_kit.ecr.gen.generator import (
    GeneratorConfig,
    corpus_tokenizer,
    default_tokenizer,
    detokenize,
    generate,
    perplexity,
    save_generator,
    tiny_causal_lm,
    train_generator,
    with_lora,
)
from recsys_kit.ecr.gen.judge import LLMJudge, parse_scores
from recsys_kit.ecr.gen.metrics import FactChecker, distinct_n, emotion_intensity, response_metrics
from recsys_kit.ecr.gen.prompt import (
    Review,
    format_prompt,
    inference_prompt,
    insert_facts,
    item_facts,
    load_imdb_reviews,
    simulate_reviews,
    training_example,
)
from shared.errors import DataError


def test_prompt_layout():
    text = format_prompt("Heat", ["Crime", "Los Angeles"], [("Heat", "director", "Michael Mann")], "Have you seen Heat?", "<eos>")
    assert text == ("Movie Name: Heat<eos>Related Entities: Crime, Los Angeles<eos>Related Knowledge from KG: "
                    "Heat's director is Michael Mann<eos>First Sentence: Have you seen Heat?<eos>")
    assert "Related Entities: None" in format_prompt("X", [], [], "hi", "|")


def test_fact_insertion_next_to_the_mention():
    text = "I loved it. Michael Mann is a genius. Great."
    out = insert_facts(text, [("Heat", "director", "Michael Mann")], random.Random(0), probability=1.0)
    assert out == "I loved it. Michael Mann is a genius. Heat's director is Michael Mann. Great."
    assert insert_facts(text, [("Heat", "director", "Michael Mann")], random.Random(0), probability=0.0) == text


def test_inference_prompt_uses_true_facts(ml100k_kg):
    toy = ml100k_kg.movie_to_entity["1"]
    prompt, triples = inference_prompt(ml100k_kg, toy, "Try Toy Story.", ["a", "b", "c", "d", "e"], random.Random(0), "|", 2, 4)
    assert len(triples) == 2 and all(t in item_facts(ml100k_kg, toy) for t in triples)
    assert prompt.count("|") == 4 and len(prompt.split("|")[1].split(", ")) == 4


def test_real_reviews_load(handbook_data):
    reviews = load_imdb_reviews(handbook_data / "redial" / "imdb_reviews_processed.json")
    assert len(reviews) == 354 and reviews[0].movie == "13 Assassins"
    assert any(r.triples for r in reviews) and all(r.content for r in reviews)


def test_tiny_gpt2_learns_reviews_and_generates(ml100k_kg, tmp_path):
    reviews = simulate_reviews(ml100k_kg, list(range(12)), seed=0)
    tokenizer = corpus_tokenizer([r.content for r in reviews] + [format_prompt(r.movie, r.entities, r.triples, "x", "")
                                                                  for r in reviews])
    model = tiny_causal_lm(tokenizer, n_embd=32, seed=0)
    rng = random.Random(0)
    sep = f" {tokenizer.eos_token} "
    examples = [training_example(r, rng, sep) for r in reviews]
    before = perplexity(model, tokenizer, examples[:4])
    losses = train_generator(model, tokenizer, examples, GeneratorConfig(lr=5e-3, epochs=3, batch_size=8))
    assert losses[-1] < losses[0] and perplexity(model, tokenizer, examples[:4]) < before
    (text,) = generate(model, tokenizer, [examples[0][0]], max_new_tokens=8)
    assert isinstance(text, str) and "[EOS]" not in text and "[PAD]" not in text
    assert detokenize("Toy Story ' s genre is comedy .") == "Toy Story's genre is comedy."
    save_generator(model, tokenizer, tmp_path / "gen")
    assert (tmp_path / "gen" / "config.json").is_file()


def test_lora_trains_only_adapters():
    tokenizer = default_tokenizer()
    model = with_lora(tiny_causal_lm(tokenizer, n_embd=32), GeneratorConfig(lora_r=4, lora_target_modules=["c_attn"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    train_generator(model, tokenizer, [("Movie Name: X |", "I loved it")] * 4, GeneratorConfig(lr=1e-2, epochs=1))
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


def test_offline_metrics(ml100k_kg):
    toy = ml100k_kg.movie_to_entity["1"]
    checker = FactChecker(ml100k_kg)
    good = checker.check("A lovely comedy and animation from the 1990s", toy)
    assert good["correct"] == 3 and good["precision"] == 1.0
    bad = checker.check("A scary horror film", toy)
    assert bad["hallucinated"] == 1 and bad["precision"] == 0.0
    assert emotion_intensity("I loved it") > emotion_intensity("It is a film") == 0
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    m = response_metrics(["I loved this comedy", "horror"], [toy, toy], checker)
    assert m["hallucination_rate"] == 0.5 and m["informativeness"] == 0.5


def test_judge_parses_pseudonymised_scores():
    prompts = []

    def chat(prompt):
        prompts.append(prompt)
        return "System A: 7\nSystem B: 3"

    result = LLMJudge(chat, seed=0).score([("User: hi", {"ecr": "I loved it!", "unicrs": "ok"})])
    assert len(prompts) == 5 and "ecr" not in prompts[0]
    assert sorted(result) == ["ecr", "unicrs"] and {v["lifelikeness"] for v in result.values()} == {7.0, 3.0}
    with pytest.raises(DataError, match="no score"):
        parse_scores("System A: 5", ["System A", "System B"])


def test_bad_review_file(tmp_path):
    (tmp_path / "r.json").write_text('[{"title": "x"}]')
    with pytest.raises(DataError, match="content"):
        load_imdb_reviews(tmp_path / "r.json")
    assert Review("a", "b", [], []).movie == "a"


def test_llm_cassette_records_and_replays_offline(tmp_path):
    from recsys_kit.ecr.gen.llm import Cassette, llm_response
    from shared.errors import ConfigError, DataError

    prompts = []

    def endpoint(prompt):
        prompts.append(prompt)
        return " I adore Heat, a thrilling heist film with Al Pacino. "

    path = tmp_path / "cassette.json"
    recorded = llm_response(Cassette(path, endpoint, mode="record"), ["User: I love crime films"], "Heat",
                            "You should watch Heat.", ["Heat's starring is Al Pacino"])
    assert recorded.startswith("I adore Heat") and "recommend only Heat" in prompts[0] and "Al Pacino" in prompts[0]
    replayed = llm_response(Cassette(path, mode="replay"), ["User: I love crime films"], "Heat",
                            "You should watch Heat.", ["Heat's starring is Al Pacino"])
    assert replayed == recorded and len(prompts) == 1  # no endpoint call on replay
    with pytest.raises(DataError, match="no reply for this prompt"):
        llm_response(Cassette(path, mode="replay"), [], "Alien", "Try Alien.", [])
    with pytest.raises(ConfigError, match="needs an endpoint"):
        Cassette(path, mode="record")


def test_chat_session_uses_the_llm_and_reports_emotion_and_movies(tiny_prepared):
    import dataclasses as dc

    from recsys_kit.ecr.chat import ChatSession
    from recsys_kit.ecr.pipeline import arm_config, default_train_config
    from recsys_kit.ecr.rec.model import RecModelConfig
    from recsys_kit.ecr.rec.train import fit_recommender

    p = tiny_prepared
    model = RecModelConfig(dim=32, entity_dim=16, emotion_dim=8, n_layers=1, use_global=False)
    config = dc.replace(arm_config("ECR[L]", default_train_config(epochs=1)), model=model)
    trained = fit_recommender(p.data.kg, p.samples["train"][:32], [], config)
    session = ChatSession(trained, p.data.kg, llm=lambda prompt: "LLM reply")
    assert session.respond("No, I really hate horror movies") == "LLM reply"
    assert max(session.last_emotion, key=session.last_emotion.get) == "negative"
    assert len(session.last_recommendations) == 5
