// The participants of the current workspace and their roles, for its owners and admins.

import { account, workspace } from "./api.js";
import { h, notice, replace } from "./dom.js";

const ROLES = ["owner", "admin", "maintain", "launch", "connect", "view"];

export async function participantsView(view) {
  const place = workspace.place();
  if (!place) {
    replace(view, h("h1", {}, "Participants"), h("p", { class: "hint" }, "Your personal workspace has no participants: choose a workspace."));
    return;
  }
  const base = `/orgs/${encodeURIComponent(place.orgId)}/workspaces/${encodeURIComponent(place.workspaceId)}/participants`;
  const body = h("tbody");
  const who = h("input", { id: "participant-name", required: true, autocomplete: "off" });
  const error = h("p", { id: "participant-error", class: "field-error", role: "alert" });

  async function refresh() {
    const { participants } = await account(base);
    replace(
      body,
      participants.map((entry) => {
        const role = h(
          "select",
          { "aria-label": `Role of ${entry.userName || entry.teamName}`, onchange: (event) => setRole(entry, event.target.value) },
          ROLES.map((value) => h("option", { value, selected: value === entry.wspRole }, value)),
        );
        return h(
          "tr",
          {},
          h("td", {}, entry.userName || entry.teamName),
          h("td", {}, entry.type === "TEAM" ? "team" : entry.orgRole),
          h("td", {}, role),
          h("td", {}, h("button", { type: "button", class: "danger", onclick: () => remove(entry) }, "Remove")),
        );
      }),
    );
  }

  async function setRole(entry, role) {
    try {
      await account(`${base}/${encodeURIComponent(entry.participantId)}/role`, { method: "PUT", body: { role } });
      notice(`${entry.userName || entry.teamName} is now ${role}.`);
    } catch (failure) {
      notice(failure.message, "error");
    }
    await refresh();
  }

  async function remove(entry) {
    if (!confirm(`Remove ${entry.userName || entry.teamName} from ${place.workspaceName}?`)) return;
    try {
      await account(`${base}/${encodeURIComponent(entry.participantId)}`, { method: "DELETE" });
    } catch (failure) {
      notice(failure.message, "error");
    }
    await refresh();
  }

  async function add(event) {
    event.preventDefault();
    replace(error, "");
    try {
      await account(`${base}/add`, { method: "PUT", body: { userNameOrEmail: who.value.trim() } });
      who.value = "";
      await refresh();
    } catch (failure) {
      replace(error, failure.message);
    }
  }

  replace(
    view,
    h("h1", {}, `Participants of ${place.orgName} / ${place.workspaceName}`),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "participants" },
        h("thead", {}, h("tr", {}, ["Name", "In the organization", "Role", ""].map((label) => h("th", { scope: "col" }, label)))),
        body,
      ),
    ),
    h(
      "form",
      { class: "card narrow", onsubmit: add },
      h("h2", {}, "Add a participant"),
      h("label", { for: "participant-name" }, "User name or email"),
      who,
      h("p", { class: "hint" }, "They join with the role launch; change it in the table."),
      error,
      h("button", { type: "submit" }, "Add"),
    ),
  );
  await refresh();
}
