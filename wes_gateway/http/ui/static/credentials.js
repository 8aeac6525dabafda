// Credentials and pipeline secrets of the current workspace, for its admins (and, in the
// personal workspace, for the user). Secret fields are write-only: they are sent once,
// never shown back, never prefilled; the lists show names and non-secret fields only.

import { tower } from "./api.js";
import { h, notice, replace, when } from "./dom.js";

// Per provider: [field, label, secret?, textarea?]
const PROVIDERS = {
  aws: [
    ["accessKey", "Access key", false],
    ["secretKey", "Secret key", true],
    ["assumeRoleArn", "Role to assume (optional ARN)", false],
  ],
  google: [["data", "Service account key (JSON)", true, true]],
  ssh: [
    ["privateKey", "Private key", true, true],
    ["passphrase", "Passphrase (optional)", true],
  ],
  github: [["username", "User name", false], ["password", "Access token", true]],
  gitlab: [["username", "User name", false], ["token", "Access token", true]],
  bitbucket: [["username", "User name", false], ["password", "App password", true]],
  gitea: [["username", "User name", false], ["password", "Access token", true]],
};
const GIT = new Set(["github", "gitlab", "bitbucket", "gitea"]);

function shownKeys(keys) {
  return Object.entries(keys || {})
    .filter(([key]) => key !== "discriminator" && key !== "mode")
    .map(([key, value]) => `${key}: ${value}`)
    .join(", ");
}

export async function credentialsView(view) {
  const body = h("tbody");
  const error = h("p", { id: "credentials-error", class: "field-error", role: "alert" });
  const name = h("input", { id: "credentials-name", required: true, maxlength: 100, autocomplete: "off" });
  const provider = h(
    "select",
    { id: "credentials-provider", onchange: () => showFields() },
    Object.keys(PROVIDERS).map((value) => h("option", { value }, value)),
  );
  const fields = h("div", { id: "credentials-fields" });
  let inputs = {};

  function showFields() {
    inputs = {};
    const rows = PROVIDERS[provider.value].map(([key, label, secret, area]) => {
      const id = `credentials-${key}`;
      const input = area
        ? h("textarea", { id, rows: 4, autocomplete: "off", spellcheck: "false", class: secret ? "secret" : null })
        : h("input", { id, type: secret ? "password" : "text", autocomplete: secret ? "new-password" : "off" });
      inputs[key] = input;
      return [h("label", { for: id }, label), input];
    });
    if (GIT.has(provider.value)) {
      const input = h("input", { id: "credentials-baseUrl", type: "url", placeholder: "https://git.example.org" });
      inputs.baseUrl = input;
      rows.push([h("label", { for: "credentials-baseUrl" }, "Server (optional, for a self-hosted one)"), input]);
    }
    replace(fields, rows);
  }

  async function refresh() {
    const { credentials } = await tower("/credentials");
    replace(
      body,
      credentials.length === 0
        ? h("tr", {}, h("td", { colspan: 5, class: "hint" }, "No credentials yet."))
        : credentials.map((item) =>
            h(
              "tr",
              {},
              h("td", {}, item.name),
              h("td", {}, item.provider),
              h("td", {}, [shownKeys(item.keys), item.baseUrl ? ` (${item.baseUrl})` : ""].join("")),
              h("td", {}, when(item.dateCreated)),
              h("td", {}, h("button", { type: "button", class: "danger", onclick: () => remove(item) }, "Delete")),
            ),
          ),
    );
  }

  async function remove(item) {
    if (!confirm(`Delete the credentials "${item.name}"?`)) return;
    try {
      await tower(`/credentials/${encodeURIComponent(item.id)}`, { method: "DELETE" });
      notice(`Credentials "${item.name}" deleted.`);
    } catch (failure) {
      notice(failure.message, "error");
    }
    await refresh();
  }

  async function create(event) {
    event.preventDefault();
    replace(error, "");
    const keys = {};
    for (const [key, input] of Object.entries(inputs)) {
      if (key !== "baseUrl" && input.value) keys[key] = input.value;
    }
    const spec = { name: name.value.trim(), provider: provider.value, keys };
    if (inputs.baseUrl && inputs.baseUrl.value) spec.baseUrl = inputs.baseUrl.value.trim();
    try {
      await tower("/credentials", { method: "POST", body: { credentials: spec } });
      notice(`Credentials "${spec.name}" added.`);
      name.value = "";
      showFields(); // the secret fields are emptied, never kept in the page
      await refresh();
    } catch (failure) {
      replace(error, failure.message);
    }
  }

  showFields();
  replace(
    view,
    h("h1", {}, "Credentials"),
    h("p", { class: "hint" }, "Cloud keys a compute environment can name, SSH keys, and git tokens for private pipelines. Secret fields are stored encrypted and never shown again."),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "credentials" },
        h("thead", {}, h("tr", {}, ["Name", "Provider", "Details", "Added", ""].map((label) => h("th", { scope: "col" }, label)))),
        body,
      ),
    ),
    h(
      "form",
      { class: "card narrow", onsubmit: create },
      h("h2", {}, "Add credentials"),
      h("label", { for: "credentials-name" }, "Name"),
      name,
      h("label", { for: "credentials-provider" }, "Provider"),
      provider,
      fields,
      error,
      h("button", { type: "submit" }, "Add"),
    ),
  );
  await refresh();
}

