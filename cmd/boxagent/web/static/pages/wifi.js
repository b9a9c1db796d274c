// The Wi-Fi page: a client of /api/v1/wifi… like `boxagent wifi`; no
// logic of its own. The forms are built once, so a refresh (from a "wifi"
// event) redraws the tables without touching what the user is typing or
// an operation that is still running.
"use strict";

// wifiBars draws a signal in dBm as four bars, with the same reading in
// words for screen readers and for anyone who cannot tell the glyphs
// apart (the Overview uses it too).
function wifiBars(dbm) {
  const n = !dbm ? 0 : dbm >= -55 ? 4 : dbm >= -67 ? 3 : dbm >= -75 ? 2 : dbm >= -85 ? 1 : 0;
  const span = el("span", "", "bars");
  span.setAttribute("role", "img");
  span.setAttribute("aria-label", t("wifi.bars").replace("{n}", n) + (dbm ? ", " + dbm + " dBm" : ""));
  const glyphs = el("span", "▂▄▆█".slice(0, n), "bars-on");
  glyphs.setAttribute("aria-hidden", "true");
  const rest = el("span", "▂▄▆█".slice(n), "bars-off");
  rest.setAttribute("aria-hidden", "true");
  const words = el("span", " " + n + "/4" + (dbm ? " (" + dbm + " dBm)" : ""));
  words.setAttribute("aria-hidden", "true");
  span.append(glyphs, rest, words);
  return span;
}

// stackLabels gives each cell of a list table its column's heading, for
// the phone layout (style.css: table.stack) where rows become cards and
// the heading row is visually hidden. The Firmware page uses it too.
function stackLabels(tbl) {
  tbl.classList.add("stack");
  const heads = [...tbl.querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of tbl.querySelectorAll("tbody tr")) {
    [...tr.children].forEach((td, i) => { if (heads[i] && td.colSpan === 1) td.dataset.label = heads[i]; });
  }
}

