// API tokens: the user's own, for programs (tw, nextflow -with-tower, WES clients).
// A new token's secret is shown once, here; the list shows names and dates only.

import { account, me, workspace } from "./api.js";
import { h, notice, replace, when } from "./dom.js";

export async function tokensView(view) {
  const body = h("tbody");
  const shown = h("div", { role: "status" });
  const name = h("input", { id: "token-name", required: true, maxlength: 50, autocomplete: "off" });
  const readOnly = h("input", { id: "token-read-only", type: "checkbox" });
  const days = h("input", { id: "token-days", type: "number", min: 1, max: 3650, step: 1, placeholder: "never" });
  // A token may be limited to the workspace the page acts in (a shared one).
  const place = workspace.place();
  const here = h("input", { id: "token-workspace", type: "checkbox" });
  const placeName = (id) => {
    const entry = me.places.find((item) => String(item.workspaceId) === String(id));
    return entry ? `${entry.orgName} / ${entry.workspaceName}` : `workspace ${id}`;
  };
  const error = h("p", { id: "token-name-error", class: "field-error", role: "alert" });

  async function refresh() {
    const { tokens } = await account("/tokens");
    replace(
      body,
      tokens.length === 0
        ? h("tr", {}, h("td", { colspan: 7, class: "hint" }, "No tokens yet."))
        : tokens.map((item) =>
            h(
              "tr",
              {},
              h("td", {}, item.name),
              h("td", {}, item.scope === "read" ? "read only" : "full"),
              h("td", {}, item.workspaceId ? placeName(item.workspaceId) : "all"),
              h("td", {}, when(item.dateCreated)),
              h("td", {}, item.expiresAt ? when(item.expiresAt) : "never"),
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
        body: {
          name: name.value.trim(),
          ...(readOnly.checked ? { scope: "read" } : {}),
          ...(days.value ? { expiresInDays: Number(days.value) } : {}),
          ...(place && here.checked ? { workspaceId: place.workspaceId } : {}),
        },
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
      days.value = "";
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
        h("thead", {}, h("tr", {}, ["Name", "Scope", "Workspace", "Created", "Expires", "Last used", ""].map((label) => h("th", { scope: "col" }, label)))),
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
      h("label", { for: "token-days" }, "Expires after (days; empty: when revoked)"),
      days,
      place
        ? h("label", { class: "check" }, here, ` Only in ${place.orgName} / ${place.workspaceName} (it acts nowhere else)`)
        : "",
      error,
      h("button", { type: "submit" }, "Create token"),
    ),
  );
  await refresh();
}
