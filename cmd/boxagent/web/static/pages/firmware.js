// The Firmware page: a client of /api/v1/… like the CLI; no logic of its own.
"use strict";
registerPage("firmware", {
  async refresh() {
    const body = document.querySelector("#firmware .page-body");
    body.replaceChildren(el("p", t("page.todo")));
  },
  events: {},
});
