"""The conversation machine end to end: real server, real clients, scripted decisions."""

import asyncio
import time

import pytest

from agents_kit.client.adapters.base import CallableAgent
from agents_kit.client.flow import STATE_OF_TYPE, TRANSITIONS, IoAClient, State, coerce_decision
from agents_kit.client.policies.base import TurnDecision
from agents_kit.client.policies.scripted import ScriptedPolicy
from agents_kit.protocol import AgentKind, MessageType
from tests.agents_kit.conftest import run


def test_coercions_follow_the_original_client():
    members = ["P", "A", "B"]
    assert coerce_decision(TurnDecision("x", "shout", ["A"]), "P", members) == (MessageType.DISCUSSION, ["A"])
    assert coerce_decision(TurnDecision("x", "discussion", ["A", "B"]), "P", members)[1] == ["A"]
    assert coerce_decision(TurnDecision("x", "discussion", ["Ghost"]), "P", members)[1] == ["P"]
    assert coerce_decision(TurnDecision("x", "conclude_group_discussion", ["A"]), "P", members)[1] == ["P"]
    assert coerce_decision(TurnDecision("x", "async_task_assign", ["A", "B", "A"]), "P", members)[1] == ["A", "B"]
    assert coerce_decision(TurnDecision("x", "conclusion", ["A"]), "P", members)[0] is MessageType.DISCUSSION


def test_transition_table_matches_figure_3():
    assert TRANSITIONS[State.CONCLUSION] == {State.END} and not TRANSITIONS[State.END]
    assert State.TEAM_FORMATION in TRANSITIONS[State.ASYNC_TASK] and State.TEAM_FORMATION in TRANSITIONS[State.SYNC_TASK]
    assert State.CONCLUSION not in TRANSITIONS[State.TEAM_FORMATION] or State.DISCUSSION in TRANSITIONS[State.PAUSE]


def planner_turn(view):
    """Async-assign two lookups, pause until both are in, then conclude."""
    if not view.task_board:
        return TurnDecision("Wiki: capital; Calc: sum", "async_task_assign", ["Wiki", "Calc"],
                            tasks={"Wiki": "capital of France", "Calc": "2+2"})
    if any(t["status"] not in ("completed", "failed") for t in view.task_board):
        return TurnDecision("waiting for results", "pause")
    return TurnDecision("done", "conclude_group_discussion")


def _tool(answer, delay=0.0):
    def run_task(task):
        time.sleep(delay)
        return answer
    return CallableAgent(run_task)


async def _team(server, wiki_delay=0.4, **planner_options):
    planner = IoAClient(server.url, "Planner", "plans", ScriptedPolicy(
        queries=["encyclopedia facts", "arithmetic"], turns=planner_turn), kind=AgentKind.HUMAN_ASSISTANT,
        **planner_options)
    # clients are closed by default: the workers pre-consent to the Planner's team-ups
    wiki = IoAClient(server.url, "Wiki", "encyclopedia facts lookup", ScriptedPolicy(), tool=_tool("Paris", wiki_delay),
                     accept_teams_from=["Planner"])
    calc = IoAClient(server.url, "Calc", "arithmetic calculator", ScriptedPolicy(), tool=_tool("4"),
                     accept_teams_from=["Planner"])
    for agent in (wiki, calc, planner):
        await agent.start()
    return planner, wiki, calc


def test_async_tasks_pause_until_every_trigger_fires_then_conclude(server):
    async def main():
        planner, wiki, calc = await _team(server)
        comm, conclusion = await planner.launch_goal("capital and sum", timeout=20)
        record = await planner.connection.chat_record(comm)
        types = [m.type for m in record]
        assert types[0] is MessageType.TEAM_UP and types[1] is MessageType.ASYNC_TASK_ASSIGN
        assert types[-2:] == [MessageType.CONCLUDE_GROUP_DISCUSSION, MessageType.CONCLUSION]
        pause = next(m for m in record if m.type is MessageType.PAUSE)
        results = [m for m in record if m.type is MessageType.INFORM_TASK_RESULT]
        conclude = next(m for m in record if m.type is MessageType.CONCLUDE_GROUP_DISCUSSION)
        assert len(results) == 2 and set(pause.triggers) == {m.task_id for m in results}
        # the slow Wiki result arrives after the pause, and the conclusion only after it
        assert max(m.seq for m in results) > pause.seq and conclude.seq > max(m.seq for m in results)
        assert "Paris" in conclusion and "4" in conclusion
        # every client walked only legal transitions, and everybody saw the same board
        for agent in (planner, wiki, calc):
            assert all(new in TRANSITIONS[old] for _, old, new in agent.transitions), agent.transitions
        boards = [[(t["assignee"], t["status"]) for t in a.chats[comm].tasks.board()] for a in (planner, wiki, calc)]
        assert boards[0] == boards[1] == boards[2] and {s for _, s in boards[0]} == {"completed"}
        assert [STATE_OF_TYPE[m.type] for m in record if m.type in STATE_OF_TYPE][-1] is State.END
        for agent in (planner, wiki, calc):
            await agent.stop()

    run(main(), timeout=40)


