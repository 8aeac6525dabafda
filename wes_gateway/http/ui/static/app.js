// The dashboard's router: one view at a time, chosen by the URL's #fragment.

import { account, ApiError, SSO, claimSignOn, endSignOn, me, token, workspace } from "./api.js";
import { h, notice, replace } from "./dom.js";
import { credentialsView, secretsView } from "./credentials.js";
import { computeEnvsView } from "./envs.js";
import { launchView } from "./launch.js";
import { participantsView } from "./participants.js";
import { pipelinesView } from "./pipelines.js";
import { runView } from "./run.js";
import { runsView } from "./runs.js";
import { tokensView } from "./tokens.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
let generation = 0;
let placesLoaded = false; // the workspaces of the signed-in user, read once per sign-in

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

function signInView(ctx, message) {
  nav.hidden = true;
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "token-help token-error",
  });
  const error = h("p", { id: "token-error", class: "field-error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "card narrow", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "hint" },
      "Paste the token ",
      h("code", {}, "wes-gateway serve"),
      " printed on its first start, or one from ",
      h("code", {}, "wes-gateway token create USER"),
      ". It is kept in this tab only.",
    ),
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  if (SSO) {
    let provider = SSO.issuer;
    try {
      provider = new URL(SSO.issuer).host;
    } catch {
      // not a URL: show it as it is
    }
    form.append(
      h("p", { class: "hint" }, "or"),
      h("a", { id: "sso", class: "button", href: SSO.login }, `Sign in with ${provider}`),
    );
  }
  async function submit(event) {
    event.preventDefault();
    const value = input.value.trim();
    try {
      const info = await account("/user-info", { tokenValue: value });
      token.set(value);
      Object.assign(me, info.user);
      location.hash = "#/runs";
    } catch (failure) {
      replace(error, failure.status === 401 ? "That token was not accepted." : failure.message);
    }
  }
  replace(view, form);
  input.focus();
}

async function render() {
  const mine = ++generation;
  const ctx = { alive: () => mine === generation, route: route() };
  notice("");
  const [page] = ctx.route.parts;
  if (!token.get() || page === "signin") {
    signInView(ctx, ctx.route.params.get("why"));
    return;
  }
  if (me.userName === null || me.id === null || !placesLoaded) {
    try {
      Object.assign(me, (await account("/user-info")).user);
      me.places = (await account(`/user/${encodeURIComponent(me.id)}/workspaces`)).orgsAndWorkspaces.filter(
        (entry) => entry.workspaceId !== null && entry.workspaceId !== undefined,
      );
      placesLoaded = true;
    } catch (failure) {
      if (failure.status !== 401) notice(`The service did not answer: ${failure.message}`, "error");
      return;
    }
    if (workspace.get() && !workspace.place()) workspace.set(null); // no longer a participant
  }
  showWorkspaces();
  nav.hidden = false;
  replace(document.getElementById("who"), me.userName, me.admin ? " (admin)" : "");
  for (const link of nav.querySelectorAll("a[data-route]")) {
    link.toggleAttribute("aria-current", link.dataset.route === (page || "runs"));
  }
  replace(view, h("p", { class: "hint" }, "Loading…"));
  try {
    if (!page || page === "runs") {
      if (ctx.route.parts[1]) await runView(view, ctx, decodeURIComponent(ctx.route.parts[1]));
      else await runsView(view, ctx);
    } else if (page === "pipelines") {
      await pipelinesView(view, ctx);
    } else if (page === "launch") {
      await launchView(view, ctx);
    } else if (page === "compute-envs") {
      await computeEnvsView(view, ctx);
    } else if (page === "participants") {
      await participantsView(view, ctx);
    } else if (page === "credentials") {
      await credentialsView(view, ctx);
    } else if (page === "secrets") {
      await secretsView(view, ctx);
    } else if (page === "tokens") {
      await tokensView(view, ctx);
    } else {
      replace(view, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/runs" }, "Go to your runs")));
    }
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) return;
    replace(view, h("h1", {}, "Something went wrong"), h("p", { class: "field-error" }, failure.message));
  }
}

// The workspace switcher: the personal workspace and every workspace the user is in.
function showWorkspaces() {
  const select = document.getElementById("workspace");
  const current = workspace.get() || "";
  replace(
    select,
    h("option", { value: "", selected: current === "" }, "Personal"),
    me.places.map((entry) =>
      h(
        "option",
        { value: entry.workspaceId, selected: String(entry.workspaceId) === current },
        `${entry.orgName} / ${entry.workspaceName}`,
      ),
    ),
  );
  const place = workspace.place();
  const manages = place && (place.roles || []).some((role) => role === "owner" || role === "admin");
  document.getElementById("participants-link").hidden = !manages;
  // Credentials and secrets: a workspace's admins manage them; in the personal one, the user.
  for (const id of ["credentials-link", "secrets-link"]) document.getElementById(id).hidden = Boolean(place) && !manages;
}

document.getElementById("workspace").addEventListener("change", (event) => {
  workspace.set(event.target.value || null);
  if (/^#\/(runs\/|participants|credentials|secrets)/.test(location.hash)) location.hash = "#/runs";
  else render();
});

window.addEventListener("hashchange", render);
window.addEventListener("signed-out", (event) => {
  me.userName = null;
  me.id = null;
  placesLoaded = false;
  location.hash = `#/signin?why=${encodeURIComponent(event.detail)}`;
});
document.getElementById("signout").addEventListener("click", async () => {
  await endSignOn();
  token.clear();
  workspace.set(null);
  me.userName = null;
  me.id = null;
  placesLoaded = false;
  location.hash = "#/signin";
});
claimSignOn().catch(() => false).finally(render);
