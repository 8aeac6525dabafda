// The launchpad: the workspace's saved pipelines as cards, each launched from a form
// filled with its saved launch; and a form that saves a new one.

import { tower } from "./api.js";
import { h, replace } from "./dom.js";
import { chips, labelIds } from "./labels.js";

export async function pipelinesView(view, ctx) {
  const search = ctx.route.params.get("search") || "";
  const query = new URLSearchParams({ attributes: "labels", max: "100" });
  if (search) query.set("search", search);
  const [list, envs] = await Promise.all([tower(`/pipelines?${query}`), tower("/compute-envs")]);
  const cards = list.pipelines.map((pipeline) =>
    h(
      "article",
      { class: "card pipeline", "data-pipeline": pipeline.name },
      h("h2", {}, pipeline.name),
      pipeline.description ? h("p", {}, pipeline.description) : null,
      h("p", {}, h("code", {}, pipeline.repository || "—")),
      h("p", {}, "Labels: ", chips(pipeline.labels)),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: `#/launch?pipeline=${encodeURIComponent(pipeline.pipelineId)}` }, "Launch"),
        h("button", { type: "button", class: "secondary", onclick: () => remove(pipeline) }, "Remove"),
      ),
    ),
  );
  const searchInput = h("input", { id: "pipeline-search", type: "search", value: search, placeholder: "rnaseq  label:team" });
  const inputs = {
    name: h("input", { id: "new-name", type: "text", required: true, placeholder: "rnaseq" }),
    pipeline: h("input", { id: "new-pipeline", type: "text", required: true, placeholder: "nf-core/rnaseq or https://github.com/owner/repo" }),
    revision: h("input", { id: "new-revision", type: "text", placeholder: "main, a tag or a commit" }),
    profiles: h("input", { id: "new-profiles", type: "text", placeholder: "test,docker" }),
    params: h("textarea", { id: "new-params", rows: 4, spellcheck: "false", placeholder: "outdir: results" }),
    description: h("input", { id: "new-description", type: "text" }),
    labels: h("input", { id: "new-labels", type: "text", placeholder: "team, env=prod" }),
    computeEnv: h(
      "select",
      { id: "new-compute-env" },
      envs.computeEnvs.map((env) => h("option", { value: env.id, selected: Boolean(env.primary) }, `${env.name} (${env.platform})`)),
    ),
  };
  const error = h("p", { id: "new-error", class: "field-error", role: "alert" });
  const labelled = (id, text, input) => h("div", { class: "field" }, h("label", { for: id }, text), input);
  replace(
    view,
    h("div", { class: "title" }, h("h1", {}, "Launchpad")),
    h(
      "form",
      { class: "search", role: "search", onsubmit: onSearch },
      h("label", { for: "pipeline-search" }, "Search"),
      searchInput,
      h("button", { type: "submit" }, "Search"),
    ),
    cards.length ? h("div", { class: "cards" }, cards) : h("p", { class: "empty" }, search ? "No pipelines match." : "No pipelines yet: add one below."),
    h(
      "form",
      { class: "card launch", novalidate: true, onsubmit: add },
      h("h2", {}, "Add a pipeline"),
      labelled("new-name", "Name", inputs.name),
      labelled("new-pipeline", "Pipeline", inputs.pipeline),
      labelled("new-revision", "Revision", inputs.revision),
      labelled("new-profiles", "Configuration profiles", inputs.profiles),
      labelled("new-params", "Parameters (JSON or YAML)", inputs.params),
      labelled("new-compute-env", "Compute environment", inputs.computeEnv),
      labelled("new-description", "Description", inputs.description),
      labelled("new-labels", "Labels", inputs.labels),
      error,
      h("button", { type: "submit" }, "Add to the launchpad"),
    ),
  );

  function onSearch(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    if (searchInput.value.trim()) next.set("search", searchInput.value.trim());
    location.hash = `#/pipelines?${next}`;
  }

  async function remove(pipeline) {
    if (!window.confirm(`Remove ${pipeline.name} from the launchpad? Its runs stay.`)) return;
    try {
      await tower(`/pipelines/${encodeURIComponent(pipeline.pipelineId)}`, { method: "DELETE" });
      await pipelinesView(view, ctx);
    } catch (failure) {
      replace(error, failure.message);
    }
  }

  async function add(event) {
    event.preventDefault();
    replace(error);
    const launch = { pipeline: inputs.pipeline.value.trim(), computeEnvId: inputs.computeEnv.value || null };
    if (inputs.revision.value.trim()) launch.revision = inputs.revision.value.trim();
    const profiles = inputs.profiles.value.split(",").map((item) => item.trim()).filter(Boolean);
    if (profiles.length) launch.configProfiles = profiles;
    if (inputs.params.value.trim()) launch.paramsText = inputs.params.value;
    try {
      const body = { name: inputs.name.value.trim(), launch, labelIds: await labelIds(inputs.labels.value, { create: true }) };
      if (inputs.description.value.trim()) body.description = inputs.description.value.trim();
      await tower("/pipelines", { method: "POST", body });
      await pipelinesView(view, ctx);
    } catch (failure) {
      replace(error, failure.message);
    }
  }
}
