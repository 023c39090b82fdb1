// @ts-check
// The session config as form controls: one builder per field of the API's SessionConfig
// (gowa_py/models.py), each able to read its value back. Nothing is validated here: the API
// judges what is sent (with the structs every client meets) and names the field it refuses.
import { field, fieldId, h } from "../util.js";

/** What the API shows in place of a secret that is set; sent back, it keeps the secret. */
export const SECRET_MASK = "****";

/** The events a webhook can ask for by name (README, "Webhooks"); none ticked: every event. */
const EVENTS = ["message", "message.ack", "message.reaction", "message.revoked",
  "message.edited", "message.sent", "message.lost", "chat_presence", "call.offer",
  "group.joined", "group.participants", "newsletter.joined", "newsletter.left",
  "newsletter.message", "newsletter.mute", "session.status", "session.qr",
  "session.qr_expired", "session.passkey_required", "session.pair", "session.login_lost",
  "session.watchdog"];

/**
 * A webhook as the API shows it: `secret` is the mask when one is set, null otherwise.
 * @typedef {{ url: string, secret: string | null, events: string[] }} Webhook
 */

/**
 * The session config as the API shows it (secrets masked).
 * @typedef {object} SessionConfig
 * @property {Webhook[]} webhooks
 * @property {string | null} proxy
 * @property {boolean} auto_start
 * @property {number | null} idle_timeout
 * @property {string | null} auto_reply
 * @property {boolean} auto_mark_read
 * @property {boolean} auto_download_media
 * @property {boolean} auto_reject_call
 * @property {string} presence_on_connect
 * @property {number | null} chat_retention_days
 */

/**
 * A whole number as a number, empty as null, anything else as typed: the API then says
 * what it expected instead of the form guessing.
 * @param {HTMLInputElement} input
 * @returns {number | string | null}
 */
