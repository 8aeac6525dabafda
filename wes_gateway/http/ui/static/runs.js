// The runs list: Tower's search syntax, keyset paging (the list's nextCursor), live updates.

import { me, poll, tower } from "./api.js";
import { duration, h, replace, since, statusBadge, when } from "./dom.js";
import { chips } from "./labels.js";
import { coalesce, follow } from "./live.js";

const PAGE = 50;

export async function runsView(view, ctx) {
  const params = ctx.route.params;
  const search = params.get("search") || "";
  // Where this page starts: the nextCursor of the page before it (none: the newest runs).
  // Each page is read by index from there, however deep; Back returns to the newer pages.
  const cursor = params.get("cursor") || "";
  const searchInput = h("input", {
    id: "search",
    type: "search",
    value: search,
    placeholder: "nf-core/demo  status:running  after:2026-11-01",
    "aria-describedby": "search-help",
  });
  const error = h("p", { class: "field-error", role: "alert" });
  const body = h("tbody");
  const pager = h("div", { class: "pager" });
  const table = h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "runs" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Run"),
          h("th", { scope: "col" }, "Pipeline"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Submitted"),
          h("th", { scope: "col" }, "Started"),
          h("th", { scope: "col" }, "Duration"),
          h("th", { scope: "col" }, "Labels"),
          me.admin ? h("th", { scope: "col" }, "User") : null,
        ),
      ),
      body,
    ),
  );
  replace(
    view,
    h("div", { class: "title" }, h("h1", {}, "Runs"), h("a", { class: "button", href: "#/launch" }, "Launch a pipeline")),
    h(
      "form",
      { class: "search", role: "search", onsubmit: onSearch },
      h("label", { for: "search" }, "Search"),
      searchInput,
      h("button", { type: "submit" }, "Search"),
      h(
        "p",
        { id: "search-help", class: "hint" },
        "Free text (* is a wildcard), or status:, projectName:, runName:, userName:, label:, after:, before:.",
      ),
    ),
    error,
    table,
    pager,
  );

  function onSearch(event) {
    event.preventDefault();
    const query = new URLSearchParams();
    if (searchInput.value.trim()) query.set("search", searchInput.value.trim());
    location.hash = `#/runs?${query}`;
  }

  function pageLink(label, newCursor) {
    const query = new URLSearchParams();
    if (search) query.set("search", search);
    if (newCursor) query.set("cursor", newCursor);
    return h("a", { class: "button secondary", href: `#/runs?${query}` }, label);
  }

  async function refresh() {
    const query = new URLSearchParams({ max: String(PAGE), attributes: "labels" });
    if (search) query.set("search", search);
    if (cursor) query.set("cursor", cursor);
    let answer;
    try {
      answer = await tower(`/workflow?${query}`);
    } catch (failure) {
      if (failure.status === 400) {
        replace(error, failure.message);
        replace(body);
        return false;
      }
      throw failure;
    }
    replace(error);
    const rows = answer.workflows.map(({ workflow, wesState, labels }) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(workflow.id)}` }, workflow.runName || workflow.id)),
        h("td", {}, workflow.projectName || "—"),
        h("td", {}, statusBadge(workflow.status), " ", h("span", { class: "wes-state" }, wesState)),
        h("td", {}, when(workflow.submit)),
        h("td", {}, when(workflow.start)),
        h("td", {}, duration(workflow.duration ?? since(workflow.start, workflow.complete))),
        h("td", {}, chips(labels)),
        me.admin ? h("td", {}, workflow.userName || "—") : null,
      ),
    );
    if (!rows.length) {
      rows.push(
        h(
          "tr",
          {},
          h(
            "td",
            { colspan: me.admin ? 8 : 7, class: "empty" },
            search || cursor
              ? "No runs match."
              : ["No runs yet. ", h("a", { href: "#/launch" }, "Launch a pipeline"), " to see it here."],
          ),
        ),
      );
    }
    replace(body, rows);
    replace(
      pager,
      cursor ? pageLink("Newest", "") : null,
      answer.hasMore && answer.nextCursor ? pageLink("Older", answer.nextCursor) : null,
    );
    return answer.workflows.map(({ workflow, wesState }) => [workflow.id, wesState]);
  }

  await refresh();
  // Live: the list is read again when a run of it changes, is added or is removed (at
  // most every few seconds); without a stream, it is polled, slowly.
  const changed = coalesce(ctx, refresh, 3000);
  follow("/workflow-events", "/workflow-events/ticket", ctx, changed, () =>
    poll(refresh, ctx.alive, { fastest: 10000, slowest: 60000 }),
  );
}
