// Small DOM helpers every page uses: `h` builds elements, the rest format and read the hash.

/// An element: attributes (`on…` are listeners, `class` the class name; null, undefined and
/// false are left out) and children (nested arrays flattened, nulls skipped, text as text).
export function h(tag, attributes = {}, ...children) {
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

export const pill = (text, kind = text) => h("span", { class: `pill ${kind}` }, text);
export const enc = encodeURIComponent;

export function ago(time) {
  if (!time) return "never";
  const seconds = Math.round((Date.now() - Date.parse(time)) / 1000);
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/// The query of the hash route (`#/fleet?type=…`).
export function hashQuery() {
  const [, query = ""] = location.hash.split("?");
  return new URLSearchParams(query);
}

export function setHashQuery(route, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  location.hash = query ? `${route}?${query}` : route;
}

/// The banner under the header: an API error's problem `title` and `detail`, any other
/// error's message; nothing hides it.
export function showError(error) {
  const banner = document.getElementById("error");
  if (!error) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  banner.hidden = false;
  // An ApiError (api.js) carries the API's problem document.
  banner.textContent = error.problem ? `${error.problem.title || "Error"}: ${error.message}` : String(error.message || error);
}

let rerender = () => {};

/// Renders the current route again (the router registers itself with `onRefresh`).
export const refresh = () => rerender();
export function onRefresh(render) {
  rerender = render;
}
