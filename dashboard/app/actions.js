// @ts-check
// Session actions shared by the table and the session page.
import { api, post } from "./api.js";
import { confirmDialog, field, h, toast } from "./util.js";

const RUNNING = new Set(["STARTING", "SCAN_QR_CODE", "CONNECTED", "DISCONNECTED", "LOGGED_OUT"]);

/**
 * @param {string} label @param {() => Promise<unknown>} fn @param {() => void} [after]
 */
async function act(label, fn, after) {
  try {
    await fn();
    toast(label);
  } catch (error) {
    toast(`${label} failed: ${error.message}`, "error");
  }
  after?.();
}

/**
 * Start/stop/restart/logout/delete buttons for one session.
 * @param {{ id: string, status: string, me?: object | null }} session
 * @param {() => void} after called once an action is done (to reload)
 * @param {{ onDeleted?: () => void }} [options]
 */
export function actionButtons(session, after, { onDeleted } = {}) {
  const id = session.id;
  const base = `/api/sessions/${encodeURIComponent(id)}`;
  const running = RUNNING.has(session.status);
  const button = (name, label, handler, opts = {}) => h("button", {
    type: "button", class: `btn btn-small ${opts.danger ? "btn-danger-ghost" : ""}`,
    "aria-label": `${label} session ${id}`, "data-action": name, disabled: opts.disabled,
    onclick: handler }, label);
  return h("div", { class: "actions", role: "group", "aria-label": `Actions for ${id}` },
    button("start", "Start", () => act(`Started ${id}`, () => post(`${base}/start`), after),
      { disabled: running }),
    button("stop", "Stop", () => act(`Stopped ${id}`, () => post(`${base}/stop`), after),
      { disabled: !running }),
    button("restart", "Restart",
      () => act(`Restarted ${id}`, () => post(`${base}/restart`), after)),
    button("logout", "Logout", async () => {
      if (await confirmDialog(`Log out ${id}?`,
        "The phone link is removed; a new QR scan is needed to use this session again.",
        "Log out")) {
        act(`Logged out ${id}`, () => post(`${base}/logout`), after);
      }
    }, { disabled: !session.me || !running }),
    button("delete", "Delete", async () => {
      if (await confirmDialog(`Delete ${id}?`,
        "This logs it out of WhatsApp, stops the worker and removes the session's files and "
          + "history. It cannot be undone.",
        "Delete")) {
        await act(`Deleted ${id}`, async () => {
          const result = await api("DELETE", base);
          if (result && result.unlinked === false) {
            toast(`${id} was not connected and could not be logged out of WhatsApp: remove it `
              + "from the phone's linked devices", "error");
          }
        }, onDeleted || after);
      }
    }, { danger: true }));
}

/**
 * The "New session" dialog: id, webhook URL, proxy, start now.
 * @param {(id: string) => void} [onCreated]
 */
export function createSessionDialog(onCreated) {
  const id = h("input", { type: "text", name: "session_id", required: true,
    pattern: "[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}", autocomplete: "off", spellcheck: "false" });
  const webhook = h("input", { type: "url", name: "webhook", placeholder: "https://…" });
  const secret = h("input", { type: "text", name: "webhook_secret", autocomplete: "off" });
  const proxy = h("input", { type: "text", name: "proxy", placeholder: "socks5://host:port",
    pattern: "(https?|socks5)://\\S+" });
  const start = h("input", { type: "checkbox", name: "start", checked: true, id: "create-start" });
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h("form", { method: "dialog" },
    h("h2", { id: "create-title" }, "New session"),
    field("Session id", id, "Letters, digits, _ and -; up to 64 characters."),
    field("Webhook URL (optional)", webhook),
    field("Webhook secret (optional)", secret),
    field("Proxy (optional)", proxy),
    h("div", { class: "field checkbox" }, start, h("label", { for: "create-start" }, "Start now")),
    error,
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", class: "btn", value: "cancel",
        onclick: () => dialog.close("cancel") }, "Cancel"),
      h("button", { type: "submit", class: "btn btn-primary", value: "ok" }, "Create")));
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": "create-title" }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const config = {};
    if (webhook.value) {
      config.webhooks = [{ url: webhook.value, ...(secret.value ? { secret: secret.value } : {}) }];
    }
    if (proxy.value) config.proxy = proxy.value;
    try {
      await post("/api/sessions", { session_id: id.value, config, start: start.checked });
      toast(`Created ${id.value}`);
      dialog.close("ok");
      onCreated?.(id.value);
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  id.focus();
}
