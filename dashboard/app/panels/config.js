// @ts-check
// The session's config as JSON (webhooks, proxy, auto_start, ...), saved with PATCH. A
// reload does not overwrite what the user is typing.
import { api } from "../api.js";
import { field, h, panel, toast } from "../util.js";

/**
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountConfig(parent, ctx) {
  /** @type {Record<string, unknown> | null} */
  let config = null;
  const configText = h("textarea", { id: "config-json", rows: 10, spellcheck: "false",
    class: "mono" });
  const configError = h("p", { class: "form-error", role: "alert" });
  const configForm = h("form", { onsubmit: saveConfig },
    field("Session config (JSON)", configText,
      "webhooks, proxy, auto_start, idle_timeout — saved with PATCH /api/sessions/{id}."),
    configError,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn", onclick: () => fillConfig(true) }, "Reset"),
      h("button", { type: "submit", class: "btn btn-primary" }, "Save config")));
  parent.append(panel("config-panel", "Configuration", configForm));
  configText.addEventListener("input", () => { configText.dataset.dirty = "1"; });

  /** @param {boolean} force also over unsaved edits */
  function fillConfig(force) {
    if (!config || (!force && document.activeElement === configText)) return;
    if (force || !configText.dataset.dirty) {
      configText.value = JSON.stringify(config, null, 2);
      delete configText.dataset.dirty;
      configError.textContent = "";
    }
  }

  /** @param {SubmitEvent} event */
  async function saveConfig(event) {
    event.preventDefault();
    let edited;
    try {
      edited = JSON.parse(configText.value);
    } catch (error) {
      configError.textContent = `Not valid JSON: ${error.message}`;
      return;
    }
    try {
      const saved = await api("PATCH", `/api/sessions/${ctx.enc}`, { config: edited });
      if (saved?.config) config = saved.config;
      delete configText.dataset.dirty;
      fillConfig(true);
      toast("Config saved");
    } catch (error) {
      configError.textContent = error.message;
    }
  }

  return ctx.onSession((session) => {
    config = session.config;
    fillConfig(false);
  });
}
