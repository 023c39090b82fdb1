// @ts-check
// The session's config: a form (webhooks, proxy, automations, retention, idle timeout) and,
// under "Advanced", the same config as raw JSON. Both save with PATCH /api/sessions/{id}:
// the API validates, and its 4xx message shows next to the form with the field it names
// marked. A reload of the session never overwrites what the user is editing.
import { api } from "../api.js";
import { field, h, panel, replace, toast } from "../util.js";
import { settingsControls, webhookEditor } from "./configform.js";

/** @typedef {import("./configform.js").SessionConfig} SessionConfig */
/** @typedef {import("./configform.js").WebhookEditor} WebhookEditor */

// "... - at `$.config.webhooks[0].url`" or "$.config.proxy: ..." (msgspec and the API).
const FIELD_PATH = /\$\.config\.([a-z_]+)(?:\[(\d+)\](?:\.([a-z_]+))?)?/;

/**
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountConfig(parent, ctx) {
  /** @type {SessionConfig | null} */
  let config = null;
  let shown = "";
  let dirty = false;
  /** @type {WebhookEditor[]} */
  let hooks = [];
  /** @type {ReturnType<typeof settingsControls> | null} */
  let settings = null;

  const hookList = h("div", { class: "hook-list" });
  const groups = h("div", { class: "config-groups" });
  const formError = h("p", { class: "form-error", role: "alert", id: "config-error" });
  const form = h("form", { id: "config-form", novalidate: true, "aria-label": "Session config",
    onsubmit: saveForm },
    h("fieldset", { class: "config-group" }, h("legend", {}, "Webhooks"),
      h("p", { class: "hint" }, "Without webhooks here, events go to the gateway's own"
        + " webhook_url, if it has one."),
      hookList,
      h("button", { type: "button", class: "btn btn-small", onclick: addHook }, "Add webhook")),
    groups,
    formError,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn", onclick: () => fill(true) }, "Reset"),
      h("button", { type: "submit", class: "btn btn-primary" }, "Save config")));
  form.addEventListener("input", () => { dirty = true; });
  form.addEventListener("change", () => { dirty = true; });

  const configText = h("textarea", { id: "config-json", rows: 12, spellcheck: "false",
    class: "mono" });
  const jsonError = h("p", { class: "form-error", role: "alert" });
  const jsonForm = h("form", { onsubmit: saveJson, "aria-label": "Session config as JSON" },
    field("Session config (JSON)", configText,
      "The API's SessionConfig; secrets show as ****, which keeps them when sent back."),
    jsonError,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn" }, "Save JSON")));
  configText.addEventListener("input", () => { configText.dataset.dirty = "1"; });
  const advanced = h("details", { class: "advanced" },
    h("summary", {}, "Advanced: raw JSON"), jsonForm);
  parent.append(panel("config-panel", "Configuration", form, advanced));

  function numberHooks() {
    hooks.forEach((editor, index) => editor.number(index));
  }

  /** @param {WebhookEditor} editor */
  function removeHook(editor) {
    hooks = hooks.filter((e) => e !== editor);
    editor.element.remove();
    numberHooks();
    dirty = true;
  }

  function addHook() {
    const editor = webhookEditor(null, removeHook);
    hooks.push(editor);
    hookList.append(editor.element);
    numberHooks();
    dirty = true;
    editor.element.querySelector("input")?.focus();
  }

  /** @param {boolean} force also over unsaved edits */
  function fill(force) {
    if (!config) return;
    const text = JSON.stringify(config, null, 2);
    const editing = form.contains(document.activeElement);
    if (force || (!dirty && !editing && text !== shown)) {
      hooks = config.webhooks.map((hook) => webhookEditor(hook, removeHook));
      replace(hookList, hooks.map((editor) => editor.element));
      numberHooks();
      settings = settingsControls(config);
      replace(groups,
        h("fieldset", { class: "config-group" }, h("legend", {}, "Connection"),
          settings.connection),
        h("fieldset", { class: "config-group" }, h("legend", {}, "Automation"),
          settings.automation),
        h("fieldset", { class: "config-group" }, h("legend", {}, "Retention"),
          settings.retention));
      shown = text;
      dirty = false;
      formError.textContent = "";
    }
    if (force || (!configText.dataset.dirty && document.activeElement !== configText)) {
      configText.value = text;
      delete configText.dataset.dirty;
      jsonError.textContent = "";
    }
  }

  /** Marks the control the API's message names (and focuses it). @param {string} message */
  function markField(message) {
    const match = FIELD_PATH.exec(message);
    if (!match) return;
    const [, name, index, sub] = match;
    const scope = index === undefined ? groups : hooks[Number(index)]?.element;
    const target = scope?.querySelector(`[data-field="${sub ?? name}"]`)
      ?? (index === undefined ? null : scope);
    if (!(target instanceof HTMLElement)) return;
    target.setAttribute("aria-invalid", "true");
    target.setAttribute("aria-errormessage", formError.id);
    target.focus();
  }

  /**
   * @param {unknown} edited the config (or part of it) to PATCH
   * @param {HTMLElement} errorBox where a refusal is told
   * @returns {Promise<boolean>} saved
   */
  async function save(edited, errorBox) {
    for (const marked of form.querySelectorAll("[aria-invalid]")) {
      marked.removeAttribute("aria-invalid");
      marked.removeAttribute("aria-errormessage");
    }
    errorBox.textContent = "";
    try {
      const saved = await api("PATCH", `/api/sessions/${ctx.enc}`, { config: edited });
      if (saved?.config) config = saved.config;
      fill(true);
      toast("Config saved");
      return true;
    } catch (error) {
      errorBox.textContent = error.message;
      return false;
    }
  }

  /** @param {SubmitEvent} event */
  async function saveForm(event) {
    event.preventDefault();
    if (!settings) return;
    const edited = { webhooks: hooks.map((editor) => editor.read()), ...settings.read() };
    if (!(await save(edited, formError))) markField(formError.textContent ?? "");
  }

  /** @param {SubmitEvent} event */
  async function saveJson(event) {
    event.preventDefault();
    let edited;
    try {
      edited = JSON.parse(configText.value);
    } catch (error) {
      jsonError.textContent = `Not valid JSON: ${error.message}`;
      return;
    }
    await save(edited, jsonError);
  }

  return ctx.onSession((session) => {
    config = /** @type {SessionConfig} */ (session.config);
    fill(false);
  });
}
