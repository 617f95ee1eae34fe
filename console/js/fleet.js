// Fleet (`#/fleet`): every device the caller may see, counts by status, filters.

import { all } from "./api.js";
import { ago, enc, h, hashQuery, pill, setHashQuery } from "./dom.js";

export async function fleetPage() {
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
