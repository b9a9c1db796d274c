// The page reads and changes the box only through the API the CLI uses;
// it keeps no state of its own beyond what is on screen.
"use strict";

let csrf = "";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(path, opts) {
  opts = opts || {};
  const headers = { "Accept": "application/json" };
  if (opts.method && opts.method !== "GET") {
    headers["X-Boxagent-Request"] = "1";
    if (csrf) headers["X-Boxagent-CSRF"] = csrf;
  }
  const r = await fetch(path, { method: opts.method || "GET", headers: headers, body: opts.body });
  if (r.status === 401) { location.href = "/login.html"; throw new Error("log in first"); }
  const body = await r.json();
  if (!r.ok) {
    const e = body.error || {};
    throw new Error((e.message || r.statusText) + (e.hint ? " (" + e.hint + ")" : ""));
  }
  return body;
}

function row(table, cells) {
  const tr = el("tr");
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  table.append(tr);
  return tr;
}

// Pages register here (pages/*.js): refresh() redraws from the API, and
// events maps an event-stream type ("bt", "fw", "operation" …) to a handler
// that gets the decoded data. Only the page shown is refreshed.
const PAGES = {};
function registerPage(id, page) { PAGES[id] = page; }

function currentPage() {
  const id = (location.hash || "#overview").slice(1);
  return document.querySelector("section[data-page]#" + CSS.escape(id)) ? id : "overview";
}

function showPage() {
  const id = currentPage();
  for (const s of document.querySelectorAll("section[data-page]")) s.hidden = s.id !== id;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + id) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const p = PAGES[id];
  if (p && p.refresh) p.refresh().catch((e) => pageError(id, e));
}

function pageError(id, e) {
  const box = document.querySelector("#" + id + " .page-error") || document.querySelector("#" + id).appendChild(el("p", "", "error page-error"));
  box.setAttribute("role", "alert");
  box.textContent = e.message || String(e);
}

