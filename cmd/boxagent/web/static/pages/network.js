// The Network page: a client of /api/v1/… like the CLI; no logic of its own.
"use strict";
registerPage("network", {
  async refresh() {
    const body = document.querySelector("#network .page-body");
    body.replaceChildren(el("p", t("page.todo")));
  },
  events: {},
});
