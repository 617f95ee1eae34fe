// The iotdp console: one page per hash route, each rendered from the query API (same origin).
// No framework: the API's JSON goes into plain DOM; charts are uPlot (loaded by index.html).
// Every request shows progress, every failure the API's problem `detail`.

const page = document.getElementById("page");
const ROLES = { viewer: 1, operator: 2, admin: 3 };

// ---- who is calling -------------------------------------------------------------------------

/// How to sign in, from the server (`/console/config.json`): the user pool's hosted UI with
/// the authorization-code flow and PKCE, or nothing (IAM, or the local platform).
const config = await fetch("/console/config.json").then((r) => r.json()).catch(() => ({ sign_in: null }));
const signIn = config.sign_in;

function randomText(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...values)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const redirectUri = () => `${location.origin}/`;

/// To the hosted UI; it comes back to this page with `?code=…&state=…`.
async function startSignIn() {
  const verifier = randomText(48);
  const state = randomText(16);
  sessionStorage.setItem("iotdp.pkce", JSON.stringify({ verifier, state, route: location.hash }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: signIn.client_id,
    redirect_uri: redirectUri(),
    scope: signIn.scope,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${signIn.authorize}?${query}`);
}

/// Back from the hosted UI: the code and this tab's verifier for the tokens.
async function finishSignIn() {
  const query = new URLSearchParams(location.search);
  const code = query.get("code");
  if (!signIn || !code) return;
  const pending = JSON.parse(sessionStorage.getItem("iotdp.pkce") || "null");
  sessionStorage.removeItem("iotdp.pkce");
  history.replaceState(null, "", `${location.pathname}${pending?.route || "#/fleet"}`);
  if (!pending || pending.state !== query.get("state")) {
    throw new Error("Sign-in came back for another request (state differs): sign in again.");
  }
  const response = await fetch(signIn.token, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: signIn.client_id,
      code,
      redirect_uri: redirectUri(),
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok || !tokens.id_token) {
    throw new Error(`Sign-in failed: ${tokens.error_description || tokens.error || response.status}`);
  }
  sessionStorage.setItem("iotdp.token", tokens.id_token);
}

function signOut() {
  sessionStorage.removeItem("iotdp.token");
  const query = new URLSearchParams({ client_id: signIn.client_id, logout_uri: redirectUri() });
  location.assign(`${signIn.logout}?${query}`);
}

/// A token handed over in the URL (`#id_token=…`, or `?token=…` for a local scoped caller) is
/// kept for the session, and the address cleaned.
function takeToken() {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, "")).get("id_token");
  const fromQuery = new URLSearchParams(location.search).get("token");
  const token = fromHash || fromQuery;
  if (token) {
    sessionStorage.setItem("iotdp.token", token);
    history.replaceState(null, "", location.pathname + "#/fleet");
  }
  return sessionStorage.getItem("iotdp.token");
}

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/// The caller's role as the API reads it from the same claims (docs/access.md); without a
/// token the local platform treats the caller as its admin.
function roleOf(claims, token) {
  if (!token) return signIn ? "none" : "admin";
  const groups = [].concat(claims["cognito:groups"] || []);
  let best = claims.iotdp_role || null;
  for (const group of groups) {
    const role = String(group).replace(/^iotdp-/, "");
    if (ROLES[role] && (!best || ROLES[role] > ROLES[best])) best = role;
  }
  return best || "viewer";
}

let signInError = null;
await finishSignIn().catch((e) => { signInError = e; });
const token = takeToken();
const claims = token ? claimsOf(token) : {};
const role = roleOf(claims, token);
const can = (needed) => (ROLES[role] || 0) >= ROLES[needed];
{
  const who = document.getElementById("who");
  if (token) {
    who.append(`${claims.email || claims["cognito:username"] || claims.sub || "signed in"} · ${role} `);
    if (signIn) who.append(Object.assign(document.createElement("button"), { type: "button", className: "secondary", textContent: "Sign out", onclick: signOut }));
  } else if (signIn) {
    who.append(Object.assign(document.createElement("button"), { type: "button", textContent: "Sign in", onclick: () => startSignIn().catch(showError) }));
  } else {
    who.textContent = "local · admin";
  }
}

// ---- the API --------------------------------------------------------------------------------

let inFlight = 0;
function busy(delta) {
  inFlight += delta;
  document.getElementById("busy").hidden = inFlight === 0;
}

class ApiError extends Error {
  constructor(problem, status) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.problem = problem;
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
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
async function all(path, key, most = 5000) {
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

function showError(error) {
  const banner = document.getElementById("error");
  if (!error) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.hidden = false;
  banner.textContent = error instanceof ApiError ? `${error.problem.title || "Error"}: ${error.message}` : String(error.message || error);
}

// ---- small DOM helpers ------------------------------------------------------------------------

function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const pill = (text, kind = text) => h("span", { class: `pill ${kind}` }, text);
const enc = encodeURIComponent;

function ago(time) {
  if (!time) return "never";
  const seconds = Math.round((Date.now() - Date.parse(time)) / 1000);
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function hashQuery() {
  const [, query = ""] = location.hash.split("?");
  return new URLSearchParams(query);
}

function setHashQuery(route, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  location.hash = query ? `${route}?${query}` : route;
}

// ---- fleet ----------------------------------------------------------------------------------

async function fleetPage() {
  const q = hashQuery();
  const filter = { type: q.get("type") || "", status: q.get("status") || "", place: q.get("place") || "" };
  const params = new URLSearchParams({ limit: "500" });
  if (filter.type) params.set("type", filter.type);
  if (filter.status) params.set("status", filter.status);
  if (filter.place) params.set("path", filter.place);
  const [devices, alerts] = await Promise.all([
    all(`/devices?${params}`, "devices"),
    all("/alerts?limit=500", "alerts"),
  ]);
  const open = new Map();
  for (const alert of alerts) {
    if (["ALARM", "ACKNOWLEDGED", "LATCHED"].includes(alert.state)) {
      open.set(alert.device_id, (open.get(alert.device_id) || 0) + 1);
    }
  }
  const byStatus = { active: 0, suspended: 0, decommissioned: 0 };
  for (const d of devices) byStatus[d.status] = (byStatus[d.status] || 0) + 1;
  const connected = devices.filter((d) => d.connected).length;
  const types = [...new Set(devices.map((d) => d.device_type))].sort();

  const apply = (event) => {
    event.preventDefault();
    const form = event.target.closest("form");
    setHashQuery("#/fleet", {
      type: form.type.value.trim(),
      status: form.status.value,
      place: form.place.value.trim(),
    });
  };
  return [
    h("h1", {}, "Fleet"),
    h("div", { class: "counts", "data-testid": "counts" },
      Object.entries(byStatus).map(([status, n]) => h("div", { class: "count", "data-status": status }, h("b", {}, n), status)),
      h("div", { class: "count", "data-status": "connected" }, h("b", {}, connected), "connected")),
    h("form", { class: "filters", onsubmit: apply },
      h("label", {}, "Type", h("input", { name: "type", value: filter.type, list: "types", placeholder: "any" }),
        h("datalist", { id: "types" }, types.map((t) => h("option", { value: t })))),
      h("label", {}, "Status", h("select", { name: "status", onchange: apply },
        ["", "active", "suspended", "decommissioned"].map((s) => h("option", { value: s, selected: s === filter.status }, s || "any")))),
      h("label", {}, "Place", h("input", { name: "place", value: filter.place, placeholder: "site/zone/section/spot" })),
      h("button", { type: "submit" }, "Filter")),
    h("table", { "data-testid": "devices" },
      h("thead", {}, h("tr", {}, ["Device", "Type", "Place", "Status", "Connected", "Last seen", "Open alerts"].map((c) => h("th", {}, c)))),
      h("tbody", {}, devices.map((d) => h("tr", { "data-device": d.device_id },
        h("td", {}, h("a", { href: `#/devices/${enc(d.device_id)}` }, d.device_id)),
        h("td", {}, d.device_type),
        h("td", {}, d.path || h("span", { class: "muted" }, "—")),
        h("td", {}, pill(d.status)),
        h("td", {}, d.connected ? pill("yes") : pill("no", "")),
        h("td", { title: d.last_seen || "" }, ago(d.last_seen)),
        h("td", { class: "num" }, open.get(d.device_id) || 0))))),
    devices.length === 0 ? h("p", { class: "muted" }, "No devices match.") : null,
  ];
}

// ---- places ---------------------------------------------------------------------------------

const RANGES = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "1y": 365 * 86400 };

/// A colour from red (lowest) to green (highest) of the values shown.
function shade(value, low, high) {
  const t = high > low ? (value - low) / (high - low) : 0.5;
  return `hsl(${Math.round(t * 130)}, 65%, 72%)`;
}

async function placesPage(path) {
  const q = hashQuery();
  const metric = q.get("metric") || "moisture";
  const range = RANGES[q.get("range")] ? q.get("range") : "24h";
  const agg = q.get("agg") || "avg";
  const levels = path ? path.split("/") : [];
  const crumbs = h("div", { class: "crumbs", "data-testid": "crumbs" },
    h("a", { href: `#/places/?metric=${enc(metric)}&range=${range}&agg=${agg}` }, "all sites"),
    levels.map((level, i) => [" / ", h("a", { href: `#/places/${levels.slice(0, i + 1).join("/")}?metric=${enc(metric)}&range=${range}&agg=${agg}` }, level)]));
  const controls = h("form", {
    class: "filters",
    onsubmit: (event) => {
      event.preventDefault();
      const form = event.target;
      setHashQuery(`#/places/${path}`, { metric: form.metric.value.trim(), range: form.range.value, agg: form.agg.value });
    },
  },
  h("label", {}, "Metric", h("input", { name: "metric", value: metric })),
  h("label", {}, "Range", h("select", { name: "range" }, Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === range }, r)))),
  h("label", {}, "Aggregate", h("select", { name: "agg" }, ["avg", "min", "max", "sum", "count", "last"].map((a) => h("option", { value: a, selected: a === agg }, a)))),
  h("button", { type: "submit" }, "Show"));

  if (levels.length === 4) {
    // A spot: the devices there.
    const devices = await all(`/devices?path=${enc(path)}&limit=500`, "devices");
    return [h("h1", {}, `Spot ${path}`), crumbs,
      h("ul", { "data-testid": "spot-devices" }, devices.map((d) => h("li", {}, h("a", { href: `#/devices/${enc(d.device_id)}` }, d.device_id), ` (${d.device_type})`)))];
  }
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[range] * 1000);
  const answer = await api(`/readings/${enc(metric)}/drill-down?path=${enc(path)}&from=${from.toISOString()}&to=${to.toISOString()}&agg=${agg}`);
  const values = answer.groups.map((g) => g.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  return [
    h("h1", {}, path ? `${answer.level}s of ${path}` : "Sites"),
    crumbs, controls,
    h("div", { class: "grid", "data-testid": "cells" }, answer.groups.map((g) => h("a", {
      class: "cell",
      "data-group": g.name,
      href: `#/places/${path ? `${path}/` : ""}${enc(g.name)}?metric=${enc(metric)}&range=${range}&agg=${agg}`,
      style: `background:${shade(g.value, low, high)}`,
    }, h("b", {}, g.name), h("span", {}, Number(g.value).toPrecision(3))))),
    answer.groups.length === 0 ? h("p", { class: "muted" }, `No ${metric} readings here in the last ${range}.`) : null,
    answer.groups.length > 1
      ? h("p", { class: "muted", "data-testid": "legend" }, "colour: ",
        h("span", { class: "pill", style: `background:${shade(low, low, high)}` }, Number(low).toPrecision(3)), " lowest to ",
        h("span", { class: "pill", style: `background:${shade(high, low, high)}` }, Number(high).toPrecision(3)), " highest")
      : null,
    h("p", { class: "muted" }, `${agg} of ${metric} over the last ${range}; answered from ${answer.tiers.join(" + ") || "nothing"}.`),
  ];
}

