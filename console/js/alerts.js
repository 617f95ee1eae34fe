// Alerts (`#/alerts`): alert states by severity and state; operators acknowledge, snooze,
// disable and enable. The table is also the device page's.

import { all, api } from "./api.js";
import { can } from "./auth.js";
import { ago, enc, h, hashQuery, pill, setHashQuery, showError } from "./dom.js";

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

export function alertsTable(alerts) {
  return h("table", { "data-testid": "alerts" },
    h("thead", {}, h("tr", {}, ["Device", "Rule", "Severity", "State", "Since", "Last value", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, alerts.map(alertRow)));
}

export async function alertsPage() {
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
