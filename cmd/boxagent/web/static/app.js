// The page reads the same API the CLI uses; it keeps no state of its own.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function api(path) {
  const r = await fetch(path, { headers: { "Accept": "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
  return body;
}

async function showStatus() {
  const s = await api("/api/v1/status");
  const box = document.getElementById("overview");
  box.replaceChildren();
  const t = el("table");
  const rows = [
    ["version", s.version],
    ["board", s.board.id + " (" + s.board.name + ")"],
    ["uptime", Math.round(s.uptime_seconds) + " s"],
    ["config", s.config.revision + (s.config.default ? " (defaults)" : "")],
  ];
  for (const [k, v] of rows) {
    const tr = el("tr"); tr.append(el("th", k), el("td", v)); t.append(tr);
  }
  for (const sub of s.subsystems) {
    const tr = el("tr"); tr.append(el("th", sub.name), el("td", sub.state + (sub.detail ? ": " + sub.detail : ""), sub.state)); t.append(tr);
  }
  box.append(t);
}

async function showOperations() {
  const ops = await api("/api/v1/operations?limit=10");
  const body = document.querySelector("#ops tbody");
  body.replaceChildren();
  for (const op of ops) {
    const tr = el("tr");
    tr.append(el("td", op.id), el("td", op.kind), el("td", op.origin), el("td", op.state), el("td", op.started));
    body.append(tr);
  }
}

function follow() {
  const log = document.getElementById("events");
  const src = new EventSource("/api/v1/events");
  const onEvent = (e) => {
    log.textContent = e.type + " " + e.data + "\n" + log.textContent;
    if (e.type === "operation") showOperations();
    if (e.type === "config") showStatus();
  };
  src.addEventListener("operation", onEvent);
  src.addEventListener("config", onEvent);
}

showStatus().catch((e) => { document.getElementById("overview").textContent = "cannot reach the agent: " + e.message; });
showOperations().catch(() => {});
follow();