// ---- device ---------------------------------------------------------------------------------

/// The bin each preset asks for: a few hundred points whatever the range, from rollups where
/// the range is long (whole hours from 7 days up, so hourly rollups answer whichever finest
/// tier the job keeps, RollupFinestTier).
const BINS = { "1h": "30s", "24h": "5m", "7d": "1h", "30d": "2h", "1y": "1d" };
let liveTimer = null;

/// The chart's points for a preset, and the request that gave them.
async function seriesOf(deviceId, metric, range) {
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[range] * 1000);
  const url = `/devices/${enc(deviceId)}/readings/${enc(metric)}?from=${from.toISOString()}&to=${to.toISOString()}&bin=${BINS[range]}&agg=avg&limit=10000`;
  const points = await all(url, "points", 20000);
  return { url, points: points.filter((p) => typeof p.value === "number") };
}

function chart(target, metric, points) {
  const xs = points.map((p) => Date.parse(p.time) / 1000);
  const ys = points.map((p) => p.value);
  const width = Math.max(320, Math.min(target.clientWidth || 640, 1300));
  if (typeof uPlot === "undefined") {
    target.append(h("p", { class: "muted" }, `${points.length} points (charts need uPlot: run make console)`));
    return null;
  }
  return new uPlot({
    width,
    height: 220,
    series: [{}, { label: metric, stroke: "#1f6feb", width: 1.5, points: { show: points.length < 60 } }],
    axes: [{}, {}],
    scales: { x: { time: true } },
  }, [xs, ys], target);
}