function wholeNumber(input) {
  const text = input.value.trim();
  if (text === "") return null;
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

/**
 * @param {string} name @param {string} label @param {boolean} checked
 * @param {string} [hint] @param {string} [value]
 */
function checkbox(name, label, checked, hint, value) {
  const id = fieldId(name);
  const input = h("input", { type: "checkbox", id, "data-field": name, checked, value });
  const hintId = `${id}-hint`;
  if (hint) input.setAttribute("aria-describedby", hintId);
  return {
    input,
    element: h("div", { class: "field checkbox" }, input, h("label", { for: id }, label),
      hint ? h("small", { id: hintId, class: "hint" }, hint) : null),
  };
}

/**
 * @typedef {object} WebhookEditor
 * @property {HTMLFieldSetElement} element
 * @property {(index: number) => void} number names it by its position
 * @property {() => Webhook} read the hook to send
 */

/**
 * One webhook's controls: URL, a write-only secret, the events it wants.
 * @param {Webhook | null} hook null: a new one
 * @param {(editor: WebhookEditor) => void} onRemove
 * @returns {WebhookEditor}
 */
export function webhookEditor(hook, onRemove) {
  const stored = Boolean(hook?.secret);
  const url = h("input", { type: "url", "data-field": "url", value: hook?.url ?? "",
    placeholder: "https://…", autocomplete: "off", spellcheck: "false" });
  // A password box that never holds the stored secret: the API never sends it.
  const secret = h("input", { type: "password", "data-field": "secret", value: "",
    autocomplete: "new-password", placeholder: stored ? "•••••• (set)" : "" });
  const clear = stored ? checkbox("clear", "Remove the secret", false,
    "Deliveries are then signed with the gateway's webhook_secret.") : null;
  const known = [...EVENTS, ...(hook?.events ?? []).filter((e) => !EVENTS.includes(e))];
  const all = checkbox("all", "All events", !hook?.events?.length);
  const boxes = known.map((name) => checkbox("event", name,
    Boolean(hook?.events?.includes(name)), undefined, name));
  const syncAll = () => {
    for (const box of boxes) box.input.disabled = all.input.checked;
  };
  all.input.addEventListener("change", syncAll);
  syncAll();
  const legend = h("legend", {});
  const element = h("fieldset", { class: "hook" }, legend,
    field("URL", url),
    field("Secret", secret, stored
      ? "A secret is set; it is never shown. Leave empty to keep it, type one to replace it."
      + " Changing the URL drops it."
      : "None: deliveries are signed with the gateway's webhook_secret."),
    clear?.element,
    h("fieldset", { class: "hook-events", "data-field": "events" },
      h("legend", {}, "Events"), all.element,
      h("div", { class: "event-boxes" }, boxes.map((box) => box.element))),
    h("button", { type: "button", class: "btn btn-small btn-danger-ghost",
      onclick: () => onRemove(editor) }, "Remove webhook"));

  /** @type {WebhookEditor} */
  const editor = {
    element,
    number(index) {
      legend.textContent = `Webhook ${index + 1}`;
      element.setAttribute("aria-label", `Webhook ${index + 1}`);
    },
    /** The hook to send: no secret keeps the stored one, "" removes it. */
    read() {
      const typed = secret.value;
      return {
        url: url.value.trim(),
        secret: typed !== "" ? typed : (clear?.input.checked ? "" : null),
        events: all.input.checked ? [] : boxes.filter((b) => b.input.checked)
          .map((b) => b.input.value),
      };
    },
  };
  return editor;
}

/**
 * The controls of every field but the webhooks, filled from `config`.
 * @param {SessionConfig} config
 */
export function settingsControls(config) {
  const proxy = h("input", { type: "text", "data-field": "proxy", value: config.proxy ?? "",
    placeholder: "socks5://user:password@host:port", autocomplete: "off", spellcheck: "false" });
  const idle = h("input", { type: "text", inputmode: "numeric", "data-field": "idle_timeout",
    value: config.idle_timeout ?? "", placeholder: "never" });
  const retention = h("input", { type: "text", inputmode: "numeric",
    "data-field": "chat_retention_days", value: config.chat_retention_days ?? "",
    placeholder: "forever" });
  const reply = h("input", { type: "text", "data-field": "auto_reply",
    value: config.auto_reply ?? "", placeholder: "off" });
  const presence = h("select", { "data-field": "presence_on_connect" },
    [["available", "Available"], ["unavailable", "Unavailable"], ["none", "Send nothing"]]
      .map(([value, label]) => h("option", { value,
        selected: config.presence_on_connect === value }, label)));
  const autoStart = checkbox("auto_start", "Start with the gateway", config.auto_start);
  const markRead = checkbox("auto_mark_read", "Mark incoming messages read",
    config.auto_mark_read);
  const download = checkbox("auto_download_media", "Download incoming media",
    config.auto_download_media);
  const reject = checkbox("auto_reject_call", "Reject incoming calls", config.auto_reject_call);
  return {
    connection: [
      field("Proxy", proxy, "http, https or socks5; a password in it shows as ****, which"
        + " keeps it. Changing the proxy restarts a running session."),
      autoStart.element,
      field("Idle timeout (seconds)", idle,
        "Stop the worker after this long without use (at least 60); the next request wakes"
        + " it. Empty: never."),
    ],
    automation: [
      markRead.element, download.element, reject.element,
      field("Auto-reply", reply, "Answered to every incoming message. Empty: off."),
      field("Presence on connect", presence),
    ],
    retention: [
      field("Chat history retention (days)", retention, "Older messages are deleted."
        + " Empty: kept forever."),
    ],
    /** Every field but the webhooks, as the API's SessionConfig names them. */
    read() {
      return {
        proxy: proxy.value.trim() || null,
        auto_start: autoStart.input.checked,
        idle_timeout: wholeNumber(idle),
        auto_reply: reply.value === "" ? null : reply.value,
        auto_mark_read: markRead.input.checked,
        auto_download_media: download.input.checked,
        auto_reject_call: reject.input.checked,
        presence_on_connect: presence.value,
        chat_retention_days: wholeNumber(retention),
      };
    },
  };
}
