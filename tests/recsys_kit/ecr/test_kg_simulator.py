import numpy as np
import pytest

from recsys_kit.data.redial import load_redial, write_redial
from recsys_kit.ecr.kg import load_unicrs_kg
from recsys_kit.ecr.simulator import ReDialSimulator, SimulatorConfig, load_ml100k_ratings
from shared.errors import DataError


def test_ml100k_kg(ml100k_kg):
    kg = ml100k_kg
    assert len(kg.item_ids) == 1682 and kg.n_entities > 1682 + 18
    toy = kg.movie_to_entity["1"]
    facts = kg.neighbours(toy, ("genre",))
    assert {kg.entity_names[t] for _, t in facts} == {"animation", "children's", "comedy"}
    assert kg.verbalise(toy, "decade", kg.neighbours(toy, ("decade",))[0][1]) == "Toy Story's decade is 1990s"
    assert kg.heads.max() < kg.n_entities and "freebase_genre" in kg.relation_names


def test_unicrs_kg(handbook_data):
    kg = load_unicrs_kg(handbook_data / "redial")
    assert kg.n_entities == 31161 and len(kg.item_ids) == 6281
    assert "self_loop" in kg.relation_names and not np.any(kg.heads == kg.tails)
    assert len(kg.movie_to_entity) > 5000


def test_missing_kg_file(tmp_path):
    with pytest.raises(DataError, match="UniCRS KG files"):
        load_unicrs_kg(tmp_path)


def test_simulator_output_loads_like_real_redial(ml100k_kg, tmp_path):
    sim = ReDialSimulator(ml100k_kg, load_ml100k_ratings(), SimulatorConfig(n_dialogues=40))
    world = sim.generate(seed=3)
    again = sim.generate(seed=3)
    assert [m.text for m in world.dialogues[5].messages] == [m.text for m in again.dialogues[5].messages]
    write_redial(world.dialogues, tmp_path / "sim.jsonl")
    loaded = load_redial(tmp_path / "sim.jsonl")
    assert len(loaded) == 40
    feedback = {loaded[i].feedback(m) for i in range(40) for m in loaded[i].initiator_questions}
    assert feedback == {"like", "dislike", "not_say"}
    assert all(m in d.movie_mentions for d in loaded for msg in d.messages for m in msg.movies)
    # emotions are latent: nothing in the JSONL, but every seeker reaction has true labels on the side
    assert not any(msg.emotion for d in loaded for msg in d.messages)
    assert world.latent_emotions and all(labels for labels in world.latent_emotions.values())