async function devicePage(deviceId) {
  const q = hashQuery();
  const range = RANGES[q.get("range")] ? q.get("range") : "24h";
  const [detail, alerts, shadow, commands] = await Promise.all([
    api(`/devices/${enc(deviceId)}`),
    api(`/alerts?device=${enc(deviceId)}&limit=100`),
    api(`/devices/${enc(deviceId)}/shadow`).catch(() => null),
    api(`/devices/${enc(deviceId)}/commands?limit=20`).catch(() => ({ commands: [] })),
  ]);
  const d = detail.device;
  const metrics = Object.entries(detail.latest || {}).filter(([, p]) => typeof p.value === "number").map(([m]) => m).sort();
  const charts = h("div", { "data-testid": "charts" });
  const drawCharts = async () => {
    const series = await Promise.all(metrics.map((m) => seriesOf(deviceId, m, range)));
    charts.replaceChildren();
    metrics.forEach((metric, i) => {
      const { url, points } = series[i];
      const box = h("div", { class: "chart panel", "data-metric": metric, "data-points": points.length, "data-source": url },
        h("h3", {}, `${metric} `, h("span", { class: "muted" }, `(${points.length} bins of ${BINS[range]})`)));
      charts.append(box);
      // Kept on the element, so the browser tests can hold the drawn points to the API's.
      box.__uplot = chart(box, metric, points);
    });
  };
  clearInterval(liveTimer);
  if (range === "1h" || range === "24h") {
    // Live: the short ranges refresh while the page is open.
    liveTimer = setInterval(() => {
      if (location.hash.startsWith(`#/devices/${enc(deviceId)}`)) drawCharts().catch(showError);
      else clearInterval(liveTimer);
    }, 15000);
  }
  const commandRows = h("tbody", {}, commands.commands.map(commandRow));
  const sections = [
    h("h1", {}, `${d.device_id} `, pill(d.status)),
    h("div", { class: "cols" },
      h("div", { class: "panel" }, h("h2", {}, "Record"),
        h("dl", { class: "record" },
          ["device_type", "path", "gateway_id", "heartbeat_seconds", "connected", "last_seen", "created_at"].flatMap((k) => [h("dt", {}, k), h("dd", {}, d[k] === null || d[k] === undefined ? "—" : String(d[k]))]))),
      h("div", { class: "panel" }, h("h2", {}, "Latest values"),
        h("table", { "data-testid": "latest" }, h("tbody", {}, Object.entries(detail.latest || {}).map(([m, p]) => h("tr", {}, h("td", {}, m), h("td", { class: "num" }, String(p.value)), h("td", { class: "muted" }, ago(p.time)))))))),
    h("div", { class: "presets", role: "group", "aria-label": "range" },
      Object.keys(RANGES).map((r) => h("button", {
        type: "button", class: "secondary", "aria-pressed": String(r === range),
        onclick: () => setHashQuery(`#/devices/${enc(deviceId)}`, { range: r }),
      }, r))),
    charts,
    h("h2", {}, "Alerts"),
    alertsTable(alerts.alerts),
    h("div", { class: "cols" },
      h("div", { class: "panel" }, h("h2", {}, "Shadow"),
        shadow ? h("div", { "data-testid": "shadow" },
          ["desired", "reported", "delta"].map((k) => [h("b", {}, k), h("pre", {}, JSON.stringify(shadow[k], null, 1))]),
          h("p", { class: "muted" }, `version ${shadow.version}`)) : h("p", { class: "muted" }, "No shadow yet.")),
      h("div", { class: "panel" }, h("h2", {}, "Commands"),
        can("operator") ? commandForm(deviceId, commandRows) : null,
        h("table", { "data-testid": "commands" },
          h("thead", {}, h("tr", {}, ["Command", "Desired", "Status", "Issued"].map((c) => h("th", {}, c)))),
          commandRows))),
  ];
  queueMicrotask(() => drawCharts().catch(showError));
  return sections;
}

