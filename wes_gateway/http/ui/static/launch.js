// The launch form: Tower's launch fields; a 400 is shown beside the field it names.

import { tower } from "./api.js";
import { h, replace } from "./dom.js";
import { labelIds, labelText } from "./labels.js";

// Tower launch field → the form control that holds it.
const FIELDS = {
  pipeline: "pipeline",
  revision: "revision",
  configProfiles: "profiles",
  runName: "runName",
  paramsText: "params",
  configText: "config",
  computeEnvId: "computeEnv",
  sessionId: "resume",
  pullLatest: "latest",
  mainScript: "mainScript",
  entryName: "entryName",
  labelIds: "labels",
  labels: "labels",
};

// Fields of a launchpad pipeline's saved launch the form does not show: sent as saved.
const SAVED_ONLY = ["workDir", "preRunScript", "postRunScript", "stubRun", "headJobCpus", "headJobMemoryMb"];

function control(id, label, input, help) {
  const error = h("p", { id: `${id}-error`, class: "field-error", role: "alert" });
  input.id = id;
  input.name = id;
  input.setAttribute("aria-describedby", `${id}-error${help ? ` ${id}-help` : ""}`);
  return h(
    "div",
    { class: "field", "data-field": id },
    h("label", { for: id }, label),
    input,
    help ? h("p", { id: `${id}-help`, class: "hint" }, help) : null,
    error,
  );
}

