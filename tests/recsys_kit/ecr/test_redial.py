import json

import pytest

from recsys_kit.data.redial import (
    Dialogue,
    EntityLinker,
    Message,
    dbpedia_name,
    load_redial,
    merge_turns,
    render_text,
    write_redial,
)
from shared.errors import DataError

RECORD = {
    "conversationId": "7", "initiatorWorkerId": 1, "respondentWorkerId": 2,
    "movieMentions": {"111": "Alien (1979)", "222": "Heat (1995)"},
    "initiatorQuestions": {"111": {"suggested": 0, "seen": 1, "liked": 1}, "222": {"suggested": 1, "seen": 0, "liked": 0}},
    "respondentQuestions": [],
    "messages": [{"messageId": 1, "senderWorkerId": 1, "timeOffset": 0, "text": "I loved @111"},
                 {"messageId": 2, "senderWorkerId": 1, "timeOffset": 1, "text": "anything like it?"},
                 {"messageId": 3, "senderWorkerId": 2, "timeOffset": 2, "text": "Try @222!"},
                 {"messageId": 4, "senderWorkerId": 1, "timeOffset": 3, "text": "meh"}],
}


def test_real_redial_lines_parse(handbook_data):
    dialogues = load_redial(handbook_data / "redial" / "valid_data.jsonl", limit=20)
    assert len(dialogues) == 20
    first = dialogues[0]
    assert first.movie_mentions["191911"] == "Man on Wire (2008)"
    assert first.feedback("191911") == "like"  # initiatorQuestions first
    mentioned = {m for msg in first.messages for m in msg.movies}
    assert "199451" in mentioned
    turns = merge_turns(first)
    assert all(a.role != b.role for a, b in zip(turns, turns[1:]))
    assert sum(len(t.message_ids) for t in turns) == len(first.messages)


def test_merge_turns_and_feedback(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(RECORD) + "\n")
    (dialogue,) = load_redial(path)
    turns = merge_turns(dialogue)
    assert [t.role for t in turns] == ["seeker", "recommender", "seeker"]
    assert turns[0].text == "I loved @111 anything like it?" and turns[0].movies == ["111"]
    assert dialogue.feedback("222") == "dislike" and dialogue.feedback("999") is None
    assert render_text(turns[1].text, dialogue.movie_mentions) == "Try Heat (1995)!"


def test_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RECORD) + "\n{not json\n" + json.dumps({"messages": []}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        load_redial(path)
    with pytest.warns(UserWarning, match=r":3: malformed"):
        assert len(load_redial(path, on_error="skip")) == 1
    with pytest.raises(DataError, match="does not exist"):
        load_redial(tmp_path / "missing.jsonl")


def test_round_trip_keeps_entities_and_emotions(tmp_path):
    d = Dialogue("c", [Message("hi @5", 1, 1, entities=[3, 4], emotion={"like": 0.7, "happy": 0.3}),
                       Message("ok", 2, 2)], {"5": "X"}, 1, 2, {"5": {"suggested": 0, "seen": 1, "liked": 2}})
    write_redial([d], tmp_path / "o.jsonl")
    (back,) = load_redial(tmp_path / "o.jsonl")
    assert back.messages[0].entities == [3, 4] and back.messages[0].emotion == {"like": 0.7, "happy": 0.3}
    assert back.feedback("5") == "not_say"


def test_entity_linker_orders_movies_and_names():
    linker = EntityLinker({"10": 0}, {5: "Science Fiction", 6: "Tom Hanks", 7: "Film"})
    assert linker.link_text("I love science fiction like @10 with Tom Hanks") == [0, 5, 6]
    assert linker.link_text("a film") == []  # stop name
    assert dbpedia_name("<http://dbpedia.org/resource/Water_(1985_film)>") == "Water"


def test_ecr_processed_record(tmp_path):
    record = dict(RECORD)
    record["messages"] = [dict(RECORD["messages"][0], entity=["<http://dbpedia.org/resource/Ridley_Scott>"],
                               movie=["<http://dbpedia.org/resource/Alien_(film)>"],
                               emotion={"like": 0.8, "curious": 0.2}),
                          dict(RECORD["messages"][2], entity=[], movie=[], emotion=[])]
    (tmp_path / "e.jsonl").write_text(json.dumps(record) + "\n")
    entity2id = {"<http://dbpedia.org/resource/Ridley_Scott>": 4, "<http://dbpedia.org/resource/Alien_(film)>": 9}
    (d,) = load_redial(tmp_path / "e.jsonl", entity2id=entity2id)
    assert d.messages[0].entities == [4, 9] and d.messages[0].emotion == {"like": 0.8, "curious": 0.2}
    assert d.messages[1].emotion == {} and merge_turns(d)[0].emotion["like"] == 0.8