// operate POSTs a change and follows its operation to the end: out (an
// element) shows progress and then the result or the API's error and hint;
// bar (an optional <progress>) tracks done/total. It resolves with the
// final operation record, or throws with the API's message.
const opWaiters = {};
// Operation events that came before anyone waited for them (all of a
// short staging's progress can reach the page before its POST's answer):
// the newest state and progress per operation, the last few operations.
const opEarly = new Map();
function rememberOperationEvent(ev) {
  const prev = opEarly.get(ev.id);
  opEarly.delete(ev.id);
  opEarly.set(ev.id, Object.assign({}, prev, ev, { progress: ev.progress || (prev && prev.progress) }));
  while (opEarly.size > 16) opEarly.delete(opEarly.keys().next().value);
}
async function operate(path, body, out, bar) {
  out.className = ""; out.setAttribute("role", "status");
  out.textContent = t("op.starting");
  let op;
  try {
    op = await api(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    out.className = "error"; out.textContent = e.message; throw e;
  }
  // A long operation answers 202 with only its id and location.
  if (!op.state || op.state === "running") {
    const id = op.id;
    // Cancel, beside the progress while it runs (POST …/cancel, as `fw
    // cancel` in the CLI): the operation ends as cancelled, said in out.
    const stop = el("button", t("op.cancel"), "op-cancel");
    stop.type = "button";
    stop.addEventListener("click", () => {
      stop.disabled = true;
      api("/api/v1/operations/" + id + "/cancel", { method: "POST" }).catch((e) => {
        out.className = "error"; out.textContent = e.message; stop.disabled = false;
      });
    });
    out.after(stop);
    op = await new Promise((resolve) => {
      const end = (ev) => { delete opWaiters[id]; api("/api/v1/operations/" + id).then(resolve, () => resolve(ev)); };
      opWaiters[id] = (ev) => {
        if (ev.progress) {
          out.textContent = ev.progress.message + (ev.progress.total ? " " + Math.floor(100 * ev.progress.done / ev.progress.total) + " %" : "");
          if (bar && ev.progress.total) { bar.max = ev.progress.total; bar.value = ev.progress.done; }
        }
        if (ev.state !== "running") end(ev);
      };
      const early = opEarly.get(id);
      if (early) opWaiters[id](early);
      // It may have ended before the waiter was in place.
      api("/api/v1/operations/" + id).then((cur) => { if (cur.state !== "running" && opWaiters[id]) end(cur); }, () => {});
    });
    stop.remove();
  }
  if (op.error) {
    out.className = "error";
    out.textContent = op.error.message + (op.error.hint ? " (" + op.error.hint + ")" : "");
    throw new Error(op.error.message);
  }
  // The record's last progress gives the bar its real total when every
  // progress event came before the POST's answer (a slow browser).
  for (const p of op.progress || []) if (bar && p.total) bar.max = p.total;
  if (bar && bar.max) bar.value = bar.max;
  out.textContent = op.kind + " #" + op.id + ": " + op.state + (op.summary ? " — " + op.summary : "");
  return op;
}

async function showStatus() {
  const s = await api("/api/v1/status");
  const box = document.getElementById("status");
  box.replaceChildren();
  const tbl = el("table");
  const th = (k) => el("th", t(k));
  row(tbl, [th("overview.version"), el("td", s.version)]);
  row(tbl, [th("overview.board"), el("td", s.board.id + " (" + s.board.name + ")")]);
  row(tbl, [th("overview.uptime"), el("td", Math.round(s.uptime_seconds) + " s")]);
  row(tbl, [th("overview.config"), el("td", s.config.revision.slice(0, 19) + (s.config.default ? " (" + t("overview.defaults") + ")" : ""))]);
  for (const sub of s.subsystems) {
    row(tbl, [el("th", sub.name), el("td", sub.state + (sub.detail ? ": " + sub.detail : ""), "state-" + sub.state)]);
  }
  box.append(tbl);
  await showOverview().catch((e) => { document.getElementById("overview-live").replaceChildren(el("p", e.message, "error")); });
}

// ago says how far a time is from now, in words a person reads at a
// glance ("in 3 h", "5 min ago").
function ago(iso) {
  const s = Math.round((new Date(iso) - Date.now()) / 1000);
  const a = Math.abs(s);
  const v = a < 90 ? a + " s" : a < 5400 ? Math.round(a / 60) + " min" : a < 172800 ? Math.round(a / 3600) + " h" : Math.round(a / 86400) + " d";
  return (s >= 0 ? t("time.in") : t("time.ago")).replace("{v}", v);
}

// showOverview is the state of each domain in one table, from the same
// GET routes the pages use, fetched side by side. A domain the box lacks
// (or that is down) reads "not available" with the API's reason.
async function showOverview() {
  const get = (path) => api(path).then((v) => ({ v }), (e) => ({ e }));
  const [net, wifi, bt, audio, fw, fleet] = await Promise.all(
    ["/api/v1/net", "/api/v1/wifi", "/api/v1/bt/devices", "/api/v1/audio", "/api/v1/fw", "/api/v1/fleet"].map(get));
  const tbl = el("table");
  const line = (key, r, draw) => {
    const td = el("td");
    if (r.e) { td.textContent = t("overview.na"); td.title = r.e.message; td.className = "state-absent"; td.append(el("small", " — " + r.e.message)); }
    else draw(td, r.v);
    row(tbl, [el("th", t(key)), td]);
  };
  line("overview.uplinks", net, (td, v) => {
    if (!v.uplinks.length) td.textContent = t("overview.none");
    for (const u of v.uplinks) {
      const addrs = v.addresses.filter((a) => a.link === u.name).map((a) => a.address);
      const p = el("div", u.name + ": " + t(u.up ? "overview.up" : "overview.down") + (addrs.length ? " " + addrs.join(", ") : "") + (u.detail ? " (" + u.detail + ")" : ""), u.up ? "state-ok" : "state-degraded");
      const l = u.dhcp && u.dhcp.lease;
      if (l) p.append(el("small", " — " + t("overview.lease").replace("{renew}", ago(l.renew_at)).replace("{expires}", ago(l.expires_at))));
      if (u.pppoe && u.pppoe.up) p.append(el("small", " — PPPoE " + u.pppoe.address + " " + t("overview.since").replace("{v}", ago(u.pppoe.since))));
      td.append(p);
    }
  });
  line("overview.wifi", wifi, (td, v) => {
    td.append(el("span", v.state + (v.ssid ? " “" + v.ssid + "” " : " "), v.state === "completed" ? "state-ok" : ""));
    if (v.ssid && typeof wifiBars === "function") td.append(wifiBars(v.link ? v.link.rssi_dbm : v.signal_dbm));
    if (v.address) td.append(el("span", " " + v.address));
  });
  line("overview.headset", bt, (td, v) => {
    const hs = v.filter((d) => d.connected && (d.a2dp_sink || d.hfp_hf || d.hsp_hs));
    td.textContent = hs.length ? hs.map((d) => (d.alias || d.name || d.address) + " " + t("overview.connected")).join(", ") : t("overview.noheadset");
  });
  line("overview.audiomode", audio, (td, v) => {
    const cards = v.cards.filter((c) => c.headset);
    td.textContent = cards.length ? cards.map((c) => (c.description || c.name) + ": " + (c.mode || c.active_profile)).join(", ") : t("overview.noheadset");
  });
  line("overview.staged", fw, (td, v) => {
    const s = v.staged;
    if (!s) { td.textContent = t("overview.nothingstaged"); return; }
    const last = (s.staged || []).slice(-1)[0];
    td.append(el("span", s.sha256.slice(0, 12) + " (" + fwBytes(s.size) + ")", "mono"));
    if (last) td.append(el("span", " " + ago(last.time) + ([last.label, last.serial].filter(Boolean).length ? " → " + [last.label, last.serial].filter(Boolean).join(" / ") : "")));
  });
  // The fleet link: its broker, the last record the broker acknowledged,
  // the certificate's expiry (the doctor warns 30 days before).
  line("overview.fleet", fleet, (td, v) => {
    if (!v.configured) { td.textContent = t("overview.fleetoff"); return; }
    if (v.error) { td.append(el("span", v.error, "state-failed")); return; }
    td.append(el("span", v.connected ? t("overview.fleeton").replace("{broker}", v.broker).replace("{id}", v.id) : t("overview.fleetconnecting"), v.connected ? "state-ok" : "state-degraded"));
    td.append(el("small", " — " + t("overview.fleetacked").replace("{n}", v.acked_record)));
    if (v.cert_not_after) td.append(el("small", " — " + t("overview.fleetcert").replace("{v}", v.cert_not_after.slice(0, 10))));
  });
  document.getElementById("overview-live").replaceChildren(tbl);
}

// overviewOps lists the last operations on the Overview, from the
// History's own fetch.
function overviewOps(ops) {
  const ul = document.getElementById("overview-ops");
  ul.replaceChildren();
  for (const op of ops.slice(0, 5)) {
    const li = el("li", op.kind + " #" + op.id + ": ");
    li.append(el("span", op.state, "state-" + (op.state === "done" ? "ok" : op.state)), el("small", " " + (op.summary || "") + " — " + ago(op.started)));
    ul.append(li);
  }
  if (!ops.length) ul.append(el("li", t("overview.none")));
}

async function showOperations() {
  const kind = document.getElementById("kind").value.trim();
  const ops = await api("/api/v1/operations?limit=20" + (kind ? "&kind=" + encodeURIComponent(kind) : ""));
  const body = document.querySelector("#ops tbody");
  body.replaceChildren();
  for (const op of ops) {
    const link = el("a", op.id);
    link.href = "#history";
    link.addEventListener("click", () => showOperation(op.id));
    const id = el("td"); id.append(link);
    row(body, [id, el("td", op.kind), el("td", op.origin), el("td", op.state, "state-" + (op.state === "done" ? "ok" : op.state)), el("td", op.started)]);
  }
  if (!kind) overviewOps(ops);
}

async function showOperation(id) {
  const op = await api("/api/v1/operations/" + id);
  const box = document.getElementById("op-detail");
  box.replaceChildren(el("h3", op.kind + " #" + op.id), el("p", op.summary || ""));
  if (op.error) box.append(el("p", op.error.message + (op.error.hint ? " (" + op.error.hint + ")" : ""), "error"));
  box.append(el("h4", t("ops.snapshot")), el("pre", JSON.stringify(op.snapshot, null, 2)));
}

async function showDoctor() {
  const d = await api("/api/v1/doctor");
  const body = document.querySelector("#checks tbody");
  body.replaceChildren();
  for (const c of d.checks) {
    const cls = c.result === "OK" ? "state-ok" : (c.result === "FAIL" ? "state-failed" : "state-degraded");
    row(body, [el("th", c.name), el("td", c.result, cls), el("td", c.detail + (c.fix ? " — " + t("doctor.fix") + ": " + c.fix : ""))]);
  }
  // The Overview lists what is not OK, from the same answer.
  const warn = document.getElementById("overview-warnings");
  warn.replaceChildren();
  for (const c of d.checks.filter((c) => c.result === "WARN" || c.result === "FAIL")) {
    const li = el("li", c.name + ": ", c.result === "FAIL" ? "state-failed" : "state-degraded");
    li.append(el("span", c.result + " — " + c.detail + (c.fix ? " (" + t("doctor.fix") + ": " + c.fix + ")" : "")));
    warn.append(li);
  }
  if (!warn.children.length) warn.append(el("li", t("overview.nowarnings"), "state-ok"));
}

function follow() {
  const log = document.getElementById("events");
  const src = new EventSource("/api/v1/events");
  const onEvent = (e) => {
    log.textContent = e.type + " " + e.data + "\n" + log.textContent.slice(0, 4000);
    let data = null;
    try { data = JSON.parse(e.data); } catch (_) { /* not JSON: the log line is all */ }
    // Each event is {id, time, type, data}: handlers get its data.
    if (data && typeof data === "object" && "data" in data && data.type === e.type) data = data.data;
    if (e.type === "operation") {
      showOperations().catch(() => {});
      if (data && opWaiters[data.id]) opWaiters[data.id](data);
      else if (data) rememberOperationEvent(data);
    }
    if (e.type === "config") showStatus().catch(() => {});
    const shown = PAGES[currentPage()];
    if (shown && shown.events && shown.events[e.type]) shown.events[e.type](data);
  };
  const types = new Set(["operation", "config"]);
  for (const p of Object.values(PAGES)) for (const k of Object.keys(p.events || {})) types.add(k);
  for (const k of types) src.addEventListener(k, onEvent);
  // EventSource reconnects by itself and sends Last-Event-ID; a daemon
  // that restarted in between has no such id to replay from, so the page
  // is redrawn from the API once the stream is back.
  let lost = false;
  src.onerror = () => {
    lost = true;
    log.textContent = t("events.reconnecting") + "\n" + log.textContent;
    // A refused stream (401: the session ended, e.g. the password
    // changed) is not retried by the browser: log in again, or follow anew.
    if (src.readyState === EventSource.CLOSED) {
      setTimeout(() => api("/api/v1/session").then((s) => { if (s.authenticated) { follow(); refresh().catch(() => {}); } else location.href = "/login.html"; }).catch(() => setTimeout(follow, 2000)), 1000);
    }
  };
  src.onopen = () => { if (lost) { lost = false; refresh().catch(() => {}); } };
}

async function main() {
  await loadLanguage(pickLanguage());
  document.getElementById("lang").addEventListener("change", async (e) => {
    localStorage.setItem("lang", e.target.value);
    if (await loadLanguage(e.target.value)) await refresh();
  });
  const sess = await api("/api/v1/session");
  csrf = sess.csrf || "";
  const logout = document.getElementById("logout");
  logout.hidden = !sess.required;
  logout.addEventListener("click", async () => { await api("/api/v1/logout", { method: "POST" }); location.href = "/login.html"; });
  document.getElementById("reload").addEventListener("click", async () => {
    const out = document.getElementById("reload-result");
    try {
      const op = await api("/api/v1/config/reload", { method: "POST" });
      out.className = ""; out.textContent = op.kind + " #" + op.id + ": " + op.state;
    } catch (e) { out.className = "error"; out.textContent = e.message; }
  });
  document.getElementById("kind").addEventListener("change", () => showOperations());
  window.addEventListener("hashchange", showPage);
  // Follow the event stream before the first load: a change made while
  // the page loads (the doctor can take seconds) is then an event the
  // page sees, not one that went by before it listened.
  follow();
  await refresh();
  showPage();
}

async function refresh() {
  await Promise.all([showStatus(), showOperations(), showDoctor()]);
  const p = PAGES[currentPage()];
  if (p && p.refresh) await p.refresh().catch((e) => pageError(currentPage(), e));
}


// Helpers the pages share (pages/*.js).

// pageButton is a <button type="button"> with an id, running onClick.
function pageButton(text, id, onClick) {
  const b = el("button", text);
  b.type = "button";
  if (id) b.id = id;
  b.addEventListener("click", onClick);
  return b;
}

// statusLine is the role="status" line a page keeps under key: the same
// element across redraws, so an operation's result stays on screen while
// the events it caused redraw the page around it.
const STATUS_LINES = new Map();
function statusLine(key) {
  if (!STATUS_LINES.has(key)) {
    const o = el("p");
    o.setAttribute("role", "status");
    o.dataset.live = key;
    STATUS_LINES.set(key, o);
  }
  return STATUS_LINES.get(key);
}

// redrawSoon returns a function that redraws page id once after a burst
// of events (a profile switch or a lease brings several), not per event.
function redrawSoon(id, draw) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; draw().catch((e) => pageError(id, e)); }, 150);
  };
}

