"""The LLM policy against a tiny fake OpenAI-compatible server on 127.0.0.1 (no network, no model)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents_kit.client.flow import IoAClient
from agents_kit.client.policies.llm import LLMError, LLMPolicy, OpenAICompatibleLLM, extract_json
from tests.agents_kit.conftest import run


class FakeLLM(BaseHTTPRequestHandler):
    """Answers chat completions by looking at the prompt; records every request body."""

    requests: list = []
    reject_json_mode = False
    chatty = False
    fail_status = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": "not found"})
        if self.fail_status:
            return self._send(self.fail_status, {"error": "overloaded"})
        if self.reject_json_mode and "response_format" in body:
            return self._send(400, {"error": "response_format not supported"})
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        if "Form a team" in system:
            decision = ({"tool": "agent_discovery", "queries": ["arithmetic"]} if "Earlier tool results: (none)" in user
                        else {"tool": "team_up", "team_members": ["Calc"]})
        elif "Rewrite the task" in user or "Rewrite the task" in system:
            decision = {"thought": "", "task_abstract": "add", "task_description": "compute 2+2",
                        "index_to_integrate": [], "context_information": "", "completion_criteria": "a number"}
        elif "The goal is achieved" in user:
            decision = {"content": "The answer is 4."}
        elif "[Calc]" in user:  # the result is in: conclude
            decision = {"thought": "done", "content": "we have it", "message_type": "conclude_group_discussion",
                        "next_people": []}
        elif "individual" in user:
            decision = {"decision": "individual"}
        else:
            decision = {"thought": "delegate", "content": "Calc, please add 2+2", "message_type": "sync_task_assign",
                        "next_people": ["Calc"], "tasks": {"Calc": "2+2"}}
        text = json.dumps(decision)
        if self.chatty:
            text = f"Sure! Here you go:\n```json\n{text}\n```"
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5}})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_llm():
    FakeLLM.requests, FakeLLM.reject_json_mode, FakeLLM.chatty, FakeLLM.fail_status = [], False, False, 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("text", ['{"a": 1}', '```json\n{"a": 1}\n```', 'Here: {"a": 1} done.'])
def test_extract_json_recovers_objects(text):
    assert extract_json(text) == {"a": 1}


def test_extract_json_rejects_non_objects():
    with pytest.raises(json.JSONDecodeError):
        extract_json("[1, 2]")


@pytest.mark.parametrize("reject_json_mode, chatty", [(False, False), (True, True)])
def test_llm_policy_runs_a_whole_conversation(server, fake_llm, reject_json_mode, chatty):
    FakeLLM.reject_json_mode, FakeLLM.chatty = reject_json_mode, chatty

    async def main():
        llm = OpenAICompatibleLLM(fake_llm, "fake-model", api_key="k", backoff_s=(0.01, 0.02))
        boss = IoAClient(server.url, "Boss", "coordinates", LLMPolicy(llm))
        calc = IoAClient(server.url, "Calc", "arithmetic calculator",
                         LLMPolicy(OpenAICompatibleLLM(fake_llm, "fake-model", backoff_s=(0.01, 0.02))),
                         accept_teams_from=["Boss"])
        for agent in (calc, boss):
            await agent.start()
        comm, conclusion = await boss.launch_goal("what is 2+2?", timeout=20)
        record = await boss.connection.chat_record(comm)
        for agent in (calc, boss):
            await agent.stop()
        return [m.type.value for m in record], conclusion, llm

    types, conclusion, llm = run(main(), timeout=40)
    assert types == ["team_up", "sync_task_assign", "inform_task_result", "conclude_group_discussion", "conclusion"]
    assert conclusion == "The answer is 4."
    assert llm.usage["calls"] >= 4 and llm.usage["prompt_tokens"] >= 40
    assert all(r["model"] == "fake-model" and r["temperature"] == 0.1 for r in FakeLLM.requests)
    assert llm.json_mode is (not reject_json_mode)


def test_llm_errors_are_reported(fake_llm):
    llm = OpenAICompatibleLLM(fake_llm.replace("/v1", "/nowhere"), "m", max_retries=2, backoff_s=(0.01, 0.01))
    with pytest.raises(LLMError, match="HTTP 404"):
        llm.chat_json("s", "u")
    FakeLLM.fail_status = 503
    retried = OpenAICompatibleLLM(fake_llm, "m", max_retries=3, backoff_s=(0.01, 0.01))
    with pytest.raises(LLMError, match="after 3 tries .HTTP 503"):
        retried.chat_json("s", "u")
    assert len(FakeLLM.requests) == 4  # 1 (404) + 3 retries


def test_the_llm_config_is_validated():
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatibleLLM("", "m")
