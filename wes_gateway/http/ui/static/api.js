// Calls to the two public APIs with the signed-in user's token. The token lives in this
// tab's session storage and travels only in the Authorization header, never in a URL.

import { SSO, TOWER, WES } from "./facts.js";

const KEY = "wes-gateway-token";
const SIGNED_ON = "wes-gateway-signed-on"; // this tab's token came from single sign-on

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

// Who is signed in (from /api/user-info), and the workspaces they take part in.
export const me = { id: null, userName: null, admin: false, places: [] };

// The workspace the pages act in: its id, or none for the user's personal workspace.
// Kept per tab, like the token; every workspace-scoped Tower call carries it.
const WORKSPACE_KEY = "wes-gateway-workspace";
export const workspace = {
  get: () => sessionStorage.getItem(WORKSPACE_KEY),
  set: (id) => (id ? sessionStorage.setItem(WORKSPACE_KEY, String(id)) : sessionStorage.removeItem(WORKSPACE_KEY)),
  // The orgsAndWorkspaces entry of the current workspace (null: personal).
  place: () => me.places.find((entry) => String(entry.workspaceId) === workspace.get()) || null,
};

function scoped(path) {
  const id = workspace.get();
  if (!id) return path;
  return `${path}${path.includes("?") ? "&" : "?"}workspaceId=${encodeURIComponent(id)}`;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export { SSO, TOWER, WES };

// After a single sign-on, the service hands this tab its session token once, from an
// HttpOnly cookie that only this call reads (the token is never in a URL).
export async function claimSignOn() {
  if (!SSO || token.get()) return false;
  const response = await fetch(SSO.session, { method: "POST", cache: "no-store", credentials: "same-origin" });
  if (!response.ok) return false;
  const body = await response.json();
  if (!body.token) return false;
  token.set(body.token);
  sessionStorage.setItem(SIGNED_ON, "1");
  return true;
}

// Signing out of a single sign-on session revokes its token (a pasted token is the
// user's to keep: it is only forgotten).
export async function endSignOn() {
  const value = token.get();
  if (!value || sessionStorage.getItem(SIGNED_ON) !== "1") return;
  sessionStorage.removeItem(SIGNED_ON);
  try {
    const tid = JSON.parse(atob(value).split(".")[0]).tid;
    await call(`${TOWER}/tokens/${encodeURIComponent(tid)}`, { method: "DELETE" });
  } catch {
    // it ends by itself after its lifetime
  }
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = body.message || body.msg || message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message);
}

export async function call(path, { method = "GET", body, raw = false, tokenValue } = {}) {
  const headers = { Authorization: `Bearer ${tokenValue || token.get() || ""}` };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  if (response.status === 401 && !tokenValue) {
    token.clear();
    window.dispatchEvent(new CustomEvent("signed-out", { detail: "Your token was not accepted. Sign in again." }));
    throw new ApiError(401, "not signed in");
  }
  if (!response.ok) throw await errorOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

// A Tower call in the current workspace; account() for the calls about the user and
// their organizations, which belong to no workspace.
export const tower = (path, options) => call(`${TOWER}${scoped(path)}`, options);
export const account = (path, options) => call(`${TOWER}${path}`, options);
export const wes = (path, options) => call(`${WES}${path}`, options);

// Save a file the API serves (with the token, so not through a plain link); `via` is
// the API it is under (tower, or wes).
export async function download(path, fileName, via = tower) {
  const response = await via(path, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Calls fn again and again while alive() holds: soon after a change, less and less often
// while nothing changes, and not at all while the tab is hidden.
export function poll(fn, alive, { fastest = 1500, slowest = 20000 } = {}) {
  let wait = fastest;
  let last;
  async function tick() {
    if (!alive()) return;
    if (document.hidden) {
      setTimeout(tick, 1000);
      return;
    }
    let changed = true;
    let more = true;
    try {
      const result = await fn();
      more = result !== false;
      const stamp = JSON.stringify(result ?? null);
      changed = stamp !== last;
      last = stamp;
    } catch (error) {
      if (error.status === 401) return;
      changed = false;
    }
    if (!more || !alive()) return;
    wait = changed ? fastest : Math.min(slowest, wait * 1.5);
    setTimeout(tick, wait);
  }
  setTimeout(tick, fastest);
}
