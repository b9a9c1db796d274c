// The Bluetooth page: a client of /api/v1/… like the CLI; no logic of its own.
"use strict";
registerPage("bluetooth", {
  async refresh() {
    const body = document.querySelector("#bluetooth .page-body");
    body.replaceChildren(el("p", t("page.todo")));
  },
  events: {},
});
