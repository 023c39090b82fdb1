// @ts-check
// The session's webhook deliveries (outbox): status counts, the last 50, redelivery.
import { ApiFailure, get, post } from "../api.js";
import { h, panel, replace, toast } from "../util.js";

const REFRESH_MS = 15000;

/**
 * @typedef {object} Delivery
 * @property {string | number} id
 * @property {string} event
 * @property {string} status
 * @property {number} attempts
 * @property {string | null} [last_error]
 * @property {number | string | null} [last_status]
 * @property {number | string | null} [created_at] epoch seconds or ISO text
 */

/** @param {number | string | null | undefined} value */
function when(value) {
  if (value === null || value === undefined) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/**
 * Hidden until the first answer; a 404 (the session was just deleted) hides it quietly.
 * @param {HTMLElement} parent
 * @param {import("../session.js").SessionContext} ctx
 * @returns {() => void} cleanup
 */
export function mountDeliveries(parent, ctx) {
  const { enc } = ctx;
  const deliveriesBody = h("div", { id: "deliveries" });
  const deliveriesPanel = panel("deliveries-panel", "Webhook deliveries", deliveriesBody);
  deliveriesPanel.hidden = true;
  parent.append(deliveriesPanel);

  /** @param {Delivery} delivery */
  async function redeliver(delivery) {
    try {
      await post(`/api/${enc}/webhooks/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);
      toast(`Delivery ${delivery.id} queued again`);
    } catch (error) {
      toast(`Redeliver failed: ${error.message}`, "error");
    }
    loadDeliveries();
  }

  async function loadDeliveries() {
    let result;
    try {
      result = await get(`/api/${enc}/webhooks/deliveries?limit=50`);
    } catch (error) {
      deliveriesPanel.hidden = true;
      if (!(error instanceof ApiFailure) || error.status !== 404) {
        toast(`Webhook deliveries: ${error.message}`, "error");
      }
      return;
    }
    /** @type {Delivery[]} */
    const rows = Array.isArray(result) ? result : result?.deliveries || [];
    /** @type {Record<string, number>} */
    const counts = result?.counts || {};
    deliveriesPanel.hidden = false;
    const summaryLine = h("p", { class: "muted" },
      Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(" · ") || "",
      " ", h("button", { type: "button", class: "btn btn-small", onclick: loadDeliveries },
        "Refresh"));
    if (!rows.length) {
      replace(deliveriesBody, summaryLine, h("p", { class: "muted" }, "No deliveries yet."));
      return;
    }
    /** @param {string} label @param {string | number | null | undefined} value */
    const cell = (label, value) => h("td", { "data-label": label }, value ?? "–");
    replace(deliveriesBody, summaryLine, h("div", { class: "table-wrap" },
      h("table", { class: "table", id: "deliveries-table" },
        h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Last result", "Created", ""]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((d) => h("tr", {},
          cell("Event", d.event), cell("Status", d.status), cell("Attempts", d.attempts),
          cell("Last result", d.last_error || d.last_status),
          cell("Created", when(d.created_at)),
          h("td", {}, d.status === "delivered" ? null : h("button", { type: "button",
            class: "btn btn-small", "aria-label": `Redeliver ${d.event} delivery ${d.id}`,
            onclick: () => redeliver(d) }, "Redeliver"))))))));
  }

  ctx.ready.then((found) => {
    if (found) loadDeliveries();
  });
  const timer = setInterval(() => {
    if (!deliveriesPanel.hidden) loadDeliveries();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
