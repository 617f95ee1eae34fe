// Rules (`#/rules`): every rule the caller sees; admins create or edit one as JSON, and the
// API's error points at the field it names.

import { api } from "./api.js";
import { can } from "./auth.js";
import { enc, h, pill, refresh } from "./dom.js";

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

export async function rulesPage() {
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
      refresh();
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
