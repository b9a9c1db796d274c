// The Audio page: a client of /api/v1/audio… like the CLI; no logic of its
// own. PulseAudio's changes ("audio" events) redraw what changed: each
// card and device is an item of a list patched in place (patchList), so
// form state is set as attributes (defaultValue, defaultChecked).
"use strict";
(() => {
  const root = () => document.querySelector("#audio .page-body");
  const outFor = (key) => statusLine("audio:" + key);
  const button = pageButton;
  const modeNames = { music: "audio.mode.music", call: "audio.mode.call", off: "audio.mode.off" };
  const modeText = (m) => (modeNames[m] ? t(modeNames[m]) : m);
  // Ids are made from PulseAudio names, which may hold dots and colons.
  const safe = (s) => s.replace(/[^A-Za-z0-9_-]/g, "_");

  function labelled(text, control) {
    const l = el("label", text);
    l.htmlFor = control.id;
    return l;
  }

  async function change(path, body, key) {
    try {
      return await operate(path, body, outFor(key));
    } catch (_) { /* operate showed the error and hint */ }
    finally { schedule(); }
  }

  function cardItem(c) {
    const li = el("li", "", "audio-card");
    li.dataset.key = c.name;
    li.dataset.status = "audio:card:" + c.name;
    const id = "audio-card-" + safe(c.name);
    li.append(el("h4", c.description || c.name));
    const dl = el("dl");
    const pair = (k, v) => dl.append(el("dt", t(k)), el("dd", v));
    pair("audio.name", c.name);
    pair("audio.profile", c.active_profile + (c.mode ? " (" + modeText(c.mode) + ")" : ""));
    li.append(dl);
    const fs = el("fieldset");
    fs.id = id;
    let pick;
    if (c.headset) {
      // A headset: music (A2DP), call (HFP/HSP) or off, as the API names
      // them; a mode the headset does not offer now is shown, disabled.
      fs.append(el("legend", t("audio.mode") + ": " + (c.description || c.name)));
      for (const m of ["music", "call", "off"]) {
        const r = el("input");
        r.type = "radio"; r.name = id + "-mode"; r.value = m; r.id = id + "-" + m;
        r.defaultChecked = c.mode === m;
        r.disabled = m !== "off" && !(c.modes || []).includes(m) && c.mode !== m;
        const l = labelled(modeText(m) + (r.disabled ? " (" + t("audio.unavailable") + ")" : ""), r);
        const span = el("span", "", "choice"); span.append(r, l);
        fs.append(span);
      }
      pick = () => { const r = fs.querySelector("input:checked"); return r ? r.value : ""; };
    } else {
      fs.append(el("legend", t("audio.profile")));
      const s = el("select"); s.id = id + "-profile";
      for (const p of c.profiles) {
        if (!p.available && p.name !== c.active_profile) continue;
        const o = el("option", p.description || p.name); o.value = p.name; o.defaultSelected = p.name === c.active_profile;
        s.append(o);
      }
      fs.append(labelled(t("audio.profile"), s), s);
      pick = () => s.value;
    }
    fs.append(button(t("audio.switch"), id + "-switch", () => {
      const mode = pick();
      if (mode) change("/api/v1/audio/cards/" + encodeURIComponent(c.name) + "/mode", { mode: mode }, "card:" + c.name);
    }));
    li.append(fs);
    return li;
  }

  function deviceItem(d, fallback) {
    const li = el("li", "", "audio-device");
    li.dataset.key = d.kind + ":" + d.name;
    li.dataset.status = "audio:" + d.kind + ":" + d.name;
    const id = "audio-" + d.kind + "-" + safe(d.name);
    const isDefault = d.name === fallback;
    li.append(el("h4", d.description || d.name));
    const dl = el("dl");
    const pair = (k, v) => dl.append(el("dt", t(k)), el("dd", v));
    pair("audio.name", d.name);
    pair("audio.state", d.state + (d.is_monitor ? " (" + t("audio.monitor") + ")" : ""));
    pair("audio.default", t(isDefault ? "audio.yes" : "audio.no"));
    li.append(dl);

    const vol = el("input");
    vol.type = "range"; vol.id = id + "-volume"; vol.min = "0"; vol.max = "150"; vol.step = "1";
    vol.defaultValue = String(Math.round(d.volume.percent));
    const shown = el("output", vol.value + " %");
    shown.htmlFor = vol.id; shown.id = id + "-volume-value";
    vol.addEventListener("input", () => { shown.textContent = vol.value + " %"; });
    // change, not input: one operation when the slider is let go (or per
    // arrow key), not one per pixel dragged.
    vol.addEventListener("change", () => change("/api/v1/audio/volume", { device: d.name, percent: Number(vol.value) }, d.kind + ":" + d.name));
    // Every card has a "Volume" and a "Muted": the device's name tells
    // them apart for a screen reader.
    const who = d.description || d.name;
    vol.setAttribute("aria-label", t("audio.volume") + ": " + who);
    const volRow = el("div", "", "audio-volume");
    volRow.append(labelled(t("audio.volume"), vol), vol, shown);

    const mute = el("input");
    mute.type = "checkbox"; mute.id = id + "-mute"; mute.defaultChecked = d.muted;
    mute.addEventListener("change", () => change("/api/v1/audio/volume", { device: d.name, mute: mute.checked }, d.kind + ":" + d.name));
    mute.setAttribute("aria-label", t("audio.muted") + ": " + who);
    const muteRow = el("div", "", "choice");
    muteRow.append(mute, labelled(t("audio.muted"), mute));

    const acts = el("div", "", "actions");
    if (!isDefault) {
      acts.append(button(t("audio.make_default"), id + "-default",
        () => change("/api/v1/audio/default", { kind: d.kind, name: d.name }, d.kind + ":" + d.name)));
      acts.lastChild.setAttribute("aria-label", t("audio.make_default") + ": " + who);
    }
    li.append(volRow, muteRow, acts);
    return li;
  }

  // fill gives a select its options (a first "" one, then the devices)
  // when they changed, keeping the choice while it is still offered.
  function fill(s, firstText, items) {
    const want = [["", firstText], ...items.map((d) => [d.name, d.description || d.name])];
    if (JSON.stringify([...s.options].map((o) => [o.value, o.textContent])) === JSON.stringify(want)) return;
    const chosen = s.value;
    s.replaceChildren(...want.map(([v, text]) => { const o = el("option", text); o.value = v; return o; }));
    if (want.some(([v]) => v === chosen)) s.value = chosen;
  }

  function dbfs(v) { return v === null || v === undefined ? "−∞ dBFS" : v.toFixed(1) + " dBFS"; }

  async function runTest(play) {
    const body = {
      sink: document.getElementById("audio-test-sink").value || undefined,
      source: document.getElementById("audio-test-source").value || undefined,
      seconds: Number(document.getElementById("audio-test-seconds").value) || 3,
      play: play,
    };
    const res = document.getElementById("audio-test-result");
    const meter = document.getElementById("audio-test-level");
    res.replaceChildren();
    let op;
    try {
      op = await operate("/api/v1/audio/test", body, outFor("test"));
    } catch (_) { return; }
    const r = op.result;
    if (!r || !r.recorded) return;
    const lv = r.recorded;
    meter.value = lv.peak;
    meter.textContent = Math.round(lv.peak * 100) + " %";
    const dl = el("dl");
    const pair = (k, v) => dl.append(el("dt", t(k)), el("dd", v));
    const secs = (v) => Math.round(v * 10) / 10 + " s";
    if (r.sink) pair("audio.test.played", r.sink + " " + Math.round(r.tone_hz) + " Hz, " + secs(r.played_seconds));
    pair("audio.test.recorded", r.source + ", " + secs(lv.seconds));
    pair("audio.test.peak", dbfs(lv.peak_dbfs));
    pair("audio.test.rms", dbfs(lv.rms_dbfs));
    pair("audio.test.frequency", lv.frequency_hz ? Math.round(lv.frequency_hz) + " Hz" : "—");
    // The same threshold as audio.Level.Silent, which the CLI's test uses.
    pair("audio.test.verdict", t(lv.peak < 1 / 1024 ? "audio.test.silent" : "audio.test.sound"));
    res.append(dl);
  }

  function testSection() {
    const box = el("div", "", "audio-test");
    const sink = el("select"); sink.id = "audio-test-sink";
    const source = el("select"); source.id = "audio-test-source";
    const secs = el("input"); secs.type = "number"; secs.id = "audio-test-seconds"; secs.min = "1"; secs.max = "60"; secs.value = "3";
    const grid = el("div", "", "form-grid");
    grid.append(labelled(t("audio.test.sink"), sink), sink, labelled(t("audio.test.source"), source), source,
      labelled(t("audio.test.seconds"), secs), secs);
    const acts = el("div", "", "actions");
    acts.append(button(t("audio.test.tone"), "audio-test-tone", () => runTest(true)),
      button(t("audio.test.record"), "audio-test-record", () => runTest(false)));
    const meter = el("meter", "");
    meter.id = "audio-test-level"; meter.min = 0; meter.max = 1; meter.low = 0.05; meter.high = 0.9; meter.optimum = 0.5; meter.value = 0;
    const meterRow = el("div", "", "audio-volume");
    meterRow.append(labelled(t("audio.test.level"), meter), meter);
    const res = el("div"); res.id = "audio-test-result";
    box.append(el("p", t("audio.test.help"), "muted"), grid, acts, outFor("test"), meterRow, res);
    return box;
  }

  // build lays out the page once (again when the language changes); draw
  // then only patches it.
  function build(body) {
    const ul = (id) => { const u = el("ul", "", "audio-list"); u.id = id; return u; };
    const server = el("p"); server.id = "audio-server";
    const none = el("p", t("audio.no_cards"), "muted"); none.id = "audio-no-cards";
    body.replaceChildren(server,
      el("h3", t("audio.cards")), none, ul("audio-cards"),
      el("h3", t("audio.sinks")), ul("audio-sinks"),
      el("h3", t("audio.sources")), ul("audio-sources"),
      el("h3", t("audio.test")), testSection());
    body.dataset.built = I18N.lang;
  }

  // Of two draws under way, the later one's answer wins.
  let draws = 0;
  async function draw() {
    const mine = ++draws;
    const s = await api("/api/v1/audio");
    if (mine !== draws) return;
    const body = root();
    if (body.dataset.built !== I18N.lang) build(body);
    const $ = (id) => document.getElementById(id);
    $("audio-server").textContent = t("audio.server") + ": " + s.server.name + " " + s.server.version;
    $("audio-no-cards").hidden = s.cards.length > 0;
    keepFocus(body, () => {
      patchList($("audio-cards"), s.cards.map(cardItem));
      patchList($("audio-sinks"), s.sinks.map((d) => deviceItem(d, s.fallback_sink)));
      patchList($("audio-sources"), s.sources.map((d) => deviceItem(d, s.fallback_source)));
    });
    fill($("audio-test-sink"), t("audio.test.default_sink"), s.sinks);
    fill($("audio-test-source"), t("audio.test.default_source"), s.sources);
  }

  const schedule = redrawSoon("audio", draw);

  registerPage("audio", {
    refresh: draw,
    events: { audio: schedule },
  });
})();
