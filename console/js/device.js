// A device (`#/devices/<id>`): its record, latest values, a chart per metric over a preset
// range, its alerts, shadow and commands; operators send commands.

import { all, api, lastRange, RANGES } from "./api.js";
import { can } from "./auth.js";
import { ago, enc, h, hashQuery, pill, setHashQuery, showError } from "./dom.js";
import { alertsTable } from "./alerts.js";

/// The bin each preset asks for: a few hundred points whatever the range, from rollups where
/// the range is long (whole hours from 7 days up, so hourly rollups answer whichever finest
/// tier the job keeps, RollupFinestTier).
const BINS = { "1h": "30s", "24h": "5m", "7d": "1h", "30d": "2h", "1y": "1d" };
let liveTimer = null;

/// The chart's points for a preset, the request that gave them and its range (epoch seconds).
async function seriesOf(deviceId, metric, range) {
  const { from, to } = lastRange(range);
  const url = `/devices/${enc(deviceId)}/readings/${enc(metric)}?from=${from.toISOString()}&to=${to.toISOString()}&bin=${BINS[range]}&agg=avg&limit=10000`;
  const points = await all(url, "points", 20000);
  return { url, from: from.getTime() / 1000, to: to.getTime() / 1000, points: points.filter((p) => typeof p.value === "number") };
}

/// The y axis as wide as its longest label (uPlot's fixed 50 px cut the minus sign off
/// "-1.525"), measured in the axis's font. Within one layout (uPlot's cycles, bounded) it
/// only grows, so the labels a later cycle picks still fit and the cycles settle.
function yAxisSize(self, values, axisIndex, cycle) {
  const axis = self.axes[axisIndex];
  const longest = (values ?? []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), "");
  self.ctx.font = axis.font[0];
  const size = Math.ceil(axis.ticks.size + axis.gap + (longest ? self.ctx.measureText(longest).width / devicePixelRatio : 0));
  return cycle > 1 ? Math.max(axis._size, size) : size;
}

/// A uPlot chart of `points` whose x axis is the range asked for, [from, to], whatever the
/// data covers (uPlot would otherwise fit the axis to the points: a single bin spanned years).
function chart(target, metric, { points, from, to }) {
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
    axes: [{}, { size: yAxisSize }],
    // Used whenever uPlot ranges x from the data (drawing, a double-click after zooming); a
    // drag-zoom still sets its own range.
    scales: { x: { time: true, range: () => [from, to] } },
  }, [xs, ys], target);
}

export async function devicePage(deviceId) {
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
      box.__uplot = chart(box, metric, series[i]);
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
