// The Audio page: a client of /api/v1/… like the CLI; no logic of its own.
"use strict";
registerPage("audio", {
  async refresh() {
    const body = document.querySelector("#audio .page-body");
    body.replaceChildren(el("p", t("page.todo")));
  },
  events: {},
});
