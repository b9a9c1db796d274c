// The Network page: a client of /api/v1/net… like the CLI; no logic of its
// own. "net" events (links, leases, PPPoE sessions, IPv6) redraw what
// changed (patchList). The API never returns secrets (the PPPoE password),
// so the page cannot show one.
"use strict";
(() => {
  const root = () => document.querySelector("#network .page-body");
  const outFor = (key) => statusLine("net:" + key);
  const button = pageButton;

  // when is a time and, aside (data-live: it ages), how far from now.
  function when(iso) {
    if (!iso || iso.startsWith("0001-")) return "—";
    const out = el("span", new Date(iso).toLocaleString(I18N.lang) + " ");
    const rel = el("span", "(" + relative(new Date(iso)) + ")");
    rel.dataset.live = "";
    rel.dataset.time = iso;
    out.append(rel);
    return out;
  }

  // relative says how far a time is from now, in the page's words.
  function relative(d) {
    const s = Math.round((d.getTime() - Date.now()) / 1000);
    return (s >= 0 ? t("net.in") : t("net.ago")).replace("%s", span(Math.abs(s)));
  }

  // span is a number of seconds, rounded to the unit that reads best.
  function span(a) {
    return a < 120 ? a + " s" : a < 7200 ? Math.round(a / 60) + " min" : Math.round(a / 3600) + " h";
  }

  // fresh marks a value that differs in nearly every answer (a lifetime
  // ticking down, when the router was last heard): patchList leaves it out
  // of its comparison (data-live) and draw puts the new one into a kept
  // item, as the Bluetooth page does with a signal, so that an item is not
  // rebuilt for it.
  function fresh(node) {
    const s = el("span", "", "net-fresh");
    s.dataset.live = "";
    s.append(node);
    return s;
  }

  // lifetime is an IPv6 lifetime, the seconds left when the API answered
  // (absent: forever), in the words of the catalogue's key ("valid %s").
  function lifetime(key, s) {
    const [pre, post] = t(key).split("%s");
    const out = el("span", pre);
    out.append(fresh(s === undefined || s === null ? t("net.ipv6.forever") : span(s)), post || "");
    return out;
  }

  // Lease durations are Go time.Duration values: nanoseconds.
  function duration(ns) {
    const s = Math.round(ns / 1e9);
    if (s % 3600 === 0 && s >= 3600) return s / 3600 + " h";
    if (s % 60 === 0 && s >= 60) return s / 60 + " min";
    return s + " s";
  }

  // dd is a value cell: text, an element (when), or a dash for nothing.
  function dd(val, cls) {
    if (val instanceof Node) { const d = el("dd", "", cls); d.append(val); return d; }
    return el("dd", val === undefined || val === null || val === "" ? "—" : String(val), cls);
  }

  function uplinkItem(u, v) {
    const li = el("li", "", "net-uplink");
    li.id = "net-uplink-" + u.name;
    li.dataset.key = u.name;
    li.append(el("h4", u.name));
    const dl = el("dl");
    const pair = (k, val, cls) => { dl.append(el("dt", t(k)), dd(val, cls)); };
    const link = v.links.find((l) => l.name === u.name);
    pair("net.parent", u.parent);
    pair("net.vlan", u.vlan === undefined ? t("net.untagged") : String(u.vlan));
    // The 802.1p priority the VLAN's egress map gives (socket priority →
    // PCP), as the kernel has it.
    const egress = link && link.egress_qos ? Object.entries(link.egress_qos).map(([k, p]) => k + "→" + p).join(", ") : "";
    pair("net.priority", egress);
    pair("net.method", u.method);
    const state = u.up ? t("net.up") : t("net.down") + (u.detail ? ": " + u.detail : "");
    pair("net.state", state, u.up ? "state-ok net-state" : "state-degraded net-state");
    pair("net.carrier", t(u.carrier ? "net.yes" : "net.no"));
    const addrs = v.addresses.filter((a) => a.link === u.name || (u.pppoe && a.link === u.pppoe.link));
    pair("net.addresses", addrs.map((a) => a.address).join(", "));
    const gw = v.routes.filter((r) => r.dst === "default" && (r.link === u.name || (u.pppoe && r.link === u.pppoe.link)));
    pair("net.gateway", gw.map((r) => (r.gateway || r.link) + " (" + t("net.metric") + " " + r.metric + ")").join(", "));
    const lease = u.dhcp && u.dhcp.lease;
    const dns = lease ? lease.dns : u.pppoe ? u.pppoe.dns : null;
    pair("net.dns", (dns || []).join(", "));
    li.append(dl);

    if (u.dot1x) {
      // 802.1X comes first: DHCP waits for the port to be authorized.
      const x = u.dot1x;
      const xd = el("dl", "", "net-lease");
      const xp = (k, val) => xd.append(el("dt", t(k)), dd(val));
      xp("net.dot1x.state", x.state + (x.method ? " (" + x.method + ")" : ""));
      xp("net.dot1x.since", when(x.since));
      xp("net.dot1x.counts", x.successes + " / " + x.failures);
      xp("net.dot1x.reason", x.reason);
      li.append(el("h5", t("net.dot1x")), xd);
    }
    // IPv6 before the DHCP lease: Renew (DHCPv4's) and its status line,
    // which patchList puts at the item's end, stay together.
    if (u.ipv6) li.append(el("h5", t("net.ipv6")), ipv6List(u.ipv6));
    if (u.dhcp) {
      const d = u.dhcp;
      const ld = el("dl", "", "net-lease");
      const lp = (k, val) => ld.append(el("dt", t(k)), dd(val));
      lp("net.dhcp.state", d.state + (d.error ? ": " + d.error : ""));
      if (lease) {
        lp("net.dhcp.address", lease.address);
        lp("net.dhcp.server", lease.server);
        lp("net.dhcp.router", lease.router);
        lp("net.dhcp.domain", lease.domain);
        lp("net.dhcp.lease_time", duration(lease.duration));
        lp("net.dhcp.acquired", when(lease.acquired));
        lp("net.dhcp.renew_at", when(lease.renew_at));
        lp("net.dhcp.expires_at", when(lease.expires_at));
      }
      const sent = Object.keys(d.sent || {}).sort((a, b) => Number(a) - Number(b));
      const opts = el("dd");
      for (const c of sent) opts.append(el("div", t("net.dhcp.option") + " " + c + ": " + d.sent[c]));
      ld.append(el("dt", t("net.dhcp.sent")), opts);
      const h = el("h5", t("net.dhcp"));
      li.append(h, ld, button(t("net.renew"), "net-renew-" + u.name, async () => {
        try { await operate("/api/v1/net/renew", { link: u.name }, outFor("renew:" + u.name)); } catch (_) { /* shown */ }
      }));
      li.lastChild.setAttribute("aria-label", t("net.renew") + " " + u.name);
      li.dataset.status = "net:renew:" + u.name;
    }
    if (u.pppoe) {
      const p = u.pppoe;
      const pd = el("dl", "", "net-lease");
      const pp = (k, val) => pd.append(el("dt", t(k)), dd(val));
      pp("net.pppoe.session", t(p.up ? "net.up" : "net.down"));
      pp("net.pppoe.link", p.link);
      pp("net.pppoe.address", p.address);
      pp("net.pppoe.peer", p.peer);
      pp("net.pppoe.since", when(p.since));
      pp("net.pppoe.connects", p.connects + " / " + p.starts);
      pp("net.pppoe.error", p.last_error);
      li.append(el("h5", t("net.pppoe")), pd);
    }
    return li;
  }

  // ipv6List is an uplink's IPv6 as `net show` prints it: the router's
  // advertisement, the DHCPv6 client, every address with its origin and
  // lifetimes, and the DNS they give.
  function ipv6List(v6) {
    const sd = el("dl", "", "net-lease net-ipv6");
    const sp = (k, val) => sd.append(el("dt", t(k)), dd(val));
    sp("net.ipv6.method", v6.method);
    const r = v6.router;
    if (r) {
      sp("net.ipv6.router", r.address);
      const flags = [];
      if (r.managed) flags.push(t("net.ipv6.flag_m"));
      if (r.other) flags.push(t("net.ipv6.flag_o"));
      sp("net.ipv6.flags", flags.length ? flags.join(", ") : t("net.ipv6.no_flags"));
      sp("net.ipv6.router_lifetime", r.lifetime_s ? span(r.lifetime_s) : t("net.ipv6.not_default"));
      sp("net.ipv6.prefixes", (r.prefixes || []).join(", "));
      sp("net.ipv6.heard", fresh(when(r.seen)));
    } else if (v6.method !== "off") {
      sp("net.ipv6.router", t("net.ipv6.no_router"));
    }
    const d = v6.dhcpv6;
    if (d) {
      sp("net.ipv6.dhcpv6", d.mode + (d.error ? ": " + d.error : ""));
      if (d.server) sp("net.ipv6.server", d.server);
      if (d.renew_at) {
        sp("net.ipv6.renew_at", when(d.renew_at));
        sp("net.ipv6.rebind_at", when(d.rebind_at));
      }
      if (d.delegated_prefix) {
        const p = el("span", d.delegated_prefix + ", ");
        p.append(lifetime("net.ipv6.valid", d.delegated_valid_for));
        sp("net.ipv6.delegated", p);
      }
    }
    const addrs = el("dd", "", "net-ipv6-addresses");
    for (const a of v6.addresses) {
      // The address on a line, where it came from and its lifetimes under it.
      const about = el("div", a.origin + (a.tentative ? ", " + t("net.ipv6.tentative") : "") + ": ", "muted");
      about.append(lifetime("net.ipv6.preferred", a.preferred_for), ", ", lifetime("net.ipv6.valid", a.valid_for));
      const item = el("div");
      item.append(el("div", a.address), about);
      addrs.append(item);
    }
    if (!v6.addresses.length) addrs.textContent = "—";
    sd.append(el("dt", t("net.ipv6.addresses"), "net-ipv6-addresses"), addrs);
    sp("net.dns", (v6.dns || []).join(", "));
    sp("net.ipv6.search", (v6.search || []).join(" "));
    return sd;
  }

  // build lays out the page once (again when the language changes); draw
  // then only patches it.
  function build(body) {
    const list = el("ul", "", "net-list"); list.id = "net-uplinks";
    const none = el("p", t("net.no_uplinks"), "muted"); none.id = "net-no-uplinks";
    const acts = el("div", "", "actions");
    acts.append(button(t("net.apply"), "net-apply", async () => {
      try { await operate("/api/v1/net/apply", undefined, outFor("apply")); } catch (_) { /* shown */ }
      schedule();
    }));
    const links = el("div"); links.id = "net-links";
    body.replaceChildren(el("h3", t("net.uplinks")), none, list,
      el("p", t("net.apply.help"), "muted"), acts, outFor("apply"),
      el("h3", t("net.links")), links);
    body.dataset.built = I18N.lang;
  }

  // Of two draws under way, the later one's answer wins.
  let draws = 0;
  async function draw() {
    const mine = ++draws;
    const v = await api("/api/v1/net");
    if (mine !== draws) return;
    const body = root();
    if (body.dataset.built !== I18N.lang) build(body);
    const list = document.getElementById("net-uplinks");
    document.getElementById("net-no-uplinks").hidden = v.uplinks.length > 0;
    const items = v.uplinks.map((u) => uplinkItem(u, v));
    keepFocus(body, () => patchList(list, items));
    // A kept item takes this answer's fresh values (see fresh).
    for (const n of items) {
      const kept = [...list.children].find((c) => c.dataset.key === n.dataset.key);
      if (!kept || kept === n) continue;
      const old = kept.querySelectorAll(".net-fresh");
      n.querySelectorAll(".net-fresh").forEach((f, i) => { if (old[i]) old[i].replaceWith(f); });
    }
    // Times kept from an earlier draw have aged.
    for (const s of list.querySelectorAll("[data-time]")) s.textContent = "(" + relative(new Date(s.dataset.time)) + ")";
    const links = el("table", "", "net-links");
    const head = el("tr");
    for (const k of ["net.link", "net.kind", "net.state", "net.addresses"]) head.append(el("th", t(k)));
    links.append(head);
    for (const l of v.links) {
      const addrs = v.addresses.filter((a) => a.link === l.name).map((a) => a.address).join(", ");
      const st = (l.up ? t("net.up") : t("net.down")) + ", " + l.state + (l.vlan ? ", VLAN " + l.vlan : "");
      row(links, [el("td", l.name + (l.vlan && l.parent ? " @" + l.parent : "")), el("td", l.kind), el("td", st), el("td", addrs || "—")]);
    }
    document.getElementById("net-links").replaceChildren(links);
  }

  const schedule = redrawSoon("network", draw);

  registerPage("network", {
    refresh: draw,
    events: { net: schedule },
  });
})();