const wifiPage = {
  built: false,
  body() { return document.querySelector("#wifi .page-body"); },

  build() {
    const body = this.body();
    body.replaceChildren();
    const h3 = (k) => el("h3", t(k));

    // Status.
    const status = el("div"); status.id = "wifi-status";
    body.append(h3("wifi.status"), status);

    // Scan.
    const scan = el("button", t("wifi.scan")); scan.type = "button"; scan.id = "wifi-scan";
    const scanOut = el("p"); scanOut.id = "wifi-scan-result";
    const list = el("table"); list.id = "wifi-list";
    const head = el("thead"); row(head, ["wifi.ssid", "wifi.signal", "wifi.band", "wifi.security", "wifi.action"].map((k) => el("th", t(k))));
    list.append(head, el("tbody"));
    list.hidden = true;
    body.append(h3("wifi.inrange"), scan, scanOut, list);
    scan.addEventListener("click", () => this.scan(scan, scanOut, list));

    // Connect. The password goes to the API only: the field is cleared
    // after every attempt and never written anywhere on the page.
    const form = el("form", "", "wifi-connect"); form.id = "wifi-form";
    const field = (id, key, input) => {
      const l = el("label", t(key)); l.htmlFor = id; input.id = id;
      const d = el("div", "", "field"); d.append(l, input); return d;
    };
    const ssid = el("input"); ssid.type = "text"; ssid.required = true; ssid.maxLength = 32; ssid.autocomplete = "off";
    const psk = el("input"); psk.type = "password"; psk.autocomplete = "new-password";
    const hidden = el("input"); hidden.type = "checkbox";
    const hiddenBox = el("div", "", "field check"); hidden.id = "wifi-hidden";
    const hl = el("label", t("wifi.hidden")); hl.htmlFor = "wifi-hidden"; hiddenBox.append(hidden, hl);
    const go = el("button", t("wifi.connect")); go.type = "submit"; go.id = "wifi-connect";
    const out = el("p"); out.id = "wifi-connect-result";
    form.append(field("wifi-ssid", "wifi.ssid", ssid), field("wifi-psk", "wifi.password", psk), hiddenBox, go);
    body.append(h3("wifi.join"), el("p", t("wifi.join.help"), "muted"), form, out);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const req = { ssid: ssid.value.trim() };
      if (psk.value) req.psk = psk.value;
      if (hidden.checked) req.hidden = true;
      psk.value = "";
      go.disabled = true;
      try { await operate("/api/v1/wifi/connect", req, out); } catch (_) { /* out shows the API's words */ }
      go.disabled = false;
      this.refresh().catch(() => {});
    });

    // Saved networks.
    const saved = el("table"); saved.id = "wifi-saved";
    const sh = el("thead"); row(sh, ["wifi.ssid", "wifi.priority", "wifi.origin", "wifi.action"].map((k) => el("th", t(k))));
    saved.append(sh, el("tbody"));
    const forgetOut = el("p"); forgetOut.id = "wifi-forget-result";
    body.append(h3("wifi.saved"), saved, forgetOut);
    this.built = true;
    this.lang = I18N.lang;
  },

  async refresh() {
    if (!this.built || this.lang !== I18N.lang) this.build();
    const box = document.getElementById("wifi-status");
    let st;
    try {
      st = await api("/api/v1/wifi");
    } catch (e) {
      box.replaceChildren(el("p", e.message, "error"));
      this.showSaved([]);
      return;
    }
    const tbl = el("table");
    const th = (k) => el("th", t(k));
    row(tbl, [th("wifi.interface"), el("td", st.interface)]);
    row(tbl, [th("wifi.state"), el("td", st.state, st.state === "completed" ? "state-ok" : "")]);
    row(tbl, [th("wifi.ssid"), el("td", st.ssid || "—")]);
    if (st.ssid) {
      const sig = el("td"); sig.append(wifiBars(st.link ? st.link.rssi_dbm : st.signal_dbm));
      row(tbl, [th("wifi.signal"), sig]);
      row(tbl, [th("wifi.band"), el("td", [st.band, st.frequency_mhz ? st.frequency_mhz + " MHz" : ""].filter(Boolean).join(", "))]);
      row(tbl, [th("wifi.security"), el("td", st.security || "—")]);
      if (st.link && st.link.link_speed_mbps) row(tbl, [th("wifi.speed"), el("td", st.link.link_speed_mbps + " Mbit/s")]);
    }
    row(tbl, [th("wifi.address"), el("td", st.address || t("wifi.noaddress"))]);
    if (st.last_disconnect) row(tbl, [th("wifi.lastdrop"), el("td", st.last_disconnect)]);
    box.replaceChildren(tbl);
    this.showSaved(st.known || []);
  },

  showSaved(known) {
    const body = document.querySelector("#wifi-saved tbody");
    body.replaceChildren();
    if (known.length === 0) {
      const td = el("td", t("wifi.nosaved")); td.colSpan = 4; row(body, [td]);
      return;
    }
    for (const k of known) {
      const b = el("button", t("wifi.forget")); b.type = "button";
      b.setAttribute("aria-label", t("wifi.forget") + " " + k.ssid);
      b.addEventListener("click", async () => {
        b.disabled = true;
        try { await operate("/api/v1/wifi/forget", { ssid: k.ssid }, document.getElementById("wifi-forget-result")); } catch (_) { /* shown */ }
        this.refresh().catch(() => {});
      });
      const act = el("td"); act.append(b);
      row(body, [el("td", k.ssid), el("td", k.priority || 0), el("td", t(k.saved ? "wifi.fromconfig" : "wifi.joined")), act]);
    }
    stackLabels(body.parentNode);
  },

  async scan(btn, out, list) {
    btn.disabled = true;
    try {
      const op = await operate("/api/v1/wifi/scan", undefined, out);
      const body = list.querySelector("tbody");
      body.replaceChildren();
      for (const b of op.result || []) {
        const sig = el("td"); sig.append(wifiBars(b.signal_dbm));
        const act = el("td");
        if (b.ssid) {
          const pick = el("button", t("wifi.choose")); pick.type = "button";
          pick.setAttribute("aria-label", t("wifi.choose") + " " + b.ssid);
          pick.addEventListener("click", () => {
            document.getElementById("wifi-ssid").value = b.ssid;
            document.getElementById("wifi-hidden").checked = false;
            document.getElementById("wifi-psk").focus();
          });
          act.append(pick);
        }
        row(body, [el("td", b.ssid || t("wifi.hiddenssid")), sig, el("td", b.band || b.frequency_mhz + " MHz"), el("td", b.security), act]);
      }
      stackLabels(list);
      list.hidden = false;
    } catch (_) { /* out shows the API's words */ }
    btn.disabled = false;
  },

  events: {
    // A state change, a drop or a finished scan: the status and the saved
    // list may have changed.
    wifi() { wifiPage.refresh().catch(() => {}); },
    "wifi.dhcp"() { wifiPage.refresh().catch(() => {}); },
  },
};

registerPage("wifi", wifiPage);
