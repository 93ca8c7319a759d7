"""The live page in headless Chromium: sign in through its form (the token never enters a URL), then it shows a
message that arrives after the page has loaded, under its Content-Security-Policy."""

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time

import httpx
import pytest
import websockets

from tests.agents_kit.conftest import auth, register, run

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chromium-headless-shell")
                 if shutil.which(b)), None)


@pytest.mark.server
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_live_page_shows_a_live_message_in_headless_chromium(server, tmp_path):
    a = register(server, "Alice")
    register(server, "Bob")
    comm = httpx.post(f"{server.url}/teamup", json={"agent_names": ["Bob"], "team_name": "demo", "goal": "say hi"},
                      headers=auth(a)).json()["comm_id"]
    stop = threading.Event()

    def talk():  # keep posting while the browser is open: at least one arrives after the page connected
        i = 0
        while not stop.is_set():
            httpx.post(f"{server.url}/send", headers=auth(a), json={
                "comm_id": comm, "sender": "Alice", "type": "discussion", "content": f"live hello {i}"})
            i += 1
            time.sleep(0.2)

    writer = threading.Thread(target=talk, daemon=True)
    writer.start()
    try:
        live, text, url = run(_count_live_messages(f"{server.url}/", server.admin_token, tmp_path), timeout=60)
    finally:
        stop.set()
        writer.join(5)
    assert live > 0, text[-1000:]
    assert "live hello" in text and "Alice (Thing Assistant)" in text
    assert server.admin_token not in url and "signed in as *admin*" in text


async def _count_live_messages(url: str, token: str, tmp_path) -> tuple[int, str, str]:
    """Open ``url`` in headless Chromium via the DevTools protocol, sign in with ``token`` through the form,
    poll the DOM for live messages; returns (live messages, page text, the page's URL)."""
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--remote-debugging-port=0", f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = None
        deadline = time.monotonic() + 30
        while endpoint is None and time.monotonic() < deadline:
            line = await asyncio.to_thread(proc.stderr.readline)
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = match.group(1) if match else None
        assert endpoint, "Chromium did not start its DevTools endpoint"
        port = endpoint.split(":")[2].split("/")[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as cdp:
            ids = iter(range(1, 10_000))

            async def call(method, **params):
                number = next(ids)
                await cdp.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    reply = json.loads(await cdp.recv())
                    if reply.get("id") == number:
                        return reply.get("result", {})

            await call("Page.navigate", url=url)
            for _ in range(100):  # live.js (loaded under the page's CSP) marks the body when it has run
                await asyncio.sleep(0.1)
                ready = await call("Runtime.evaluate", returnByValue=True,
                                   expression="document.body && document.body.dataset.ready || ''")
                if ready.get("result", {}).get("value") == "1":
                    break
            await call("Runtime.evaluate", expression=(
                f"document.getElementById('token').value = {json.dumps(token)};"
                "document.getElementById('login').requestSubmit();"))
            count, text = 0, ""
            for _ in range(100):
                await asyncio.sleep(0.2)
                result = await call("Runtime.evaluate", returnByValue=True, expression=(
                    "JSON.stringify([document.querySelectorAll('.msg.live').length, document.body.innerText])"))
                count, text = json.loads(result.get("result", {}).get("value", "[0, \"\"]"))
                if count > 0:
                    break
            where = await call("Runtime.evaluate", returnByValue=True, expression="location.href")
            return count, text, where.get("result", {}).get("value", "")
    finally:
        proc.kill()
        proc.wait(10)
        proc.stderr.close()
