// Labels: shown as chips, typed as "name" or "name=value" (comma-separated), found by
// name in the workspace (and made when missing, as tw does), applied to a run.

import { tower } from "./api.js";
import { h, replace } from "./dom.js";

export function labelText(label) {
  return label.value ? `${label.name}=${label.value}` : label.name;
}

export function chips(labels) {
  if (!labels || !labels.length) return h("span", { class: "hint" }, "none");
  return h(
    "span",
    { class: "chips" },
    labels.map((label) => h("a", { class: "chip", href: `#/runs?search=${encodeURIComponent(`label:${labelText(label)}`)}`, title: "Runs with this label" }, labelText(label))),
  );
}

export function parseLabels(text) {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      const [name, value] = item.split("=", 2).map((part) => part.trim());
      return { name, value: value || null };
    });
}

// The ids of the labels typed in ``text``; those missing are made when ``create``, else
// an error names them.
export async function labelIds(text, { create = false } = {}) {
  const ids = [];
  for (const wanted of parseLabels(text)) {
    const type = wanted.value ? "resource" : "simple";
    const query = new URLSearchParams({ search: wanted.name, type, max: "100" });
    const found = (await tower(`/labels?${query}`)).labels.find(
      (label) => label.name === wanted.name && (!wanted.value || label.value === wanted.value),
    );
    if (found) {
      ids.push(found.id);
    } else if (create) {
      const body = { name: wanted.name, resource: Boolean(wanted.value) };
      if (wanted.value) body.value = wanted.value;
      ids.push((await tower("/labels", { method: "POST", body })).id);
    } else {
      throw new Error(`labels: no label ${labelText(wanted)} in this workspace`);
    }
  }
  return ids;
}

// A run's labels, and a form that sets them (POST /workflow/labels/apply).
export async function runLabelsSection(section, runId) {
  const path = `/workflow/${encodeURIComponent(runId)}?attributes=labels`;
  const shown = h("p", { id: "run-labels" });
  const input = h("input", { id: "run-labels-input", type: "text", placeholder: "qc, env=prod", "aria-describedby": "run-labels-error" });
  const error = h("p", { id: "run-labels-error", class: "field-error", role: "alert" });
  async function show() {
    const labels = (await tower(path)).labels || [];
    replace(shown, chips(labels));
    input.value = labels.map(labelText).join(", ");
  }
  async function apply(event) {
    event.preventDefault();
    replace(error);
    try {
      const ids = await labelIds(input.value, { create: true });
      await tower("/workflow/labels/apply", { method: "POST", body: { labelIds: ids, workflowIds: [runId] } });
      await show();
    } catch (failure) {
      replace(error, failure.message);
    }
  }
  replace(
    section,
    h("h2", {}, "Labels"),
    shown,
    h(
      "form",
      { class: "inline", onsubmit: apply },
      h("label", { for: "run-labels-input" }, "Set labels"),
      input,
      h("button", { type: "submit", class: "secondary" }, "Apply"),
      error,
    ),
  );
  await show();
}
