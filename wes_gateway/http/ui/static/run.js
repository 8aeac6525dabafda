// One run: header, progress, tasks, live console, downloads, outputs, metrics, and actions.

import { download, poll, tower, wes } from "./api.js";
import { FINAL_RUN_STATUSES, TASK_STATUS_COUNTERS, TASK_STATUSES } from "./facts.js";
import { bytes, duration, h, notice, replace, since, statusBadge, svg, when } from "./dom.js";
import { runLabelsSection } from "./labels.js";
import { coalesce, follow } from "./live.js";

const TERMINAL = new Set(FINAL_RUN_STATUSES);
const TASK_PAGE = 50;
const COUNTERS = ["succeeded", "cached", "running", "submitted", "failed", "aborted", "pending"];

export async function runView(view, ctx, runId) {
  const path = `/workflow/${encodeURIComponent(runId)}`;
  let described;
  try {
    described = await tower(path);
  } catch (failure) {
    if (failure.status === 404 || failure.status === 403) {
      replace(
        view,
        h("h1", {}, "Run not found"),
        h("p", { class: "field-error", role: "alert" }, `There is no run ${runId} among yours (${failure.message}).`),
        h("p", {}, h("a", { href: "#/runs" }, "Back to your runs")),
      );
      return;
    }
    throw failure;
  }

  const header = h("section", { class: "card", "aria-labelledby": "run-title" });
  const actions = h("div", { class: "actions" });
  const labelsCard = h("section", { class: "card", "aria-label": "Labels" });
  const progress = h("section", { class: "card", "aria-label": "Progress" });
  const tasks = h("section", { class: "card", "aria-label": "Tasks" });
  const console_ = h("section", { class: "card", "aria-label": "Console" });
  const metrics = h("section", { class: "card", "aria-label": "Metrics", hidden: true });
  const outputs = h("section", { class: "card", "aria-label": "Outputs", hidden: true });
  replace(view, h("p", {}, h("a", { href: "#/runs" }, "← Runs")), header, actions, labelsCard, progress, console_, tasks, outputs, metrics);

  const taskTable = tasksSection(tasks, path, ctx);
  const consoleLog = consoleSection(console_, path, ctx);
  const published = outputsSection(outputs, runId);

  let wesState = null;
  // The run itself: header, actions, progress (describe and the WES state).
  async function readRun() {
    described = await tower(path);
    const status = await wes(`/runs/${encodeURIComponent(runId)}/status`).catch(() => ({ state: "—" }));
    wesState = status.state;
    renderHeader(header, described, status.state);
    renderActions(actions, described, path, runId, refresh);
    renderProgress(progress, described.progress);
    taskTable.processes(described.progress?.processesProgress || []);
    const done = TERMINAL.has(described.workflow.status);
    if (done) {
      await consoleLog.catchUp();
      await published.show();
      await renderMetrics(metrics, path);
    }
    return [described.workflow.status, status.state, described.progress?.workflowProgress];
  }

  async function refresh() {
    const seen = await readRun();
    await taskTable.refresh();
    return seen;
  }

  await refresh();
  await runLabelsSection(labelsCard, runId).catch((failure) => replace(labelsCard, failure.message));
  // Live: re-read only what the run's stream says changed. A status change that comes
  // with the run's progress, its status and state unchanged, needs no read at all.
  let latest = null;
  const runChanged = coalesce(ctx, async (kinds) => {
    const fresh = latest;
    latest = null;
    if (kinds.has("removed")) {
      stopFollowing(); // its stream ends: there is nothing more to follow
      notice(`Run ${runId} was deleted.`);
      return;
    }
    const same = fresh?.progress && fresh.status === described.workflow.status && fresh.state === wesState;
    if (same && !kinds.has("reset")) {
      renderProgress(progress, fresh.progress);
      taskTable.processes(fresh.progress.processesProgress || []);
    } else {
      await readRun();
    }
  });
  // Changed task records come in the event; the list is read again when they do not
  // (too many changed, the run ended), or cannot be placed on the page shown (another
  // order than task id's), then less often.
  const tasksChanged = coalesce(ctx, () => taskTable.refresh(), 3000);
  const tasksMoved = coalesce(ctx, () => taskTable.refresh(), 10000);
  const consoleGrew = coalesce(ctx, () => consoleLog.read(), 2000);
  function changed(kinds, data) {
    const all = kinds.has("reset");
    if (data.progress) latest = data;
    if (all || kinds.has("status") || kinds.has("removed")) runChanged(kinds);
    if (all || (kinds.has("tasks") && !data.tasks)) tasksChanged(kinds);
    else if (kinds.has("tasks") && !taskTable.apply(data.tasks, data.progress)) tasksMoved(kinds);
    // New console lines come in the event when they follow what the page has shown.
    if (all || (kinds.has("log") && !consoleLog.append(data))) consoleGrew(kinds);
  }
  const stopFollowing = follow(`${path}/events`, `${path}/events/ticket`, ctx, changed, () => {
    // No stream: poll, more slowly than the stream's updates come.
    poll(refresh, ctx.alive, { fastest: 5000, slowest: 30000 });
    consoleLog.startPolling();
  });
  await consoleLog.read().catch(() => false);
}