// keepFocus runs a redraw of box and gives the keyboard focus back to the
// element with the same id, which the redraw replaced.
function keepFocus(box, redraw) {
  const a = document.activeElement;
  const id = a && box.contains(a) ? a.id : "";
  redraw();
  if (id) { const f = document.getElementById(id); if (f) f.focus(); }
}

// patchList makes list hold items, in order, keeping each existing child
// whose data-key matches and that equals the new one (isEqualNode: same
// markup and text; pages set form state as attributes for this), so a
// redraw for an event leaves alone the button under a finger, the
// keyboard focus and a slider being dragged.
// Elements marked data-live are not compared: status lines (statusLine),
// which move along (give an item its line by its data-status key, not by
// appending it yourself), and text that ages, like "in 58 s", which the
// page refreshes itself.
function patchList(list, items) {
  const old = new Map();
  for (const c of list.children) if (c.dataset.key) old.set(c.dataset.key, c);
  const bare = (n) => { const c = n.cloneNode(true); for (const s of c.querySelectorAll("[data-live]")) s.remove(); return c; };
  const keep = items.map((n) => { const o = old.get(n.dataset.key); return o && bare(o).isEqualNode(bare(n)) ? o : n; });
  keep.forEach((n, i) => { if (list.children[i] !== n) list.insertBefore(n, list.children[i] || null); });
  while (list.children.length > keep.length) list.lastChild.remove();
  for (const n of keep) if (n.dataset.status) n.append(statusLine(n.dataset.status));
}