function commandRow(c) {
  return h("tr", { "data-command": c.command_id },
    h("td", {}, c.command_id),
    h("td", {}, h("code", {}, JSON.stringify(c.desired))),
    h("td", { "data-status": c.status }, pill(c.status)),
    h("td", {}, ago(c.issued_at)));
}

function commandForm(deviceId, rows) {
  const message = h("div", { class: "field-error", role: "alert" });
  const submit = async (event) => {
    event.preventDefault();
    const form = event.target;
    message.textContent = "";
    form.desired.classList.remove("wrong");
    let desired;
    try {
      desired = JSON.parse(form.desired.value);
    } catch (e) {
      form.desired.classList.add("wrong");
      message.textContent = `desired: not JSON (${e.message})`;
      return;
    }
    try {
      const { command } = await api(`/devices/${enc(deviceId)}/commands`, {
        method: "POST",
        body: { desired, expires_in: Number(form.expires.value) },
      });
      let row = commandRow(command);
      rows.prepend(row);
      // Watch it until it settles (delivered when the device reports the change).
      for (let i = 0; i < 60 && command.status === "pending"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const latest = await api(`/devices/${enc(deviceId)}/commands/${enc(command.command_id)}`);
        const next = commandRow(latest.command);
        row.replaceWith(next);
        row = next;
        if (latest.command.status !== "pending") break;
      }
    } catch (e) {
      form.desired.classList.add("wrong");
      message.textContent = e.message;
    }
  };
  return h("form", { onsubmit: submit, "data-testid": "command-form" },
    h("label", { class: "muted" }, "Desired state (JSON)", h("textarea", { name: "desired", rows: 3, style: "min-height:4rem" }, '{"setpoint": 21}')),
    h("div", { class: "filters" },
      h("label", {}, "Expires in (s)", h("input", { name: "expires", type: "number", value: "300", min: "1", max: "604800" })),
      h("button", { type: "submit" }, "Send command")),
    message);
}

