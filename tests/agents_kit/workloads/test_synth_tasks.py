import pytest

from agents_kit.protocol import AgentMessage, MessageType
from agents_kit.workloads.synth_tasks import (
    make_questions,
    make_world,
    parse_expr,
    parse_facts,
    question_to_expr,
    render,
    subexpressions,
)
from agents_kit.workloads.traffic import audit


def test_expressions_round_trip_and_list_children_first():
    text = "difference(founded(employer(person001)),founded(employer(person002)))"
    expr = parse_expr(text)
    assert render(expr) == text
    assert [render(e) for e in subexpressions(expr)][:2] == ["employer(person001)", "founded(employer(person001))"]


def test_questions_map_to_expressions_and_true_answers():
    world = make_world(3, n_distractors=4)
    questions = make_questions(world, 6, 3)
    for text, truth in questions:
        expr = parse_expr(question_to_expr(text))
        assert world.answer(expr) == truth
    person = world.people[0]
    employer = world.tables["employer"][person]
    assert world.lookup("employer", f"Task: employer({person})") == f"employer({person}) = {employer}"
    assert world.lookup("founded", f"employer({person})") == f"employer({person}) = unknown"
    assert world.lookup("difference", "difference(1990,1985)") == "difference(1990,1985) = 5"
    assert parse_facts(f"Task: employer({person}) = {employer}\nfounded(x) = unknown") == {
        f"employer({person})": employer}


def _msg(comm, seq):
    return AgentMessage(comm_id=comm, sender="A", type=MessageType.DISCUSSION, seq=seq, msg_id=f"{comm}{seq}")


@pytest.mark.parametrize("received, expected", [
    ([("c", 1, ""), ("c", 2, ""), ("c", 3, "")], {"lost": 0, "duplicated": 0, "out_of_order": 0}),
    ([("c", 1, ""), ("c", 3, "")], {"lost": 1, "duplicated": 0, "out_of_order": 0}),
    ([("c", 1, ""), ("c", 2, ""), ("c", 2, ""), ("c", 3, "")], {"lost": 0, "duplicated": 1, "out_of_order": 1}),
    ([("c", 2, ""), ("c", 1, ""), ("c", 3, "")], {"lost": 0, "duplicated": 0, "out_of_order": 1}),
])
def test_the_audit_counts_what_went_wrong(received, expected):
    records = {"c": [_msg("c", s) for s in (1, 2, 3)]}
    counts = audit(records, {"B": ["c"]}, {"B": received}, acked={"c1", "c2", "c3", "lost-ack"})
    assert {k: counts[k] for k in expected} == expected and counts["acked_not_stored"] == 1


def test_the_mixed_join_question_needs_two_different_relations_in_parallel():
    world = make_world(1, n_distractors=2)
    text, truth = make_questions(world, 4, 1)[3]
    expr = parse_expr(question_to_expr(text))
    assert expr[0] == "difference" and {expr[1][0][0], expr[1][1][0]} == {"population", "founded"}
    assert world.answer(expr) == truth


def test_every_ioa_arm_solves_the_suite_and_beats_broadcast_on_messages(server):
    import asyncio

    from agents_kit.workloads.synth_tasks import SuiteSpec, run_suite

    # each arm on its own (no state carried over from an earlier arm), on the four question templates
    rows = {}
    for arm in ("ioa_nested", "ioa_async", "broadcast"):
        spec = SuiteSpec(n_questions=4, n_distractors=2, latency_s=(0.0, 0.01), timeout_per_question_s=20)
        rows[arm] = asyncio.run(run_suite(server.url, server.admin_token, [arm], spec))[0]
    assert all(row["accuracy"] == 1.0 and row["timeouts"] == 0 for row in rows.values()), rows
    assert rows["ioa_async"]["messages_per_task"] < rows["broadcast"]["messages_per_task"]
    # nested teams: fewer channels than one flat team of the same members (the paper's c_nested <= c_full)
    assert rows["ioa_nested"]["channels_per_task"] < rows["ioa_nested"]["channels_if_flat_per_task"]
