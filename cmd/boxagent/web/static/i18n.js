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

async function loadLanguage(lang) {
  const r = await fetch("i18n/" + lang + ".json");
  I18N.strings = await r.json();
  I18N.lang = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const sel = document.getElementById("lang");
  if (sel) sel.value = lang;
}