function field(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function renderHeader(section, described, wesState) {
  const run = described.workflow;
  replace(
    section,
    h("div", { class: "title" }, h("h1", { id: "run-title" }, run.runName || run.id), h("span", { class: "status-line" }, statusBadge(run.status), " ", h("span", { class: "wes-state", title: "WES state" }, wesState))),
    h(
      "dl",
      { class: "facts" },
      field("Pipeline", run.projectName || run.repository || "—"),
      field("Revision", run.revision || run.commitId || "—"),
      field("Run id", h("code", {}, run.id)),
      field("Launched by", run.userName || "—"),
      field("Compute environment", described.platform ? described.platform.name : "outside the gateway (monitoring only)"),
      field("Work dir", run.workDir ? h("code", {}, run.workDir) : "—"),
      field("Submitted", when(run.submit)),
      field("Started", when(run.start)),
      field("Duration", duration(run.duration ?? since(run.start, run.complete))),
      field("Exit status", run.exitStatus ?? "—"),
      field("Command line", run.commandLine ? h("code", { class: "wrap" }, run.commandLine) : "—"),
      run.errorMessage ? field("Error", h("span", { class: "field-error" }, run.errorMessage)) : null,
    ),
  );
}

function renderActions(section, described, path, runId, refresh) {
  const status = described.workflow.status;
  const active = !TERMINAL.has(status);
  const monitored = described.platform == null; // absent: reported by `nextflow run -with-tower`
  async function cancel() {
    if (!window.confirm(`Cancel run ${described.workflow.runName || runId}? Its head job is stopped.`)) return;
    try {
      await tower(`${path}/cancel`, { method: "POST" });
      notice("Cancel requested.");
      await refresh();
    } catch (failure) {
      notice(`Could not cancel: ${failure.message}`, "error");
    }
  }
  async function remove() {
    const how = active ? " It is still active: its head job is stopped first." : "";
    if (!window.confirm(`Delete run ${described.workflow.runName || runId} and its records?${how}`)) return;
    try {
      await tower(`${path}${active ? "?force=true" : ""}`, { method: "DELETE" });
      notice(`Run ${runId} deleted.`);
      location.hash = "#/runs";
    } catch (failure) {
      notice(`Could not delete: ${failure.message}`, "error");
    }
  }
  replace(
    section,
    active && !monitored ? h("button", { type: "button", class: "danger", onclick: cancel }, "Cancel run") : null,
    monitored ? null : h("a", { class: "button secondary", href: `#/launch?from=${encodeURIComponent(runId)}` }, "Relaunch"),
    h("button", { type: "button", class: "secondary", onclick: remove }, "Delete"),
  );
}

function bar(counts, label) {
  const total = COUNTERS.reduce((sum, key) => sum + (counts[key] || 0), 0);
  const track = h("div", {
    class: "track",
    role: "img",
    "aria-label": `${label}: ${COUNTERS.map((key) => `${counts[key] || 0} ${key}`).join(", ")}`,
  });
  for (const key of COUNTERS) {
    const value = counts[key] || 0;
    if (!value || !total) continue;
    const segment = h("span", { class: `segment ${key}`, title: `${value} ${key}` });
    segment.style.width = `${(100 * value) / total}%`;
    track.append(segment);
  }
  const words = COUNTERS.filter((key) => counts[key]).map((key) => `${counts[key]} ${key}`);
  return h("div", { class: "progress-row" }, h("div", { class: "progress-label" }, h("span", {}, label), h("span", { class: "counts" }, words.join(" · ") || "no tasks yet")), track);
}

function renderProgress(section, progress) {
  const overall = progress?.workflowProgress || {};
  const processes = progress?.processesProgress || [];
  replace(
    section,
    h("h2", {}, "Progress"),
    bar(overall, "All tasks"),
    processes.length ? h("div", { class: "processes" }, processes.map((item) => bar(item, item.process))) : null,
    h("p", { class: "legend" }, COUNTERS.map((key) => h("span", { class: `key ${key}` }, key))),
  );
}

function tasksSection(section, path, ctx) {
  const state = { sortBy: "taskId", sortDir: "asc", offset: 0, process: "", status: "" };
  const processSelect = h("select", { id: "task-process", onchange: () => update({ process: processSelect.value, offset: 0 }) }, h("option", { value: "" }, "All processes"));
  const statusSelect = h(
    "select",
    { id: "task-status", onchange: () => update({ status: statusSelect.value, offset: 0 }) },
    h("option", { value: "" }, "All statuses"),
    TASK_STATUSES.map((value) => h("option", { value }, value)),
  );
  const head = h("tr");
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const files = h("div", { class: "task-files" });
  const columns = [
    ["taskId", "#"],
    ["name", "Task"],
    ["process", "Process"],
    ["status", "Status"],
    ["exitStatus", "Exit"],
    ["start", "Started"],
    ["complete", "Completed"],
  ];
  replace(
    section,
    h("h2", {}, "Tasks"),
    h("div", { class: "filters" }, h("label", { for: "task-process" }, "Process"), processSelect, h("label", { for: "task-status" }, "Status"), statusSelect),
    h("div", { class: "scroll" }, h("table", { class: "tasks" }, h("thead", {}, head), body)),
    pager,
    files,
  );

  function update(change) {
    Object.assign(state, change);
    refresh();
  }

  function renderHead() {
    replace(
      head,
      columns.map(([key, label]) => {
        const sorted = state.sortBy === key;
        const next = sorted && state.sortDir === "asc" ? "desc" : "asc";
        return h(
          "th",
          { scope: "col", "aria-sort": sorted ? (state.sortDir === "asc" ? "ascending" : "descending") : null },
          h("button", { type: "button", class: "sort", onclick: () => update({ sortBy: key, sortDir: next }) }, label, sorted ? (state.sortDir === "asc" ? " ▲" : " ▼") : ""),
        );
      }),
    );
  }

  async function openTask(task) {
    const tabs = [
      [".command.out", "stdout"],
      [".command.err", "stderr"],
      [".command.log", "log"],
    ];
    const text = h("pre", { class: "log", tabindex: "0" }, "Loading…");
    async function show(fileName) {
      try {
        const response = await tower(`${path}/download/${task.taskId}?fileName=${encodeURIComponent(fileName)}`, { raw: true });
        replace(text, (await response.text()) || "(empty)");
      } catch (failure) {
        replace(text, failure.message);
      }
    }
    replace(
      files,
      h("h3", {}, `Task ${task.taskId}: ${task.name}`),
      h("div", { class: "tabs", role: "group", "aria-label": "Task files" }, tabs.map(([fileName, label]) => h("button", { type: "button", class: "secondary", onclick: () => show(fileName) }, `${label} (${fileName})`))),
      text,
    );
    await show(".command.out");
  }

  // What the table shows: the rows of the page (tasks in the list's order) and the total.
  let shown = [];
  let shownTotal = 0;
  let reading = 0;

  async function refresh() {
    renderHead();
    const search = [state.process ? `process:"${state.process}"` : "", state.status ? `status:${state.status}` : ""].filter(Boolean).join(" ");
    const query = new URLSearchParams({ max: String(TASK_PAGE), offset: String(state.offset), sortBy: state.sortBy, sortDir: state.sortDir });
    if (search) query.set("search", search);
    reading += 1;
    try {
      const answer = await tower(`${path}/tasks?${query}`);
      render(answer.tasks.map(({ task }) => task), answer.total ?? 0);
    } finally {
      reading -= 1;
    }
  }

  function render(tasks, total) {
    shown = tasks;
    shownTotal = total;
    const rows = tasks.map((task) =>
      h(
        "tr",
        {},
        h("td", {}, task.taskId),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => openTask(task) }, task.name || `task ${task.taskId}`)),
        h("td", {}, task.process || "—"),
        h("td", {}, statusBadge(task.status)),
        h("td", {}, task.exitStatus ?? "—"),
        h("td", {}, when(task.start)),
        h("td", {}, when(task.complete)),
      ),
    );
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No tasks yet.")));
    replace(body, rows);
    replace(
      pager,
      state.offset > 0 ? h("button", { type: "button", class: "secondary", onclick: () => update({ offset: Math.max(0, state.offset - TASK_PAGE) }) }, "Previous") : null,
      total ? h("span", { class: "hint" }, `${state.offset + 1}–${Math.min(total, state.offset + TASK_PAGE)} of ${total}`) : null,
      state.offset + TASK_PAGE < total ? h("button", { type: "button", class: "secondary", onclick: () => update({ offset: state.offset + TASK_PAGE }) }, "Next") : null,
    );
  }

  // How many tasks the list holds for the filters shown, from the run's progress (the
  // counters the tasks list counts by); null when they do not tell.
  function countIn(progress) {
    if (!progress) return null;
    let load = progress.workflowProgress;
    if (state.process) {
      if (state.process === "unknown") return null; // the counters join unnamed tasks here
      load = (progress.processesProgress || []).find((item) => item.process === state.process) || {};
    }
    if (!load) return null;
    const counters = state.status ? [TASK_STATUS_COUNTERS[state.status]] : Object.values(TASK_STATUS_COUNTERS);
    return counters.reduce((sum, counter) => sum + (load[counter] || 0), 0);
  }

  function fits(task) {
    return (!state.process || task.process === state.process) && (!state.status || task.status === state.status);
  }

  // The changed task records a live event carried (items as the tasks list answers them)
  // and the run's progress: placed on the page shown when that can be known from it (the
  // list in task-id order), else false and the page reads the list again.
  function apply(items, progress) {
    if (reading || state.sortBy !== "taskId") return false;
    const total = countIn(progress);
    if (total === null) return false;
    const before = state.sortDir === "desc" ? (a, b) => a > b : (a, b) => a < b;
    const rows = shown.slice();
    for (const { task } of items) {
      const at = rows.findIndex((row) => row.taskId === task.taskId);
      if (at >= 0) {
        if (fits(task)) rows[at] = task;
        else rows.splice(at, 1); // left the filter: a later row may move up (checked below)
        continue;
      }
      if (!fits(task)) continue;
      let place = rows.findIndex((row) => before(task.taskId, row.taskId));
      if (place === -1) place = rows.length;
      if (place === 0 && state.offset > 0) return false; // an earlier page's: this one shifts
      if (place === rows.length && rows.length >= TASK_PAGE) continue; // a later page's
      rows.splice(place, 0, task);
      if (rows.length > TASK_PAGE) rows.pop();
    }
    // The page must hold what the count says it holds, or some rows are not known here.
    if (rows.length !== Math.max(0, Math.min(TASK_PAGE, total - state.offset))) return false;
    render(rows, total);
    return true;
  }

  function processes(items) {
    const names = items.map((item) => item.process);
    const shown = [...processSelect.options].slice(1).map((option) => option.value);
    if (names.join("\n") === shown.join("\n")) return;
    replace(processSelect, h("option", { value: "" }, "All processes"), names.map((name) => h("option", { value: name, selected: name === state.process }, name)));
  }

  return { refresh, apply, processes, alive: ctx.alive };
}

