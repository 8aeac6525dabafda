// Live updates from the service's event streams (server-sent events): each event says
// what changed, and the page re-reads only that, instead of polling every few seconds.
//
// An EventSource cannot send the Authorization header, and the API token must never go
// into a URL (URLs land in logs and histories): the page first asks, with the token in
// its header, for a ticket good for this one stream for a minute, and opens the stream
// with that. When the stream cannot be had (too many open, an old browser, a proxy that
// drops it), the page falls back to polling, slowly.

import { TOWER, tower, workspace } from "./api.js";

// "poll" in this tab's session storage: the pages poll as they did before streams
// (for comparisons; the benchmark of requests a watching page makes uses it).
export const MODE_KEY = "wes-gateway-live";

const MAX_FAILURES = 3;

// Follows the stream at `path` (under the Tower API), opened with a ticket from
// `ticketPath`, while ctx.alive() holds; onChange(kinds, data) with the Set of what
// changed ("reset": read everything) and the event's data (on a run's stream, what
// changed: its status, state and progress, changed task records, new console lines). fallback() is called once if streaming gives up.
// Returns what stops following.
export function follow(path, ticketPath, ctx, onChange, fallback) {
  if (sessionStorage.getItem(MODE_KEY) === "poll" || typeof EventSource !== "function") {
    fallback();
    return () => {};
  }
  let source = null;
  let lastId = null;
  let failures = 0;
  let done = false;
  const watchdog = setInterval(() => {
    if (!ctx.alive()) stop();
  }, 1000);

  function stop() {
    done = true;
    clearInterval(watchdog);
    if (source) source.close();
    source = null;
  }

  function giveUp() {
    if (done) return;
    stop();
    fallback();
  }

  function seen(event) {
    if (event.lastEventId) lastId = event.lastEventId;
  }

  async function open() {
    if (done || !ctx.alive()) return stop();
    let ticket;
    try {
      ({ ticket } = await tower(ticketPath, { method: "POST" }));
    } catch {
      return giveUp();
    }
    const query = new URLSearchParams({ ticket });
    const id = workspace.get();
    if (id) query.set("workspaceId", id);
    if (lastId) query.set("lastEventId", lastId);
    source = new EventSource(`${TOWER}${path}?${query}`);
    source.onopen = () => {
      failures = 0;
    };
    source.addEventListener("ready", seen);
    source.addEventListener("change", (event) => {
      if (!ctx.alive()) return stop(); // the page was left: not for it any more
      seen(event);
      const data = JSON.parse(event.data);
      onChange(new Set(data.kinds), data);
    });
    source.addEventListener("reset", (event) => {
      if (!ctx.alive()) return stop();
      seen(event);
      onChange(new Set(["reset"]), {});
    });
    source.onerror = () => {
      // The browser reconnects by itself (resuming from the last event id) while the
      // stream's URL works; once it is refused (the ticket has expired), a new ticket.
      if (!source || source.readyState !== EventSource.CLOSED) return;
      source = null;
      failures += 1;
      if (failures > MAX_FAILURES) giveUp();
      else setTimeout(open, 1000 * failures);
    };
  }

  open();
  return stop;
}

// Runs fn(kinds) for the changes announced, one run at a time, at most once every
// `gap` ms: a burst of changes is read once, with all their kinds together. Nothing runs
// once ctx.alive() no longer holds (the page was left while a read waited its turn).
export function coalesce(ctx, fn, gap = 1000) {
  let pending = new Set();
  let running = false;
  let last = 0;
  async function drain() {
    if (!ctx.alive()) {
      pending = new Set();
      return;
    }
    if (running || !pending.size) return;
    const wait = last + gap - Date.now();
    if (wait > 0) {
      setTimeout(drain, wait);
      return;
    }
    running = true;
    const kinds = pending;
    pending = new Set();
    try {
      await fn(kinds);
    } catch {
      // the next change reads again
    } finally {
      running = false;
      last = Date.now();
      if (pending.size) setTimeout(drain, gap);
    }
  }
  return (kinds) => {
    for (const kind of kinds) pending.add(kind);
    drain();
  };
}
