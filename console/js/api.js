// The query API's client (same origin): the caller's token, progress in the header while a
// request runs, the API's problem document as the error.

import { token } from "./auth.js";

let inFlight = 0;
function busy(delta) {
  inFlight += delta;
  document.getElementById("busy").hidden = inFlight === 0;
}

export class ApiError extends Error {
  constructor(problem, status) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.problem = problem;
    this.status = status;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  busy(1);
  try {
    const headers = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { detail: text };
    }
    if (!response.ok) throw new ApiError(json, response.status);
    return json;
  } finally {
    busy(-1);
  }
}

/// Every page of a list (`next` cursors), up to `most` items.
export async function all(path, key, most = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
    const answer = await api(url);
    items.push(...answer[key]);
    cursor = answer.next;
  } while (cursor && items.length < most);
  return items;
}

/// The time ranges the pages offer, in seconds.
export const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "1y": 365 * 86400 };

/// The last `range` up to now, as the requests ask for it.
export function lastRange(range) {
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[range] * 1000);
  return { from, to };
}
