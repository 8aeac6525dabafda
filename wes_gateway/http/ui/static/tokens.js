// API tokens: the user's own, for programs (tw, nextflow -with-tower, WES clients).
// A new token's secret is shown once, here; the list shows names and dates only.

import { account } from "./api.js";
import { h, notice, replace, when } from "./dom.js";

export async function tokensView(view) {
  const body = h("tbody");
  const shown = h("div", { role: "status" });
  const name = h("input", { id: "token-name", required: true, maxlength: 50, autocomplete: "off" });
  const readOnly = h("input", { id: "token-read-only", type: "checkbox" });
  const error = h("p", { id: "token-name-error", class: "field-error", role: "alert" });

  async function refresh() {
    const { tokens } = await account("/tokens");
    replace(
      body,
      tokens.length === 0
        ? h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No tokens yet."))
        : tokens.map((item) =>
            h(
              "tr",
              {},
              h("td", {}, item.name),
              h("td", {}, item.scope === "read" ? "read only" : "full"),
              h("td", {}, when(item.dateCreated)),
              h("td", {}, item.lastUsed ? when(item.lastUsed) : "never"),
              h("td", {}, h("button", { type: "button", class: "danger", onclick: () => revoke(item) }, "Revoke")),
            ),
          ),
    );
  }

  async function revoke(item) {
    if (!confirm(`Revoke the token "${item.name}"? Programs using it stop working at once.`)) return;
    try {
      await account(`/tokens/${encodeURIComponent(item.id)}`, { method: "DELETE" });
      notice(`Token "${item.name}" revoked.`);
      await refresh();
    } catch (failure) {
      notice(failure.message, "error");
    }
  }

  async function create(event) {
    event.preventDefault();
    replace(error, "");
    try {
      const answer = await account("/tokens", {
        method: "POST",
        body: { name: name.value.trim(), ...(readOnly.checked ? { scope: "read" } : {}) },
      });
      replace(
        shown,
        h(
          "div",
          { class: "card" },
          h("p", {}, `Your new token "${answer.token.name}". Copy it now: it is not shown again.`),
          h("code", { id: "new-token", class: "secret" }, answer.accessKey),
        ),
      );
      name.value = "";
      await refresh();
    } catch (failure) {
      replace(error, failure.message);
    }
  }

  replace(
    view,
    h("h1", {}, "API tokens"),
    shown,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "tokens" },
        h("thead", {}, h("tr", {}, ["Name", "Scope", "Created", "Last used", ""].map((label) => h("th", { scope: "col" }, label)))),
        body,
      ),
    ),
    h(
      "form",
      { class: "card narrow", onsubmit: create },
      h("h2", {}, "New token"),
      h("label", { for: "token-name" }, "Name"),
      name,
      h("label", { class: "check" }, readOnly, " Read only (it may read, never change anything)"),
      error,
      h("button", { type: "submit" }, "Create token"),
    ),
  );
  await refresh();
}