const LOG_PAGE_BYTES = 64 * 1024;

function consoleSection(section, path, ctx) {
  const pre = h("pre", { class: "log console", tabindex: "0", "aria-label": "Console output" });
  const state = h("p", { class: "hint" }, "Reading the console…");
  const downloads = h("div", { class: "downloads" });
  replace(section, h("h2", {}, "Console"), state, pre, downloads);
  let next = null;
  let shownDownloads = false;
  let ended = false;
  let reading = null;

  // One read at a time: the live poll and a catch-up must not append the same lines.
  function more() {
    reading = reading || readAll().finally(() => {
      reading = null;
    });
    return reading;
  }

  // Page by page (a page's worth at a time, from where the last one ended), never the
  // whole console in one answer.
  async function readAll() {
    const query = new URLSearchParams({ maxLength: String(LOG_PAGE_BYTES) });
    if (next) query.set("next", next);
    const { log } = await tower(`${path}/log?${query}`);
    if (log.entries.length) {
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      pre.append(document.createTextNode(`${log.entries.join("\n")}\n`));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    next = log.forwardToken || next;
    replace(state, log.pending ? "Live: new lines appear as the run prints them." : "The run has ended; this is its whole console.");
    if (!shownDownloads && log.downloads?.length) {
      shownDownloads = true;
      replace(
        downloads,
        h("h3", {}, "Downloads"),
        log.downloads.map((item) =>
          h("button", { type: "button", class: "secondary", onclick: () => save(item) }, item.displayText || item.fileName),
        ),
      );
    }
    if (log.truncated) return readAll(); // a page's worth: more follows
    ended = !log.pending;
    return log.pending ? [next] : false;
  }

  async function save(item) {
    try {
      await download(`${path}/download?fileName=${encodeURIComponent(item.fileName)}`, item.saveName || item.fileName);
    } catch (failure) {
      notice(`${item.fileName}: ${failure.message}`, "error");
    }
  }

  return {
    // The run has ended: read its last lines now rather than at the next slow poll.
    catchUp: () => (ended ? Promise.resolve(false) : more().catch(() => false)),
    // Lines the stream sent, if they follow the last line shown (else false: read them).
    append(data) {
      if (!reading && data.next && data.next === next) return true; // read already
      if (reading || !data.entries || !next || data.from !== next) return false;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      pre.append(document.createTextNode(`${data.entries.join("\n")}\n`));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      next = data.next;
      return true;
    },
    // New lines (the stream said the console grew).
    read: () => (ended ? Promise.resolve(false) : more().catch((failure) => replace(state, failure.message))),
    startPolling() {
      more()
        .then((going) => {
          if (going !== false) poll(more, ctx.alive, { fastest: 3000, slowest: 15000 });
        })
        .catch((failure) => replace(state, failure.message));
    },
  };
}

// What an ended run published (WES `outputs`, listed by the workers once its head job
// ended): files on the service's disk are saved through the API; files elsewhere (a
// bucket, a cluster) are named where they are. The run as an RO-Crate, beside them.
function outputsSection(section, runId) {
  const runPath = `/runs/${encodeURIComponent(runId)}`;
  let shown = false;

  async function save(name) {
    const path = `${runPath}/outputs/${name.split("/").map(encodeURIComponent).join("/")}`;
    try {
      await download(path, name.split("/").pop(), wes);
    } catch (failure) {
      notice(`${name}: ${failure.message}`, "error");
    }
  }

  async function saveCrate() {
    try {
      await download(`${runPath}/ro-crate`, `${runId}-ro-crate.zip`, wes);
    } catch (failure) {
      notice(`RO-Crate: ${failure.message}`, "error");
    }
  }

  return {
    async show() {
      if (shown) return;
      let runLog;
      try {
        runLog = await wes(runPath);
      } catch (failure) {
        replace(section, h("h2", {}, "Outputs"), h("p", { class: "field-error" }, failure.message));
        section.hidden = false;
        return;
      }
      shown = true;
      section.hidden = false;
      const files = Object.entries(runLog.outputs || {});
      const crate = h("button", { type: "button", class: "secondary", onclick: saveCrate }, "Save the run as an RO-Crate");
      if (!files.length) {
        replace(section, h("h2", {}, "Outputs"), h("p", { class: "hint" }, "This run published no files (none under its outdir)."), crate);
        return;
      }
      const rows = files.map(([name, file]) =>
        h(
          "tr",
          {},
          h("td", {}, h("code", {}, name)),
          h("td", { class: "num" }, bytes(file.size)),
          h("td", {}, file.location.includes("://") ? h("code", {}, file.location) : h("button", { type: "button", class: "secondary", onclick: () => save(name) }, "Save")),
        ),
      );
      replace(
        section,
        h("h2", {}, "Outputs"),
        h("table", { class: "outputs" }, h("thead", {}, h("tr", {}, h("th", {}, "File"), h("th", {}, "Size"), h("th", {}, "Where"))), h("tbody", {}, rows)),
        runLog.outputs_truncated ? h("p", { class: "hint" }, "The run published more files than are listed here.") : null,
        crate,
      );
    },
  };
}

// Tower's metrics: a box plot per process for CPU (%) and memory (RSS).
async function renderMetrics(section, path) {
  if (section.dataset.drawn) return;
  const { metrics } = await tower(`${path}/metrics`);
  section.dataset.drawn = "yes";
  section.hidden = false;
  if (!metrics.length) {
    replace(section, h("h2", {}, "Metrics"), h("p", { class: "hint" }, "No metrics for this run yet: they come with its ended tasks."));
    return;
  }
  replace(
    section,
    h("h2", {}, "Metrics"),
    h("div", { class: "charts" }, boxPlot("CPU usage (%)", metrics, "cpu", (v) => `${v.toFixed(1)}%`), boxPlot("Memory (RSS)", metrics, "mem", bytes)),
  );
}

function boxPlot(title, metrics, key, format) {
  const rows = metrics.filter((entry) => entry[key] && typeof entry[key].max === "number");
  const width = 480;
  const labelWidth = 150;
  const rowHeight = 28;
  const height = rows.length * rowHeight + 30;
  const top = Math.max(...rows.map((entry) => entry[key].max), 1);
  const x = (value) => labelWidth + ((width - labelWidth - 20) * value) / top;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  rows.forEach((entry, index) => {
    const s = entry[key];
    const y = 10 + index * rowHeight;
    const middle = y + rowHeight / 2 - 4;
    chart.append(
      svg("text", { x: 0, y: middle + 4, class: "chart-label" }, entry.process),
      svg("line", { x1: x(s.min), x2: x(s.max), y1: middle, y2: middle, class: "whisker" }),
      svg("rect", { x: x(s.q1), y: middle - 8, width: Math.max(1, x(s.q3) - x(s.q1)), height: 16, class: "box" }),
      svg("line", { x1: x(s.q2), x2: x(s.q2), y1: middle - 8, y2: middle + 8, class: "median" }),
      svg("title", {}, `${entry.process}: min ${format(s.min)}, median ${format(s.q2)}, max ${format(s.max)}`),
    );
  });
  chart.append(svg("text", { x: labelWidth, y: height - 4, class: "chart-axis" }, "0"), svg("text", { x: width - 20, y: height - 4, class: "chart-axis", "text-anchor": "end" }, format(top)));
  return h("figure", { class: "chart-box" }, h("figcaption", {}, title), chart);
}
