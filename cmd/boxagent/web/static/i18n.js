// One catalogue per language in i18n/*.json, with the same keys (a Go test
// checks). The language comes from the switch, else the browser.
"use strict";
const I18N = { lang: "en", strings: {} };

function pickLanguage() {
  const saved = localStorage.getItem("lang");
  if (saved) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

function t(key) { return I18N.strings[key] || key; }

// loadLanguage applies a catalogue and says whether it did: only the
// newest request is applied, whichever answer comes first (a quick
// second pick of the switch wins). Text that is already right is left
// alone: rewriting it would drop the laid-out text under a finger (or a
// click) until the next frame.
let languageRequests = 0;
async function loadLanguage(lang) {
  const mine = ++languageRequests;
  const r = await fetch("i18n/" + lang + ".json");
  const strings = await r.json();
  if (mine !== languageRequests) return false;
  I18N.strings = strings;
  I18N.lang = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    const s = t(el.dataset.i18n);
    if (el.textContent !== s) el.textContent = s;
  }
  const sel = document.getElementById("lang");
  if (sel) sel.value = lang;
  return true;
}