def test_a_sync_task_blocks_only_its_own_chat(server):
    async def main():
        slow = IoAClient(server.url, "Worker", "does slow work", ScriptedPolicy(), tool=_tool("slow result", 1.5),
                         accept_teams_from=["Boss", "Chatty"])
        boss = IoAClient(server.url, "Boss", "boss", ScriptedPolicy(turns=[
            TurnDecision("do the slow job", "sync_task_assign", ["Worker"]),
            TurnDecision("thanks", "conclude_group_discussion")]))
        chatty = IoAClient(server.url, "Chatty", "chats", ScriptedPolicy(turns=[
            TurnDecision("hello Worker", "discussion", ["Worker"]),
            TurnDecision("bye", "conclude_group_discussion")]))
        for agent in (slow, boss, chatty):
            await agent.start()
        start = time.monotonic()
        sync_job = asyncio.create_task(boss.launch_goal("slow job", team_members=["Worker"], timeout=20))
        await asyncio.sleep(0.2)  # the sync task is now running inside Worker's first chat
        _, quick_answer = await chatty.launch_goal("quick chat", team_members=["Worker"], timeout=20)
        quick_done = time.monotonic() - start
        _, slow_answer = await sync_job
        assert quick_done < 1.4, f"the second chat waited for the first chat's sync task ({quick_done:.2f} s)"
        assert "slow result" in slow_answer
        for agent in (slow, boss, chatty):
            await agent.stop()

    run(main(), timeout=40)


@pytest.mark.parametrize("depth, server_limit, expect_subchat", [(1, 3, True), (0, 3, False), (None, 0, False)])
def test_nested_teams_respect_the_depth_limits(server_factory, depth, server_limit, expect_subchat):
    server = server_factory(max_nesting_depth=server_limit)

    async def main():
        lead = IoAClient(server.url, "Lead", "leads a branch", ScriptedPolicy(team=["Helper"], want_subteam=True,
                         turns=[TurnDecision("Helper: dig", "sync_task_assign", ["Helper"]),
                                TurnDecision("sub done", "conclude_group_discussion")]),
                         kind=AgentKind.HUMAN_ASSISTANT, support_nested_teams=True, tool=_tool("did it alone"),
                         accept_teams_from=["Boss"])
        helper = IoAClient(server.url, "Helper", "helps", ScriptedPolicy(), tool=_tool("helper found it"),
                           accept_teams_from=["Lead"])
        boss = IoAClient(server.url, "Boss", "boss", ScriptedPolicy(turns=[
            TurnDecision("Lead: handle the branch", "sync_task_assign", ["Lead"]),
            TurnDecision("ok", "conclude_group_discussion")]))
        for agent in (lead, helper, boss):
            await agent.start()
        comm, conclusion = await boss.launch_goal("root goal", team_members=["Lead"], team_up_depth=depth, timeout=20)
        chats = await lead.connection.chats()
        children = [c for c in chats if c.parent_comm_id == comm]
        assert bool(children) is expect_subchat
        if expect_subchat:
            assert children[0].depth == 1 and "helper found it" in conclusion
        else:
            assert "did it alone" in conclusion
        for agent in (lead, helper, boss):
            await agent.stop()

    run(main(), timeout=40)


def test_tool_failures_mark_the_task_failed_and_the_chat_still_concludes(server):
    async def main():
        def broken(task):
            raise RuntimeError("tool crashed")

        worker = IoAClient(server.url, "Worker", "breaks", ScriptedPolicy(), tool=CallableAgent(broken),
                           accept_teams_from=["Boss"])
        boss = IoAClient(server.url, "Boss", "boss", ScriptedPolicy(turns=[
            TurnDecision("try it", "async_task_assign", ["Worker"]),
            TurnDecision("wait", "pause"),
            TurnDecision("give up", "conclude_group_discussion")]))
        for agent in (worker, boss):
            await agent.start()
        comm, conclusion = await boss.launch_goal("fragile", team_members=["Worker"], timeout=20)
        board = boss.chats[comm].tasks.board()
        assert board[0]["status"] == "failed" and "tool crashed" in board[0]["conclusion"]
        assert "FAILED" in conclusion
        for agent in (worker, boss):
            await agent.stop()

    run(main(), timeout=30)


def test_the_hard_turn_limit_ends_an_endless_discussion(server):
    async def main():
        talk = ScriptedPolicy(turns=lambda view: TurnDecision("and another thing", "discussion",
                                                             [m.name for m in view.members if m.name != view.me]))
        a = IoAClient(server.url, "A", "talker", talk, hard_turn_limit=5)
        b = IoAClient(server.url, "B", "talker", talk, hard_turn_limit=5, accept_teams_from=["A"])
        for agent in (a, b):
            await agent.start()
        comm, _ = await a.launch_goal("chat forever", team_members=["B"], timeout=20)
        record = await a.connection.chat_record(comm)
        assert record[-1].type is MessageType.CONCLUSION and len(record) <= 14
        for agent in (a, b):
            await agent.stop()

    run(main(), timeout=30)
