// @ts-check
// Linking a phone: the rotating QR code, a pairing code, and (sandbox only) a scan by a
// sandbox phone. Hidden once the session is CONNECTED.
import { get, imageUrl, post } from "../api.js";
import { app } from "../state.js";
import { field, h, panel, replace, toast } from "../util.js";

/**
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountLogin(parent, ctx) {
  const { id, enc } = ctx;
  /** @type {string | null} */
  let qrUrl = null;
  let qrExpires = 0;

  const qrImage = h("img", { id: "qr-image", alt: `QR code to link session ${id}`,
    width: 264, height: 264, hidden: true });
  const qrNote = h("p", { id: "qr-note", class: "muted", "aria-live": "polite" },
    "No QR code yet.");
  const showQr = h("button", { type: "button", class: "btn btn-primary", id: "show-qr",
    onclick: startLogin }, "Show QR code");
  const pairPhone = h("input", { type: "tel", name: "pair_phone", inputmode: "numeric",
    placeholder: "5511999990000", autocomplete: "off" });
  const pairResult = h("p", { class: "pair-code", id: "pair-code", "aria-live": "polite" });
  const pairForm = h("form", { class: "inline-form", onsubmit: pairCode },
    field("Phone number for a pairing code", pairPhone, "International format, digits only."),
    h("button", { type: "submit", class: "btn" }, "Get pairing code"));
  const sandboxPhone = h("input", { type: "tel", name: "sandbox_phone", inputmode: "numeric",
    placeholder: "automatic", autocomplete: "off" });
  const sandboxButton = h("button", { type: "submit", class: "btn btn-sandbox",
    id: "sandbox-scan" }, "Scan with a sandbox phone");
  const sandboxForm = app.info?.sandbox ? h("form", { class: "inline-form sandbox-form",
    onsubmit: sandboxScan },
  field("Sandbox phone (optional)", sandboxPhone, "Created in the sandbox if it does not exist."),
  sandboxButton) : null;
  const loginPanel = panel("login-panel", "Link a phone",
    h("div", { class: "qr-layout" },
      h("figure", { class: "qr-box" }, qrImage, h("figcaption", {}, qrNote)),
      h("div", { class: "qr-side" },
        h("p", {}, "Open WhatsApp on the phone, Linked devices → Link a device, and scan "
          + "the code. It is replaced automatically when it rotates."),
        showQr, pairForm, pairResult, sandboxForm)));
  parent.append(loginPanel);

  /** @param {string} note */
  function clearQr(note) {
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = null;
    qrImage.hidden = true;
    qrImage.removeAttribute("src");
    qrNote.textContent = note;
  }

  /** @param {number} [validFor] seconds the code stays valid */
  async function loadQr(validFor) {
    const url = await imageUrl(`/api/sessions/${enc}/qr.png`);
    if (ctx.closed()) {
      if (url) URL.revokeObjectURL(url);
      return;
    }
    if (!url) {
      if (!qrUrl) qrNote.textContent = "No QR code yet: press “Show QR code”.";
      return;
    }
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = url;
    qrImage.src = url;
    qrImage.hidden = false;
    qrImage.dataset.version = String(Number(qrImage.dataset.version || 0) + 1);
    qrExpires = validFor ? Date.now() + validFor * 1000 : 0;
    tickQr();
  }

  function tickQr() {
    if (!qrUrl) return;
    const left = Math.round((qrExpires - Date.now()) / 1000);
    qrNote.textContent = qrExpires && left > 0
      ? `Scan within ${left} s; a new code follows automatically.`
      : "Waiting for the next code…";
  }

  async function startLogin() {
    showQr.disabled = true;
    qrNote.textContent = "Starting the session and waiting for a QR code…";
    try {
      const result = await get(`/api/${enc}/app/login`);
      await loadQr(result.qr_duration);
    } catch (error) {
      qrNote.textContent = error.message;
    } finally {
      showQr.disabled = false;
    }
  }

  /** @param {SubmitEvent} event */
  async function pairCode(event) {
    event.preventDefault();
    pairResult.textContent = "Requesting a pairing code…";
    try {
      const phone = encodeURIComponent(pairPhone.value.trim());
      const result = await get(`/api/${enc}/app/login-with-code?phone=${phone}`);
      replace(pairResult, "Enter this code on the phone: ",
        h("strong", { class: "mono" }, result.pair_code));
    } catch (error) {
      pairResult.textContent = error.message;
    }
  }

  /** @param {SubmitEvent} event */
  async function sandboxScan(event) {
    event.preventDefault();
    sandboxButton.disabled = true;
    try {
      const phone = sandboxPhone.value.trim();
      const result = await post(`/api/dashboard/sessions/${enc}/sandbox-scan`,
        phone ? { phone } : {});
      toast(`Scanned by sandbox phone +${result.phone}`);
    } catch (error) {
      toast(`Sandbox scan failed: ${error.message}`, "error");
    } finally {
      sandboxButton.disabled = false;
    }
  }

  const offSession = ctx.onSession((session) => {
    const linked = session.status === "CONNECTED";
    loginPanel.hidden = linked;
    if (linked) clearQr("Linked.");
    // Covers a QR event missed while the WebSocket was (re)connecting.
    else if (session.status === "SCAN_QR_CODE" && !qrUrl) loadQr();
    // Stopped (a passkey request, no code scanned in time, ...): the code shown links
    // nothing any more.
    else if (qrUrl && !["SCAN_QR_CODE", "STARTING"].includes(session.status)) {
      clearQr("The session stopped: this code no longer links. Press “Show QR code” for "
        + "a new one.");
    }
  });
  const offEvent = ctx.onEvent((event) => {
    if (event.event === "session.qr") loadQr(event.payload?.qr_duration);
  });
  const qrTimer = setInterval(tickQr, 1000);

  return () => {
    offSession();
    offEvent();
    clearInterval(qrTimer);
    if (qrUrl) URL.revokeObjectURL(qrUrl);
    qrUrl = null;
  };
}