// ---- alerts ---------------------------------------------------------------------------------

function alertActions(alert, replace) {
  if (!can("operator")) return null;
  const act = (action, body, question) => async () => {
    if (!confirm(question)) return;
    try {
      const updated = await api(`/alerts/${enc(alert.device_id)}/${enc(alert.rule_id)}/${action}`, {
        method: "POST",
        body: { version: alert.version, ...body },
      });
      replace(updated);
    } catch (e) {
      showError(e);
    }
  };
  const snoozeUntil = () => new Date(Date.now() + 3600 * 1000).toISOString();
  return h("div", { class: "actions" },
    ["ALARM", "LATCHED"].includes(alert.state)
      ? h("button", { type: "button", onclick: act("ack", {}, `Acknowledge ${alert.rule_id} on ${alert.device_id}?`) }, "Acknowledge") : null,
    alert.state !== "DISABLED"
      ? h("button", { type: "button", class: "secondary", onclick: () => act("snooze", { until: snoozeUntil() }, `Snooze ${alert.rule_id} on ${alert.device_id} for an hour?`)() }, "Snooze 1 h") : null,
    alert.state === "DISABLED"
      ? h("button", { type: "button", class: "secondary", onclick: act("enable", {}, `Enable ${alert.rule_id} on ${alert.device_id}?`) }, "Enable")
      : h("button", { type: "button", class: "secondary", onclick: act("disable", {}, `Disable ${alert.rule_id} on ${alert.device_id}?`) }, "Disable"));
}

