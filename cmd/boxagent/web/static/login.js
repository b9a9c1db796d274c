// The login form posts the password once; the answer sets an HttpOnly
// session cookie. Strings are few, so they live here in both languages.
"use strict";
const strings = {
  en: { h: "Log in to this box", label: "Password", submit: "Log in", wrong: "Wrong password",
    hint: "Unless the box was given one, its password was shown on its console at its first start; on the box, boxagent config password shows it again." },
  "zh-CN": { h: "登录到此设备", label: "密码", submit: "登录", wrong: "密码错误",
    hint: "若未为设备设置密码，其密码已在首次启动时显示在控制台上；在设备上运行 boxagent config password 可再次查看。" },
};
const lang = (localStorage.getItem("lang") || navigator.language || "en").startsWith("zh") ? "zh-CN" : "en";
const s = strings[lang];
document.documentElement.lang = lang;
document.getElementById("login-h").textContent = s.h;
document.getElementById("password-label").textContent = s.label;
document.getElementById("submit").textContent = s.submit;
document.getElementById("login-hint").textContent = s.hint;

document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = document.getElementById("login-error");
  err.textContent = "";
  const r = await fetch("/api/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ password: document.getElementById("password").value }),
  });
  if (r.ok) { location.href = "/"; return; }
  const body = await r.json().catch(() => ({}));
  err.textContent = r.status === 401 ? s.wrong : (body.error ? body.error.message : r.statusText);
});
