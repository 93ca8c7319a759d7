import json

import pytest

from agents_kit.protocol import (
    AckFrame,
    AgentMessage,
    HelloFrame,
    MessageType,
    ProtocolError,
    SendFrame,
    from_legacy,
    json_schema,
    parse_client_frame,
    to_legacy,
)

# A message as the original IoA client serialised it (integer enums; next_speaker as a plain string).
LEGACY_SAMPLE = {
    "sender": "Planner", "comm_id": "c9a1", "state": 1, "goal": "find X", "team_members": [
        {"name": "WikiAgent", "type": "Thing Assistant", "desc": "searches wikipedia"}],
    "team_up_depth": 1, "max_turns": 16, "content": "WikiAgent: find X's employer", "type": 6,
    "next_speaker": "WikiAgent", "task_id": None, "task_desc": None, "task_abstract": None, "task_conclusion": None,
    "triggers": [], "proposal_id": None, "updated_plan": None, "is_collaborative_planning_enabled": False,
}


def test_message_round_trips_through_json():
    message = AgentMessage(comm_id="c1", sender="A", type=MessageType.PAUSE, triggers=["t1", "t2"],
                           next_speaker=[], content="waiting")
    again = AgentMessage.model_validate_json(message.model_dump_json())
    assert again == message
    assert json.loads(message.model_dump_json())["type"] == "pause"
    assert message.protocol == "ioa/1" and len(message.msg_id) == 32


def test_legacy_codec_reads_the_original_format_and_writes_it_back():
    message = from_legacy(LEGACY_SAMPLE)
    assert message.type is MessageType.ASYNC_TASK_ASSIGN
    assert message.next_speaker == ["WikiAgent"]
    assert message.team_members[0].name == "WikiAgent" and message.team_up_depth == 1
    back = to_legacy(message)
    assert back["type"] == 6 and back["state"] == 1 and back["next_speaker"] == ["WikiAgent"]
    assert from_legacy(back).model_dump(exclude={"msg_id", "sent_at"}) == message.model_dump(exclude={"msg_id", "sent_at"})


def test_legacy_codec_rejects_unused_vote_types():
    with pytest.raises(ProtocolError, match="legacy type code 2"):
        from_legacy(dict(LEGACY_SAMPLE, type=2))


@pytest.mark.parametrize("text, code", [
    ("{not json", "bad_json"),
    ('{"op": "send", "message": {"comm_id": "c", "sender": "A", "type": "shout"}}', "bad_frame"),
    ('{"op": "send", "message": {"comm_id": "c", "sender": "A", "type": "discussion", "colour": 1}}', "bad_frame"),
    ('{"op": "teleport"}', "bad_frame"),
    ('[1, 2]', "bad_frame"),
])
def test_malformed_frames_are_rejected_with_a_code(text, code):
    with pytest.raises(ProtocolError) as err:
        parse_client_frame(text)
    assert err.value.code == code


def test_oversized_frames_are_rejected_before_parsing():
    frame = json.dumps({"op": "send", "message": {"comm_id": "c", "sender": "A", "type": "discussion",
                                                  "content": "x" * 5000}})
    with pytest.raises(ProtocolError) as err:
        parse_client_frame(frame, max_bytes=2048)
    assert err.value.code == "too_large" and "2048" in err.value.detail


def test_bad_frame_error_names_the_message_id_when_there_is_one():
    with pytest.raises(ProtocolError) as err:
        parse_client_frame('{"op": "send", "message": {"msg_id": "m1", "comm_id": "c", "sender": "A", "type": "x"}}')
    assert err.value.msg_id == "m1"


def test_valid_frames_parse_to_their_types():
    assert isinstance(parse_client_frame('{"op": "hello", "agent": "A", "token": "t"}'), HelloFrame)
    assert isinstance(parse_client_frame('{"op": "ack", "inbox_id": 3}'), AckFrame)
    frame = parse_client_frame('{"op": "send", "message": {"comm_id": "c", "sender": "A", "type": "conclusion"}}')
    assert isinstance(frame, SendFrame) and frame.message.type is MessageType.CONCLUSION


def test_json_schema_lists_every_message_type():
    schema = json.dumps(json_schema())
    for kind in MessageType:
        assert f'"{kind.value}"' in schema


def test_bad_frame_error_names_the_field_of_its_own_frame_kind():
    from agents_kit.protocol import ProtocolError, parse_client_frame

    with pytest.raises(ProtocolError, match=r"ack\.inbox_id"):
        parse_client_frame('{"op": "ack", "inbox_id": "x"}')
    with pytest.raises(ProtocolError, match="'nope'.*'hello', 'send', 'ack', 'ping'"):
        parse_client_frame('{"op": "nope"}')
