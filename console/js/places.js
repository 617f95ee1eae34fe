// Places (`#/places/<site>/<zone>/<section>/<spot>`): each level's groups coloured by a
// metric's aggregate (the drill-down API); a spot lists its devices.

import { all, api, lastRange, RANGES } from "./api.js";
import { enc, h, hashQuery, setHashQuery } from "./dom.js";

/// A colour from red (lowest) to green (highest) of the values shown.
function shade(value, low, high) {
  const t = high > low ? (value - low) / (high - low) : 0.5;
  return `hsl(${Math.round(t * 130)}, 65%, 72%)`;
}

export async function placesPage(path) {
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
  const { from, to } = lastRange(range);
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
