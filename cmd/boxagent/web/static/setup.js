// The setup hotspot's page: the scan list the box made before it opened
// the hotspot, one form, and the result of the last try. It talks to the
// hotspot listener's three calls only (GET /setup/networks, GET
// /setup/status, POST /setup/connect): no login, no other API.
"use strict";
const S = { strings: {}, lang: "en" };
function t(key) { return S.strings[key] || key; }
function $(id) { return document.getElementById(id); }

async function loadLanguage(lang) {
  try {
    const r = await fetch("i18n/" + lang + ".json");
    S.strings = await r.json();
  } catch (e) { S.strings = {}; }
  S.lang = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("lang").value = lang;
}

const errorKeys = {
  "wifi.wrong_password": "setup.error.password",
  "wifi.not_found": "setup.error.notfound",
  "wifi.rejected": "setup.error.rejected",
  "wifi.timeout": "setup.error.timeout",
  "wifi.invalid": "setup.error.invalid",
  "wifi.setup.busy": "setup.error.busy",
};

function showResult(text, bad) {
  const el = $("setup-result");
  el.textContent = text;
  el.className = bad ? "error" : "";
}

async function loadNetworks() {
  const sel = $("setup-ssid");
  let list = [];
  try { list = await (await fetch("setup/networks")).json(); } catch (e) { list = []; }
  sel.textContent = "";
  for (const n of list) {
    const o = document.createElement('option');
    o.value = n.ssid;
    o.textContent = n.ssid + " (" + n.signal_dbm + " dBm, " + (n.security === "open" ? t("setup.open") : n.security) + ")";
    sel.appendChild(o);
  }
  const other = document.createElement('option');
  other.value = "";
  other.textContent = t("setup.othernetwork");
  sel.appendChild(other);
  toggleOther();
}

function toggleOther() {
  const other = $("setup-ssid").value === "";
  $("setup-other").hidden = !other;
  $("setup-other-label").hidden = !other;
}

async function loadStatus() {
  try {
    const st = await (await fetch("setup/status")).json();
    if (st.last_error) {
      const key = errorKeys[st.last_error_code];
      showResult(t("setup.failed").replace("{ssid}", st.last_ssid) + " " + (key ? t(key) : st.last_error), true);
    }
  } catch (e) { /* the hotspot is going down */ }
}

$("setup-ssid").addEventListener("change", toggleOther);
$("setup-show").addEventListener("change", (e) => { $("setup-password").type = e.target.checked ? "text" : "password"; });
$("lang").addEventListener("change", async (e) => {
  localStorage.setItem("lang", e.target.value);
  await loadLanguage(e.target.value);
  await loadNetworks();
});
$("setup-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const ssid = $("setup-ssid").value || $("setup-other").value;
  if (!ssid) { showResult(t("setup.error.nossid"), true); return; }
  $("setup-submit").disabled = true;
  showResult(t("setup.joining").replace("{ssid}", ssid), false);
  try {
    const r = await fetch("setup/connect", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ssid: ssid, password: $("setup-password").value, hidden: $("setup-hidden").checked }),
    });
    if (r.status !== 202) {
      const body = await r.json().catch(() => ({}));
      const err = body.error || {};
      const key = errorKeys[err.code];
      showResult(key ? t(key) : (err.message || r.statusText), true);
      $("setup-submit").disabled = false;
      return;
    }
  } catch (e) { /* the answer may be cut by the hotspot going down */ }
  // The hotspot goes down while the box tries the network; when it comes
  // back (the join failed), this page finds it again and says why.
  waitForHotspot();
});

async function waitForHotspot() {
  for (;;) {
    await new Promise((ok) => setTimeout(ok, 3000));
    try {
      const st = await (await fetch("setup/status", { cache: "no-store" })).json();
      if (st.state === "on") {
        $("setup-submit").disabled = false;
        await loadStatus();
        return;
      }
    } catch (e) { /* still down: the box is joining, or has joined */ }
  }
}

(async () => {
  const saved = localStorage.getItem("lang");
  const lang = saved || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en");
  await loadLanguage(lang);
  await loadNetworks();
  await loadStatus();
})();
