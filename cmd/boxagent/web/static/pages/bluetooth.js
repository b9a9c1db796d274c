// The Bluetooth page: a client of /api/v1/bt/… like the CLI; no logic of
// its own. Devices found by a scan ("bt.scan" events) and changes BlueZ
// reports ("bt" events) update the list in place, without a reload.
"use strict";
(() => {
  const devices = new Map(); // address → the API's Device
  let adapters = [];
  // address → the configured [[bluetooth.headset]] (auto_connect).
  const configured = new Map();

  const root = () => document.querySelector("#bluetooth .page-body");

  // headset mirrors bluetooth.Device.Headset: the API sorts its own lists
  // this way, and a device a scan adds live has to land in the same place.
  function headset(d) {
    if (d.a2dp_sink || d.hfp_hf || d.hsp_hs) return true;
    const major = (d.class >> 8) & 0x1f, minor = (d.class >> 2) & 0x3f;
    if (major === 0x04 && [0x01, 0x02, 0x06].includes(minor)) return true;
    return (d.icon || "").startsWith("audio-headset") || d.icon === "audio-headphones";
  }

  function sorted() {
    const rssi = (d) => (d.rssi === undefined || d.rssi === null ? -1000 : d.rssi);
    return [...devices.values()].sort((a, b) =>
      (headset(b) - headset(a)) || (rssi(b) - rssi(a)) || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  const yesNo = (v) => t(v ? "bt.yes" : "bt.no");
  const name = (d) => d.alias || d.name || d.address;

  function capabilities(d) {
    const caps = [];
    if (d.a2dp_sink) caps.push(t("bt.cap.a2dp"));
    if (d.hfp_hf) caps.push(t("bt.cap.hfp"));
    if (d.hsp_hs) caps.push(t("bt.cap.hsp"));
    if (caps.length) return caps.join(", ");
    return headset(d) ? t("bt.cap.unknown") : t("bt.cap.none");
  }

  const outFor = (addr) => statusLine("bt:" + addr);

  function button(text, id, label, onClick) {
    const b = pageButton(text, id, onClick);
    if (label) b.setAttribute("aria-label", label);
    return b;
  }

  // act runs one device operation; the list follows from the "bt" events
  // and a final re-read, so it shows what BlueZ says, not what we asked.
  async function act(path, d, body) {
    try {
      await operate(path, body || { address: d.address }, outFor(d.address));
    } catch (_) { /* operate showed the error and hint */ }
    if (path.endsWith("/remove")) devices.delete(d.address);
    await reload().catch(() => {});
  }

  function deviceItem(d) {
    const li = el("li", "", "bt-device");
    li.dataset.address = d.address;
    li.dataset.key = d.address;
    li.dataset.status = "bt:" + d.address;
    li.append(el("h4", name(d)));
    const dl = el("dl");
    const pair = (k, v, cls) => { dl.append(el("dt", t(k)), el("dd", v, cls)); };
    pair("bt.address", d.address);
    pair("bt.kind", headset(d) ? t("bt.headset") : t("bt.other"));
    pair("bt.profiles", capabilities(d));
    pair("bt.connected", yesNo(d.connected), "bt-connected");
    pair("bt.paired", yesNo(d.paired), "bt-paired");
    pair("bt.trusted", yesNo(d.trusted), "bt-trusted");
    // The signal changes every second or so while BlueZ discovers: it is
    // left out of patchList's comparison (data-live) and written in place,
    // so a device's buttons are not rebuilt for it.
    if (d.rssi !== undefined && d.rssi !== null) {
      pair("bt.rssi", d.rssi + " dBm", "bt-rssi");
      dl.lastChild.dataset.live = "";
    }
    const conf = configured.get(d.address);
    const auto = !!(conf && conf.auto_connect);
    if (headset(d) || conf) pair("bt.autoconnect", yesNo(auto), "bt-autoconnect");
    li.append(dl);
    const acts = el("div", "", "actions");
    const id = (verb) => "bt-" + verb + "-" + d.address.replace(/:/g, "");
    const label = (k) => t(k) + " " + name(d);
    if (!d.paired) acts.append(button(t("bt.pair"), id("pair"), label("bt.pair"), () => act("/api/v1/bt/pair", d)));
    if (d.paired && !d.connected) acts.append(button(t("bt.connect"), id("connect"), label("bt.connect"), () => act("/api/v1/bt/connect", d)));
    if (d.connected) acts.append(button(t("bt.disconnect"), id("disconnect"), label("bt.disconnect"), () => act("/api/v1/bt/disconnect", d)));
    if (headset(d) || conf) {
      const k = auto ? "bt.autoconnect.off" : "bt.autoconnect.on";
      acts.append(button(t(k), id("autoconnect"), label(k), () => act("/api/v1/bt/autoconnect", d, { address: d.address, on: !auto })));
    }
    acts.append(button(t("bt.forget"), id("forget"), label("bt.forget"), () => act("/api/v1/bt/remove", d)));
    li.append(acts);
    return li;
  }

  function drawDevices() {
    const list = document.getElementById("bt-devices");
    if (!list) return;
    keepFocus(list, () => patchList(list, sorted().map(deviceItem)));
    for (const li of list.children) {
      const d = devices.get(li.dataset.key), r = li.querySelector(".bt-rssi");
      if (d && r && d.rssi !== undefined && d.rssi !== null) r.textContent = d.rssi + " dBm";
    }
    document.getElementById("bt-none").hidden = devices.size > 0;
  }

  function drawAdapters() {
    const box = document.getElementById("bt-adapters");
    if (!box) return;
    let list = box.querySelector("ul");
    if (!list) { list = el("ul", "", "bt-list"); box.append(list); }
    const items = [];
    for (const a of adapters) {
      const li = el("li", "", "bt-device");
      li.dataset.key = a.name;
      li.dataset.status = "bt:adapter:" + a.name;
      li.append(el("h4", a.name + (a.alias ? " (" + a.alias + ")" : "")));
      const dl = el("dl");
      const pair = (k, v, cls) => { dl.append(el("dt", t(k)), el("dd", v, cls)); };
      pair("bt.address", a.address);
      pair("bt.powered", yesNo(a.powered), "bt-powered " + (a.powered ? "state-ok" : "state-degraded"));
      pair("bt.pairable", a.pairable ? t("bt.yes") + (a.pairable_timeout ? " (" + a.pairable_timeout + " s)" : "") : t("bt.no"), "bt-pairable");
      pair("bt.discovering", yesNo(a.discovering), "bt-discovering");
      const k = a.powered ? "bt.power.off" : "bt.power.on";
      const acts = el("div", "", "actions");
      acts.append(button(t(k), "bt-power-" + a.name, t(k) + " " + a.name, async () => {
        try {
          await operate("/api/v1/bt/power", { adapter: a.name, on: !a.powered }, statusLine("bt:adapter:" + a.name));
        } catch (_) { /* operate showed the error and hint */ }
        await reload().catch(() => {});
      }));
      li.append(dl, acts);
      items.push(li);
    }
    patchList(list, items);
    const open = adapters.some((a) => a.pairable);
    const b = document.getElementById("bt-pairable");
    b.textContent = t(open ? "bt.pairable.close" : "bt.pairable.open");
    b.dataset.on = open ? "0" : "1";
  }

  // A reload's answer may be older than an event that came while it was
  // on its way (the event already drawn): then it is drawn, and read again
  // at once, so what stays on screen is never older than the last event.
  // Of two reloads, the later one's answer wins.
  let changes = 0, reloads = 0;
  async function reload() {
    const mine = ++reloads, seen = changes;
    // An agent without the auto-connect route still shows its devices.
    const [ads, ds, hs] = await Promise.all([api("/api/v1/bt/adapters"), api("/api/v1/bt/devices"),
      api("/api/v1/bt/autoconnect").catch(() => [])]);
    if (mine !== reloads) return;
    if (seen !== changes) setTimeout(() => reload().catch(() => {}), 0);
    adapters = ads;
    configured.clear();
    for (const h of hs) configured.set(h.address.toUpperCase(), h);
    devices.clear();
    for (const d of ds) devices.set(d.address, d);
    drawAdapters();
    drawDevices();
  }

  // scanning is true while this page's scan runs: the button stays
  // disabled, also when a language switch rebuilds it.
  let scanning = false;
  async function scan() {
    const secs = Number(document.getElementById("bt-scan-seconds").value) || 10;
    scanning = true;
    document.getElementById("bt-scan").disabled = true;
    try {
      await operate("/api/v1/bt/scan", { timeout: secs }, statusLine("bt:scan"));
    } catch (_) { /* shown */ } finally {
      scanning = false;
      document.getElementById("bt-scan").disabled = false;
    }
  }

  function build() {
    const body = root();
    const scanSeconds = el("input");
    scanSeconds.type = "number"; scanSeconds.id = "bt-scan-seconds"; scanSeconds.min = "1"; scanSeconds.max = "120"; scanSeconds.value = "10";
    const scanLabel = el("label", t("bt.scan.seconds")); scanLabel.htmlFor = "bt-scan-seconds";
    const pairable = button(t("bt.pairable.open"), "bt-pairable", "", async () => {
      try {
        await operate("/api/v1/bt/pairable", { on: pairable.dataset.on === "1" }, statusLine("bt:pairable"));
      } catch (_) { /* shown */ }
      await reload().catch(() => {});
    });
    const scanBtn = button(t("bt.scan"), "bt-scan", "", scan);
    scanBtn.disabled = scanning;
    const none = el("p", t("bt.none"), "muted"); none.id = "bt-none";
    const list = el("ul", "", "bt-list"); list.id = "bt-devices"; list.setAttribute("aria-live", "polite");
    const ads = el("div"); ads.id = "bt-adapters";
    body.replaceChildren(
      el("h3", t("bt.adapters")), ads, el("div", "", "actions"), statusLine("bt:pairable"),
      el("h3", t("bt.devices")), el("div", "", "actions"), statusLine("bt:scan"), none, list,
      el("p", t("bt.autoconnect.note"), "muted"));
    const [adActs, devActs] = body.querySelectorAll(".actions");
    adActs.append(pairable);
    devActs.append(scanLabel, scanSeconds, scanBtn);
    body.dataset.built = I18N.lang;
  }

  registerPage("bluetooth", {
    async refresh() {
      if (root().dataset.built !== I18N.lang) build();
      await reload();
    },
    events: {
      // A reload (from the CLI's bt autoconnect, say) may change what is
      // configured to auto-connect.
      config: () => { reload().catch(() => {}); },
      // A device a scan found: the same record GET /bt/devices gives.
      "bt.scan": (d) => {
        if (!d || !d.address) return;
        changes++;
        devices.set(d.address, Object.assign(devices.get(d.address) || {}, d));
        drawDevices();
      },
      bt: (ev) => {
        if (!ev) return;
        changes++;
        if (ev.type === "device" && ev.device) {
          devices.set(ev.device.address, ev.device);
          drawDevices();
        } else if (ev.type === "device_removed" && ev.device) {
          devices.delete(ev.device.address);
          drawDevices();
        } else if (ev.type === "adapter" && ev.adapter) {
          const i = adapters.findIndex((a) => a.name === ev.adapter.name);
          if (i < 0) adapters.push(ev.adapter); else adapters[i] = ev.adapter;
          drawAdapters();
        } else if (["adapter_removed", "pairing_window", "service"].includes(ev.type)) {
          reload().catch(() => {});
        }
      },
    },
  });
})();
