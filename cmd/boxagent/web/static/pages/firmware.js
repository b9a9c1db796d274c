// The Firmware page: a client of /api/v1/fw… like `boxagent fw`; no logic
// of its own. The stage controls (and the <progress> a running staging
// fills) are built once: a stick event redraws the tables and the choices
// but never the bar of an operation that is still running.
"use strict";

function fwBytes(n) {
  if (n === undefined || n === null) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function fwPartDevice(stick, p) {
  if (p.index === 0) return stick.name;
  return stick.name + (/[0-9]$/.test(stick.name) ? "p" : "") + p.index;
}

const firmwarePage = {
  built: false,
  busy: false,

  build() {
    const body = document.querySelector("#firmware .page-body");
    body.replaceChildren();
    const h3 = (k) => el("h3", t(k));
    const table = (id, keys) => {
      const tbl = el("table"); tbl.id = id;
      const head = el("thead"); row(head, keys.map((k) => el("th", t(k))));
      tbl.append(head, el("tbody"));
      return tbl;
    };

    body.append(h3("firmware.sticks"), table("fw-sticks", ["firmware.device", "firmware.size", "firmware.filesystem", "firmware.mounted", "firmware.free", "firmware.action"]));
    const ejectOut = el("p"); ejectOut.id = "fw-eject-result";
    body.append(ejectOut);

    body.append(h3("firmware.artifacts"), table("fw-artifacts", ["firmware.sha256", "firmware.size", "firmware.signer", "firmware.stagedwhere"]));

    // Stage: which package onto which partition, then the bar.
    const form = el("form", "", "fw-stage"); form.id = "fw-form";
    const pick = (id, key) => {
      const s = el("select"); s.id = id; s.required = true;
      const l = el("label", t(key)); l.htmlFor = id;
      const d = el("div", "", "field"); d.append(l, s); form.append(d);
      return s;
    };
    pick("fw-artifact", "firmware.artifact");
    pick("fw-device", "firmware.target").required = false;
    const go = el("button", t("firmware.stage")); go.type = "submit"; go.id = "fw-stage";
    const back = el("button", t("firmware.rollback")); back.type = "button"; back.id = "fw-rollback";
    const acts = el("div", "", "actions"); acts.append(go, back); form.append(acts);
    const barLabel = el("label", t("firmware.progress")); barLabel.htmlFor = "fw-progress";
    const bar = el("progress"); bar.id = "fw-progress"; bar.max = 1; bar.value = 0;
    const out = el("p"); out.id = "fw-stage-result";
    const notes = el("div"); notes.id = "fw-stage-notes";
    body.append(h3("firmware.staging"), form, barLabel, bar, out, notes);
    const run = async (path, req) => {
      if (this.busy) return;
      this.busy = true; go.disabled = back.disabled = true;
      bar.max = 1; bar.value = 0; notes.replaceChildren();
      try {
        const op = await operate(path, req, out, bar);
        const r = op.result || {};
        if (r.instructions) notes.append(el("h4", t("firmware.atthebox")), el("pre", r.instructions));
        for (const n of r.notes || []) notes.append(el("p", n));
      } catch (_) { /* out shows the API's error and hint */ }
      this.busy = false; go.disabled = back.disabled = false;
      this.refresh().catch(() => {});
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      run("/api/v1/fw/stage", { artifact: document.getElementById("fw-artifact").value, device: document.getElementById("fw-device").value });
    });
    back.addEventListener("click", () => run("/api/v1/fw/rollback", { device: document.getElementById("fw-device").value }));

    const rec = el("div"); rec.id = "fw-recovery";
    body.append(h3("firmware.recovery"), rec);
    this.built = true;
    this.lang = I18N.lang;
  },

  async refresh() {
    if (!this.built || this.lang !== I18N.lang) this.build();
    const fw = await api("/api/v1/fw");
    this.showSticks(fw.sticks || [], fw.mounts);
    this.showArtifacts(fw.artifacts || [], fw.staged);
    this.showRecovery(fw.board, fw.recovery || {});
  },

  // mounts maps a stick to its mounted partitions; a stick it lacks is
  // "not known" (the agent could not read the mount table).
  showSticks(sticks, mounts) {
    const body = document.querySelector("#fw-sticks tbody");
    const dev = document.getElementById("fw-device");
    const was = dev.value;
    body.replaceChildren();
    // "" lets the API pick the only stick (and say so when there are several).
    const auto = el("option", t("firmware.anystick")); auto.value = "";
    dev.replaceChildren(auto);
    if (sticks.length === 0) {
      const td = el("td", t("firmware.nosticks")); td.colSpan = 6; row(body, [td]);
    }
    for (const s of sticks) {
      const name = [s.vendor, s.model].filter(Boolean).join(" ");
      const parts = (s.disk && s.disk.partitions) || [];
      const eject = el("button", t("firmware.eject")); eject.type = "button";
      eject.setAttribute("aria-label", t("firmware.eject") + " " + s.name);
      eject.addEventListener("click", async () => {
        eject.disabled = true;
        try { await operate("/api/v1/fw/eject", { device: s.name }, document.getElementById("fw-eject-result")); } catch (_) { /* shown */ }
        this.refresh().catch(() => {});
      });
      const act = el("td"); act.append(eject);
      const known = mounts && mounts[s.name];
      const here = known || [];
      row(body, [
        el("th", "/dev/" + s.name + (name ? " (" + name + ")" : "") + (s.read_only ? " — " + t("firmware.readonly") : "") + (s.problem ? " — " + s.problem : "")),
        el("td", fwBytes(s.size)),
        el("td", parts.map((p) => fwPartDevice(s, p) + ": " + (p.fs || "?") + (p.label ? " “" + p.label + "”" : "")).join(", ") || "—"),
        el("td", here.length ? here.map((m) => "/dev/" + m.device + " → " + m.dir + (m.read_only ? " (ro)" : "")).join(", ") : t(known ? "firmware.notmounted" : "firmware.unknown")),
        el("td", here.filter((m) => m.free !== undefined).map((m) => fwBytes(m.free)).join(", ") || "—"),
        act,
      ]);
      const disk = el("option", "/dev/" + s.name + " " + t("firmware.pickpart")); disk.value = s.name;
      dev.append(disk);
      for (const p of parts) {
        const d = fwPartDevice(s, p);
        const o = el("option", "/dev/" + d + " (" + (p.fs || "?") + ", " + fwBytes(p.size) + ")"); o.value = d;
        dev.append(o);
      }
    }
    stackLabels(body.parentNode);
    if ([...dev.options].some((o) => o.value === was)) dev.value = was;
  },

  showArtifacts(arts, staged) {
    const body = document.querySelector("#fw-artifacts tbody");
    const sel = document.getElementById("fw-artifact");
    const was = sel.value;
    body.replaceChildren();
    sel.replaceChildren();
    if (arts.length === 0) {
      const td = el("td", t("firmware.noartifacts")); td.colSpan = 4; row(body, [td]);
    }
    for (const a of arts) {
      const current = staged && staged.sha256 === a.sha256;
      const sha = el("td", a.sha256, "mono");
      if (current) sha.append(el("strong", " " + t("firmware.current")));
      const signer = a.signer ? [a.signer.subject, a.signer.key].filter(Boolean).join(", ") : t("firmware.unsigned");
      const where = (a.staged || []).map((s) => new Date(s.time).toLocaleString() + " → " + ([s.label, s.serial].filter(Boolean).join(" / ") || "?"));
      row(body, [sha, el("td", fwBytes(a.size)), el("td", signer), el("td", where.join("; ") || t("firmware.never"))]);
      const o = el("option", a.sha256.slice(0, 12) + " (" + fwBytes(a.size) + ")"); o.value = a.sha256;
      sel.append(o);
    }
    stackLabels(body.parentNode);
    if ([...sel.options].some((o) => o.value === was)) sel.value = was;
  },

  showRecovery(boardID, r) {
    const box = document.getElementById("fw-recovery");
    const tbl = el("table");
    const th = (k) => el("th", t(k));
    row(tbl, [th("firmware.board"), el("td", boardID)]);
    row(tbl, [th("firmware.method"), el("td", r.method || t("firmware.unknown"))]);
    if (r.package) row(tbl, [th("firmware.package"), el("td", r.package + (r.filesystem ? " (" + r.filesystem + ")" : ""))]);
    if (r.verify) row(tbl, [th("firmware.verify"), el("td", r.verify)]);
    if (r.wait_seconds) row(tbl, [th("firmware.wait"), el("td", r.wait_seconds + " s")]);
    box.replaceChildren(tbl);
    if (r.instructions) box.append(el("h4", t("firmware.keys")), el("pre", r.instructions.trim()));
    if (r.rollback) box.append(el("h4", t("firmware.rollbackhow")), el("pre", r.rollback.trim()));
  },

  events: {
    // A stick plugged, changed or pulled.
    fw() { firmwarePage.refresh().catch(() => {}); },
  },
};

registerPage("firmware", firmwarePage);