function alertRow(alert) {
  const row = h("tr", { "data-alert": `${alert.device_id}/${alert.rule_id}` },
    h("td", {}, h("a", { href: `#/devices/${enc(alert.device_id)}` }, alert.device_id)),
    h("td", {}, alert.rule_id),
    h("td", {}, alert.severity ? pill(alert.severity) : "—"),
    h("td", { "data-state": alert.state }, pill(alert.state), alert.snoozed_until ? h("span", { class: "muted" }, ` snoozed until ${new Date(alert.snoozed_until).toLocaleTimeString()}`) : null),
    h("td", {}, ago(alert.since)),
    h("td", { class: "num" }, alert.last_value ?? "—"),
    h("td", {}, alertActions(alert, (updated) => row.replaceWith(alertRow(updated)))));
  return row;
}

function alertsTable(alerts) {
  return h("table", { "data-testid": "alerts" },
    h("thead", {}, h("tr", {}, ["Device", "Rule", "Severity", "State", "Since", "Last value", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, alerts.map(alertRow)));
}

async function alertsPage() {
  const q = hashQuery();
  const severity = q.get("severity") || "";
  const state = q.get("state") || "";
  const params = new URLSearchParams({ limit: "500" });
  if (severity) params.set("severity", severity);
  if (state) params.set("state", state);
  const alerts = await all(`/alerts?${params}`, "alerts");
  const change = (event) => {
    const form = event.target.closest("form");
    setHashQuery("#/alerts", { severity: form.severity.value, state: form.state.value });
  };
  return [
    h("h1", {}, "Alerts"),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
      h("label", {}, "Severity", h("select", { name: "severity", onchange: change },
        ["", "info", "warning", "critical"].map((s) => h("option", { value: s, selected: s === severity }, s || "any")))),
      h("label", {}, "State", h("select", { name: "state", onchange: change },
        ["", "ALARM", "ACKNOWLEDGED", "LATCHED", "PENDING", "OK", "DISABLED"].map((s) => h("option", { value: s, selected: s === state }, s || "any"))))),
    alertsTable(alerts),
    alerts.length === 0 ? h("p", { class: "muted" }, "No alerts match.") : null,
  ];
}

// ---- rules ----------------------------------------------------------------------------------

const NEW_RULE = {
  rule_id: "new-rule",
  name: "Describe what it watches",
  scope: "all",
  metric: "temperature",
  condition: { above: 30 },
  clear: 28,
  severity: "warning",
};

/// The JSON editor's line that names `field` (its last part), to point at what is wrong.
function markField(textarea, field) {
  const key = field.split(".").pop().replace(/\[\d+\]$/, "");
  const index = textarea.value.indexOf(`"${key}"`);
  if (index >= 0) {
    textarea.focus();
    textarea.setSelectionRange(index, index + key.length + 2);
  }
}

async function rulesPage() {
  const { rules } = await api("/rules");
  const editor = h("textarea", { name: "rule", "aria-label": "rule JSON", spellcheck: "false" }, JSON.stringify(NEW_RULE, null, 2));
  const fieldName = h("b", { "data-testid": "field-name" });
  const fieldMessage = h("span", { "data-testid": "field-message" });
  const error = h("div", { class: "field-error", role: "alert", "data-testid": "rule-error", hidden: true }, fieldName, " ", fieldMessage);
  const saved = h("p", { class: "muted", role: "status" });
  const save = async (event) => {
    event.preventDefault();
    error.hidden = true;
    editor.classList.remove("wrong");
    saved.textContent = "";
    let rule;
    try {
      rule = JSON.parse(editor.value);
    } catch (e) {
      error.hidden = false;
      editor.classList.add("wrong");
      fieldName.textContent = "JSON";
      fieldMessage.textContent = e.message;
      return;
    }
    try {
      const answer = await api(`/rules/${enc(rule.rule_id || "")}`, { method: "PUT", body: rule });
      saved.textContent = `Saved ${answer.rule.rule_id}.`;
      route();
    } catch (e) {
      // "rule field 'condition.above': …": the field, then what to fix.
      const match = /rule field '([^']+)': (.*)/s.exec(e.message);
      error.hidden = false;
      editor.classList.add("wrong");
      fieldName.textContent = match ? match[1] : "rule";
      fieldMessage.textContent = match ? match[2] : e.message;
      if (match) markField(editor, match[1]);
    }
  };
  return [
    h("h1", {}, "Rules"),
    h("table", { "data-testid": "rules" },
      h("thead", {}, h("tr", {}, ["Rule", "Name", "Metric", "Severity", "Enabled", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, rules.map((r) => h("tr", { "data-rule": r.rule_id },
        h("td", {}, r.rule_id), h("td", {}, r.name), h("td", {}, r.metric),
        // A rule with levels has a severity per level ({"warning": {...}, "critical": {...}}).
        h("td", {}, r.severity ? pill(r.severity) : Object.keys(r.levels || {}).map((level) => pill(level))),
        h("td", {}, r.enabled === false ? "no" : "yes"),
        h("td", {}, can("admin") ? h("button", { type: "button", class: "secondary", onclick: () => { editor.value = JSON.stringify(r, null, 2); editor.focus(); } }, "Edit") : null))))),
    can("admin") ? h("form", { class: "panel", onsubmit: save, "data-testid": "rule-form" },
      h("h2", {}, "Create or edit a rule (JSON, as docs/alerting.md describes)"),
      editor, error,
      h("div", { class: "filters", style: "margin-top:.6rem" }, h("button", { type: "submit" }, "Save rule"), saved)) : null,
  ];
}

// ---- routing --------------------------------------------------------------------------------

async function route() {
  const [path] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] || "fleet";
  for (const link of document.querySelectorAll("header nav a")) {
    link.toggleAttribute("aria-current", link.dataset.page === name);
    if (link.dataset.page === name) link.setAttribute("aria-current", "page");
  }
  showError(null);
  // Empty while a page loads: the tests (and assistive tools) wait for it to be set again.
  page.dataset.ready = "";
  try {
    let content;
    if (name === "devices" && parts[1]) content = await devicePage(decodeURIComponent(parts[1]));
    else if (name === "places") content = await placesPage(parts.slice(1).map(decodeURIComponent).join("/"));
    else if (name === "alerts") content = await alertsPage();
    else if (name === "rules") content = await rulesPage();
    else content = await fleetPage();
    page.replaceChildren(...[content].flat().filter(Boolean));
    page.dataset.ready = name;
  } catch (e) {
    page.dataset.ready = "error";
    showError(e);
  }
}

window.addEventListener("hashchange", route);
if (!token && signIn) {
  // Nothing to show before signing in: every API call would be refused.
  page.replaceChildren(Object.assign(document.createElement("p"), { textContent: "Sign in to see your fleet." }));
  page.dataset.ready = "signed-out";
  if (signInError) showError(signInError);
} else {
  route();
}