export async function launchView(view, ctx) {
  const from = ctx.route.params.get("from");
  const pipelineId = ctx.route.params.get("pipeline");
  const savedPath = pipelineId ? `/pipelines/${encodeURIComponent(pipelineId)}` : null;
  const [envs, fromRun, saved, pipeline] = await Promise.all([
    tower("/compute-envs"),
    from ? tower(`/workflow/${encodeURIComponent(from)}/launch`).then((answer) => answer.launch) : null,
    savedPath ? tower(`${savedPath}/launch`).then((answer) => answer.launch) : null,
    savedPath ? tower(`${savedPath}?attributes=labels`).then((answer) => answer.pipeline) : null,
  ]);
  const previous = fromRun || saved;
  const usable = envs.computeEnvs.filter((env) => env.status === "AVAILABLE" || env.status === "CREATING");
  const primary = usable.find((env) => env.primary);
  const inputs = {
    pipeline: h("input", { type: "text", required: true, placeholder: "nf-core/demo or https://github.com/owner/repo", value: previous?.pipeline || "" }),
    revision: h("input", { type: "text", placeholder: "main, a tag or a commit", value: previous?.revision || "" }),
    profiles: h("input", { type: "text", placeholder: "test,docker", value: (previous?.configProfiles || []).join(",") }),
    runName: h("input", { type: "text", placeholder: "chosen by Nextflow when empty", value: saved?.runName || "" }),
    params: h("textarea", { rows: 6, spellcheck: "false", placeholder: '{"outdir": "results"}  or  outdir: results' }),
    config: h("textarea", { rows: 4, spellcheck: "false", placeholder: "process.cpus = 2" }),
    mainScript: h("input", { type: "text", placeholder: "main.nf", value: previous?.mainScript || "" }),
    entryName: h("input", { type: "text", placeholder: "the main workflow when empty", value: previous?.entryName || "" }),
    computeEnv: h(
      "select",
      {},
      usable.map((env) =>
        h("option", { value: env.id, selected: previous ? previous.computeEnv?.id === env.id : env === primary }, `${env.name} (${env.platform}${env.primary ? ", primary" : ""})`),
      ),
    ),
    latest: h("input", { type: "checkbox", checked: Boolean(previous?.pullLatest) }),
    resume: h("input", { type: "checkbox", checked: false, disabled: !previous?.sessionId }),
    labels: h("input", { type: "text", placeholder: "qc, env=prod", value: (pipeline?.labels || []).map(labelText).join(", ") }),
  };
  inputs.params.value = previous?.paramsText || "";
  inputs.config.value = previous?.configText || "";
  const general = h("p", { class: "field-error", role: "alert" });
  const submit = h("button", { type: "submit" }, "Launch");
  const form = h(
    "form",
    { class: "card launch", novalidate: true, onsubmit: send },
    h("h1", {}, from ? `Relaunch ${from}` : pipeline ? `Launch ${pipeline.name}` : "Launch a pipeline"),
    control("pipeline", "Pipeline", inputs.pipeline, "A repository name (owner/repo) or an https git URL."),
    control("revision", "Revision", inputs.revision),
    control("profiles", "Configuration profiles", inputs.profiles, "Comma-separated."),
    control("runName", "Run name", inputs.runName),
    control("params", "Parameters (JSON or YAML)", inputs.params),
    control("config", "Nextflow config", inputs.config),
    control("mainScript", "Main script", inputs.mainScript, "The script to run in the project (-main-script)."),
    control("entryName", "Workflow entry", inputs.entryName, "A named workflow to run (-entry)."),
    control("computeEnv", "Compute environment", inputs.computeEnv),
    control("labels", "Labels", inputs.labels, "Labels of this workspace: name or name=value, comma-separated."),
    h("div", { class: "checks" }, control("latest", "Pull the latest revision", inputs.latest), control("resume", previous?.sessionId ? `Resume session ${previous.sessionId}` : "Resume (relaunch a run to resume it)", inputs.resume)),
    general,
    submit,
  );
  replace(view, form);
  inputs.pipeline.focus();

  function clearErrors() {
    replace(general);
    for (const element of form.querySelectorAll(".field-error")) replace(element);
    for (const element of form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
  }

  function showError(message) {
    // Errors name the launch field first: "revision: not a valid git revision name".
    const field = message.split(":", 1)[0].replace(/^launch\./, "").trim();
    const id = FIELDS[field];
    if (id) {
      replace(document.getElementById(`${id}-error`), message);
      inputs[id].setAttribute("aria-invalid", "true");
      inputs[id].focus();
    } else {
      replace(general, message);
    }
  }

  async function send(event) {
    event.preventDefault();
    clearErrors();
    if (!inputs.pipeline.value.trim()) {
      showError("pipeline: give a pipeline to run");
      return;
    }
    const launch = { pipeline: inputs.pipeline.value.trim() };
    if (inputs.revision.value.trim()) launch.revision = inputs.revision.value.trim();
    const profiles = inputs.profiles.value.split(",").map((item) => item.trim()).filter(Boolean);
    if (profiles.length) launch.configProfiles = profiles;
    if (inputs.runName.value.trim()) launch.runName = inputs.runName.value.trim();
    if (inputs.params.value.trim()) launch.paramsText = inputs.params.value;
    if (inputs.config.value.trim()) launch.configText = inputs.config.value;
    if (inputs.mainScript.value.trim()) launch.mainScript = inputs.mainScript.value.trim();
    if (inputs.entryName.value.trim()) launch.entryName = inputs.entryName.value.trim();
    if (inputs.computeEnv.value) launch.computeEnvId = inputs.computeEnv.value;
    if (inputs.latest.checked) launch.pullLatest = true;
    if (saved) {
      launch.id = saved.id;
      for (const key of SAVED_ONLY) if (saved[key] !== undefined) launch[key] = saved[key];
    }
    if (inputs.resume.checked && previous?.sessionId) {
      launch.resume = true;
      launch.sessionId = previous.sessionId;
    }
    submit.disabled = true;
    try {
      if (inputs.labels.value.trim()) launch.labelIds = await labelIds(inputs.labels.value);
    } catch (failure) {
      showError(failure.message);
      submit.disabled = false;
      return;
    }
    try {
      const { workflowId } = await tower("/workflow/launch", { method: "POST", body: { launch } });
      location.hash = `#/runs/${encodeURIComponent(workflowId)}`;
    } catch (failure) {
      if (failure.status === 400) showError(failure.message);
      else replace(general, failure.message);
    } finally {
      submit.disabled = false;
    }
  }
}
