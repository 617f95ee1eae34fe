// The iotdp console's entry: routes each hash (`#/fleet`, `#/places/…`, `#/devices/<id>`,
// `#/alerts`, `#/rules`) to its page module, which renders it from the query API (same
// origin). Plain ES modules, no framework, no build step: the pages build DOM with `h`
// (js/dom.js), call the API through js/api.js and learn the caller from js/auth.js; charts
// are uPlot (loaded by index.html). Every request shows progress, every failure the API's
// problem `detail`.

import { signIn, signInError, showWho, token } from "./js/auth.js";
import { onRefresh, showError } from "./js/dom.js";
import { fleetPage } from "./js/fleet.js";
import { placesPage } from "./js/places.js";
import { devicePage } from "./js/device.js";
import { alertsPage } from "./js/alerts.js";
import { rulesPage } from "./js/rules.js";

const page = document.getElementById("page");

// Which route is the latest: a page that finishes loading after a later one began is dropped.
let routes = 0;

async function route() {
  const turn = ++routes;
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
    if (turn !== routes) return;
    page.replaceChildren(...[content].flat().filter(Boolean));
    // What is shown (e.g. "places/wall-12"), so a wait can tell this page from the last one.
    page.dataset.shown = parts.map(decodeURIComponent).join("/");
    page.dataset.ready = name;
  } catch (e) {
    if (turn !== routes) return;
    page.dataset.ready = "error";
    showError(e);
  }
}

showWho();
onRefresh(route);
window.addEventListener("hashchange", route);
if (!token && signIn) {
  // Nothing to show before signing in: every API call would be refused.
  page.replaceChildren(Object.assign(document.createElement("p"), { textContent: "Sign in to see your fleet." }));
  page.dataset.ready = "signed-out";
  if (signInError) showError(signInError);
} else {
  route();
}
