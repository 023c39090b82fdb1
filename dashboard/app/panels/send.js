// @ts-check
// A test message from the session, through the same API a client uses.
import { post } from "../api.js";
import { field, h, panel } from "../util.js";

/**
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountSend(parent, ctx) {
  const sendTo = h("input", { type: "text", name: "phone", required: true,
    placeholder: "5511999990000 or JID", autocomplete: "off" });
  const sendText = h("textarea", { name: "message", rows: 2, required: true });
  const sendResult = h("p", { class: "muted", "aria-live": "polite", id: "send-result" });
  const sendForm = h("form", { onsubmit: sendMessage },
    field("To", sendTo), field("Message", sendText), sendResult,
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "btn btn-primary" }, "Send test message")));
  parent.append(panel("send-panel", "Send a test message", sendForm));

  /** @param {SubmitEvent} event */
  async function sendMessage(event) {
    event.preventDefault();
    sendResult.textContent = "Sending…";
    try {
      const result = await post(`/api/${ctx.enc}/send/message`,
        { phone: sendTo.value.trim(), message: sendText.value });
      sendResult.textContent = `${result.status} (id ${result.message_id})`;
    } catch (error) {
      sendResult.textContent = `Not sent: ${error.message}`;
    }
  }

  // Nothing outlives the form: no timer, no subscription.
  return () => {};
}
