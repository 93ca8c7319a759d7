"use strict";
// The live page. The token is kept in this script's memory only: never in the URL (server logs, browser
// history, Referer), in storage or in a cookie; it goes in an Authorization header and in the first frame of
// the /live WebSocket. Reloading the page signs out. Served under a Content-Security-Policy that allows
// scripts and styles from this origin only, so nothing here may be inline.
let token = "";
let selected = null;
let socket = null;
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const headers = () => ({ "Authorization": "Bearer " + token });

function render(m, live) {
  if (selected && m.comm_id !== selected) return;
  const box = el("div", live ? "msg live" : "msg");
  box.dataset.seq = m.seq;
  box.appendChild(el("div", "meta", `#${m.seq} ${m.sender} → [${(m.next_speaker || []).join(", ")}] · ${m.type} · ${m.comm_id.slice(0, 8)}`));
  box.appendChild(el("div", "content", m.content));
  $("messages").appendChild(box);
}

async function loadOverview() {
  const r = await fetch("/api/overview", { headers: headers() });
  if (!r.ok) { signOut(r.status === 429 ? "too many failed sign-ins from here: wait a minute" : "token rejected"); return false; }
  const data = await r.json();
  const agents = $("agents"); agents.replaceChildren();
  for (const a of data.agents) agents.appendChild(el("li", "", `${a.name} (${a.type})`));
  const chats = $("chats"); chats.replaceChildren();
  for (const c of data.chats) {
    const li = el("li", "chat" + (c.comm_id === selected ? " active" : ""), `${c.team_name || c.comm_id.slice(0, 8)} · ${c.members.join(", ")} · ${c.messages} msgs`);
    li.addEventListener("click", () => openChat(c));
    chats.appendChild(li);
  }
  return true;
}

async function openChat(c) {
  selected = c.comm_id;
  $("title").textContent = `${c.team_name || c.comm_id} — goal: ${c.goal}`;
  $("messages").replaceChildren();
  const r = await fetch(`/fetch_chat_record/${encodeURIComponent(c.comm_id)}`, { headers: headers() });
  if (r.ok) for (const m of await r.json()) render(m, false);
  loadOverview();
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/live`);
  socket = ws;
  ws.onopen = () => ws.send(JSON.stringify({ op: "hello", token }));
  ws.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    if (f.op === "welcome") $("status").textContent = `live (signed in as ${f.viewer})`;
    else if (f.op === "message") { render(f.message, true); loadOverview(); }
  };
  ws.onclose = (ev) => {
    if (socket !== ws || !token) return;
    if (ev.code === 4401 || ev.code === 4429) { signOut(ev.code === 4429 ? "too many failed sign-ins from here" : "token rejected"); return; }
    $("status").textContent = "disconnected, retrying…";
    setTimeout(() => { if (socket === ws && token) connect(); }, 1000);
  };
}

function signOut(why) {
  token = "";
  const ws = socket;
  socket = null;
  if (ws) ws.close();
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why || "";
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  if (token && await loadOverview()) {
    $("login").hidden = true;
    $("app").hidden = false;
    $("status").textContent = "connecting…";
    connect();
  }
});
$("signout").addEventListener("click", () => signOut(""));
document.body.dataset.ready = "1";