export async function secretsView(view) {
  const body = h("tbody");
  const error = h("p", { id: "secret-error", class: "field-error", role: "alert" });
  const name = h("input", { id: "secret-name", required: true, maxlength: 50, autocomplete: "off" });
  const value = h("input", { id: "secret-value", type: "password", required: true, autocomplete: "new-password" });

  async function refresh() {
    const { pipelineSecrets } = await tower("/pipeline-secrets");
    replace(
      body,
      pipelineSecrets.length === 0
        ? h("tr", {}, h("td", { colspan: 4, class: "hint" }, "No secrets yet."))
        : pipelineSecrets.map((item) =>
            h(
              "tr",
              {},
              h("td", {}, item.name),
              h("td", {}, when(item.lastUpdated || item.dateCreated)),
              h("td", {}, item.lastUsed ? when(item.lastUsed) : "never"),
              h(
                "td",
                {},
                h("button", { type: "button", onclick: () => change(item) }, "New value"),
                " ",
                h("button", { type: "button", class: "danger", onclick: () => remove(item) }, "Delete"),
              ),
            ),
          ),
    );
  }

  async function change(item) {
    const next = prompt(`A new value for ${item.name} (it replaces the stored one):`);
    if (!next) return;
    try {
      await tower(`/pipeline-secrets/${encodeURIComponent(item.id)}`, { method: "PUT", body: { value: next } });
      notice(`Secret ${item.name} changed.`);
    } catch (failure) {
      notice(failure.message, "error");
    }
    await refresh();
  }

  async function remove(item) {
    if (!confirm(`Delete the secret ${item.name}?`)) return;
    try {
      await tower(`/pipeline-secrets/${encodeURIComponent(item.id)}`, { method: "DELETE" });
      notice(`Secret ${item.name} deleted.`);
    } catch (failure) {
      notice(failure.message, "error");
    }
    await refresh();
  }

  async function create(event) {
    event.preventDefault();
    replace(error, "");
    try {
      await tower("/pipeline-secrets", { method: "POST", body: { name: name.value.trim(), value: value.value } });
      notice(`Secret ${name.value.trim()} added.`);
      name.value = "";
      value.value = "";
      await refresh();
    } catch (failure) {
      replace(error, failure.message);
    }
  }

  replace(
    view,
    h("h1", {}, "Pipeline secrets"),
    h("p", { class: "hint" }, "A launch names them; the pipeline reads them as secrets.NAME. Values are stored encrypted and never shown again."),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "secrets" },
        h("thead", {}, h("tr", {}, ["Name", "Changed", "Last used", ""].map((label) => h("th", { scope: "col" }, label)))),
        body,
      ),
    ),
    h(
      "form",
      { class: "card narrow", onsubmit: create },
      h("h2", {}, "Add a secret"),
      h("label", { for: "secret-name" }, "Name"),
      name,
      h("label", { for: "secret-value" }, "Value"),
      value,
      error,
      h("button", { type: "submit" }, "Add"),
    ),
  );
  await refresh();
}
