// @ts-check
// Small DOM and formatting helpers. Elements are built with h(), never from HTML strings,
// so event payloads (message texts, push names) can never inject markup.

/** @typedef {Node | string | number | boolean | null | undefined | Child[]} Child */

/**
 * An element with attributes (`on*` functions become listeners) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** @param {Element} el @param {Child[]} children */
function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {...Child} children
 * @returns {E}
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function bytes(value) {
  if (!value) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = value;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function ago(iso) {
  if (!iso) return "never";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 5) return "just now";
  return `${duration(seconds)} ago`;
}

export function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}

/**
 * @param {string} status
 * @param {boolean} [hibernating] stopped for being idle: the next request wakes it
 */
export function badge(status, hibernating = false) {
  const label = hibernating ? `${status} · hibernating` : status || "UNKNOWN";
  return h("span", { class: `badge badge-${(status || "unknown").toLowerCase()}`,
    "data-status": status, "data-hibernating": hibernating ? "true" : null,
    title: hibernating ? "Idle: stopped by idle_timeout; the next request wakes it" : null },
  label);
}

/**
 * A session's error made readable: one the worker names with a code ("PASSKEY_REQUIRED:
 * WhatsApp asked ...") as that code, a label for it and the rest; any other as it is.
 * @param {string} error
 * @returns {{ code: string | null, label: string, message: string }}
 */
export function describeError(error) {
  const match = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(error);
  if (!match) return { code: null, label: "Error", message: error };
  const words = match[1].toLowerCase().replaceAll("_", " ");
  return { code: match[1], label: words[0].toUpperCase() + words.slice(1), message: match[2] };
}

/**
 * A short mark of a session's error for a table cell: its label, the whole error on hover.
 * @param {string | null | undefined} error
 */
export function errorChip(error) {
  if (!error) return null;
  const { code, label } = describeError(error);
  return h("span", { class: "error-chip", title: error, "data-code": code }, label);
}

/** @param {string} message @param {"info" | "error"} [kind] */
export function toast(message, kind = "info") {
  const box = byId("toasts");
  const item = h("div", { class: `toast toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/**
 * A modal yes/no question on a native <dialog> (focus trap and Esc come with it).
 * @param {string} title @param {string} text @param {string} [confirmLabel]
 * @returns {Promise<boolean>}
 */
export function confirmDialog(title, text, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "confirm-title" },
      h("form", { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", {}, text),
        h("div", { class: "dialog-actions" },
          h("button", { value: "cancel", class: "btn", autofocus: true }, "Cancel"),
          h("button", { value: "ok", class: "btn btn-danger" }, confirmLabel))));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * An element index.html always has; a missing one is a bug worth a loud error.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
}

let uid = 0;
export function fieldId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * A labelled form control: <label for> + control (+ hint wired with aria-describedby).
 * @param {string} label @param {HTMLElement} control @param {string} [hint]
 */
export function field(label, control, hint) {
  const id = control.id || fieldId("f");
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/**
 * A titled card of the session page, labelled by its heading.
 * @param {string} id @param {string} title @param {...Child} children
 */
export function panel(id, title, ...children) {
  return h("section", { class: "card panel", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), ...children);
}
