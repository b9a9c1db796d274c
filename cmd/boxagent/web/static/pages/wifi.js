// The Wifi page: a client of /api/v1/… like the CLI; no logic of its own.
"use strict";
registerPage("wifi", {
  async refresh() {
    const body = document.querySelector("#wifi .page-body");
    body.replaceChildren(el("p", t("page.todo")));
  },
  events: {},
});
