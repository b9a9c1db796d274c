// Runs last, once every page has registered (see index.html).
"use strict";
main().catch((e) => { document.getElementById("status").textContent = t("error.unreachable") + ": " + e.message; });
