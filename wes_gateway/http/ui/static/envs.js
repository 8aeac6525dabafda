// Compute environments: the list for everyone; create, delete and primary for admins.

import { me, poll, tower } from "./api.js";
import { h, notice, replace, statusBadge, when } from "./dom.js";

const EXAMPLES = {
  "aws-batch": { region: "eu-west-1", headQueue: "nf-head", computeQueue: "nf-tasks", workDir: "s3://bucket/work" },
  "google-batch": { projectId: "my-project", location: "europe-west2", workDir: "gs://bucket/work" },
  "slurm-platform": { hostName: "login.hpc.example.org", userName: "nfrunner", workDir: "/shared/nextflow/work", headQueue: "long", computeQueue: "compute" },
  "local-platform": {},
};

export async function computeEnvsView(view, ctx) {
  const body = h("tbody");
  const table = h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Platform", "Status", "Region", "Work dir", "Last used", ""].map((label) => h("th", { scope: "col" }, label)),
        ),
      ),
      body,
    ),
  );
  replace(view, h("h1", {}, "Compute environments"), table, me.admin ? createForm(refresh) : h("p", { class: "hint" }, "Administrators add compute environments."));

  async function refresh() {
    const { computeEnvs } = await tower("/compute-envs");
    replace(
      body,
      computeEnvs.map((env) =>
        h(
          "tr",
          {},
          h("td", {}, env.name, env.primary ? h("span", { class: "tag" }, "primary") : null),
          h("td", {}, env.platform),
          h("td", {}, statusBadge(env.status), env.message ? h("div", { class: "hint" }, env.message) : null),
          h("td", {}, env.region || "—"),
          h("td", {}, env.workDir ? h("code", {}, env.workDir) : "—"),
          h("td", {}, when(env.lastUsed)),
          h("td", {}, me.admin ? actions(env, refresh) : null),
        ),
      ),
    );
    return computeEnvs.map((env) => [env.id, env.status, env.primary]);
  }

  await refresh();
  poll(refresh, ctx.alive, { fastest: 3000, slowest: 30000 });
}

function actions(env, refresh) {
  async function act(path, method, done) {
    try {
      await tower(path, { method });
      notice(done);
      await refresh();
    } catch (failure) {
      notice(failure.message, "error");
    }
  }
  return [
    env.primary ? null : h("button", { type: "button", class: "secondary", onclick: () => act(`/compute-envs/${env.id}/primary`, "POST", `${env.name} is the primary one now.`) }, "Make primary"),
    env.id === "local" ? null : h("button", { type: "button", class: "secondary", onclick: () => window.confirm(`Delete ${env.name}? Runs on it keep being watched.`) && act(`/compute-envs/${env.id}`, "DELETE", `${env.name} deleted.`) }, "Delete"),
  ];
}

function createForm(refresh) {
  const name = h("input", { id: "env-name", type: "text", required: true });
  const platform = h("select", { id: "env-platform", onchange: example }, Object.keys(EXAMPLES).map((value) => h("option", { value }, value)));
  const config = h("textarea", { id: "env-config", rows: 8, spellcheck: "false" });
  const error = h("p", { class: "field-error", role: "alert" });
  function example() {
    config.value = JSON.stringify(EXAMPLES[platform.value], null, 2);
  }
  example();
  async function send(event) {
    event.preventDefault();
    replace(error);
    let parsed;
    try {
      parsed = JSON.parse(config.value || "{}");
    } catch {
      replace(error, "computeEnv.config: not valid JSON");
      return;
    }
    try {
      await tower("/compute-envs", { method: "POST", body: { computeEnv: { name: name.value.trim(), platform: platform.value, config: parsed } } });
      notice(`${name.value.trim()} created; a worker checks it against its cloud now.`);
      name.value = "";
      await refresh();
    } catch (failure) {
      replace(error, failure.message);
    }
  }
  return h(
    "form",
    { class: "card", onsubmit: send },
    h("h2", {}, "Add a compute environment"),
    h("label", { for: "env-name" }, "Name"),
    name,
    h("label", { for: "env-platform" }, "Platform"),
    platform,
    h("label", { for: "env-config" }, "Config (JSON, Seqera's field names)"),
    config,
    error,
    h("button", { type: "submit" }, "Create"),
  );
}
