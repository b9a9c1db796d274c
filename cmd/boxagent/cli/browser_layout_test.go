package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// layoutJS lists what is wrong with the layout of the header and one
// page (section #page) as shown now: the document scrolling sideways; a
// control (link, button, field) outside the screen's width, or
// overlapping another control; an element whose content is wider than
// its box (clipped, or spilling over its neighbours; boxes that scroll,
// like the event log, and fields are exempt); and for each key control:
// missing, hidden, not on the screen's width, under another element at
// its centre, or smaller than 24×24 px (buttons and fields).
const layoutJS = `((page, keys) => {
  const problems = [];
  const W = window.innerWidth;
  const se = document.scrollingElement;
  if (se.scrollWidth > W) problems.push("the page scrolls sideways: " + se.scrollWidth + " px wide on a " + W + " px screen");
  const shown = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden"; };
  const name = (e) => e.id ? "#" + e.id : e.tagName.toLowerCase() + (e.className ? "." + String(e.className).trim().split(/\s+/).join(".") : "") +
    " " + JSON.stringify((e.innerText || e.value || "").trim().slice(0, 40));
  const px = (v) => Math.round(v * 10) / 10;
  const scope = [document.querySelector("header"), document.getElementById(page)];
  const controls = scope.flatMap((s) => [...s.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary")]).filter(shown);
  for (const c of controls) {
    const r = c.getBoundingClientRect();
    if (r.left < -0.5 || r.right > W + 0.5) problems.push(name(c) + " is outside the screen's width: " + px(r.left) + ".." + px(r.right) + " of " + W);
  }
  for (let i = 0; i < controls.length; i++) {
    for (let j = i + 1; j < controls.length; j++) {
      const a = controls[i], b = controls[j];
      if (a.contains(b) || b.contains(a)) continue;
      const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left), h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1) problems.push(name(a) + " and " + name(b) + " overlap by " + px(w) + "×" + px(h) + " px");
    }
  }
  const wide = new Set();
  for (const s of scope) for (const e of [s, ...s.querySelectorAll("*")]) {
    if (!shown(e) || e.matches("input, select, textarea, option, meter, progress")) continue;
    const cs = getComputedStyle(e);
    if (cs.display === "inline" || /auto|scroll/.test(cs.overflowX)) continue;
    if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) wide.add(e);
  }
  for (const e of wide) {
    if ([...wide].some((d) => d !== e && e.contains(d))) continue; // the innermost says it
    problems.push(name(e) + " holds content wider than itself: " + e.scrollWidth + " > " + e.clientWidth + " px");
  }
  for (const sel of keys) {
    const e = document.querySelector(sel);
    if (!e || !shown(e)) { problems.push("key control " + sel + " is not shown"); continue; }
    e.scrollIntoView({ block: "center", inline: "nearest" });
    const r = e.getBoundingClientRect();
    const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!at || !(e === at || e.contains(at) || (e.labels && [...e.labels].some((l) => l.contains(at))))) problems.push("key control " + sel + " is under " + (at ? name(at) : "nothing"));
    if (e.matches("button, select, input:not([type=checkbox]):not([type=radio]):not([type=range])") && (r.width < 24 || r.height < 24)) problems.push("key control " + sel + " is " + px(r.width) + "×" + px(r.height) + " px, smaller than 24×24");
  }
  return problems;
})`

// checkLayout fails for what layoutJS finds wrong in the header and
// #page as shown now, on the test's screen (360 px wide in the page
// tests); keys are the page's key controls, by CSS selector.
func checkLayout(t *testing.T, ctx context.Context, page string, keys ...string) {
	t.Helper()
	args, _ := json.Marshal(keys)
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](layoutJS+`("`+page+`", `+string(args)+`)`))
	if err != nil {
		t.Fatalf("#%s: layout: %v", page, err)
	}
	if len(problems) > 0 {
		width, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`window.innerWidth`))
		t.Errorf("#%s at %d px: %d layout problems:\n%s", page, width, len(problems), strings.Join(problems, "\n"))
	}
}
