import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents_kit.client.adapters.base import (
    AgentProtocolAgent,
    CallableAgent,
    HttpRunAgent,
    ToolAgent,
    make_tool_agent,
)
from shared.errors import ConfigError


class FakeAgents(BaseHTTPRequestHandler):
    """``POST /run`` and a 3-step Agent Protocol task."""

    steps: dict = {}

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/run":
            return self._send({"result": f"ran: {body['task_desc']}"})
        if self.path == "/ap/v1/agent/tasks":
            FakeAgents.steps["t1"] = 0
            return self._send({"task_id": "t1", "input": body["input"]})
        if self.path == "/ap/v1/agent/tasks/t1/steps":
            FakeAgents.steps["t1"] += 1
            n = FakeAgents.steps["t1"]
            return self._send({"output": f"step {n}", "is_last": n == 3})
        self.send_response(404)
        self.end_headers()

    def _send(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_agents():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeAgents)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_http_run_adapter(fake_agents):
    assert HttpRunAgent(fake_agents).run("sum 2 2") == "ran: sum 2 2"


def test_agent_protocol_adapter_steps_until_last(fake_agents):
    assert AgentProtocolAgent(fake_agents, max_steps=10).run("do it") == "step 3"


def test_agent_protocol_adapter_asks_for_a_summary_when_out_of_steps(fake_agents):
    assert AgentProtocolAgent(fake_agents, max_steps=1).run("do it") == "step 2"


def test_callable_and_factory():
    assert isinstance(CallableAgent(str.upper), ToolAgent) and CallableAgent(str.upper).run("x") == "X"
    assert make_tool_agent("none") is None
    assert make_tool_agent("callable", "json:dumps").run("a") == '"a"'
    with pytest.raises(ConfigError, match="package.module:function"):
        make_tool_agent("callable", "nocolon")
    with pytest.raises(ConfigError, match="cannot load"):
        make_tool_agent("callable", "json:nope")
    with pytest.raises(ConfigError, match="unknown tool_agent.kind"):
        make_tool_agent("docker")
