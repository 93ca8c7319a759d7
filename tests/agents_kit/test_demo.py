from pathlib import Path

from agents_kit.client.config import ClientConfig
from agents_kit.demo.tools import calculator, capitals
from shared.config import load_config

DEMO = Path(__file__).resolve().parents[2] / "agents_kit" / "demo"


def test_demo_tools():
    assert calculator("what is 6*7 and (1+2)/4?") == "6*7 = 42\n(1+2)/4 = 0.75"
    assert "cannot compute" in calculator("1/0")
    assert capitals("capital of france?") == "The capital of France is Paris."


def test_demo_configs_load():
    for name in ("planner", "capitals", "calc"):
        config = load_config(ClientConfig, DEMO / f"{name}.yaml")
        assert config.agent.name and config.server.url.startswith("http://127.0.0.1")


def test_scripted_tool_agents_hand_the_floor_back():
    from agents_kit.client.config import make_policy
    from agents_kit.client.policies.base import ChatView
    from agents_kit.protocol import AgentMessage

    config = load_config(ClientConfig, DEMO / "calc.yaml")
    policy = make_policy(config.policy, "CalcAgent", has_tool=True)
    said = AgentMessage(comm_id="c", sender="Planner", type="discussion", content="anyone?", next_speaker=["CalcAgent"])
    view = ChatView(me="CalcAgent", comm_id="c", goal="g", members=[], history=[said], task_board=[])
    decision = policy.turn(view)
    assert decision.message_type == "discussion" and decision.next_people == ["Planner"]
